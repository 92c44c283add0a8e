"""Fakes for the COCO subset tests: a small COCO2017 layout on disk, and a faulty local COCO mirror.

Imported by tests/coco/test_*.py (pytest puts their folder on sys.path); not a conftest, so it stays out of other
test modules' way.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import threading
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics must never reach the network in tests

# Non-contiguous COCO category ids and the YOLO classes of the standard 91-to-80 mapping (1->0, 3->2, 13->11,
# 90->79), written out here by hand so the tests check the mapping rather than restate it.
FAKE_CATEGORIES = [
    {"supercategory": "person", "id": 1, "name": "person"},
    {"supercategory": "vehicle", "id": 3, "name": "car"},
    {"supercategory": "outdoor", "id": 13, "name": "stop sign"},
    {"supercategory": "indoor", "id": 90, "name": "toothbrush"},
]
YOLO_CLASS_OF = {1: 0, 3: 2, 13: 11, 90: 79}

# One train image with every box quirk, and its YOLO label computed by hand (64x48 image):
#   ann 101: [8, 6, 16, 12]          -> 0 0.25 0.25 0.25 0.25
#   ann 102: [-8, 40, 24, 16] cat 90 -> clipped to x 0..16, y 40..48 -> 79 0.125 0.916667 0.25 0.166667
#   ann 103: crowd                   -> not in the label, but in the JSON
#   ann 104: [10, 10, 0, 5]          -> zero width: dropped
#   ann 105: [70, 10, 5, 5]          -> entirely right of the image: dropped
#   ann 106: [0, 0, 64, 48] cat 13   -> 11 0.5 0.5 1 1
QUIRK_IMAGE_ID = 7
QUIRK_LABEL = (
    "0 0.250000 0.250000 0.250000 0.250000\n"
    "79 0.125000 0.916667 0.250000 0.166667\n"
    "11 0.500000 0.500000 1.000000 1.000000\n"
)
QUIRK_ANNOTATIONS = [
    {"id": 101, "category_id": 1, "bbox": [8, 6, 16, 12], "iscrowd": 0},
    {"id": 102, "category_id": 90, "bbox": [-8, 40, 24, 16], "iscrowd": 0},
    {"id": 103, "category_id": 1, "bbox": [30, 20, 20, 20], "iscrowd": 1},
    {"id": 104, "category_id": 3, "bbox": [10, 10, 0, 5], "iscrowd": 0},
    {"id": 105, "category_id": 3, "bbox": [70, 10, 5, 5], "iscrowd": 0},
    {"id": 106, "category_id": 13, "bbox": [0, 0, 64, 48], "iscrowd": 0},
]


@dataclass
class FakeCoco:
    """A small COCO2017 layout on disk, and what was written into it."""

    root: Path
    image_ids: dict[str, list[int]]  # "train2017" / "val2017" -> ids
    empty_image_ids: set[int]  # images without any annotation
    jpeg: dict[str, bytes] = field(default_factory=dict)  # "train2017/000000000007.jpg" -> bytes
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # image id -> (width, height)

    def annotation_file(self, split: str) -> Path:
        return self.root / "annotations" / f"instances_{split}.json"

    def annotations_zip(self) -> bytes:
        """``annotations_trainval2017.zip`` as the official archive lays it out (paths under annotations/)."""
        path = self.root.parent / f"{self.root.name}-annotations.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for split in self.image_ids:
                zf.write(self.annotation_file(split), f"annotations/instances_{split}.json")
        return path.read_bytes()


def _jpeg(width: int, height: int, seed: int) -> bytes:
    import cv2
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", pixels)
    assert ok
    return buf.tobytes()


def write_fake_coco(
    root: Path,
    *,
    n_train: int = 30,
    n_val: int = 12,
    seed: int = 0,
    indent: int | None = None,
    annotations_first: bool = False,
    shuffle_records: bool = False,
    with_images: bool = True,
) -> FakeCoco:
    """Write a COCO2017-layout directory with the real format's quirks: non-contiguous category ids, crowd
    annotations with RLE segmentations, zero-area and out-of-image boxes, images without annotations, polygon
    segmentations, image ids that are neither contiguous nor sorted, two annotation files, real JPEGs.

    ``indent``, ``annotations_first`` and ``shuffle_records`` change only the file's formatting and order."""
    rng = random.Random(seed)
    order_rng = random.Random(seed + 1)  # separate, so reordering leaves the content unchanged
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    fake = FakeCoco(root, {}, set())
    next_id = iter(range(1000, 10**6))
    for split, n, base in (("train2017", n_train, 7), ("val2017", n_val, 500_000)):
        ids = [base + 37 * k for k in range(n)]  # ids 7, 44, 81, ...: QUIRK_IMAGE_ID is the first train image
        rng.shuffle(ids)
        fake.image_ids[split] = sorted(ids)
        images, annotations = [], []
        for image_id in ids:
            width, height = (64, 48) if image_id == QUIRK_IMAGE_ID else rng.choice([(64, 48), (48, 64), (40, 40)])
            fake.sizes[image_id] = (width, height)
            name = f"{image_id:012d}.jpg"
            images.append(
                {
                    "license": 1,
                    "file_name": name,
                    "coco_url": f"http://images.cocodataset.org/{split}/{name}",
                    "height": height,
                    "width": width,
                    "date_captured": "2013-11-14 11:18:45",
                    "id": image_id,
                }
            )
            fake.jpeg[f"{split}/{name}"] = _jpeg(width, height, image_id)
            if image_id == QUIRK_IMAGE_ID:
                for a in QUIRK_ANNOTATIONS:
                    annotations.append(_annotation(a["id"], image_id, a["category_id"], a["bbox"], a["iscrowd"]))
                continue
            n_annotations = 0 if image_id % 5 == 3 else rng.randint(1, 4)  # every fifth-ish image: none
            if n_annotations == 0:
                fake.empty_image_ids.add(image_id)
            for _ in range(n_annotations):
                x, y = rng.uniform(0, width - 2), rng.uniform(0, height - 2)
                w, h = rng.uniform(1, width - x), rng.uniform(1, height - y)
                bbox = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
                crowd = int(rng.random() < 0.15)
                annotations.append(_annotation(next(next_id), image_id, rng.choice(list(YOLO_CLASS_OF)), bbox, crowd))
        if shuffle_records:
            order_rng.shuffle(images)
            order_rng.shuffle(annotations)
        else:
            annotations.sort(key=lambda a: a["id"])
        document = {
            "info": {"description": "fake COCO 2017", "year": 2017},
            "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "BY-NC-SA"}],
            "images": images,
            "annotations": annotations,
            "categories": FAKE_CATEGORIES,
        }
        if annotations_first:
            document = {k: document[k] for k in ("info", "annotations", "licenses", "categories", "images")}
        fake.annotation_file(split).write_text(json.dumps(document, indent=indent), encoding="utf-8")
        if with_images:
            (root / split).mkdir(exist_ok=True)
            for name_path, data in fake.jpeg.items():
                if name_path.startswith(split):
                    (root / name_path).write_bytes(data)
    return fake


def _annotation(ann_id: int, image_id: int, category_id: int, bbox: list[float], crowd: int) -> dict:
    x, y, w, h = bbox
    if crowd:  # uncompressed RLE, as COCO stores crowd regions
        segmentation = {"counts": [5, 10, 3, 7], "size": [48, 64]}
    else:
        segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {
        "segmentation": segmentation,
        "area": float(max(w, 0) * max(h, 0)),
        "iscrowd": crowd,
        "image_id": image_id,
        "bbox": bbox,
        "category_id": category_id,
        "id": ann_id,
    }


class FaultyCocoServer:
    """A real HTTP server on 127.0.0.1 serving fixed bodies by path, with injected faults.

    ``faults[path]`` is a list consumed one per request: ``"503"`` answers 503, ``"drop"`` closes the
    connection without answering, ``"truncate"`` sends the headers of the full body and half of it, then closes,
    ``"garbage"`` sends a body of the right length that is not an image, ``"stall"`` sends the headers and half
    the body, sets ``stalled`` and waits (up to 60 s) for ``release`` before closing. A request with no fault left
    gets the body (honouring ``Range: bytes=N-``). ``requests[path]`` counts requests, ``ranges`` records Range
    headers.
    """

    def __init__(self, bodies: dict[str, bytes]):
        self.bodies = bodies
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: Counter[str] = Counter()
        self.ranges: list[tuple[str, str]] = []
        self.stalled, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path
                with server._lock:
                    server.requests[path] += 1
                    fault = server.faults[path].pop(0) if server.faults[path] else None
                    if "Range" in self.headers:
                        server.ranges.append((path, self.headers["Range"]))
                body = server.bodies.get(path)
                if fault == "503":
                    self.send_error(503)
                    return
                if fault == "drop":
                    self.close_connection = True
                    return
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range", "").startswith("bytes=") and fault is None:
                    start = int(self.headers["Range"][6:].rstrip("-"))
                    if start >= len(body):
                        self.send_error(416)
                        return
                part = body[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(part[: len(part) // 2])
                    self.close_connection = True
                elif fault == "stall":
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    server.stalled.set()
                    server.release.wait(60)
                    self.close_connection = True
                elif fault == "garbage":
                    self.wfile.write(b"\0" * len(part))
                else:
                    self.wfile.write(part)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultyCocoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


def coco_mirror_bodies(fake: FakeCoco) -> dict[str, bytes]:
    """What a COCO mirror serves for ``fake``: the annotations archive and every image, by URL path."""
    bodies = {"/annotations/annotations_trainval2017.zip": fake.annotations_zip()}
    bodies.update({f"/{name}": data for name, data in fake.jpeg.items()})
    return bodies
