"""Create files so that a final name only ever holds complete content.

Each writer puts the content under a hidden temporary name in the same directory, then renames it over the
final name (``os.replace`` is atomic on POSIX within one file system). An interrupted process leaves at most a
``.NAME.tmp-PID`` file behind, never a half-written NAME. Durability across power loss (fsync) is not a goal.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """The hidden sibling of ``path`` that writers use before renaming (unique per process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and a rename."""
    tmp = temporary_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """``write_bytes_atomic`` of ``text`` encoded as UTF-8 (no newline translation)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def symlink_atomic(target: Path, path: Path) -> None:
    """Make ``path`` a symlink to ``target``, replacing whatever file or link ``path`` was."""
    try:
        os.symlink(target, path)  # a new link is created whole: no temporary name needed
        return
    except FileExistsError:
        pass
    tmp = temporary_name(path)
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(target, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomic(source: Path, path: Path) -> None:
    """Copy the bytes of ``source`` to ``path`` via a temporary sibling and a rename."""
    tmp = temporary_name(path)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
