"""cawb.coco.json_stream: batches must be exactly the file's elements, whatever the window size; bad input raises."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from cawb.coco.json_stream import JsonStreamError, iter_members

# Elements chosen to defeat naive cutting: braces, brackets, '},{' and escaped quotes inside strings, nested
# objects followed by ', {' inside an element, an RLE-like nested object, unicode, and an empty array.
TRICKY = {
    "info": {"description": 'a } b ] c },{ d " e \\', "nested": {"x": [1, {"y": 2}]}},
    "images": [
        {"id": 1, "file_name": "a},{b.jpg", "note": 'quote " then },{"id": 9}'},
        {"id": 2, "file_name": "ü.jpg", "parts": [{"a": 1}, {"b": 2}], "more": [{}, {}]},
        {"id": 3, "file_name": "c.jpg", "seg": {"counts": [1, 2], "size": [4, 5]}, "tail": "\\"},
    ],
    "empty": [],
    "annotations": [{"id": k, "image_id": 1 + k % 3, "bbox": [k, k + 0.5, 1e-3, 2]} for k in range(40)],
    "scalar": -1.5e3,
    "flag": True,
    "nothing": None,
    "text": "x}y",
}


class Item(msgspec.Struct):
    id: int


def _read(path: Path, chunk_size: int, keys=("images", "annotations", "empty")) -> dict:
    decoders = {key: msgspec.json.Decoder(list[msgspec.Raw]) for key in keys}
    got: dict = {}
    for member in iter_members(path, decoders, chunk_size=chunk_size):
        if member.items is None:
            got[member.key] = json.loads(member.data)
        else:
            assert member.first_index == len(got.setdefault(member.key, []))
            assert json.loads(member.data) == [json.loads(bytes(raw)) for raw in member.items]
            got[member.key] += [json.loads(bytes(raw)) for raw in member.items]
    return got


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk_size", [1, 3, 17, 64, 1 << 20])
def test_batches_reassemble_to_the_parsed_file(tmp_path: Path, chunk_size: int, indent: int | None):
    path = tmp_path / "tricky.json"
    path.write_text(json.dumps(TRICKY, indent=indent, ensure_ascii=False), encoding="utf-8")
    assert _read(path, chunk_size) == TRICKY


def test_small_windows_yield_several_batches_in_order(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(TRICKY))
    batches = [m for m in iter_members(path, {"annotations": msgspec.json.Decoder(list[Item])}, chunk_size=100)]
    annotation_batches = [m for m in batches if m.key == "annotations"]
    assert len(annotation_batches) > 5
    assert [item.id for m in annotation_batches for item in m.items] == list(range(40))


def test_on_read_sees_every_byte(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(TRICKY) + "\n\n")
    seen = bytearray()
    for _ in iter_members(path, {"images": msgspec.json.Decoder(list[Item])}, chunk_size=50, on_read=seen.extend):
        pass
    assert bytes(seen) == path.read_bytes()


def test_every_truncation_is_an_error_never_a_short_result(tmp_path: Path):
    text = json.dumps(TRICKY).encode()
    path = tmp_path / "cut.json"
    for end in range(0, len(text), 7):
        path.write_bytes(text[:end])
        with pytest.raises(JsonStreamError):
            _read(path, 16)


@pytest.mark.parametrize(
    "text, message",
    [
        (b'{"images": [{"id": 1}] } trailing', "after the top-level object"),
        (b'{"images": {"id": 1}}', "must be an array"),
        (b'{"images": [1, 2]}', "is not a JSON object"),
        (b'{"images": [{"id": 1}, {"id": 2,}]}', "images[1]"),
        (b'[{"id": 1}]', "'{'"),
        (b'{"images": [{"id": "one"}]}', "images[0]"),
        (b'{"info": {"a": 1]}', "'info'"),
        (b"", "file ends"),
    ],
)
def test_malformed_input_names_the_problem(tmp_path: Path, text: bytes, message: str):
    path = tmp_path / "bad.json"
    path.write_bytes(text)
    with pytest.raises(JsonStreamError, match=None) as info:
        for _ in iter_members(path, {"images": msgspec.json.Decoder(list[Item])}, chunk_size=8, max_element_bytes=64):
            pass
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_schema_error_names_the_element_index(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": [{"id": k} for k in range(30)] + [{"name": "no id"}]}))
    with pytest.raises(JsonStreamError, match=r"images\[30\]"):
        for _ in iter_members(path, {"images": msgspec.json.Decoder(list[Item])}, chunk_size=64):
            pass


class Corner(msgspec.Struct):
    x: int


class Box(msgspec.Struct):
    id: int
    corners: tuple[Corner, Corner]


def test_a_schema_error_caused_by_a_false_cut_is_not_reported(tmp_path: Path):
    # '}, {' inside "corners" offers cuts where the appended ']' closes the 2-tuple after one corner: a schema
    # error that exists only in the cut, not in the file.
    elements = [{"id": k, "corners": [{"x": 1}, {"x": 2}]} for k in range(20)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": elements}))
    for chunk_size in (5, 40, 200):
        batches = iter_members(path, {"images": msgspec.json.Decoder(list[Box])}, chunk_size=chunk_size)
        assert [box.id for member in batches for box in member.items] == list(range(20))
