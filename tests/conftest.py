"""Shared test setup: nothing may touch the network, figures render without a display, and ultralytics' settings
are the tests' own."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics: skip its online checks (there is no network here)
os.environ.setdefault("MPLBACKEND", "Agg")
# ultralytics keeps its settings (runs_dir, datasets_dir, which cawb follows) in a file per user: the tests, and the
# processes they start, read and change a copy of their own, never the user's.
_ULTRALYTICS_CONFIG = tempfile.mkdtemp(prefix="cawb-tests-ultralytics-")
os.environ["YOLO_CONFIG_DIR"] = _ULTRALYTICS_CONFIG
atexit.register(shutil.rmtree, _ULTRALYTICS_CONFIG, ignore_errors=True)

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def ultralytics_places(tmp_path_factory):
    """runs_dir as ultralytics' default outside a git checkout (runs, in the working directory) and datasets_dir
    a directory of its own, whatever checkout ultralytics is installed in."""
    from ultralytics.utils import SETTINGS

    SETTINGS.update(runs_dir="runs", datasets_dir=str(tmp_path_factory.mktemp("ultralytics-datasets")))


@pytest.fixture(scope="session", autouse=True)
def local_fonts():
    """ultralytics' dataset check asks its server for Arial.ttf unless a local copy exists: provide one first."""
    from cawb.training.offline import ensure_local_fonts

    ensure_local_fonts()


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """A 16-train / 8-val image shapes dataset at 64 px (2 batches of 8 per epoch): its yaml path."""
    from cawb.datasets.shapes import generate_shapes_dataset

    return generate_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", train_images=16, val_images=8, imgsz=64)


@pytest.fixture(scope="session")
def read_only_dir(tmp_path_factory):
    """A directory in which this process really cannot create files: a chmod 555 directory, or, where that does
    not bind (root ignores permission bits), /proc/sys, which the kernel keeps read-only for every user."""
    from pathlib import Path

    place = tmp_path_factory.mktemp("read-only")
    place.chmod(0o555)
    try:
        if not os.access(place, os.W_OK):
            yield place
        elif os.path.isdir("/proc/sys") and not os.access("/proc/sys", os.W_OK):
            yield Path("/proc/sys")
        else:
            pytest.skip("no read-only directory on this machine (root, and /proc/sys is writable)")
    finally:
        place.chmod(0o755)  # so that pytest can remove it
