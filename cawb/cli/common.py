"""What every command shares: the exit-code contract (:func:`run_cli`), the version flag and the names of the
bundled hyp and dataset files for help texts.

The contract, the same for every command:

* before any work, a command that uses ultralytics checks that the installed release is one cawb supports
  (:func:`cawb.utils.ultralytics_compat.require_supported_ultralytics`), else exits 2 with one line naming the
  installed version, the supported range and the fix;
* 0: done; 1: the work failed in a way that is not the user's input (a run failed, the disk filled up), said in one
  line naming the file and the cause;
* 2: bad input (:class:`~cawb.utils.errors.InputError`): one line ``error: ...`` on stderr, before any long work;
* 130: interrupted by Ctrl-C or SIGTERM (a job scheduler's stop): what was kept and how to continue.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from cawb import __version__
from cawb.utils.errors import InputError, Interrupted
from cawb.utils.resources import bundled_data_names, bundled_hyp_names
from cawb.utils.signals import sigterm_as_ctrl_c
from cawb.utils.ultralytics_compat import keep_ultralytics_offline, require_supported_ultralytics

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERRUPTED", "add_version_flag", "bundled_data_help",
           "bundled_hyp_help", "run_cli"]

EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def run_cli(work: Callable[[], int], *, interrupted: Callable[[Interrupted | None], str] | None = None,
            disk_hint: str | Callable[[OSError], str] = "fix it and rerun the same command to continue",
            uses_ultralytics: bool = True) -> int:
    """Run one command's ``work`` under the exit-code contract above and return the exit status.

    ultralytics is kept offline for the whole command (unless the user set ``YOLO_OFFLINE`` to a false value) and
    SIGTERM is handled as Ctrl-C. ``interrupted`` turns the :class:`Interrupted` raised (or None for a bare Ctrl-C)
    into the message printed; by default the error's own message. ``disk_hint`` (or ``disk_hint(error)``) ends the
    line of a failed write or read (``OSError``: a full disk, a read-only or vanished place): how to go on.
    ``uses_ultralytics=False`` (a command that never imports it) skips the check of the installed ultralytics.
    """
    keep_ultralytics_offline()
    try:
        if uses_ultralytics:
            require_supported_ultralytics()
        with sigterm_as_ctrl_c():
            return work()
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except Interrupted as error:
        print(f"\n{interrupted(error) if interrupted else error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"\n{interrupted(None) if interrupted else 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        where = error.filename2 or error.filename  # a rename names its destination second
        what = f"{where}: {(error.strerror or str(error)).lower()}" if where else " ".join(str(error).split())
        hint = disk_hint(error) if callable(disk_hint) else disk_hint
        print(f"error: {what}; {hint}", file=sys.stderr)
        return EXIT_FAILED


def add_version_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--version`` to ``parser``; its help line shows the version, so ``--help`` prints it too."""
    parser.add_argument("--version", action="version", version=f"cawb {__version__}",
                        help=f"print the version (cawb {__version__}) and exit")
    return parser


def bundled_hyp_help() -> str:
    """How to name a bundled hyp file, for a flag's help: the short names, and that a path works too."""
    return f"a path, or a bundled hyp file by name: {', '.join(bundled_hyp_names())}"


def bundled_data_help() -> str:
    """How to name a bundled dataset yaml, for a flag's help."""
    return f"a path, or a bundled dataset yaml by name: {', '.join(bundled_data_names())}"
