"""Official COCO evaluation (pycocotools) of trained YOLO weights on a dataset's val split; for the tasks pycocotools
does not score here (segmentation, pose, OBB, classification), ultralytics' validator of the task
(:func:`evaluate_with_validator`).

One prediction pass through ultralytics' own ``DetectionValidator`` (same letterbox/rect preprocessing and NMS as
validation during training) yields both ultralytics' mAP and the detections, exported in COCO results format and
scored by ``pycocotools.cocoeval.COCOeval`` against the split's ground-truth JSON, and by
:func:`cawb.experiment.v5_metric.v5_map`, the mAP as YOLOv5 release v5.0's ``test.py`` reported it (the article's).

The two mAPs differ by design, by a few 0.01 at most on a trained model: ultralytics integrates (trapezoid rule)
the precision envelope linearly interpolated at 101 recall points, COCO averages the envelope's value at the first
recall >= each of 101 points; COCO keeps at most 100 detections per image (ultralytics ``max_det``, default 300)
and matches detections to ground truth per IoU threshold in its own way.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cawb.datasets.resolve import ResolvedDataset, check_dataset_yaml, resolve_dataset_yaml
from cawb.experiment.v5_metric import v5_map
from cawb.training.checkpoints import load_ultralytics_checkpoint
from cawb.training.offline import ensure_local_fonts
from cawb.training.tasks import checkpoint_task
from cawb.training.ultralytics_settings import check_device, ultralytics_defaults
from cawb.utils.checks import require_int
from cawb.utils.errors import InputError
from cawb.utils.ultralytics_compat import keep_ultralytics_offline
from cawb.utils.user_files import check_checkpoint_file, check_output_dir
from cawb.yolov5 import model_kind
from cawb.yolov5.recipe import kind_defaults

if TYPE_CHECKING:
    from pycocotools.coco import COCO

# pycocotools, torch and ultralytics are imported inside the functions that use them: every input is checked
# before that (2.5 s) import, and a command's --help never waits for it.

#: The dataset keys a COCO evaluation needs, with why.
COCO_EVAL_KEYS = {
    "val_json": "for COCO evaluation: the val split's ground-truth JSON",
    "category_ids": "for COCO evaluation: class index -> COCO category id",
}


def coco_image_ids(gt: Mapping[str, Any]) -> dict[str, int]:
    """Map image file base name -> image id of a COCO ground-truth dict (``file_name`` may carry a folder).

    Raises:
        ValueError: two images share a base name, so predictions could not be attributed.
    """
    ids: dict[str, int] = {}
    for image in gt["images"]:
        name = Path(image["file_name"]).name
        if name in ids:
            raise InputError(f"ground truth lists two images named {name!r}; file names must be unique")
        ids[name] = image["id"]
    return ids


def coco_detections(
    file_name: str,
    boxes_xyxy: Sequence[Sequence[float]],
    scores: Sequence[float],
    classes: Sequence[float],
    *,
    image_ids: Mapping[str, int],
    category_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """COCO results records for the detections of one image.

    Args:
        file_name: the image's file base name, looked up in ``image_ids`` (see :func:`coco_image_ids`).
        boxes_xyxy: boxes as (x0, y0, x1, y1) in original-image pixels.
        scores: confidence of each box.
        classes: class index of each box (integral values; floats as NMS returns them are fine).
        category_ids: class index -> COCO category id.

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h] (top-left, pixels), "score"}, ...]``.

    Raises:
        ValueError: ``file_name`` is not in the ground truth.
    """
    if file_name not in image_ids:
        raise InputError(f"image {file_name!r} is not in the ground-truth JSON; val images and val_json disagree")
    image_id = image_ids[file_name]
    return [
        {
            "image_id": image_id,
            "category_id": category_ids[int(c)],
            "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
            "score": round(float(s), 5),
        }
        for (x0, y0, x1, y1), s, c in zip(boxes_xyxy, scores, classes)
    ]


def coco_bbox_eval(gt: COCO, detections: list[dict[str, Any]]) -> tuple[list[float], str]:
    """Score ``detections`` (COCO results records) against ``gt`` with ``COCOeval(..., "bbox")``.

    Returns:
        The 12 COCO summary stats (stats[0] = mAP@0.5:0.95, stats[1] = mAP@0.5; -1 where the ground truth has
        no object in that area range) and the summary table pycocotools prints, captured as text.

    An empty ``detections`` list scores 0 (pycocotools' ``loadRes`` cannot take one, so an empty result set is
    built directly).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # progress chatter: "loading...", "DONE (t=0.01s)"
        if detections:
            dt = gt.loadRes(copy.deepcopy(detections))  # loadRes adds keys to the records it is given
        else:
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": []}
            dt.createIndex()
        coco_eval = COCOeval(gt, dt, "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    return [float(x) for x in coco_eval.stats], summary.getvalue()


def evaluate_coco(
    weights: str | Path,
    data: str | Path | ResolvedDataset,
    *,
    imgsz: int,
    save_dir: str | Path,
    batch: int = 16,
    device: str = "cpu",
    conf: float = 0.001,
    iou: float | None = None,
    max_det: int = 300,
) -> dict[str, Any]:
    """Evaluate ``weights`` on the val split of ``data`` with pycocotools and, from the same pass, ultralytics.

    Args:
        weights: trained ultralytics checkpoint (``.pt``).
        data: dataset yaml (project convention, see :mod:`cawb.datasets.resolve`) or an already resolved dataset. It must
            set ``val_json`` and ``category_ids``.
        imgsz: inference size in pixels (as in training); ``batch``, ``device``, ``conf`` (score threshold),
            ``iou`` (NMS IoU; None: the one the model's kind validates with during training, 0.6 for YOLOv5 v5.0
            models as v5.0's test.py, ultralytics' 0.7 otherwise) and ``max_det`` (detections per image) go to
            ultralytics' validator unchanged.
        save_dir: output directory (created); receives ``predictions.json``.

    Returns:
        ``{"map50", "map50_95"}`` (pycocotools, fractions in [0, 1]), ``"stats"`` (the 12 COCOeval stats),
        ``"summary"`` (pycocotools' summary table, text), ``"ultralytics_map50"``, ``"ultralytics_map50_95"``,
        ``"predictions"`` (Path of the COCO results JSON: image_id from the GT JSON by file name, category_id via
        ``category_ids``, bbox [x, y, w, h] top-left in original-image pixels, score), ``"num_detections"``,
        ``"v5_map50"``, ``"v5_map50_95"`` (as YOLOv5 v5.0 reported it, :mod:`cawb.experiment.v5_metric`, from the
        same detections: up to ``max_det`` per image, 300 by default as in v5.0).

    Every input is checked before anything heavy is imported or anything is written: ``imgsz`` and ``batch``,
    ``weights`` (a readable checkpoint file; then, once torch is loaded, an ultralytics model checkpoint),
    ``save_dir`` (a place a directory can be created in) and the dataset yaml.

    ultralytics is kept offline from here on, unless the user set ``YOLO_OFFLINE`` to a false value.

    Raises:
        InputFileNotFoundError: ``weights`` or the data is missing.
        InputError: a bad ``imgsz``/``batch``/``device``; ``weights`` is a directory, unreadable, not an
            ultralytics checkpoint, or one of another task than detection; ``save_dir`` cannot be written; the data
            lacks ``val_json``/``category_ids``, they disagree with the GT JSON, the model's class count differs from
            the data's, or the val images and the GT JSON list different images.
    """
    require_int(imgsz, "imgsz", 32)
    require_int(batch, "batch", 1)
    weights = check_checkpoint_file(weights, "weights")
    save_dir = check_output_dir(save_dir, "save_dir")
    check_device(device, "device")  # a GPU this machine lacks: one line, not torch's diagnostics mid-validation
    if isinstance(data, ResolvedDataset):
        if data.val_json is None or data.category_ids is None:
            raise InputError(f"{data.source}: val_json and category_ids are required for COCO evaluation")
    else:
        check_dataset_yaml(data, require=COCO_EVAL_KEYS)

    from pycocotools.coco import COCO

    keep_ultralytics_offline()
    task = checkpoint_task(load_ultralytics_checkpoint(weights, "weights"), f"weights {weights}")
    if task != "detect":
        raise InputError(f"weights {weights}: a {task} model; the COCO evaluation scores detection boxes (a "
                         f"{task} comparison is scored by ultralytics' validator: cawb-compare --cfg of the model)")
    ensure_local_fonts()  # ultralytics' dataset check would otherwise ask its server for a font
    ds = data if isinstance(data, ResolvedDataset) else resolve_dataset_yaml(data, out_dir=save_dir,
                                                                              require=COCO_EVAL_KEYS)
    if iou is None:
        iou = kind_defaults(model_kind(weights)).get("iou", ultralytics_defaults()["iou"])
    save_dir.mkdir(parents=True, exist_ok=True)

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ds.val_json))
    missing = sorted(set(ds.category_ids) - set(gt.getCatIds()))
    if missing:
        raise InputError(f"{ds.source}: category_ids {missing} are not categories of {ds.val_json}")

    validator = _coco_export_validator()(
        image_ids=coco_image_ids(gt.dataset),
        category_ids=ds.category_ids,
        save_dir=save_dir,
        args={
            "model": str(weights),
            "data": str(ds.yaml),
            "mode": "val",
            "split": "val",
            "imgsz": imgsz,
            "batch": batch,
            "device": device,
            "conf": conf,
            "iou": iou,
            "max_det": max_det,
            "rect": True,  # as ultralytics' val and training-time validation
            "plots": False,  # plotting may try to download a font
            "save_json": True,  # makes the validator call pred_to_json with boxes in original-image pixels
        },
    )
    ultralytics_stats = validator()

    # Images without detections never reach pred_to_json's lookup; a mismatch would silently skew one of the mAPs.
    differ = sorted({Path(f).name for f in validator.dataloader.dataset.im_files} ^ set(validator.image_ids))
    if differ:
        raise InputError(f"{ds.val_json} and the val images disagree on {len(differ)} image(s), e.g. {differ[0]!r}")

    predictions = save_dir / "predictions.json"
    # ultralytics writes this file too, but only when there are detections; ours always exists.
    predictions.write_text(json.dumps(validator.jdict))
    stats, summary = coco_bbox_eval(gt, validator.jdict)
    as_v5 = v5_map(gt.dataset, validator.jdict)
    return {
        "map50": stats[1],
        "map50_95": stats[0],
        "stats": stats,
        "summary": summary,
        "ultralytics_map50": float(ultralytics_stats["metrics/mAP50(B)"]),
        "ultralytics_map50_95": float(ultralytics_stats["metrics/mAP50-95(B)"]),
        "predictions": predictions,
        "num_detections": len(validator.jdict),
        "v5_map50": as_v5.map50,
        "v5_map50_95": as_v5.map50_95,
    }


def evaluate_with_validator(weights: str | Path, data: str | Path, task: str, *, imgsz: int, save_dir: str | Path,
                            batch: int = 16, device: str = "cpu") -> dict[str, float | None]:
    """The numbers of ``task`` (:data:`cawb.training.tasks.TASK_METRICS`: mask mAP for segmentation, pose mAP,
    OBB mAP, top-1/top-5 accuracy) of ``weights`` on the val split of ``data`` (what the task's trainer took as
    ``data=``: a resolved dataset yaml, or a classification folder), from ultralytics' validator of the task with
    the settings of the validation during training (``rect``, ultralytics' ``conf`` and ``iou``); its files go to
    ``save_dir``.

    Raises:
        InputError: a bad ``imgsz``/``batch``, or ``weights`` not an ultralytics checkpoint.
    """
    from cawb.training.model import YOLO
    from cawb.training.tasks import metric_values

    require_int(imgsz, "imgsz", 32)
    require_int(batch, "batch", 1)
    weights = check_checkpoint_file(weights, "weights")
    save_dir = check_output_dir(save_dir, "save_dir")
    keep_ultralytics_offline()
    load_ultralytics_checkpoint(weights, "weights")
    ensure_local_fonts()
    metrics = YOLO(str(weights)).val(data=str(data), split="val", imgsz=imgsz, batch=batch, device=device,
                                     plots=False, project=str(save_dir.parent), name=save_dir.name, exist_ok=True,
                                     verbose=False)
    return metric_values(task, metrics.results_dict)


@functools.cache
def _coco_export_validator() -> type:
    """The DetectionValidator subclass whose per-image predictions carry the GT JSON's image ids and the
    dataset's category ids (built on first use: ultralytics is imported only then)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class CocoExportValidator(DetectionValidator):
        def __init__(self, *, image_ids: Mapping[str, int], category_ids: Sequence[int], **kwargs):
            super().__init__(**kwargs)
            self.image_ids = image_ids
            self.category_ids = category_ids

        def init_metrics(self, model) -> None:
            super().init_metrics(model)
            if self.nc != len(self.category_ids):
                raise InputError(
                    f"model {self.args.model} predicts {self.nc} classes but category_ids has {len(self.category_ids)}"
                )

        def pred_to_json(self, predn, pbatch) -> None:
            self.jdict.extend(
                coco_detections(
                    Path(pbatch["im_file"]).name,
                    predn["bboxes"].tolist(),
                    predn["conf"].tolist(),
                    predn["cls"].tolist(),
                    image_ids=self.image_ids,
                    category_ids=self.category_ids,
                )
            )

        def eval_json(self, stats: dict[str, Any]) -> dict[str, Any]:
            # evaluate_coco scores the detections with pycocotools; ultralytics' own path would pip-install
            # faster-coco-eval, which offline fails (and the numbers would not be the reference implementation's).
            return stats

    return CocoExportValidator
