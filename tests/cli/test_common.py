"""cawb/cli/common.py: every command's --help and --version name the version; those taking hyp files name the
bundled ones. (The installed console commands: tests/test_wheel.py.)"""

import importlib

import pytest

from cawb import __version__
from cawb.utils.resources import bundled_hyp_names

COMMANDS = ["train", "plot_lr", "sample_coco", "compare", "evaluate"]
TAKES_HYP = {"train", "plot_lr", "compare"}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_version_name_the_version(command, capsys):
    main = importlib.import_module(f"cawb.cli.{command}").main
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"cawb {__version__}\n"
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    helped = capsys.readouterr().out
    assert done.value.code == 0 and f"cawb {__version__}" in helped
    if command in TAKES_HYP:
        assert all(name in helped for name in bundled_hyp_names())


def test_the_version_is_the_packages_one_source():
    from importlib.metadata import version

    assert version("cawb") == __version__  # pyproject.toml reads it from cawb.__version__
