"""Resolve a project dataset yaml into one the ultralytics trainer and validator can take as ``data=``.

Where a relative ``path:`` points: ultralytics' rule first, then cawb's, the first place that exists winning:

1. ``<working directory>/<path>``, else ``<datasets_dir>/<path>`` (ultralytics' ``datasets_dir`` setting): what
   ``yolo train`` reads, so a yaml that works there trains on the same data here;
2. ``<the yaml's directory>/<path>``: a yaml kept beside its data (``my/data.yaml`` with ``path:
   ../datasets/mine``) works from any directory.

When none exists, data with a ``generator:`` is generated at ``<the yaml's directory>/<path>``, or, for the yamls
cawb ships (``data/``, in the installation, which cawb never writes to), at ``<working directory>/<path>``
(``path: datasets/shapes`` generates the demo in ``./datasets/shapes``); other data is refused in one line naming
every place looked in, and, for the yamls ultralytics ships (``coco8.yaml``), where ultralytics would download it:
cawb never downloads. The yamls of either package are never read relative to their own directory. Without ``path:``
the yaml's directory is the dataset root, and an absolute ``path:`` is itself (both as in ultralytics).

Also as ultralytics reads a yaml: ``nc`` alone names the classes ``class_0, class_1, ...``; a ``validation`` key is
``val``; a split ``../x`` that is missing under the root is looked for as ``x`` (dataset exports written for
YOLOv5's layout).

Keys read besides ultralytics' own (``train``, ``val``, ``names``):

``val_json`` / ``train_json``
    COCO ground truth of the split, relative to the dataset root (or absolute). Optional for training,
    required by :func:`cawb.experiment.evaluate.evaluate_coco`.
``category_ids``
    list, class index -> COCO category id (e.g. COCO's 80 -> 91 mapping). One per class, unique.
``generator``
    ``{name: shapes, <generator keyword arguments>}`` (``shapes-tasks`` with ``task:`` for the other tasks' data):
    data the project generates itself. It is generated on first use (atomically) and checked against these
    arguments on every later use.
``build``
    one-line hint (a command) printed when the data is missing and there is no generator, e.g.
    ``python scripts/sample_coco.py ...``.

An ultralytics ``download:`` key is dropped from the resolved copy: nothing is fetched at run time.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from cawb.datasets.images import check_split_images
from cawb.datasets.shapes import generate_shapes_dataset
from cawb.datasets.shapes_tasks import generate_task_shapes
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.checks import is_int
from cawb.utils.errors import InputError, InputFileNotFoundError
from cawb.utils.resources import is_bundled
from cawb.utils.ultralytics_compat import is_ultralytics_dataset_yaml
from cawb.utils.user_files import read_yaml

LOGGER = logging.getLogger("cawb")

# generator name -> function(root, **kwargs) -> path of the dataset yaml it wrote
GENERATORS = {"shapes": generate_shapes_dataset, "shapes-tasks": generate_task_shapes}


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset yaml with every path made absolute and the data checked to exist.

    ``yaml`` is the resolved copy (absolute ``path:``) to pass to ultralytics as ``data=``; ``source`` the yaml it
    came from. ``train``/``val`` are the absolute image directories (or image-list files) of each split.
    ``category_ids``, ``val_json`` and ``train_json`` are None when the yaml does not set them.
    """

    source: Path
    yaml: Path
    root: Path
    names: dict[int, str]
    train: tuple[Path, ...]
    val: tuple[Path, ...]
    category_ids: tuple[int, ...] | None
    val_json: Path | None
    train_json: Path | None

    @property
    def nc(self) -> int:
        """Number of classes."""
        return len(self.names)


def check_dataset_yaml(yaml_path: str | Path, require: Mapping[str, str] | None = None) -> dict:
    """Read a dataset yaml and check its keys, writing and generating nothing; return its mapping.

    This is the first half of :func:`resolve_dataset_yaml`, for callers that must refuse bad input before they
    write anything or import anything heavy.

    Args:
        yaml_path: the dataset yaml.
        require: keys that must be set for the caller's use, each with why (e.g. ``{"val_json": "for COCO
            evaluation"}``).

    Raises:
        FileNotFoundError: the yaml is missing.
        ValueError: the yaml is a directory, unreadable, binary, empty, not valid YAML, gives a key twice, is not
            a mapping, or a key has a wrong type or value (one line naming the file, the key and what is allowed).
    """
    source = Path(yaml_path).absolute()
    data = _as_ultralytics_reads(source, read_yaml(source, "dataset yaml", mapping_of="keys (train, val, names, ...)"))
    missing = [key for key in (require or {}) if data.get(key) is None]
    if missing:
        why = "; ".join(f"{key} {(require or {})[key]}" for key in missing)
        raise InputError(f"{source}: {' and '.join(missing)} must be set ({why})")
    _path_value(source, data)
    names = _names(source, data)
    if "nc" in data and data["nc"] != len(names):  # ultralytics refuses the pair once training has begun
        raise InputError(f"{source}: nc={data['nc']!r} disagrees with names, which has {len(names)} classes: fix "
                         "one of them (nc may be left out)")
    _category_ids(source, data, len(names))
    for key in ("train", "val"):  # the checks of the values only: the root is found by resolve_dataset_yaml
        _split_paths(source, data, key, source.parent)
    for key in ("val_json", "train_json"):
        _optional_path(source, data, key, source.parent)
    if "generator" in data:
        _generator(source, data)
    return data


_RESOLVED_HEADER = "# Resolved from "


def _written_here(path: Path) -> bool:
    """Whether ``path`` is a resolved copy this module wrote (its first line says so): only those are replaced."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.readline().startswith(_RESOLVED_HEADER)
    except OSError:
        return False


def resolve_dataset_yaml(
    yaml_path: str | Path, out_dir: str | Path | None = None, require: Mapping[str, str] | None = None
) -> ResolvedDataset:
    """Resolve ``yaml_path`` (where ``path:`` points: module docstring), generate its data if it has a generator,
    check it exists.

    Args:
        yaml_path: the dataset yaml, e.g. ``data/shapes.yaml``.
        out_dir: where to write the resolved copy ``<yaml stem>.resolved.yaml`` (e.g. the run directory);
            default: the dataset root.
        require: keys that must be set, with why (see :func:`check_dataset_yaml`); checked before anything is
            written.

    Returns:
        The :class:`ResolvedDataset`; its ``yaml`` is ready for ``YOLO(...).train(data=...)``.

    Raises:
        FileNotFoundError: the yaml, or data it names, is missing (one line: the yaml, the missing path, how to
            build it).
        ValueError: the yaml cannot be read as a mapping, or a key has a wrong type or value (one line naming the
            file, the key, the value and what is allowed).
        FileExistsError: generated data exists but was generated with other arguments (from the generator).
    """
    source = Path(yaml_path).absolute()
    data = check_dataset_yaml(source, require)
    root = _root(source, data)
    names = _names(source, data)
    category_ids = _category_ids(source, data, len(names))
    if "generator" in data:
        _generate(source, data, root, names, category_ids)
    train = _split_paths(source, data, "train", root)
    val = _split_paths(source, data, "val", root)
    jsons = {k: _optional_path(source, data, k, root) for k in ("val_json", "train_json")}
    if not root.exists():
        raise InputFileNotFoundError(f"{source}: dataset not found: {_places_looked(source, data)}; "
                                     f"{_missing_hint(source, data)}")
    for path in (*train, *val, *(p for p in jsons.values() if p is not None)):
        if not path.exists():
            raise InputFileNotFoundError(f"{source}: dataset not found, missing {path}; {_missing_hint(source, data)}")
    for key, directories in (("train", train), ("val", val)):
        for directory in directories:
            check_split_images(source, key, directory)

    resolved = {k: v for k, v in data.items() if k != "download"}
    resolved["path"] = str(root)
    resolved.update({k: str(p) for k, p in jsons.items() if p is not None})
    out = Path(out_dir).absolute() if out_dir is not None else root
    resolved_yaml = out / f"{source.stem}.resolved.yaml"
    if resolved_yaml.exists() and not _written_here(resolved_yaml):
        raise InputError(f"{source}: {resolved_yaml} exists and was not written by cawb (it would be replaced by the "
                         "resolved copy of this yaml): move it away")
    resolved_yaml.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        resolved_yaml,
        f"{_RESOLVED_HEADER}{source} by cawb.datasets.resolve.resolve_dataset_yaml: absolute paths, this machine only.\n"
        + yaml.safe_dump(resolved, sort_keys=False),
    )
    return ResolvedDataset(
        source=source,
        yaml=resolved_yaml,
        root=root,
        names=names,
        train=train,
        val=val,
        category_ids=category_ids,
        val_json=jsons["val_json"],
        train_json=jsons["train_json"],
    )


def dataset_root(yaml_path: str | Path, data: Mapping) -> Path:
    """The dataset root that the dataset yaml ``yaml_path`` (read as ``data``) names, by the rules above."""
    return _root(Path(yaml_path).absolute(), dict(data))


def _as_ultralytics_reads(source: Path, data: dict) -> dict:
    """``data`` with what ultralytics' reader adds: ``val`` for ``validation``, class names from ``nc`` alone."""
    data = dict(data)
    if "val" not in data and "validation" in data:
        data["val"] = data.pop("validation")
    nc = data.get("nc")
    if nc is not None and not is_int(nc, 1):
        raise InputError(f"{source}: nc={nc!r} is invalid: it must be an integer >= 1 (the number of classes)")
    if data.get("names") is None and nc is not None:
        nc = int(nc)
        data["names"] = {index: f"class_{index}" for index in range(nc)}
    elif nc is not None and isinstance(data["names"], (list, dict)) and len(data["names"]) != nc:
        raise InputError(f"{source}: names has {len(data['names'])} classes and nc={nc}: they must agree")
    return data


def _path_value(source: Path, data: dict) -> Path | None:
    """The yaml's ``path:`` (None when it has none), checked."""
    path = data.get("path")
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise InputError(f"{source}: path={path!r} must be a non-empty string (the dataset root: absolute, or "
                         "relative as the module docstring says)")
    return Path(path).expanduser()


def _shipped(source: Path) -> bool:
    """Whether ``source`` is a yaml cawb or ultralytics ships: never read relative to its own directory."""
    return is_bundled(source) or is_ultralytics_dataset_yaml(source)


def _candidate_roots(source: Path, path: Path) -> list[tuple[Path, str]]:
    """Where a relative ``path:`` may point, in the order tried, each with whose rule it is."""
    from cawb.utils.ultralytics_compat import datasets_dir  # imports ultralytics: only when a relative path is read

    places = [(Path.cwd() / path, "the working directory's"), (datasets_dir() / path, "ultralytics' datasets_dir's")]
    if not _shipped(source):
        places.append((source.parent / path, "the yaml's directory's"))
    return [(place.resolve(), whose) for place, whose in places]


def _root(source: Path, data: dict) -> Path:
    """The dataset root (module docstring); a missing one is returned as where it would be generated."""
    path = _path_value(source, data)
    if path is None:
        return source.parent
    if path.is_absolute():
        return path.resolve()
    places = _candidate_roots(source, path)
    found = [place for place, _ in places if place.exists()]
    if found:
        if len(set(found)) > 1:
            LOGGER.warning("%s: path: %s exists in several places; using %s (ultralytics' rule comes first), not %s",
                           source, path, found[0], ", ".join(map(str, found[1:])))
        return found[0]
    if is_ultralytics_dataset_yaml(source):
        return places[1][0]  # where ultralytics would have downloaded it
    return ((Path.cwd() if is_bundled(source) else source.parent) / path).resolve()


def _places_looked(source: Path, data: dict) -> str:
    path = _path_value(source, data)
    if path is None or path.is_absolute():
        return f"missing {_root(source, data)}"
    return "path: " + str(path) + " is in none of " + ", ".join(
        f"{place} ({whose})" for place, whose in _candidate_roots(source, path))


def _missing_hint(source: Path, data: dict) -> str:
    if data.get("build"):
        return f"build it with: {data['build']}"
    if is_ultralytics_dataset_yaml(source) or data.get("download"):
        from cawb.utils.ultralytics_compat import settings_file

        return (f"ultralytics would download it into {_root(source, data)} (its datasets_dir, set in "
                f"{settings_file()}); cawb never downloads: put the dataset there, or give a yaml whose path: "
                "points at it")
    return "create it or fix 'path:' in the yaml"


def _names(source: Path, data: dict) -> dict[int, str]:
    given = data.get("names")
    allowed = "a non-empty list of class names or a mapping {0: name, 1: name, ...}"
    names = dict(enumerate(given)) if isinstance(given, list) else given
    if not isinstance(names, dict) or not names:
        raise InputError(f"{source}: names={given!r} is invalid: it must be {allowed}")
    for key in names:
        if not is_int(key):
            raise InputError(f"{source}: names key {key!r} is not a class index: names must be {allowed} with the "
                             f"integer keys 0..{len(names) - 1}")
    if sorted(names) != list(range(len(names))):
        raise InputError(f"{source}: names keys {sorted(names)} are invalid: they must be 0..{len(names) - 1}, each "
                         "once")
    for key, name in names.items():
        if not isinstance(name, (str, int, float)) or isinstance(name, bool) or name == "":
            raise InputError(f"{source}: names[{key}]={name!r} is invalid: a class name must be a non-empty string")
    return {int(k): str(v) for k, v in sorted(names.items())}


def _category_ids(source: Path, data: dict, nc: int) -> tuple[int, ...] | None:
    ids = data.get("category_ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or len(ids) != nc
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        or len(set(ids)) != nc
    ):
        raise InputError(f"{source}: category_ids={ids!r} must be a list of {nc} distinct integers (one per class)")
    return tuple(ids)


def _split_paths(source: Path, data: dict, key: str, root: Path) -> tuple[Path, ...]:
    value = data.get(key)
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(x, str) and x for x in items):
        raise InputError(f"{source}: {key}={value!r} must be a path or a list of paths relative to the dataset root")
    paths = [(root / x).resolve() for x in items]
    if isinstance(value, str) and not paths[0].exists() and value.startswith("../"):  # as ultralytics reads it
        paths = [(root / value[3:]).resolve()]
    return tuple(paths)


def _optional_path(source: Path, data: dict, key: str, root: Path) -> Path | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: {key}={value!r} must be a path relative to the dataset root")
    return (root / value).resolve()


def _generator(source: Path, data: dict):
    """The generator function and its keyword arguments, checked against its signature."""
    spec = data["generator"]
    name = spec.get("name") if isinstance(spec, dict) else None
    if name not in GENERATORS:
        raise InputError(f"{source}: generator={spec!r} must be a mapping with name one of {sorted(GENERATORS)}")
    generate = GENERATORS[name]
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    allowed = [p for p in inspect.signature(generate).parameters if p != "root"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InputError(f"{source}: generator key(s) {unknown} not allowed for {name!r}; allowed: {allowed}")
    return name, generate, kwargs


def _generate(source: Path, data: dict, root: Path, names: dict[int, str], category_ids) -> None:
    name, generate, kwargs = _generator(source, data)
    try:
        generated = yaml.safe_load(Path(generate(root, **kwargs)).read_text())
    except (ValueError, FileExistsError) as e:  # FileExistsError: root holds something else; it is never replaced
        raise InputError(f"{source}: {e}") from e
    # The generator owns class names and category ids; the yaml repeats them so ultralytics can read it alone.
    generated_ids = generated.get("category_ids")
    if _names(source, generated) != names or (tuple(generated_ids) if generated_ids else None) != category_ids:
        raise InputError(
            f"{source}: names/category_ids {names}/{category_ids} differ from what generator {name!r} wrote "
            f"({generated['names']}/{generated_ids}); copy them from {root}"
        )
