"""The errors cawb raises, and how a face turns one into a line.

Every error cawb raises on purpose is a :class:`CawbError`, so a program embedding cawb can catch them all with one
``except``. Two kinds matter to the command-line faces (:func:`cawb.cli.common.run_cli`):

* :class:`InputError` (a ``ValueError``): bad input, a setting, flag or file the user named, found before any long
  work. Its message is one line naming the culprit and what is allowed; the faces print it and exit with status 2.
  :class:`InputFileNotFoundError` is also a ``FileNotFoundError``.
* :class:`Interrupted`: Ctrl-C or SIGTERM stopped the work; its message says how to continue. Exit status 130.

The lowest layer: imports nothing of cawb.
"""

from __future__ import annotations

import errno

__all__ = ["CawbError", "HypError", "InputError", "InputFileNotFoundError", "Interrupted", "UsageError", "error_line",
           "is_disk_fault"]


class CawbError(Exception):
    """Base of every error cawb raises on purpose."""


class InputError(CawbError, ValueError):
    """Bad input (a setting, a flag, a file): one line naming it, what is wrong and what is allowed."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """A file the user named does not exist."""


class HypError(InputError):
    """A bad training setting, from a hyp file, ``key=value`` flags or keyword arguments; the message names the
    source, the key, the value and what is allowed."""


class Interrupted(CawbError):
    """Ctrl-C (or SIGTERM) stopped the work; the message says what was kept and how to continue."""


class UsageError(CawbError, RuntimeError):
    """A cawb object called in a way it does not support (a programming error, not a setting)."""


def error_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: records and summaries keep one
    line (the whole story stays in the log)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# A write the disk refused: no space, a quota, a file-size limit, a read-only file system.
_DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def is_disk_fault(error: BaseException) -> bool:
    """Whether ``error`` is a write the disk refused (no space, a quota, a file-size limit, read-only): a fault of
    the place, which every other run writing there meets too, not of one run."""
    return isinstance(error, OSError) and error.errno in _DISK_FAULTS
