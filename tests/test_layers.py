"""The package's layers, as cawb/__init__.py and each subpackage's docstring state them: no module imports a layer
above its own (lazy imports inside functions included), and there are no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cawb"
CORE = {"cawb", "cawb.schedule", "cawb.lr_scheduler"}

# What each part may import from cawb (besides itself). cawb/__init__.py's lazy exports are the public API's
# doors, not dependencies, and are checked apart.
ALLOWED = {
    "utils": {"utils"},
    "core": {"core", "utils"},
    "datasets": {"datasets", "utils"},
    "coco": {"coco", "utils"},
    "yolov5": {"yolov5", "core", "utils"},
    "training": {"training", "core", "datasets", "yolov5", "utils"},
    "experiment": {"experiment", "training", "core", "datasets", "yolov5", "utils"},
    "cli": {"cli", "experiment", "training", "core", "datasets", "coco", "yolov5", "utils"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    if module in CORE:
        return "core"
    return module.split(".")[1]


def cawb_imports(path: Path) -> set[str]:
    """Every cawb module a file imports, at the top or inside functions (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "cawb"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "cawb":
                # "from cawb.x import y" may name a submodule y
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    sub = PACKAGE.parent / Path(*candidate.split("."))
                    found.add(candidate if sub.with_suffix(".py").is_file() or sub.is_dir() else target)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", [m for m in MODULES if m != "cawb"])
def test_module_imports_only_its_own_layer_and_below(module):
    part = part_of(module)
    above = sorted(target for target in cawb_imports(MODULES[module]) if part_of(target) not in ALLOWED[part])
    assert not above, f"{module} ({part}) imports {above}"


def test_every_subpackage_says_what_it_is_for_and_what_it_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, init


def test_no_import_cycles():
    graph = {module: {t for t in cawb_imports(path) if t in MODULES and t != module} for module, path in MODULES.items()}
    graph["cawb"] = set()  # its lazy exports are doors into the package, not dependencies of the core
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target] if target in stack else [module, target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_core_imports_neither_torch_nor_ultralytics_at_import_time():
    import subprocess
    import sys

    code = ("import sys, cawb, cawb.schedule, cawb.training.hyp; cawb.training.hyp.ultralytics_defaults(); "
            "print(sorted(m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
