"""Read a COCO ``instances_*.json`` file for a subset: all image records, then only the chosen images' JSON.

Built on ``cawb.coco.json_stream`` so that memory stays far below the file's size: only the fields declared in the
Structs below are decoded (the polygons are skipped in C), and of the annotations only those of the chosen
images are kept, as their verbatim JSON text (to be copied byte for byte into a subset file) plus the few
fields a YOLO label needs.

One pass suffices for the usual file order (``images`` before ``annotations``) when the choice does not depend
on which images have annotations: the caller's ``choose`` runs as soon as the image list is complete. Otherwise
(``want_annotated``, or annotations first) a second pass collects the chosen images' annotations.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from tqdm import tqdm

from cawb.coco.json_stream import JsonStreamError, iter_members

TOP_LEVEL_COPIED = ("info", "licenses", "categories")  # kept verbatim for the subset file
_REQUIRED_KEYS = ("images", "annotations", "categories")


class CocoFileError(ValueError):
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


class _Nothing(msgspec.Struct, gc=False):
    pass


class _Category(msgspec.Struct):
    id: int
    name: str


_IMAGES = msgspec.json.Decoder(list[ImageRecord])
_ANNOTATION_IMAGE_IDS = msgspec.json.Decoder(list[_AnnotationImageId])
_SKIP = msgspec.json.Decoder(list[_Nothing])
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])
_ANNOTATION = msgspec.json.Decoder(Annotation)
_CATEGORIES = msgspec.json.Decoder(list[_Category])


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

    Args:
        choose: called once with all image records and, when ``want_annotated``, the set of ids of images with
            at least one annotation (else None); returns the ids to keep. Exceptions it raises propagate.
        category_ids: the category ids allowed in ``categories`` and in the kept annotations.

    Raises:
        CocoFileError: malformed JSON, a missing key, a duplicate image id, an image ``file_name`` that is not a
            plain file name, a non-positive image size, a category id not in ``category_ids``, a kept
            annotation without ``id``, ``image_id``, ``category_id`` or a 4-number ``bbox``.
    """
    category_ids = frozenset(category_ids)
    result = InstancesSubset(size=path.stat().st_size)
    annotated: set[int] | None = set() if want_annotated else None
    all_image_json: dict[int, bytes] = {}
    collected_in_first_pass = False
    keys = set()
    hasher = _BackgroundSha256()
    decoders = {"images": _IMAGES, "annotations": _ANNOTATION_IMAGE_IDS}

    def choose_now() -> None:
        result.chosen = set(choose(result.images, annotated))
        result.image_json = {i: all_image_json[i] for i in result.chosen}
        all_image_json.clear()

    with _progress(path, "read", result.size, progress) as bar:

        def on_read(chunk: bytes) -> None:
            hasher.feed(chunk)
            bar.update(len(chunk))

        try:
            for member in iter_members(path, decoders, on_read=on_read):
                keys.add(member.key)
                if member.key == "images":
                    raws = _RAWS.decode(member.data)
                    for k, (record, raw) in enumerate(zip(member.items, raws)):
                        _check_image(record, member.first_index + k, path, result.images)
                        result.images[record.id] = record
                        all_image_json[record.id] = bytes(raw)
                elif member.key == "annotations":
                    if annotated is not None:
                        annotated.update(a.image_id for a in member.items)
                    elif "images" in keys:  # the image list is complete: choose now, collect in this pass
                        if not collected_in_first_pass:
                            choose_now()
                            collected_in_first_pass = True
                        _collect_batch(member, result, path, category_ids)
                elif member.key in TOP_LEVEL_COPIED:
                    result.top[member.key] = member.data
                    if member.key == "categories":
                        _check_categories(member.data, path, category_ids)
        except JsonStreamError as e:
            raise CocoFileError(f"{path} is not a valid COCO annotation file: {e}") from None
        finally:
            result.sha256 = hasher.hexdigest()
    missing = [k for k in _REQUIRED_KEYS if k not in keys]
    if missing:
        raise CocoFileError(f"{path} is not a COCO instances file: it has no {', '.join(map(repr, missing))}")
    if not collected_in_first_pass:
        choose_now()
        _collect_second_pass(path, result, category_ids, progress)
    return result


def _collect_second_pass(path: Path, result: InstancesSubset, category_ids: Collection[int], progress: bool) -> None:
    with _progress(path, "collect", result.size, progress) as bar:
        decoders = {"images": _SKIP, "annotations": _ANNOTATION_IMAGE_IDS}
        try:
            for member in iter_members(path, decoders, on_read=lambda chunk: bar.update(len(chunk))):
                if member.key == "annotations":
                    _collect_batch(member, result, path, category_ids)
        except JsonStreamError as e:
            raise CocoFileError(f"{path} is not a valid COCO annotation file: {e}") from None


def _collect_batch(member, result: InstancesSubset, path: Path, category_ids: Collection[int]) -> None:
    hits = [k for k, a in enumerate(member.items) if a.image_id in result.chosen]
    if not hits:
        return
    raws = _RAWS.decode(member.data)
    for k in hits:
        raw = bytes(raws[k])
        try:
            annotation = _ANNOTATION.decode(raw)
        except msgspec.DecodeError as e:
            raise CocoFileError(f"{path}: annotations[{member.first_index + k}]: {e}") from None
        if annotation.category_id not in category_ids:
            raise CocoFileError(
                f"{path}: annotation {annotation.id} has category_id {annotation.category_id}, not one of the 80 "
                "COCO detection categories"
            )
        result.annotations.setdefault(annotation.image_id, []).append((annotation, raw))


def _check_image(record: ImageRecord, index: int, path: Path, seen: dict[int, ImageRecord]) -> None:
    name = record.file_name
    if record.id in seen:
        raise CocoFileError(f"{path}: images[{index}] repeats image id {record.id}")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise CocoFileError(f"{path}: image {record.id} has file_name {name!r}, expected a plain file name")
    if record.width <= 0 or record.height <= 0:
        raise CocoFileError(f"{path}: image {record.id} has size {record.width}x{record.height}")


def _check_categories(data: bytes, path: Path, category_ids: Collection[int]) -> None:
    try:
        categories = _CATEGORIES.decode(data)
    except msgspec.DecodeError as e:
        raise CocoFileError(f"{path}: 'categories' is not a list of {{id, name}} objects: {e}") from None
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


def _progress(path: Path, verb: str, size: int, enabled: bool) -> tqdm:
    return tqdm(total=size, unit="B", unit_scale=True, desc=f"{verb} {path.name}", disable=not enabled)


class _BackgroundSha256:
    """SHA-256 of the chunks fed to it, computed on another thread: hashlib releases the GIL on large buffers,
    so hashing overlaps with parsing (which holds it) on a multi-core machine."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._hash.update(chunk)

    def feed(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def hexdigest(self) -> str:
        self._chunks.put(None)
        self._thread.join()
        return self._hash.hexdigest()
