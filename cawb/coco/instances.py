"""Read a COCO ``instances_*.json`` file for a subset: all image records, then only the chosen images' JSON.

The file's bytes are read whole (hashed on the way, for the manifest) and decoded by msgspec twice, in C: once into
Structs that declare only the fields a subset needs, so that the polygons and every other undeclared field are
skipped without building Python objects; once into ``msgspec.Raw`` spans of each image and annotation, views into
the same bytes, so that the chosen records are copied byte for byte into a subset file. Between the two the caller's
``choose`` picks the images. What is returned holds the image records and the chosen records' text; the file's
bytes are released on return.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from msgspec import UNSET, Raw, UnsetType
from tqdm import tqdm

from cawb.utils.errors import InputError

TOP_LEVEL_COPIED = ("info", "licenses", "categories")  # kept verbatim for the subset file
_REQUIRED_KEYS = ("images", "annotations", "categories")
_READ_CHUNK = 16 << 20  # bytes per read: progress bar and hash updates


class CocoFileError(InputError):
    """The file is not a usable COCO instances file; the message is one line and names the file."""


class ImageRecord(msgspec.Struct, frozen=True, gc=False):
    """The fields of a COCO image record that a subset needs (pixels for width and height)."""

    id: int
    width: int
    height: int
    file_name: str
    coco_url: str = ""


class Annotation(msgspec.Struct, frozen=True, gc=False):
    """The fields of a COCO annotation that a YOLO label needs; ``bbox`` is ``[x, y, w, h]`` in pixels from the
    top-left corner."""

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: int | bool = 0


class _AnnotationImageId(msgspec.Struct, gc=False):
    image_id: int


class _Category(msgspec.Struct, gc=False):
    id: int
    name: str


class _DeclaredFields(msgspec.Struct, gc=False):
    """The typed view of the whole file. Every annotation needs only an ``image_id`` here: the chosen ones are
    decoded as ``Annotation`` afterwards. A missing key is UNSET (reported by name) rather than a decode error."""

    images: list[ImageRecord] | UnsetType = UNSET
    annotations: list[_AnnotationImageId] | UnsetType = UNSET
    categories: list[_Category] | UnsetType = UNSET


class _VerbatimText(msgspec.Struct, gc=False):
    """The raw view of the whole file: each record's own JSON text, in file order (parallel to the typed lists)."""

    info: Raw | UnsetType = UNSET
    licenses: Raw | UnsetType = UNSET
    categories: Raw | UnsetType = UNSET
    images: list[Raw] = []
    annotations: list[Raw] = []


_DECLARED_FIELDS = msgspec.json.Decoder(_DeclaredFields)
_VERBATIM_TEXT = msgspec.json.Decoder(_VerbatimText)
_ANNOTATION = msgspec.json.Decoder(Annotation)


@dataclass
class InstancesSubset:
    """What ``read_instances`` returns.

    ``images``: every image record of the file, by id. ``chosen``: the ids ``choose`` returned.
    ``image_json`` / ``annotations``: verbatim JSON of the chosen images, and of their annotations (with the
    decoded fields) by image id, in file order. ``top``: verbatim JSON of ``info``, ``licenses`` and
    ``categories`` (those present). ``sha256`` / ``size``: of the whole file, in bytes.
    """

    images: dict[int, ImageRecord] = field(default_factory=dict)
    chosen: set[int] = field(default_factory=set)
    image_json: dict[int, bytes] = field(default_factory=dict)
    annotations: dict[int, list[tuple[Annotation, bytes]]] = field(default_factory=dict)
    top: dict[str, bytes] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0


Chooser = Callable[[dict[int, ImageRecord], "set[int] | None"], Collection[int]]


def read_instances(
    path: Path, choose: Chooser, *, want_annotated: bool, category_ids: Collection[int], progress: bool = True
) -> InstancesSubset:
    """Read ``path`` and keep the JSON of the images ``choose`` picks, with all their annotations.

    Memory: the file's size, plus the image records and a small object per annotation while it is decoded.

    Args:
        choose: called once with all image records and, when ``want_annotated``, the set of ids of images with
            at least one annotation (else None); returns the ids to keep. Exceptions it raises propagate.
        category_ids: the category ids allowed in ``categories`` and in the kept annotations.
        progress: show a progress bar over the bytes read.

    Raises:
        CocoFileError: malformed JSON, a missing key, a duplicate image id, an image ``file_name`` that is not a
            plain file name, a non-positive image size, a category id not in ``category_ids``, an annotation
            without ``image_id``, a kept annotation without ``id``, ``category_id`` or a 4-number ``bbox``.
    """
    category_ids = frozenset(category_ids)
    data, sha256 = _read_and_hash(path, progress)
    result = InstancesSubset(sha256=sha256, size=len(data))
    try:
        fields = _DECLARED_FIELDS.decode(data)
    except msgspec.DecodeError as e:
        raise CocoFileError(f"{path} is not a valid COCO annotation file: {e}") from None
    missing = [key for key in _REQUIRED_KEYS if getattr(fields, key) is UNSET]
    if missing:
        raise CocoFileError(f"{path} is not a COCO instances file: it has no {', '.join(map(repr, missing))}")
    _check_categories(fields.categories, path, category_ids)
    for index, record in enumerate(fields.images):
        _check_image(record, index, path, result.images)
        result.images[record.id] = record
    annotated = {a.image_id for a in fields.annotations} if want_annotated else None
    result.chosen = set(choose(result.images, annotated))
    chosen_images = {k: record.id for k, record in enumerate(fields.images) if record.id in result.chosen}
    chosen_annotations = [k for k, a in enumerate(fields.annotations) if a.image_id in result.chosen]
    del fields, annotated  # one object per annotation: freed before the second decode makes one more each

    # Same bytes, already valid: this decode cannot fail.
    text = _VERBATIM_TEXT.decode(data)
    result.top = {key: bytes(raw) for key in TOP_LEVEL_COPIED if (raw := getattr(text, key)) is not UNSET}
    result.image_json = {image_id: bytes(text.images[k]) for k, image_id in chosen_images.items()}
    for k in chosen_annotations:
        raw = bytes(text.annotations[k])
        try:
            annotation = _ANNOTATION.decode(raw)
        except msgspec.DecodeError as e:
            raise CocoFileError(f"{path}: annotations[{k}]: {e}") from None
        if annotation.category_id not in category_ids:
            raise CocoFileError(
                f"{path}: annotation {annotation.id} has category_id {annotation.category_id}, not one of the 80 "
                "COCO detection categories"
            )
        result.annotations.setdefault(annotation.image_id, []).append((annotation, raw))
    return result


def _read_and_hash(path: Path, progress: bool) -> tuple[bytearray, str]:
    """The file's bytes and their sha256 hex digest, read in chunks under a progress bar.

    Chunks are read into one buffer of the file's size, hashed there: joining separate chunks would hold the file
    twice at the end."""
    hasher = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        data = bytearray(size)
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"read {path.name}", disable=not progress)
        with memoryview(data) as view, bar:
            position = 0
            while position < size and (n := f.readinto(view[position : position + _READ_CHUNK])):
                hasher.update(view[position : position + n])
                bar.update(n)
                position += n
    if position != size:
        raise CocoFileError(f"{path} changed while being read ({position} of {size} bytes read)")
    return data, hasher.hexdigest()


def _check_image(record: ImageRecord, index: int, path: Path, seen: dict[int, ImageRecord]) -> None:
    name = record.file_name
    if record.id in seen:
        raise CocoFileError(f"{path}: images[{index}] repeats image id {record.id}")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise CocoFileError(f"{path}: image {record.id} has file_name {name!r}, expected a plain file name")
    if record.width <= 0 or record.height <= 0:
        raise CocoFileError(f"{path}: image {record.id} has size {record.width}x{record.height}")


def _check_categories(categories: list[_Category], path: Path, category_ids: Collection[int]) -> None:
    seen = set()
    for category in categories:
        if category.id not in category_ids:
            raise CocoFileError(
                f"{path}: category id {category.id} ({category.name!r}) is not one of the 80 COCO detection "
                "categories of the standard 91-to-80 mapping"
            )
        if category.id in seen:
            raise CocoFileError(f"{path}: category id {category.id} appears more than once")
        seen.add(category.id)

