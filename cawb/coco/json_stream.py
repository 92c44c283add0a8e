"""Read one large JSON object member by member, its big arrays in bounded batches.

A COCO2017 train annotation file is ~450 MB; ``json.load`` turns it into ~2.5-3 GB of Python objects, and even
holding its bytes costs 450 MB. This module walks the top-level object through a window of a few MB and hands
each top-level array named by the caller over as consecutive batches of whole elements, decoded by a
``msgspec`` decoder the caller supplies (so fields it does not declare, e.g. COCO's polygon ``segmentation``,
are skipped in C and never become Python objects). Memory stays near a few window sizes whatever the file size.

How a batch is cut without a JSON tokenizer in Python: the window is cut after a ``}`` that is followed by ``,``
and ``{`` (or by ``]``), and the text ``[`` + cut + ``]`` is handed to msgspec. If the cut fell inside a string
or inside a nested object, that text is not valid JSON (it ends inside a string or with a container left open)
and msgspec says so; then an earlier ``}`` is tried, or more of the file is read. If it decodes, it is exactly a
run of whole elements, because JSON parsing of a prefix that starts at an element boundary is the same in the
cut as in the file. So the cut is verified by the decode the caller needs anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

_WHITESPACE = b" \t\r\n"
_CLOSER = {ord("{"): ord("}"), ord("["): ord("]")}
_WHOLE_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])  # checks JSON syntax only
_INDEX_IN_ERROR = re.compile(r"`\$\[(\d+)\]")  # msgspec locates a validation error as `$[i]...`


class JsonStreamError(ValueError):
    """The file is not valid JSON, or not the shape the caller asked for. The message is one line."""


@dataclass(frozen=True)
class Member:
    """One piece of the top-level object.

    For a key streamed as batches: ``items`` is the decoded list of consecutive elements (possibly empty, once,
    for an empty array), ``data`` their JSON text as one array, ``first_index`` the index of the first of them.
    For any other key: ``items`` is None and ``data`` is the value's JSON text, verbatim.
    """

    key: str
    items: list[Any] | None
    data: bytes
    first_index: int = 0


class _Window:
    """Bytes of the file from absolute offset ``offset``; ``pos`` indexes into ``buf``."""

    def __init__(self, file: BinaryIO, chunk_size: int, on_read: Callable[[bytes], None] | None):
        self.file, self.chunk_size, self.on_read = file, chunk_size, on_read
        self.buf, self.pos, self.offset, self.eof = b"", 0, 0, False

    def read_more(self) -> bool:
        """Append the next chunk, dropping what lies before ``pos``; False at end of file."""
        data = self.file.read(self.chunk_size)
        if self.on_read is not None:
            self.on_read(data)
        if not data:
            self.eof = True
            return False
        self.offset += self.pos
        self.buf = b"".join((memoryview(self.buf)[self.pos :], data))  # one copy, not two
        self.pos = 0
        return True

    def peek(self, what: str) -> int:
        """Skip whitespace; return the next byte without consuming it. ``what`` names it for the error."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.read_more():
                raise JsonStreamError(f"file ends at byte {self.offset + self.pos} where {what} was expected")

    def expect(self, char: bytes, what: str) -> None:
        if self.peek(what) != char[0]:
            got = chr(self.buf[self.pos])
            raise JsonStreamError(f"expected {what} at byte {self.offset + self.pos}, found {got!r}")
        self.pos += 1

    def where(self) -> str:
        return f"byte {self.offset + self.pos}"


def iter_members(
    path: str | Path,
    batch_decoders: dict[str, msgspec.json.Decoder],
    *,
    chunk_size: int = 8 << 20,
    max_element_bytes: int = 64 << 20,
    on_read: Callable[[bytes], None] | None = None,
) -> Iterator[Member]:
    """Yield the members of the JSON object in ``path`` in file order.

    Args:
        path: a file holding one JSON object.
        batch_decoders: top-level keys whose value must be an array of objects, each mapped to a decoder of
            ``list[T]``; such arrays are yielded in batches (see :class:`Member`). Other keys are yielded whole.
        chunk_size: bytes read at a time (the window grows past it only for a single larger element).
        max_element_bytes: an element or non-streamed value larger than this is reported as an error, which
            bounds memory on a corrupt file.
        on_read: called with every chunk read, in order, covering the whole file (e.g. to hash it).

    Raises:
        JsonStreamError: malformed JSON, a streamed key whose value is not an array of objects, or an element
            the decoder rejects (the message names the key and element index).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as file:
        window = _Window(file, chunk_size, on_read)
        window.expect(b"{", "'{' opening the top-level object")
        if window.peek("a key or '}'") == ord("}"):
            window.pos += 1
        else:
            while True:
                key = _read_key(window)
                window.expect(b":", f"':' after key {key!r}")
                decoder = batch_decoders.get(key)
                if decoder is None:
                    yield Member(key, None, _read_value(window, key, max_element_bytes))
                else:
                    yield from _read_array_batches(window, key, decoder, max_element_bytes)
                if window.peek("',' or '}'") == ord(","):
                    window.pos += 1
                    continue
                window.expect(b"}", "',' or '}' after a member of the top-level object")
                break
        # Only whitespace may follow the object; reading to the end also completes on_read's view of the file.
        while True:
            rest = window.buf[window.pos :].strip(_WHITESPACE)
            if rest:
                raise JsonStreamError(f"unexpected data after the top-level object at {window.where()}")
            window.pos = len(window.buf)
            if not window.read_more():
                return


def _string_end(window: _Window, start: int) -> int:
    """Index in ``window.buf`` of the quote closing the string opened at ``start``, reading more as needed."""
    search = start + 1
    while True:
        end = window.buf.find(b'"', search)
        if end < 0:
            search = len(window.buf)
            before = window.pos
            if not window.read_more():
                raise JsonStreamError(f"file ends inside a string starting at byte {window.offset + start}")
            search -= before - window.pos
            start -= before - window.pos
            continue
        backslashes = 0
        while window.buf[end - 1 - backslashes] == 0x5C:  # an odd run of backslashes escapes the quote
            backslashes += 1
        if backslashes % 2 == 0:
            return end
        search = end + 1


def _read_key(window: _Window) -> str:
    if window.peek("a key") != ord('"'):
        raise JsonStreamError(f"expected a quoted key at {window.where()}")
    end = _string_end(window, window.pos)
    try:
        key = msgspec.json.decode(window.buf[window.pos : end + 1])
    except msgspec.DecodeError as e:
        raise JsonStreamError(f"the key at {window.where()} is not a valid JSON string: {e}") from None
    window.pos = end + 1
    return key


def _read_value(window: _Window, key: str, max_bytes: int) -> bytes:
    """Consume one whole JSON value and return its text. Small values only (bounded by ``max_bytes``)."""
    first = window.peek(f"the value of {key!r}")
    if first == ord('"'):
        end = _string_end(window, window.pos) + 1
        return _take_verified(window, end, key)
    closer = _CLOSER.get(first)
    if closer is None:  # number, true, false, null: runs until a delimiter
        end = window.pos
        while True:
            while end < len(window.buf) and window.buf[end] not in b",}] \t\r\n":
                end += 1
            if end < len(window.buf) or window.eof:
                return _take_verified(window, end, key)
            end -= window.pos
            window.read_more()
            end += window.pos
    # A container ends at one of its closing brackets: try them in order; the first that parses is the end.
    search = window.pos + 1
    while True:
        end = window.buf.find(bytes([closer]), search)
        if end < 0:
            if len(window.buf) - window.pos > max_bytes:
                raise JsonStreamError(f"the value of {key!r} is larger than {max_bytes} bytes or malformed")
            search = len(window.buf) - window.pos
            if not window.read_more():
                raise JsonStreamError(f"file ends inside the value of {key!r}")
            search += window.pos
            continue
        try:
            msgspec.json.decode(window.buf[window.pos : end + 1])
        except msgspec.DecodeError:
            search = end + 1
            continue
        return _take(window, end + 1)


def _take_verified(window: _Window, end: int, key: str) -> bytes:
    try:
        msgspec.json.decode(window.buf[window.pos : end])
    except msgspec.DecodeError as e:
        raise JsonStreamError(f"the value of {key!r} at {window.where()} is not valid JSON: {e}") from None
    return _take(window, end)


def _take(window: _Window, end: int) -> bytes:
    data = window.buf[window.pos : end]
    window.pos = end
    return data


def _cut_candidates(buf: bytes, start: int) -> Iterator[int]:
    """Indexes of ``}`` after ``start`` followed by ``, {`` or ``]`` within ``buf``, in the order to try them.

    First the last one (the usual case: the window ends mid-array and it is valid), then one before the midpoint
    of ``start`` and the previous try, and so on: when the array ends inside the window, every ``}`` after its
    ``]`` is an invalid cut, and halving reaches the array in a logarithmic number of tries. Halving can step
    over the only valid cut (one element left), so the ones after ``start`` follow, first to last.
    """
    end = len(buf)
    while (brace := _last_cut_pattern(buf, start, end)) >= 0:
        yield brace
        end = start + (brace - start) // 2
    position = start
    while (brace := _first_cut_pattern(buf, position)) >= 0:
        yield brace
        position = brace + 1


def _follows_cut(buf: bytes, brace: int) -> bool:
    """Whether ``, {`` or ``]`` (whitespace allowed) follows ``buf[brace]`` within ``buf``."""
    after = brace + 1
    while after < len(buf) and buf[after] in _WHITESPACE:
        after += 1
    if after >= len(buf):
        return False
    if buf[after] == ord("]"):
        return True
    if buf[after] != ord(","):
        return False
    after += 1
    while after < len(buf) and buf[after] in _WHITESPACE:
        after += 1
    return after < len(buf) and buf[after] == ord("{")


def _last_cut_pattern(buf: bytes, start: int, end: int) -> int:
    while (brace := buf.rfind(b"}", start, end)) >= 0:
        if _follows_cut(buf, brace):
            return brace
        end = brace
    return -1


def _first_cut_pattern(buf: bytes, start: int) -> int:
    while (brace := buf.find(b"}", start)) >= 0:
        if _follows_cut(buf, brace):
            return brace
        start = brace + 1
    return -1


def _read_array_batches(window: _Window, key: str, decoder: msgspec.json.Decoder, max_bytes: int) -> Iterator[Member]:
    window.expect(b"[", f"'[': {key!r} must be an array")
    if window.peek(f"an element of {key!r} or ']'") == ord("]"):
        window.pos += 1
        yield Member(key, decoder.decode(b"[]"), b"[]", 0)
        return
    index = 0
    while True:
        if window.peek(f"an element of {key!r}") != ord("{"):
            raise JsonStreamError(f"{key}[{index}] at {window.where()} is not a JSON object")
        items, data = _next_batch(window, key, index, decoder, max_bytes)
        yield Member(key, items, data, index)
        index += len(items)
        if window.peek(f"',' or ']' in {key!r}") == ord(","):
            window.pos += 1
            continue
        window.expect(b"]", f"',' or ']' after {key}[{index - 1}]")
        return


def _next_batch(
    window: _Window, key: str, index: int, decoder: msgspec.json.Decoder, max_bytes: int
) -> tuple[list[Any], bytes]:
    """Decode the longest run of whole elements from ``window.pos`` that the window holds; consume it."""
    last_error: msgspec.DecodeError | None = None
    while True:
        for brace in _cut_candidates(window.buf, window.pos):
            data = b"".join((b"[", memoryview(window.buf)[window.pos : brace + 1], b"]"))
            try:
                items = decoder.decode(data)
            except msgspec.ValidationError as e:
                # A false cut can cause a schema error too (e.g. a fixed-length array closed early by the ']'),
                # so the error is the file's only if the cut holds whole elements.
                if _holds_whole_elements(data):
                    raise JsonStreamError(f"{key}: {_name_element(str(e), key, index)}") from None
                last_error = e
                continue
            except msgspec.DecodeError as e:
                last_error = e
                continue
            window.pos = brace + 1
            return items, data
        if len(window.buf) - window.pos > max_bytes:
            detail = f": {last_error}" if last_error else ""
            raise JsonStreamError(
                f"{key}[{index}] at {window.where()} is malformed or larger than {max_bytes} bytes{detail}"
            )
        if not window.read_more():
            raise JsonStreamError(f"file ends inside {key}[{index}] (truncated?)")


def _holds_whole_elements(data: bytes) -> bool:
    try:
        _WHOLE_ELEMENTS.decode(data)
    except msgspec.DecodeError:
        return False
    return True


def _name_element(message: str, key: str, first_index: int) -> str:
    """Turn msgspec's ``$[i]`` (index within the batch) into ``key[first_index + i]``."""
    return _INDEX_IN_ERROR.sub(lambda m: f"`{key}[{first_index + int(m.group(1))}]", message)
