"""The 80 COCO detection classes as ultralytics ships them: 91-to-80 id mapping and class names.

Read from ultralytics' own files instead of a hand-written table. ``import ultralytics`` pulls in torch (~1.4 s
and ~550 MB of memory), which a data-preparation tool does not need, so the table is read from the source of
``ultralytics.data.converter.coco91_to_coco80_class`` with ``ast.literal_eval`` and the names from
``ultralytics/cfg/datasets/coco.yaml``, both located without importing the package. If that function ever stops
returning a literal, the package is imported after all.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class CocoClasses:
    """``names[k]``: name of YOLO class k (0..79); ``category_ids[k]``: its COCO category id (1..90).
    ``yolo_class(category_id)`` is the inverse: the YOLO class of a COCO category id, or None."""

    names: tuple[str, ...]
    category_ids: tuple[int, ...]

    def yolo_class(self, category_id: int) -> int | None:
        return _inverse(self.category_ids).get(category_id)


@functools.cache
def _inverse(category_ids: tuple[int, ...]) -> dict[int, int]:
    return {category_id: k for k, category_id in enumerate(category_ids)}


@functools.cache
def ultralytics_coco_classes() -> CocoClasses:
    """The classes of the installed ultralytics; raises RuntimeError if its files do not hold 80 classes."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise RuntimeError("ultralytics is not installed")
    root = Path(spec.origin).parent
    table = _coco91_to_coco80_table(root / "data" / "converter.py")
    names_by_index = yaml.safe_load((root / "cfg" / "datasets" / "coco.yaml").read_text(encoding="utf-8"))["names"]
    names = tuple(names_by_index[k] for k in range(len(names_by_index)))
    category_ids = [0] * len(names)
    for index, yolo_class in enumerate(table):
        if yolo_class is not None:
            category_ids[yolo_class] = index + 1  # the table is indexed by COCO category id - 1
    if len(names) != 80 or 0 in category_ids or len(set(category_ids)) != 80:
        raise RuntimeError(f"ultralytics under {root} does not define the 80 COCO classes as expected")
    return CocoClasses(names, tuple(category_ids))


def _coco91_to_coco80_table(converter: Path) -> list[int | None]:
    tree = ast.parse(converter.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "coco91_to_coco80_class":
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
            if len(returns) == 1 and returns[0].value is not None:
                try:
                    return list(ast.literal_eval(returns[0].value))
                except ValueError:
                    break
    from ultralytics.data.converter import coco91_to_coco80_class  # slow path: imports torch

    return coco91_to_coco80_class()
