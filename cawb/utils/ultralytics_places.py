"""ultralytics' own places: its ``datasets_dir`` and ``runs_dir`` settings and its bundled dataset yamls.

cawb follows ultralytics' conventions where its users rely on them: a dataset yaml's relative ``path:`` is looked
for under ``datasets_dir`` as ``yolo train`` looks for it, a dataset named like ``coco8.yaml`` is one of the yamls
ultralytics ships, and runs go under ``runs_dir`` unless a project is given. The settings are read from
ultralytics' settings object (what ``yolo settings`` shows and changes), at the time of use, so a change made in
the same process counts. ultralytics is imported inside the functions only (it brings torch); the bundled yamls are
found without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["datasets_dir", "is_ultralytics_dataset_yaml", "runs_dir", "settings_file", "ultralytics_dataset_names",
           "ultralytics_dataset_yaml"]


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
