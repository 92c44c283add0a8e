"""ultralytics' places: its datasets and runs folders, its settings file and the dataset yamls it ships."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def datasets_dir() -> Path:
    """ultralytics' ``datasets_dir`` setting: where ``yolo train`` looks for (and downloads) a relative ``path:``."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["datasets_dir"])


def runs_dir() -> Path:
    """ultralytics' ``runs_dir`` setting, as an absolute path (a relative one, ultralytics' default outside a git
    checkout, is the working directory's)."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["runs_dir"]).expanduser().absolute()


def settings_file() -> Path:
    """The file ultralytics keeps its settings in (``yolo settings`` edits it)."""
    from ultralytics.utils import SETTINGS_FILE

    return Path(SETTINGS_FILE)


def _bundled_dir() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")  # the package's place, without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "cfg" / "datasets"


def ultralytics_dataset_yaml(name: str) -> Path | None:
    """The dataset yaml ultralytics ships under ``name`` (``coco8``, ``coco8.yaml``, ``VOC.yaml``), or None."""
    folder = _bundled_dir()
    if folder is None or Path(name).name != name:
        return None
    for candidate in (name, f"{name}.yaml", f"{name}.yml"):
        path = folder / candidate
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return path
    return None


def ultralytics_dataset_names() -> list[str]:
    """The names of the dataset yamls ultralytics ships, sorted (``coco8``, ``VOC``, ...)."""
    folder = _bundled_dir()
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder is not None and folder.is_dir() else []


def is_ultralytics_dataset_yaml(path: str | Path) -> bool:
    """Whether ``path`` is one of the dataset yamls ultralytics ships."""
    folder = _bundled_dir()
    return folder is not None and Path(path).resolve().parent == folder.resolve()


