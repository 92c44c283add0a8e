#!/usr/bin/env bash
# Run cawb's compatibility subset (python -m pytest -m compat) against another ultralytics release, leaving this
# environment as it is:
#
#   scripts/check_ultralytics.sh 8.4.150                 # the subset on ultralytics 8.4.150
#   scripts/check_ultralytics.sh 8.4.150 -x -k resume    # extra arguments go to pytest
#   scripts/check_ultralytics.sh --refused 8.4.99        # a release cawb must refuse: one line, exit 2
#
# The release is installed with --no-deps into .compat/ultralytics-VERSION/site (ultralytics is pure Python; its
# dependencies, torch first, are the active environment's), which goes in front of the environment's own packages
# through PYTHONPATH, for the tests and every process they start. Each release gets its own YOLO_CONFIG_DIR:
# ultralytics rewrites its settings.json to its own schema. Run it in the environment that has cawb installed
# (pip install -e ".[dev]"); PYTHON names another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
refused=0
if [ "${1:-}" = "--refused" ]; then refused=1; shift; fi
version=${1:?usage: scripts/check_ultralytics.sh [--refused] VERSION [pytest arguments]}
shift
python=${PYTHON:-python}
root="$PWD/.compat/ultralytics-$version"
if [ ! -f "$root/site/.complete" ]; then
    rm -rf "$root/site"
    mkdir -p "$root"
    if ! "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$root/site" \
            "ultralytics==$version" >"$root/pip.log" 2>&1; then
        cat "$root/pip.log" >&2
        exit 1
    fi
    touch "$root/site/.complete"
fi
mkdir -p "$root/config"
export PYTHONPATH="$root/site${PYTHONPATH:+:$PYTHONPATH}"
export YOLO_CONFIG_DIR="$root/config"
export MPLBACKEND=Agg

# the first import writes its settings file and says so on stdout: the version is the last line
imported=$("$python" -c "import ultralytics; print(ultralytics.__version__)" | tail -n 1)
if [ "$imported" != "$version" ]; then
    echo "check_ultralytics: python imports ultralytics $imported, not $version" >&2
    exit 1
fi
if [ "$refused" = 1 ]; then
    work=$(mktemp -d)
    set +e
    (cd "$work" && "$python" "$OLDPWD/train_cawb.py" --epochs 1 >"$work/.out" 2>"$work/.err")
    status=$?
    set -e
    cat "$work/.err" >&2
    lines=$(wc -l <"$work/.err")
    written=$(find "$work" -mindepth 1 -not -name '.out' -not -name '.err' | wc -l)
    rm -rf "$work"
    if [ "$status" = 2 ] && [ "$lines" = 1 ] && [ "$written" = 0 ]; then
        echo "check_ultralytics: ultralytics $version refused in one line, exit 2, nothing written"
        exit 0
    fi
    echo "check_ultralytics: ultralytics $version was not refused as it should be (exit $status)" >&2
    exit 1
fi
CAWB_EXPECT_ULTRALYTICS="$version" exec "$python" -m pytest -m compat -p no:cacheprovider -q "$@"
