"""The benchmarks and scripts name only what cawb has: every ``from cawb... import name`` in them, also the lazy ones
inside functions that run only in a long measurement, resolves against the package as it is now."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py"), ROOT / "train_cawb.py"])


def cawb_names(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "cawb"
            for alias in node.names]


@pytest.mark.parametrize("path", FILES, ids=[str(path.relative_to(ROOT)) for path in FILES])
def test_every_cawb_name_a_file_imports_exists(path):
    missing = []
    for module, name in cawb_names(path):
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{path.name} imports what cawb does not have: {missing}"


def test_the_files_are_found():
    assert {"sample_coco.py", "gpu_check.py", "compare.py", "train_cawb.py"} <= {path.name for path in FILES}
