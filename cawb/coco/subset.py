"""Build a seeded random subset of COCO2017 for YOLO training and pycocotools evaluation.

``build_coco_subset`` reads the standard layout (``annotations/instances_{train,val}2017.json``,
``{train,val}2017/``), draws the images, and writes into the output directory::

    images/{train,val}/           symlinks to (or copies of) the drawn images
    labels/{train,val}/*.txt      YOLO labels: 80 contiguous classes, crowd boxes left out
    annotations/instances_{train,val}.json   COCO JSON of the drawn images and all their annotations
    dataset.yaml                  for ultralytics / train_cawb.py --data (no ``path:``: relative to itself)
    manifest.json                 settings, source checksums, counts, drawn image ids

Parsing (``cawb.coco.instances``): each annotation file is decoded whole by msgspec into Structs of only the
fields a subset needs; the draw is made from the image records, and only the drawn images' JSON text (and their
annotations') is kept, to be copied verbatim into the output.

Determinism: the draw ranks image ids by ``sha256(f"{seed}:{id}")``; every list written is sorted; JSON is
assembled from the source's own bytes with fixed separators. Same seed and source files, same output bytes.

Interruption: every file is written under a temporary name and renamed. ``manifest.json`` is written with
``"status": "incomplete"`` before the first output file and rewritten ``"complete"`` after the last, so a rerun
with the same settings recognises its own unfinished (or finished) directory and completes (or rebuilds) it. The
many label files and images are not synced one by one (7 ms each); one sync of everything precedes "complete".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from cawb.coco.classes import CocoClasses, coco_classes
from cawb.coco.download import (
    DEFAULT_BASE_URL,
    DownloadError,
    ImageJob,
    RetryPolicy,
    download_images,
    fetch_annotations,
    mirror_url,
)
from cawb.coco.instances import Annotation, Chooser, CocoFileError, ImageRecord, InstancesSubset, read_instances
from cawb.utils.atomic_files import (
    copy_atomic,
    symlink_atomic,
    sync_everything,
    write_bytes_atomic,
    write_text_atomic,
)
from cawb.utils.errors import InputError
from cawb.utils.user_files import UserFileError, UserFileNotFoundError, check_input_file, check_output_dir

MANIFEST_NAME = "manifest.json"
DATASET_YAML_NAME = "dataset.yaml"
MANIFEST_FORMAT = "cawb-coco-subset/1"
SPLITS = ("train", "val")
# What a build writes in --out, and all that --force may delete: only in a directory a build made (its manifest.json
# says so), where all of it can be rebuilt from --coco and the manifest's settings.
_OWNED = ("images", "labels", "annotations", DATASET_YAML_NAME, MANIFEST_NAME)


@dataclass(frozen=True)
class CocoSource:
    """Where one COCO2017 split lives under the COCO directory."""

    annotations: str  # annotation file, relative to the COCO directory
    images: str  # image directory, relative to the COCO directory


COCO2017 = {
    "train": CocoSource("annotations/instances_train2017.json", "train2017"),
    "val": CocoSource("annotations/instances_val2017.json", "val2017"),
}


class CocoSubsetError(InputError):
    """The subset cannot be built as asked; the message is one line and says what to change."""


@dataclass(frozen=True)
class SubsetOptions:
    """What to build. Counts are image counts; ``val_from="train"`` draws val from train2017, disjoint from
    train. ``skip_empty`` draws only images with at least one annotation (default: any image, as the full
    COCO training set includes background images). ``copy`` copies images instead of symlinking them.
    ``force`` replaces a subset built with other settings (or from other annotation files), or builds into a
    directory of other files when none of the names a build writes is taken there. ``allow_missing`` builds
    without sampled images absent from the COCO directory (reported) instead of failing. ``download`` fetches
    what the COCO directory lacks (annotations archive, then only the drawn images) from ``base_url``."""

    coco_dir: Path
    out_dir: Path
    train: int = 10_000
    val: int = 1_000
    seed: int = 0
    val_from: Literal["val", "train"] = "val"
    skip_empty: bool = False
    copy: bool = False
    force: bool = False
    allow_missing: bool = False
    download: bool = False
    base_url: str = DEFAULT_BASE_URL
    workers: int = 8
    retry: RetryPolicy = RetryPolicy()
    progress: bool = True

    def settings(self) -> dict:
        """The options that determine the output's content (recorded in, and compared with, the manifest)."""
        return {
            "seed": self.seed,
            "train": self.train,
            "val": self.val,
            "val_from": self.val_from,
            "skip_empty": self.skip_empty,
            "copy": self.copy,
        }


@dataclass(frozen=True)
class SplitSummary:
    """Counts for one written split. ``dropped_boxes``: non-crowd annotations with no area left after clipping
    to the image; ``background_images``: images with an empty label file; ``missing``: drawn images absent
    from the COCO directory and left out (only with ``allow_missing``)."""

    images: int
    annotations: int
    crowd: int
    boxes: int
    dropped_boxes: int
    background_images: int
    missing: int


@dataclass(frozen=True)
class SubsetReport:
    out_dir: Path
    dataset_yaml: Path
    splits: dict[str, SplitSummary]
    downloaded: int


# --- the draw ------------------------------------------------------------------------------------------------


def rank_image_ids(image_ids: Iterable[int], seed: int) -> list[int]:
    """``image_ids`` in draw order: by ``sha256(f"{seed}:{id}")``, a ranking defined by this code alone (no
    dependence on ``random``'s algorithm or on input order). The first N of the ranking are the draw of N, so a
    larger draw contains a smaller one."""
    return sorted(image_ids, key=lambda i: (hashlib.sha256(f"{seed}:{i}".encode()).digest(), i))


def draw_subsets(pool: Iterable[int], shares: list[tuple[str, int]], seed: int, *, source: str) -> dict[str, list[int]]:
    """Draw consecutive runs of the ranking of ``pool`` for each ``(split, count)`` in ``shares``, in order;
    returns sorted id lists by split. Two shares of one pool are disjoint, and the first is the same draw as
    if it were alone (so ``--val-from train`` leaves the train draw unchanged).

    Raises:
        CocoSubsetError: ``pool`` has fewer images than the shares add up to (``source`` names it).
    """
    ranked = rank_image_ids(pool, seed)
    need = sum(count for _, count in shares)
    if len(ranked) < need:
        asked = " + ".join(f"{count} {split}" for split, count in shares)
        raise CocoSubsetError(f"asked for {asked} images from {source} but it has only {len(ranked)} eligible images")
    drawn, start = {}, 0
    for split, count in shares:
        drawn[split] = sorted(ranked[start : start + count])
        start += count
    return drawn


# --- YOLO labels ---------------------------------------------------------------------------------------------


def yolo_box(bbox: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...] | None:
    """COCO ``[x, y, w, h]`` (pixels, top-left corner) as YOLO ``(cx, cy, w, h)`` normalized to the image,
    after clipping the box to the image; None when nothing of it is left (zero or negative area)."""
    x, y, w, h = bbox
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, width), min(y + h, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height


def yolo_label_text(annotations: list[Annotation], width: int, height: int, classes: CocoClasses) -> tuple[str, int]:
    """The label file text for one image (one ``class cx cy w h`` line per kept box, 6 decimals, in annotation
    order) and the number of non-crowd boxes dropped by clipping. Crowd annotations are left out."""
    lines, dropped = [], 0
    for annotation in annotations:
        if annotation.iscrowd:
            continue
        box = yolo_box(annotation.bbox, width, height)
        if box is None:
            dropped += 1
            continue
        yolo_class = classes.yolo_class(annotation.category_id)
        lines.append(f"{yolo_class} {box[0]:.6f} {box[1]:.6f} {box[2]:.6f} {box[3]:.6f}\n")
    return "".join(lines), dropped


# --- output ----------------------------------------------------------------------------------------------------


def coco_json_bytes(top: dict[str, bytes], images: list[bytes], annotations: list[bytes]) -> bytes:
    """A COCO annotation file from verbatim JSON pieces: ``info`` and ``licenses`` (when in ``top``), the image
    and annotation records in the order given (one per line), then ``top["categories"]``."""
    parts = [b"{"]
    for key in ("info", "licenses"):
        if key in top:
            parts += [b'"', key.encode(), b'":', top[key], b",\n"]
    parts += [b'"images":[\n', b",\n".join(images), b'\n],\n"annotations":[\n', b",\n".join(annotations)]
    parts += [b'\n],\n"categories":', top["categories"], b"}\n"]
    return b"".join(parts)


def dataset_yaml_text(classes: CocoClasses, settings: dict) -> str:
    """The output's dataset yaml: no ``path:`` (ultralytics then resolves against the yaml's directory, so the
    file is machine-independent), YOLO split dirs, COCO JSON files and the class-to-category-id list."""
    names = "".join(f"  {k}: {json.dumps(name)}\n" for k, name in enumerate(classes.names))
    return (
        f"# COCO2017 subset built by scripts/sample_coco.py: {settings['train']} train, {settings['val']} val "
        f"(val from {settings['val_from']}2017), seed {settings['seed']}; see {MANIFEST_NAME}.\n"
        "# Paths are relative to this file's directory. No 'download:' key on purpose.\n"
        "train: images/train\n"
        "val: images/val\n"
        "train_json: annotations/instances_train.json\n"
        "val_json: annotations/instances_val.json\n"
        "# YOLO class index -> COCO category id (for pycocotools evaluation)\n"
        f"category_ids: [{', '.join(str(c) for c in classes.category_ids)}]\n"
        f"names:\n{names}"
    )


def _write_split(
    out: Path,
    split: str,
    image_ids: list[int],
    data: InstancesSubset,
    image_source: Path,
    *,
    copy: bool,
    classes: CocoClasses,
    progress: bool,
) -> SplitSummary:
    """Write one split's labels, images and COCO JSON for ``image_ids`` (sorted); remove stale entries."""
    images_dir, labels_dir = out / "images" / split, out / "labels" / split
    for directory in (images_dir, labels_dir, out / "annotations"):
        directory.mkdir(parents=True, exist_ok=True)
    annotations_json = []
    crowd = boxes = dropped = background = 0
    for image_id in tqdm(image_ids, desc=f"write {split}", unit="img", disable=not progress):
        record = data.images[image_id]
        pairs = sorted(data.annotations.get(image_id, []), key=lambda pair: pair[0].id)
        annotations = [annotation for annotation, _ in pairs]
        text, image_dropped = yolo_label_text(annotations, record.width, record.height, classes)
        write_text_atomic(labels_dir / label_name(record.file_name), text, durable=False)  # synced before "complete"
        _place_image(image_source / record.file_name, images_dir / record.file_name, copy=copy)
        lines = text.count("\n")
        boxes += lines
        background += lines == 0
        dropped += image_dropped
        crowd += sum(1 for annotation in annotations if annotation.iscrowd)
        annotations_json += [(annotation.id, raw) for annotation, raw in pairs]
    annotations_json.sort(key=lambda pair: pair[0])
    _prune(images_dir, {data.images[i].file_name for i in image_ids})
    _prune(labels_dir, {label_name(data.images[i].file_name) for i in image_ids})
    (out / "labels" / f"{split}.cache").unlink(missing_ok=True)  # ultralytics' label cache of an older build
    write_bytes_atomic(
        out / "annotations" / f"instances_{split}.json",
        coco_json_bytes(data.top, [data.image_json[i] for i in image_ids], [raw for _, raw in annotations_json]),
    )
    return SplitSummary(len(image_ids), len(annotations_json), crowd, boxes, dropped, background, 0)


def label_name(file_name: str) -> str:
    """The YOLO label file name of an image: its stem with ``.txt`` (how ultralytics pairs them)."""
    return file_name.rpartition(".")[0] + ".txt" if "." in file_name else file_name + ".txt"


def _place_image(source: Path, dest: Path, *, copy: bool) -> None:
    if copy:
        if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == source.stat().st_size:
            return
        copy_atomic(source, dest, durable=False)
    else:
        if dest.is_symlink() and Path(dest.readlink()) == source:
            return
        symlink_atomic(source, dest, durable=False)


def _prune(directory: Path, keep: set[str]) -> None:
    """Delete what a previous or interrupted build left in ``directory`` that this build does not write."""
    for entry in directory.iterdir():
        if entry.name not in keep:
            entry.unlink()


# --- the output directory ----------------------------------------------------------------------------------------


def _read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT else None


def _check_output_dir(options: SubsetOptions) -> dict | None:
    """Refuse an output directory this build must not write into; return its manifest when it is a build of
    the same settings (which this run then completes or rebuilds)."""
    out = options.out_dir
    if not out.exists():
        return None
    if not out.is_dir():
        raise CocoSubsetError(f"--out {out} exists and is not a directory")
    if not any(out.iterdir()):
        return None
    manifest = _read_manifest(out)
    if manifest is not None and manifest.get("settings") == options.settings():
        return manifest
    if manifest is None:
        # Not a build of ours: --force may build beside the user's files, never delete them.
        taken = [name for name in _OWNED if os.path.lexists(out / name)]
        if taken:
            raise CocoSubsetError(f"--out {out} holds {taken[0]!r}, which sample_coco did not write (no manifest.json "
                                  "of a build), so even --force leaves it alone: choose another --out, or move it away")
    if options.force:
        return None
    held = "a subset built with other settings" if manifest is not None else "files of its own"
    raise CocoSubsetError(f"--out {out} already holds {held}; pass --force to replace it")


def _clear_owned(out: Path) -> None:
    for name in _OWNED:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _write_manifest(out: Path, manifest: dict) -> None:
    write_text_atomic(out / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# --- the build -----------------------------------------------------------------------------------------------------


def _validate(options: SubsetOptions) -> None:
    for name in ("train", "val", "workers"):
        value = getattr(options, name)
        if not isinstance(value, int) or value < 1:
            raise CocoSubsetError(f"--{name} must be a positive integer, got {value!r}")
    if options.val_from not in ("val", "train"):
        raise CocoSubsetError(f"--val-from must be 'val' or 'train', got {options.val_from!r}")
    if options.retry.retries < 0:
        raise CocoSubsetError(f"--retries must be >= 0, got {options.retry.retries}")
    if not options.base_url.startswith(("http://", "https://")):
        raise CocoSubsetError(f"--base-url must start with http:// or https://, got {options.base_url!r}")
    coco, out = options.coco_dir.resolve(), options.out_dir.resolve()
    if not options.download and not coco.is_dir():
        raise CocoSubsetError(f"--coco {options.coco_dir} is not a directory (pass --download to fetch COCO into it)")
    if out == coco or out in coco.parents:
        raise CocoSubsetError(f"--out {options.out_dir} must not be the COCO directory or contain it")
    # The places written to must be writable before the annotations are fetched or parsed (minutes of work).
    try:
        check_output_dir(options.out_dir, "--out")
        if options.download:
            check_output_dir(options.coco_dir, "--coco")
    except UserFileError as error:
        raise CocoSubsetError(str(error)) from None


def build_coco_subset(options: SubsetOptions) -> SubsetReport:
    """Build the subset described by ``options`` (see the module docstring for the layout); return counts.

    Everything that can be checked is checked before long work: options, directories, annotation files, the
    draw's size, the drawn annotations, missing images. Only then are outputs written, each atomically.

    Raises:
        CocoSubsetError: any problem the user can fix; the message is one line.
    """
    _validate(options)
    previous = _check_output_dir(options)
    classes = coco_classes()
    coco = options.coco_dir.resolve()
    source_of = {"train": COCO2017["train"], "val": COCO2017[options.val_from]}
    try:
        data, drawn = _read_and_draw(options, coco, source_of, classes)
    except (CocoFileError, DownloadError) as e:
        raise CocoSubsetError(str(e)) from None
    sources = {
        split: {
            "annotations": source.annotations,
            "images": source.images,
            "sha256": data[source.annotations].sha256,
            "bytes": data[source.annotations].size,
        }
        for split, source in source_of.items()
    }
    if previous is not None and previous.get("sources") not in (None, sources) and not options.force:
        raise CocoSubsetError(
            f"--out {options.out_dir} was built from other annotation files (checksums differ); pass --force to "
            "replace it"
        )
    image_paths = {
        split: {i: coco / source.images / data[source.annotations].images[i].file_name for i in drawn[split]}
        for split, source in source_of.items()
    }
    downloaded, missing = _find_images(options, source_of, data, image_paths)

    # Write. The incomplete manifest marks the directory as this build's before anything else is written.
    out = options.out_dir
    if options.force and previous is None and out.is_dir():
        _clear_owned(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"format": MANIFEST_FORMAT, "status": "incomplete", "settings": options.settings(), "sources": sources}
    _write_manifest(out, manifest)
    summaries, written = {}, {}
    for split, source in source_of.items():
        absent = set(missing[split])
        written[split] = [i for i in drawn[split] if i not in absent]
        summary = _write_split(
            out,
            split,
            written[split],
            data[source.annotations],
            coco / source.images,
            copy=options.copy,
            classes=classes,
            progress=options.progress,
        )
        summaries[split] = dataclasses.replace(summary, missing=len(absent))
    dataset_yaml = out / DATASET_YAML_NAME
    write_text_atomic(dataset_yaml, dataset_yaml_text(classes, options.settings()))
    sync_everything()  # the labels and images, written without a sync each, are on the disk before "complete"
    manifest["status"] = "complete"
    manifest["splits"] = {
        split: {**asdict(summaries[split]), "image_ids": written[split], "missing_image_ids": missing[split]}
        for split in SPLITS
    }
    _write_manifest(out, manifest)
    return SubsetReport(out, dataset_yaml, summaries, downloaded)


def _read_and_draw(
    options: SubsetOptions, coco: Path, source_of: dict[str, CocoSource], classes: CocoClasses
) -> tuple[dict[str, InstancesSubset], dict[str, list[int]]]:
    """Read each needed annotation file (fetching the archive first with ``download``), drawing its splits as
    soon as its image list is complete. Returns the files' contents by file name and the draw by split."""
    # The splits each file feeds, in draw order: train first, so a val drawn from train2017 never changes it.
    shares: dict[str, list[tuple[str, int]]] = {}
    for split, count in (("train", options.train), ("val", options.val)):
        shares.setdefault(source_of[split].annotations, []).append((split, count))
    if options.download:
        fetch_annotations(
            coco, list(shares), base_url=options.base_url, policy=options.retry, progress=options.progress
        )
    for name in shares:
        try:
            check_input_file(coco / name, "annotation file", expected="a COCO instances JSON file")
        except UserFileNotFoundError:
            raise CocoSubsetError(f"{coco / name} not found (pass --download to fetch the annotations)") from None
        except UserFileError as error:
            raise CocoSubsetError(str(error)) from None
    data, drawn = {}, {}
    for name, file_shares in shares.items():
        data[name] = read_instances(
            coco / name,
            _drawer(file_shares, options.seed, name, drawn),
            want_annotated=options.skip_empty,
            category_ids=classes.category_ids,
            progress=options.progress,
        )
    return data, drawn


def _drawer(shares: list[tuple[str, int]], seed: int, source: str, drawn: dict[str, list[int]]) -> Chooser:
    """The ``choose`` callback of ``read_instances``: draw ``shares`` from the eligible images (all, or those
    with annotations when the reader passes that set), record the draw in ``drawn``, return the drawn ids."""

    def choose(images: dict[int, ImageRecord], annotated: set[int] | None) -> set[int]:
        pool = images.keys() & annotated if annotated is not None else images.keys()
        drawn.update(draw_subsets(pool, shares, seed, source=source))
        return {image_id for split, _ in shares for image_id in drawn[split]}

    return choose


def _find_images(
    options: SubsetOptions,
    source_of: dict[str, CocoSource],
    data: dict[str, InstancesSubset],
    image_paths: dict[str, dict[int, Path]],
) -> tuple[int, dict[str, list[int]]]:
    """Fetch the drawn images the COCO directory lacks (with ``download``), then list those still missing by
    split. Returns (number downloaded, missing ids by split).

    Raises:
        CocoSubsetError: images are missing and ``allow_missing`` is off.
    """
    downloaded, failures = 0, {}
    if options.download:
        jobs = []
        for split, source in source_of.items():
            for image_id, path in image_paths[split].items():
                record = data[source.annotations].images[image_id]
                url = record.coco_url or f"{DEFAULT_BASE_URL}/{source.images}/{record.file_name}"
                jobs.append(ImageJob(mirror_url(url, options.base_url), path, record.width, record.height))
        report = download_images(jobs, workers=options.workers, policy=options.retry, progress=options.progress)
        downloaded, failures = report.fetched, report.failed
    missing = {split: [i for i, path in image_paths[split].items() if not path.is_file()] for split in SPLITS}
    n_missing = sum(len(ids) for ids in missing.values())
    if n_missing and not options.allow_missing:
        first = next(image_paths[split][ids[0]] for split, ids in missing.items() if ids)
        why = f" ({failures[first]})" if first in failures else ""
        hint = "" if options.download else "; pass --download to fetch them"
        raise CocoSubsetError(
            f"{n_missing} of {options.train + options.val} drawn images are missing, first {first}{why}{hint}; "
            "or pass --allow-missing to build without them"
        )
    return downloaded, missing
