"""cawb/training/offline.py: ultralytics is kept off the network."""

import os
import subprocess
import sys

import pytest
import torch
import ultralytics.engine.trainer as ultralytics_trainer
from ultralytics.utils import USER_CONFIG_DIR
from ultralytics.utils.checks import check_font

from cawb.training.offline import ULTRALYTICS_FONTS, ensure_local_fonts, offline_amp_check


def test_fonts_are_local_so_check_font_never_downloads():
    ensure_local_fonts()
    for name in ULTRALYTICS_FONTS:
        assert check_font(name) == USER_CONFIG_DIR / name  # found locally: check_font returns before any request
        assert (USER_CONFIG_DIR / name).stat().st_size > 100_000
    assert ensure_local_fonts() == []  # idempotent, never overwrites


# In a subprocess: name resolution is made to succeed (this machine has no network, so ultralytics would find itself
# offline anyway and the check could not fail), then the steps given are taken in order: "import:<module>" imports
# it, "command" runs an empty command through cawb's faces' run_cli, "trainer" builds a cawb trainer part. The
# flags are printed on the last line: ultralytics may print notices of its own on stdout before it.
ONLINE_FLAGS = """
import os, socket, sys
socket.getaddrinfo = lambda *args, **kwargs: [()]
for step in sys.argv[1:]:
    if step.startswith("import:"):
        __import__(step.removeprefix("import:"))
    elif step == "command":
        from cawb.cli.common import run_cli
        run_cli(lambda: 0)
    elif step == "trainer":
        from cawb.training.offline import OfflineMixin
        type("Part", (OfflineMixin,), {})()
import ultralytics.utils
from ultralytics.utils import checks, events
print(ultralytics.utils.ONLINE, checks.ONLINE, events.ONLINE, events.events.enabled, os.environ.get("YOLO_OFFLINE"))
"""


def online_flags(*steps, offline=None):
    env = {k: v for k, v in os.environ.items() if k != "YOLO_OFFLINE"}
    if offline is not None:
        env["YOLO_OFFLINE"] = offline
    result = subprocess.run([sys.executable, "-c", ONLINE_FLAGS, *steps], env=env, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip().splitlines()[-1].split()


@pytest.mark.slow
def test_importing_cawb_changes_nothing_outside_it():
    alone = online_flags("import:ultralytics")
    assert alone[0] == "True" and alone[-1] == "None"  # the stand-in network is reachable: the test can fail
    imported = ("import:cawb", "import:cawb.schedule", "import:cawb.lr_scheduler", "import:cawb.training.trainer")
    assert online_flags(*imported, "import:ultralytics") == alone
    assert online_flags("import:ultralytics", *imported) == alone


@pytest.mark.slow
def test_cawb_commands_and_trainers_keep_ultralytics_offline_in_either_import_order():
    for steps in (("command", "import:ultralytics"), ("import:ultralytics", "command"),
                  ("import:ultralytics", "trainer")):
        assert online_flags(*steps) == ["False", "False", "False", "False", "1"], steps
    assert online_flags("import:ultralytics", "command", offline="0")[0] == "True"  # the user's YOLO_OFFLINE=0 stands


def test_amp_check_is_skipped_without_its_weights_and_restored_after(tmp_path, monkeypatch):
    import ultralytics.utils as ultralytics_utils

    monkeypatch.setattr(ultralytics_utils, "WEIGHTS_DIR", tmp_path)  # an empty weights dir: nothing to check with
    original = ultralytics_trainer.check_amp
    with offline_amp_check():
        assert ultralytics_trainer.check_amp is not original
        # On the CPU the answer stays ultralytics' own (AMP off): only the CUDA check needs the weights.
        assert ultralytics_trainer.check_amp(torch.nn.Linear(1, 1)) is False
    assert ultralytics_trainer.check_amp is original


def test_amp_check_on_cuda_keeps_amp_on_without_downloading(tmp_path, monkeypatch):
    import types

    import ultralytics.utils as ultralytics_utils

    monkeypatch.setattr(ultralytics_utils, "WEIGHTS_DIR", tmp_path)
    # No GPU is lent to CI: a stand-in whose parameters report a CUDA device reaches the CUDA branch.
    cuda_model = types.SimpleNamespace(parameters=lambda: iter([types.SimpleNamespace(device=torch.device("cuda", 0))]))
    with offline_amp_check():
        assert ultralytics_trainer.check_amp(cuda_model) is True
    assert not any(tmp_path.iterdir())  # nothing was fetched into the weights dir
