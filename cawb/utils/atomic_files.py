"""Create files so that a final name only ever holds complete content, and, once a writer returns, keeps it.

Each writer puts the content under a hidden temporary name in the same directory (``.NAME.tmp-PID``), flushes it
to the disk (``fsync``), renames it over the final name (``os.replace``: atomic on POSIX within one file system) and
syncs the directory, so that the rename itself survives a power loss. A process killed at any moment leaves the
previous NAME (or none) and at most a temporary file, which :func:`remove_stale_temporaries` removes at the next
start; a full disk or a read-only place fails before the rename, leaving the previous NAME as it was.

A write that fails raises ``OSError`` naming the final path (not the temporary one, nor none as a failed
``write()`` does), so that a one-line error tells the user which file could not be written.

``durable=False`` skips the two syncs (about 7 ms a file on the development box): for many small files that a
later durable write vouches for (a dataset's labels, made complete by its manifest; see :func:`sync_everything`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from cawb.utils.hosts import pid_alive

__all__ = ["discard_temporary", "named_write_errors", "remove_stale_temporaries", "replace_durably", "symlink_atomic", "sync_directory", "sync_everything",
           "temporary_name", "write_bytes_atomic", "write_text_atomic", "copy_atomic"]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def temporary_name(path: Path) -> Path:
    """The hidden sibling of ``path`` that writers use before renaming (unique per process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def sync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename, a new or removed name) to the disk."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_everything() -> None:
    """Flush every file system's pending writes (one call for many files written with ``durable=False``)."""
    os.sync()


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as the same error about ``path`` (the final name)."""
    try:
        yield
    except OSError as error:
        if error.filename == str(path) and error.filename2 is None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


@contextlib.contextmanager
def named_write_errors(path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block that names no file (a failed ``write()``, or the ``close()`` that flushes
    a buffered file) as the same error about ``path``; errors that name a file pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def discard_temporary(tmp: Path) -> None:
    """Remove ``tmp`` if it is there. Never raises: in a ``finally`` it must not hide the error being raised (on a
    read-only file system even removing a missing file fails); one left behind is removed by
    :func:`remove_stale_temporaries` at the next start."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _write_file(tmp: Path, data: bytes, durable: bool) -> None:
    with open(tmp, "wb") as file:
        file.write(data)
        if durable:
            file.flush()
            os.fsync(file.fileno())


def _finish(tmp: Path, path: Path, durable: bool) -> None:
    os.replace(tmp, path)
    if durable:
        sync_directory(path.parent)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary sibling, an fsync and a rename (see the module docstring).

    Raises:
        OSError: naming ``path``; ``path`` is as it was before the call.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with _naming(path):
            _write_file(tmp, data, durable)
            _finish(tmp, path, durable)
    finally:
        discard_temporary(tmp)


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """``write_bytes_atomic`` of ``text`` encoded as UTF-8 (no newline translation)."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def replace_durably(tmp: Path, path: Path) -> None:
    """Make ``tmp`` (a complete file another writer closed, e.g. ``torch.save``'s) ``path``: fsync it, rename it
    over ``path``, sync the directory. ``tmp`` is gone afterwards, whatever happened.

    Raises:
        OSError: naming ``path``; ``path`` is as it was before the call.
    """
    path = Path(path)
    try:
        with _naming(path):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _finish(tmp, path, True)
    finally:
        discard_temporary(tmp)


def symlink_atomic(target: Path, path: Path, *, durable: bool = True) -> None:
    """Make ``path`` a symlink to ``target``, replacing whatever file or link ``path`` was."""
    path = Path(path)
    with _naming(path):
        try:
            os.symlink(target, path)  # a new link is created whole: no temporary name needed
            if durable:
                sync_directory(path.parent)
            return
        except FileExistsError:
            pass
    tmp = temporary_name(path)
    tmp.unlink(missing_ok=True)
    try:
        with _naming(path):
            os.symlink(target, tmp)
            _finish(tmp, path, durable)
    finally:
        discard_temporary(tmp)


def copy_atomic(source: Path, path: Path, *, durable: bool = True) -> None:
    """Copy the bytes of ``source`` to ``path`` via a temporary sibling, an fsync and a rename."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with _naming(path):
            shutil.copyfile(source, tmp)
        if durable:
            replace_durably(tmp, path)
        else:
            with _naming(path):
                _finish(tmp, path, False)
    finally:
        discard_temporary(tmp)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.tmp-PID``) in ``directory`` whose writer is no longer running (killed
    mid-write): the final names beside them hold the previous complete versions. Returns what was removed. A
    temporary of a live process (this one, or another writing now) is left alone.
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:  # gone, or not readable: nothing of ours to clean
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and not pid_alive(int(match["pid"])) and not entry.is_dir():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
