"""cawb.coco.instances: the chosen records come back as the file's own bytes; only what a subset uses is required."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cawb.coco.instances import CocoFileError, read_instances
from cawb.utils.errors import InputError

CATEGORY_IDS = (1, 3, 90)

# Hand-formatted on purpose: odd spacing, key orders, braces and escaped quotes inside strings, unicode, a nested RLE
# object. The chosen records must come back exactly as written here.
IMAGE_7 = '{ "file_name":"a},{b.jpg",  "id": 7, "height": 48, "width": 64, "note": "quote \\" then },{\\"id\\": 9}" }'
IMAGE_8 = '{"id":8,"width":40,"height":40,"file_name":"ü.jpg","coco_url":"http://x/ü.jpg"}'
ANNOTATION_1 = (
    '{"segmentation": {"counts": [1, 2], "size": [48, 64]}, "iscrowd": 1, "image_id": 7,\n'
    ' "bbox": [1, 2, 3, 4], "category_id": 90, "id": 1}'
)
ANNOTATION_2 = '{"id":2,"image_id":8,"category_id":1,"bbox":[0.5,0.5,1e1,2],"segmentation":[[1,2,3,4,5,6]]}'
# Of an image that is not chosen: only its image_id is needed, the rest may be anything.
ANNOTATION_3 = '{"image_id": 9, "bbox": "not a box", "category_id": 12}'
IMAGE_9 = '{"id": 9, "width": 10, "height": 10, "file_name": "c.jpg"}'
INFO = '{"description": "tricky } ] },{ \\" \\\\", "nested": {"x": [1, {"y": 2}]}}'
CATEGORIES = '[{"id": 1, "name": "person"}, {"id": 90, "name": "toothbrush", "supercategory": "indoor"}]'


def instances_text(*, annotations_first: bool = False) -> str:
    images = f'"images": [\n  {IMAGE_9},\n  {IMAGE_7},{IMAGE_8}]'
    annotations = f'"annotations":[{ANNOTATION_1} , {ANNOTATION_3},{ANNOTATION_2}]'
    info = f'"info":  {INFO}'
    members = [info, annotations, images] if annotations_first else [info, images, annotations]
    return "{" + ",\n".join([*members, '"licenses": []', f'"categories": {CATEGORIES}']) + "}\n"


def read(path: Path, chosen=(7, 8), want_annotated: bool = False):
    seen = {}

    def choose(images, annotated):
        seen["images"], seen["annotated"] = images, annotated
        return set(chosen)

    return read_instances(path, choose, want_annotated=want_annotated, category_ids=CATEGORY_IDS, progress=False), seen


@pytest.mark.parametrize("annotations_first", [False, True])
def test_chosen_records_are_the_files_own_bytes(tmp_path: Path, annotations_first: bool):
    path = tmp_path / "instances.json"
    path.write_text(instances_text(annotations_first=annotations_first), encoding="utf-8")
    result, seen = read(path)
    assert result.chosen == {7, 8}
    assert result.image_json == {7: IMAGE_7.encode(), 8: IMAGE_8.encode()}
    assert {i: [raw for _, raw in pairs] for i, pairs in result.annotations.items()} == {
        7: [ANNOTATION_1.encode()],
        8: [ANNOTATION_2.encode()],
    }
    assert result.top == {"info": INFO.encode(), "licenses": b"[]", "categories": CATEGORIES.encode()}
    annotation = result.annotations[7][0][0]
    assert (annotation.id, annotation.category_id, annotation.bbox, annotation.iscrowd) == (1, 90, (1, 2, 3, 4), 1)
    assert sorted(seen["images"]) == [7, 8, 9] and seen["images"][8].coco_url == "http://x/ü.jpg"
    assert seen["annotated"] is None


def test_annotated_image_ids_are_passed_when_asked(tmp_path: Path):
    path = tmp_path / "instances.json"
    path.write_text(instances_text(), encoding="utf-8")
    _, seen = read(path, want_annotated=True)
    assert seen["annotated"] == {7, 8, 9}


def test_sha256_and_size_are_of_the_whole_file(tmp_path: Path):
    path = tmp_path / "instances.json"
    path.write_text(instances_text(), encoding="utf-8")
    result, _ = read(path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.size == path.stat().st_size


def test_a_chosen_annotation_needs_every_field_a_label_uses(tmp_path: Path):
    path = tmp_path / "instances.json"
    path.write_text(instances_text(), encoding="utf-8")
    with pytest.raises(CocoFileError, match=r"annotations\[1\]: Expected `array`, got `str` - at `\$.bbox`"):
        read(path, chosen=(9,))


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"images": [', "is not a valid COCO annotation file: Input data was truncated"),
        ("", "is not a valid COCO annotation file: Input data was truncated"),
        ('[{"images": []}]', "is not a valid COCO annotation file: Expected `object`, got `array`"),
        ('{"images": {}, "annotations": [], "categories": []}', r"Expected `array`, got `object` - at `\$.images`"),
        ('{"images": [], "annotations": [{"id": 1}], "categories": []}', r"`image_id` - at `\$.annotations\[0\]`"),
        ('{"images": []}', "is not a COCO instances file: it has no 'annotations', 'categories'"),
        ('{"images": [], "annotations": [], "categories": []} x', "trailing characters"),
    ],
)
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str):
    path = tmp_path / "instances.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CocoFileError, match=message) as info:
        read(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert isinstance(info.value, InputError)
