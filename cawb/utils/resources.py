"""The hyp and dataset yamls cawb ships: where they are, and what a short name like ``scratch-cawb`` means.

One source: the repository's top-level ``hyp/`` and ``data/`` folders. The wheel carries them inside the package
as ``cawb/_bundled/hyp`` and ``cawb/_bundled/data`` (``setup.py`` maps those two folders into the package), and
this module finds them through the package with :mod:`importlib.resources`. Where the package has no
``_bundled`` folder (a clone run without installing, where the scripts put the checkout on ``sys.path``, or an
editable install, whose import hook cannot map a folder into a regular package), it reads the same folders in the
checkout beside the package.

Every default and preset names its files through :func:`bundled_hyp` and :func:`bundled_data`, never through a
path of its own; every ``--hyp``/``--data`` value goes through :func:`resolve_hyp`/:func:`resolve_data`, so that a
bundled file can be named by its short name anywhere. Nothing here writes: the installation is read-only to cawb.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from cawb.utils.errors import InputFileNotFoundError
from cawb.utils.ultralytics_compat import ultralytics_dataset_yaml

__all__ = [
    "bundled_data",
    "bundled_data_dir",
    "bundled_data_names",
    "bundled_hyp",
    "bundled_hyp_dir",
    "bundled_hyp_names",
    "is_bundled",
    "resolve_data",
    "resolve_hyp",
]

_CHECKOUT = Path(__file__).resolve().parents[2]  # the clone's root, when cawb runs from one


def _folder(kind: str) -> Path:
    """The directory of bundled ``kind`` (``hyp`` or ``data``) files: the package's, else the checkout's."""
    package = importlib.resources.files("cawb")
    if not isinstance(package, Path):  # e.g. imported from a zip archive: the files must be on disk to be read
        raise InputFileNotFoundError(f"cawb is installed as {package!r}, not as files on disk: install it with pip")
    installed = package / "_bundled" / kind
    if installed.is_dir():
        return installed.resolve()
    source = _CHECKOUT / kind  # a clone (installed editable, or not at all): the same files, at their source
    if not (_CHECKOUT / "pyproject.toml").is_file():
        raise InputFileNotFoundError(f"cawb's bundled {kind} files are missing from {installed}: reinstall cawb")
    return source


def bundled_hyp_dir() -> Path:
    """The directory holding the bundled hyp files."""
    return _folder("hyp")


def bundled_data_dir() -> Path:
    """The directory holding the bundled dataset yamls."""
    return _folder("data")


def bundled_hyp(name: str) -> Path:
    """The bundled hyp file ``name`` (e.g. ``"hyp.scratch-cawb.yaml"``)."""
    return bundled_hyp_dir() / name


def bundled_data(name: str) -> Path:
    """The bundled dataset yaml ``name`` (e.g. ``"shapes.yaml"``)."""
    return bundled_data_dir() / name


def _short_name(kind: str, filename: str) -> str:
    stem = filename.removesuffix(".yaml")
    return stem.removeprefix("hyp.") if kind == "hyp" else stem


def _names(kind: str) -> list[str]:
    return sorted(_short_name(kind, path.name) for path in _folder(kind).glob("*.yaml"))


def bundled_hyp_names() -> list[str]:
    """Short names of the bundled hyp files, sorted: ``scratch-cawb`` for ``hyp.scratch-cawb.yaml``, ..."""
    return _names("hyp")


def bundled_data_names() -> list[str]:
    """Short names of the bundled dataset yamls, sorted: ``shapes`` for ``shapes.yaml``, ..."""
    return _names("data")


def _resolve(kind: str, value: str | Path, flag: str) -> Path:
    path = Path(value).expanduser()
    if os.path.lexists(path):  # a path entry, even a broken or looping link: the file reader says what is wrong
        return path
    if len(path.parts) == 1:  # a bare name: scratch-cawb, hyp.scratch-cawb or hyp.scratch-cawb.yaml
        short = _short_name(kind, path.name)
        for candidate in _folder(kind).glob("*.yaml"):
            if _short_name(kind, candidate.name) == short:
                return candidate
        shipped = ultralytics_dataset_yaml(path.name) if kind == "data" else None
        if shipped is not None:  # coco8.yaml: as yolo train names it
            return shipped
    bare = kind == "data" and len(path.parts) == 1
    theirs = " nor one of the dataset yamls ultralytics ships (e.g. coco8, VOC)," if bare else ""
    raise InputFileNotFoundError(f"{flag} {value}: not found: no such file,{theirs} nor a bundled {kind} name "
                                 f"(bundled: {', '.join(_names(kind))})")


def resolve_hyp(value: str | Path, flag: str = "--hyp") -> Path:
    """A ``--hyp`` value as a file: an existing path as given, else the bundled hyp file of that short name
    (``scratch-cawb``, ``hyp.scratch-cawb`` or ``hyp.scratch-cawb.yaml``).

    Raises:
        FileNotFoundError: neither; one line naming ``flag``, the value and the bundled names.
    """
    return _resolve("hyp", value, flag)


def resolve_data(value: str | Path, flag: str = "--data") -> Path:
    """A ``--data`` value as a file: an existing path as given, else the bundled dataset yaml of that short name
    (``shapes`` or ``shapes.yaml``, ``coco10k``), else the dataset yaml of that name that ultralytics ships
    (``coco8.yaml`` or ``coco8``, as ``yolo train data=coco8.yaml`` finds it).

    Raises:
        FileNotFoundError: neither; one line naming ``flag``, the value and the bundled names.
    """
    return _resolve("data", value, flag)


def is_bundled(path: str | Path) -> bool:
    """Whether ``path`` is one of the bundled hyp or dataset files (the installation's, or the clone's source)."""
    parent = Path(path).resolve().parent
    return parent in (bundled_hyp_dir(), bundled_data_dir())
