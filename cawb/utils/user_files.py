"""The files users name: read them, or check the places named for output, with one-line errors.

Every refusal is a :class:`UserFileError`, a ``ValueError`` (a missing file is also a ``FileNotFoundError``), so
the command-line faces print it as ``error: ...`` and exit with status 2. Each message is one line that names the
file's role (``what``: ``"hyp file"``, ``"dataset yaml"``; or the flag: ``"--out"``), the path, what is wrong and
what is expected.

Reading (:func:`read_yaml`, :func:`read_text`) refuses, before parsing: a missing path, a directory, anything
that is not a regular file (a FIFO would block the reader), a file that cannot be read (permissions), a file
too large for a settings file, binary or non-UTF-8 bytes; then malformed YAML (with its line) and a key given
twice in one mapping (with both lines: PyYAML would silently keep the last one).

Checking an output place (:func:`check_output_file`, :func:`check_output_dir`) refuses, before any work and
without creating anything: a place under a regular file, a read-only place (permissions or a read-only file
system), a directory where a file is expected and a file where a directory is expected.

The lowest layer: imports nothing from the rest of ``cawb``; PyYAML only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from cawb.utils.errors import InputError, InputFileNotFoundError

__all__ = [
    "UserFileError",
    "UserFileNotFoundError",
    "check_checkpoint_file",
    "check_input_file",
    "check_output_dir",
    "check_output_file",
    "display_path",
    "move_aside",
    "parse_yaml",
    "read_text",
    "read_yaml",
]

#: Largest file :func:`read_yaml` reads. Settings files are a few kB; a larger file is almost surely the wrong
#: one (COCO's 450 MB annotation JSON is valid YAML, and PyYAML would take many minutes over it).
MAX_YAML_BYTES = 10 * 1024 * 1024


class UserFileError(InputError):
    """A file or place the user named cannot be used; the message is one line naming it and what is expected."""


class UserFileNotFoundError(UserFileError, InputFileNotFoundError):
    """The named file does not exist (both a :class:`UserFileError` and a ``FileNotFoundError``)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _reason(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return "permission denied"
    return (error.strerror or type(error).__name__).lower()


def check_input_file(path: str | Path, what: str, expected: str = "a file") -> Path:
    """``path`` as a Path, once it is known to be a regular file this process can open for reading.

    Raises:
        UserFileNotFoundError: nothing is there (a dangling symlink says so).
        UserFileError: a directory, a FIFO or device, or a file that cannot be opened (permissions, ...).
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise UserFileNotFoundError(f"{what} {path} not found (a symlink to {os.readlink(path)}, which does "
                                        "not exist)") from None
        raise UserFileNotFoundError(f"{what} {path} not found") from None
    except NotADirectoryError:
        raise UserFileNotFoundError(f"{what} {path} not found (a part of the path is a file, not a directory)") \
            from None
    except OSError as error:
        raise UserFileError(f"{what} {path}: cannot be read ({_reason(error)})") from None
    if stat.S_ISDIR(mode):
        raise UserFileError(f"{what} {path}: is a directory; expected {expected}")
    if not stat.S_ISREG(mode):
        raise UserFileError(f"{what} {path}: is {_kind(mode)}; expected {expected}")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise UserFileError(f"{what} {path}: cannot be read ({_reason(error)})") from None
    return path


def read_text(path: str | Path, what: str, expected: str = "a text file", max_bytes: int | None = None) -> str:
    """The text of a UTF-8 file (a BOM is dropped), after the checks of :func:`check_input_file`.

    Raises:
        UserFileError: also a file larger than ``max_bytes``, binary content (a NUL byte) or bytes that are not
            UTF-8, naming the file and the offset.
    """
    path = check_input_file(path, what, expected)
    try:
        with open(path, "rb") as file:
            data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    except OSError as error:
        raise UserFileError(f"{what} {path}: cannot be read ({_reason(error)})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UserFileError(f"{what} {path}: is larger than {max_bytes // (1024 * 1024)} MB; expected {expected} "
                            "(is it the right file?)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UserFileError(f"{what} {path}: is binary (a NUL byte at offset {nul}); expected {expected}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserFileError(f"{what} {path}: is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                            f"{error.start}); expected {expected}") from None


class _DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping gives the same key twice; ``key``, ``line`` and ``first_line`` (1-based) say where."""

    def __init__(self, key: Any, line: int, first_line: int, mark: yaml.Mark):
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=mark)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last one silently).

    Keys brought in by a merge (``<<: *base``) may be overridden, as YAML intends; only a mapping's own keys are
    compared.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise _DuplicateKeyError(key, line, first, key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)



def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text like ``yaml.safe_load``, refusing a key given twice in one mapping.

    ``source`` names the text in messages (``"hyp file hyp/x.yaml"``, ``"lr0=..."``).

    Raises:
        UserFileError: ``"<source> line N: duplicate key 'k' (first at line M) ..."`` or
            ``"<source> line N: not valid YAML (<problem>)"``.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKeyError as error:
        raise UserFileError(f"{source} line {error.line}: duplicate key {error.key!r} (first at line "
                            f"{error.first_line}); each key may appear once") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or error
        raise UserFileError(f"{source}{where}: not valid YAML ({_one_line(problem)})") from None


def read_yaml(
    path: str | Path,
    what: str,
    *,
    mapping_of: str | None = "key: value settings",
    allow_empty: bool = False,
    max_bytes: int = MAX_YAML_BYTES,
) -> Any:
    """Read a YAML file the user named, refusing every problem in one line (see the module docstring).

    Args:
        path: the file.
        what: its role in messages, e.g. ``"hyp file"``, ``"dataset yaml"``.
        mapping_of: the top level must be a mapping of this (said in messages); None: any YAML value.
        allow_empty: an empty file (or comments only) gives ``{}`` (``None`` when ``mapping_of`` is None) instead
            of an error.
        max_bytes: a larger file is refused.

    Raises:
        UserFileNotFoundError: the file does not exist.
        UserFileError: see :func:`check_input_file`, :func:`read_text`, :func:`parse_yaml`; an empty file (unless
            ``allow_empty``); a top level that is not a mapping (when ``mapping_of`` is given).
    """
    expected = "a YAML file" if mapping_of is None else f"a YAML file of {mapping_of}"
    text = read_text(path, what, expected, max_bytes=max_bytes)
    data = parse_yaml(text, f"{what} {path}")
    if data is None:
        if allow_empty:
            return {} if mapping_of is not None else None
        raise UserFileError(f"{what} {path}: is empty; expected {expected}")
    if mapping_of is not None and not isinstance(data, dict):
        raise UserFileError(f"{what} {path}: must be a mapping of {mapping_of}, got a {type(data).__name__}")
    return data


def check_checkpoint_file(path: str | Path, what: str) -> Path:
    """``path`` once it is known to be a readable file in a format ``torch.save`` writes (without importing torch).

    ``torch.save`` writes a zip archive holding ``<name>/data.pkl`` (PyTorch >= 1.6, what ultralytics and YOLOv5
    save), or, in its legacy format, a pickle (first byte 0x80). Whether the content is a checkpoint of the right
    kind is for the caller to check once torch is loaded.

    Raises:
        UserFileNotFoundError, UserFileError: see :func:`check_input_file`; or any other content, naming the file.
    """
    import zipfile

    expected = "a PyTorch checkpoint (.pt) written by torch.save"
    path = check_input_file(path, what, expected)
    try:
        with open(path, "rb") as file:
            head = file.read(4)
        if head[:1] == b"\x80":
            return path
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive:
                if any(name.endswith("data.pkl") for name in archive.namelist()):
                    return path
            raise UserFileError(f"{what} {path}: is a zip archive without data.pkl; expected {expected}")
    except OSError as error:
        raise UserFileError(f"{what} {path}: cannot be read ({_reason(error)})") from None
    except zipfile.BadZipFile as error:
        raise UserFileError(f"{what} {path}: is a damaged zip archive ({_one_line(error)}); expected {expected}") \
            from None
    shown = "is empty" if not head else f"starts with {head!r}"
    raise UserFileError(f"{what} {path}: is not a checkpoint (the file {shown}); expected {expected}")


# --- output places ----------------------------------------------------------------------------------------------


def _writable_dir(directory: Path) -> str | None:
    """Why nothing can be created in the existing directory ``directory``, or None if it can."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    effective = os.access in os.supports_effective_ids
    if not os.access(directory, os.W_OK | os.X_OK, effective_ids=effective):
        return "read-only for this user"
    return None


def _stat_or_none(path: Path, flag: str, shown: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise UserFileError(f"{flag} {shown}: cannot reach {path} ({_reason(error)})") from None


def _check_creatable(directory: Path, flag: str, shown: Path) -> None:
    """Refuse when ``directory`` (to be created if missing) cannot be: its first existing ancestor must be a
    directory this process can write in."""
    for place in (directory, *directory.parents):
        mode = _stat_or_none(place, flag, shown)
        if mode is None:
            continue
        if not stat.S_ISDIR(mode.st_mode):
            raise UserFileError(f"{flag} {shown}: {place} is a file, not a directory; choose a place outside it")
        why = _writable_dir(place)
        if why is not None:
            raise UserFileError(f"{flag} {shown}: cannot write in {place} ({why}); choose a writable place")
        return


def check_output_file(path: str | Path, flag: str) -> Path:
    """Refuse, creating nothing, a place where the file ``path`` cannot be written (atomically: a temporary
    sibling renamed over it): a directory there, a read-only existing file, a read-only or missing-and-uncreatable
    parent, a parent path running through a regular file.

    Raises:
        UserFileError: naming ``flag``, the path and what is wrong.
    """
    path = Path(path)
    mode = _stat_or_none(path, flag, path)
    if mode is not None:
        if stat.S_ISDIR(mode.st_mode):
            raise UserFileError(f"{flag} {path}: is a directory; expected a file name (e.g. {path / 'name'})")
        if not stat.S_ISREG(mode.st_mode):
            raise UserFileError(f"{flag} {path}: is {_kind(mode.st_mode)}; expected a file name")
        if not os.access(path, os.W_OK):
            raise UserFileError(f"{flag} {path}: the file is read-only; make it writable or choose another name")
    _check_creatable(path.absolute().parent, flag, path)
    return path


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse, creating nothing, a directory ``path`` that cannot be created or written in: a file there, a
    read-only directory or file system, a path running through a regular file.

    Raises:
        UserFileError: naming ``flag``, the path and what is wrong.
    """
    path = Path(path)
    mode = _stat_or_none(path, flag, path)
    if mode is not None and not stat.S_ISDIR(mode.st_mode):
        raise UserFileError(f"{flag} {path}: is a file, not a directory; expected a directory")
    _check_creatable(path.absolute(), flag, path)
    return path


def move_aside(path: str | Path) -> Path:
    """Rename ``path`` to ``<name>.aside-<n>`` beside it, the first free ``n`` >= 1, and return the new path: work in
    the way of a new one is kept, never deleted or overwritten."""
    path = Path(path)
    number = 1
    while os.path.lexists(aside := path.with_name(f"{path.name}.aside-{number}")):
        number += 1
    os.rename(path, aside)
    return aside


def display_path(path: str | Path) -> str:
    """A path as people read it: relative to the working directory when under it (presets hold absolute paths)."""
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
