"""The wheel, as a user of the plugin gets it: built from this checkout, installed into a fresh environment with no
clone on its path, and run from an empty working directory, it plans and trains the demo, draws a bundled hyp
file's schedule, and writes nothing inside the installation.

The fresh environment is a venv without pip holding only the wheel; a ``.pth`` file there appends the running
environment's site-packages for the dependencies (torch, ultralytics, ...), so nothing is downloaded. A ``.pth``
line adds a folder without running the ``.pth`` files inside it, so the editable install of this checkout that
the test environment may hold stays out. The build runs without build isolation (setuptools comes with the dev
extras) from a copy of the sources, so that the checkout is not written to either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the wheel, then trains from it

REPO = Path(__file__).resolve().parents[1]
# What the build reads: pyproject.toml and setup.py name the rest.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "cawb", "hyp", "data")
COMMANDS = {"cawb-train", "cawb-plot-lr", "cawb-sample-coco", "cawb-compare", "cawb-evaluate", "cawb-tune",
            "cawb-import-yolov5"}  # at least these
HYP_COMMANDS = {"cawb-train", "cawb-plot-lr", "cawb-compare", "cawb-tune"}  # their --help names the bundled hyp files


def _run(argv: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _console_scripts(wheel: Path) -> dict[str, str]:
    """The wheel's console commands: name -> module:function."""
    import configparser
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")))
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # keep the names' case
    parser.read_string(text.decode())
    return dict(parser["console_scripts"])


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime; bytecode caches aside (Python's own, not cawb's doing)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """(venv, wheel, env): the wheel built from a copy of the checkout, installed into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    # --check-build-dependencies: a too old setuptools here fails with that one line (pip install -e ".[dev]").
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "--check-build-dependencies", "--wheel-dir", tmp / "dist", source], cwd=tmp, env=os.environ.copy())
    (wheel,) = (tmp / "dist").glob("cawb-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=os.environ.copy())
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp,
                        env=os.environ.copy()).stdout.strip())
    # The dependencies: the running environment's site-packages folders (several when one venv extends another).
    dependencies = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (purelib / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel],
         cwd=tmp, env=os.environ.copy())

    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not key.startswith("PYTEST_")}
    env["MPLBACKEND"] = "Agg"
    return venv, wheel, env


def test_the_wheel_carries_every_module_and_yaml_and_the_bundled_files(install):
    import zipfile

    _, wheel, _ = install
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = {str(p.relative_to(REPO)) for p in (REPO / "cawb").rglob("*")
                     if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts}
    assert package_files and package_files <= names, sorted(package_files - names)
    for folder in ("hyp", "data"):  # shipped from the top-level folders, the one source
        bundled = {f"cawb/_bundled/{folder}/{p.name}" for p in (REPO / folder).glob("*.yaml")}
        assert bundled and bundled <= names
    assert not any(name.startswith(("hyp/", "data/", "tests/", "scripts/")) for name in names)
    commands = _console_scripts(wheel)
    assert COMMANDS <= set(commands) and all(target.startswith("cawb.cli.") for target in commands.values())


def test_installed_wheel_runs_from_an_empty_directory_and_writes_nothing_inside_the_installation(install, tmp_path):
    venv, wheel, env = install
    python = venv / "bin" / "python"
    commands = venv / "bin"  # the console commands pip installed
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(venv)

    # The demo's planning: bundled hyp file, bundled dataset yaml, the data generated here, not in the installation.
    plan = _run([python, "-c", "import json, cawb; from cawb.training.config import plan_run; p = plan_run(); "
                 "print(json.dumps({**p.overrides, 'module': cawb.__file__}, default=str))"],
                cwd=work, env=env)
    planned = json.loads(plan.stdout.strip().splitlines()[-1])
    assert Path(planned["module"]).resolve().is_relative_to(venv.resolve())  # the installed package, not the clone
    assert Path(planned["data"]).is_relative_to(work / "datasets" / "shapes")
    assert planned["project"] == str(work / "runs" / "train") and planned["cawb"] and planned["cawb_steps"]

    # Every console command: --help works and names the version (and the bundled hyp files where it takes one).
    from cawb import __version__
    from cawb.utils.resources import bundled_hyp_names

    for command in _console_scripts(wheel):
        # wide enough that argparse never breaks a hyp file's name at its hyphen
        helped = _run([commands / command, "--help"], cwd=work, env={**env, "COLUMNS": "400"}).stdout
        assert f"cawb {__version__}" in helped, command
        if command in HYP_COMMANDS:
            assert all(name in helped for name in bundled_hyp_names()), command
    assert _run([commands / "cawb-train", "--version"], cwd=work, env=env).stdout.strip() == f"cawb {__version__}"

    # A bundled hyp file by its short name; relative outputs land in the working directory.
    drawn = _run([commands / "cawb-plot-lr", "--hyp", "scratch-cawb", "--out", "lr.png", "--csv", "lr.csv"],
                 cwd=work, env=env)
    assert "hyp.scratch-cawb" in drawn.stdout and (work / "lr.png").is_file() and (work / "lr.csv").is_file()

    # The demo, trained for one epoch at 64 px: data in ./datasets, the run in ./runs/train/shapes.
    trained = _run([commands / "cawb-train", "--epochs", "1", "--imgsz", "64"], cwd=work, env=env)
    run = work / "runs" / "train" / "shapes"
    assert f"results: {run}\n" in trained.stdout and "mAP50: " in trained.stdout
    assert (run / "weights" / "last.pt").is_file() and (run / "lr.png").is_file()

    after = _snapshot(venv)
    assert after == before, f"written inside the installation: {sorted(set(after.items()) ^ set(before.items()))[:10]}"
    assert sorted(p.name for p in work.iterdir()) == ["datasets", "lr.csv", "lr.png", "runs"]
