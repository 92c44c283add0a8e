"""cawb/__init__.py: the public names, one base for every error cawb raises, and an import without side effects."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import cawb


def test_dir_lists_the_public_names_and_each_one_resolves():
    assert dir(cawb) == sorted(cawb.__all__)
    for name in cawb.__all__:
        assert getattr(cawb, name) is not None, name


def test_every_public_error_class_cawb_defines_is_a_cawb_error():
    found = []
    for module in pkgutil.walk_packages(cawb.__path__, "cawb."):
        if module.name.endswith("__main__"):
            continue
        imported = importlib.import_module(module.name)
        for name, value in vars(imported).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.name
                    and not name.startswith("_")):
                found.append(value)
    assert len(found) >= 10  # the walk reached the package's modules
    assert [error for error in found if not issubclass(error, cawb.CawbError)] == []
    assert issubclass(cawb.InputError, ValueError) and issubclass(cawb.HypError, cawb.InputError)


def test_importing_cawb_sets_no_environment_variable_and_loads_no_torch():
    code = "import os, sys; before = dict(os.environ); import cawb, cawb.schedule; " \
           "print(dict(os.environ) == before, 'torch' in sys.modules, 'ultralytics' in sys.modules)"
    env = {key: value for key, value in os.environ.items() if key != "YOLO_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip().splitlines()[-1] == "True False False"
