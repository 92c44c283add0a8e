"""The ultralytics tasks cawb trains, what a model and a dataset are for, and whether they fit together.

A learning-rate schedule does not care what the network predicts: cawb trains the five tasks of ultralytics'
``YOLO`` (:data:`TASKS`), each with ultralytics' own trainer of that task plus cawb's parts
(:data:`cawb.training.trainer.TASK_TRAINERS`). The model decides the task, as in ultralytics:

* :func:`model_task`: the task of a model yaml (by its head: ``Segment``, ``Pose``, ...) or checkpoint;
* :func:`dataset_tasks`: the tasks a dataset can train, read from what it holds, writing and generating nothing:
  a folder of class folders or a generated ``shapes-cls`` is classification; ``kpt_shape`` in the yaml is pose;
  otherwise the label files decide: boxes (5 columns) are detection; polygons are segmentation and detection (the
  boxes come from the polygons, as ultralytics reads COCO); polygons of exactly 4 corners (9 columns) everywhere
  also OBB;
* :func:`check_task_fits_data`: a model and a dataset of different tasks, refused in one line;
* :data:`TASK_METRICS`: the numbers that judge a run of each task, as ultralytics' validator names them;
* :func:`demo_data`: the offline shapes data of each task (``data/shapes.yaml``, ``data/shapes-seg.yaml``, ...).

Light: ultralytics is imported inside functions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator, Mapping

from cawb.utils.errors import InputError
from cawb.utils.resources import bundled_data
from cawb.utils.ultralytics_compat import FITNESS_COLUMNS

__all__ = [
    "TASKS",
    "TASK_METRICS",
    "TASK_NAMES",
    "TaskMetric",
    "check_class_folder",
    "check_task_fits_data",
    "checkpoint_task",
    "dataset_tasks",
    "demo_data",
    "fitness",
    "metric_values",
    "model_task",
    "preset_data_for_model",
    "trainer_data",
]

#: The tasks cawb trains, as ultralytics names them, with how messages say them.
TASK_NAMES = {"detect": "detection", "segment": "segmentation", "pose": "pose", "obb": "oriented-box (OBB)",
              "classify": "classification"}
TASKS = tuple(TASK_NAMES)
# What a dataset of each task must hold, for messages.
_NEEDS = {"detect": "label rows class cx cy w h, or polygons", "segment": "label rows class x1 y1 x2 y2 ... (polygons)",
          "pose": "kpt_shape in the yaml and keypoints in the labels", "obb": "label rows class x1 y1 ... x4 y4",
          "classify": "a folder of train/<class>/ and val/<class>/ images"}
# ultralytics' suffix of its model and dataset names per task (yolo11n-seg.yaml, coco8-seg.yaml)
_SUFFIX = {"segment": "seg", "pose": "pose", "obb": "obb", "classify": "cls"}
# label files read to tell boxes from polygons: enough to see the format, few enough to stay instant
_LABELS_SAMPLED = 200


@dataclasses.dataclass(frozen=True)
class TaskMetric:
    """One number that judges a run: ``key`` in cawb's records, ``label`` in tables, ``short`` in a command's
    summary line, ``column`` in ultralytics' metrics (``results.csv``, ``trainer.metrics``)."""

    key: str
    label: str
    short: str
    column: str


def _maps(what: str, suffix: str) -> tuple[TaskMetric, TaskMetric]:
    prefix = f"{what} " if what else ""
    return (TaskMetric("map50", f"{prefix}mAP_0.5", f"{prefix}mAP50", f"metrics/mAP50({suffix})"),
            TaskMetric("map50_95", f"{prefix}mAP_0.5:0.95", f"{prefix}mAP50-95", f"metrics/mAP50-95({suffix})"))


#: The numbers that judge a run of each task: the task's own (mask mAP for segment, pose mAP for pose, top-1/top-5
#: for classify), from ultralytics' validator.
TASK_METRICS: dict[str, tuple[TaskMetric, ...]] = {
    "detect": _maps("", "B"),
    "segment": _maps("mask", "M"),
    "pose": _maps("pose", "P"),
    "obb": _maps("OBB", "B"),
    "classify": (TaskMetric("top1", "top-1 accuracy", "top-1", "metrics/accuracy_top1"),
                 TaskMetric("top5", "top-5 accuracy", "top-5", "metrics/accuracy_top5")),
}


def metric_values(task: str, metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """The task's numbers (:data:`TASK_METRICS`) by key, from ultralytics' metrics (None where missing)."""
    return {m.key: (float(metrics[m.column]) if metrics.get(m.column) is not None else None)
            for m in TASK_METRICS[task]}


def fitness(task: str, row: Mapping[str, float]) -> float:
    """ultralytics' fitness of one validation (``results.csv`` row or metrics dict): what it picks best.pt by."""
    columns, weight = FITNESS_COLUMNS[task]
    return weight * sum(float(row[column]) for column in columns)


def demo_data(task: str) -> Path:
    """The bundled offline dataset yaml of ``task``: ``shapes.yaml`` for detection, ``shapes-seg.yaml``, ..."""
    return bundled_data("shapes.yaml" if task == "detect" else f"shapes-{_SUFFIX[task]}.yaml")


def preset_data_for_model(data: str | Path, cfg: str | None) -> str | Path:
    """A preset's ``data`` for the model ``cfg``: the offline data of the model's task when ``data`` is the
    detection demo's and ``cfg`` a model of another task (``--preset cpu --cfg yolo11n-seg.yaml`` trains on
    shapes-seg); else ``data``. A ``cfg`` whose task cannot be told keeps ``data`` (its own check speaks later)."""
    if cfg is None or Path(data) != demo_data("detect"):
        return data
    try:
        return demo_data(model_task(cfg))
    except (InputError, OSError):
        return data


def trainer_data(task: str, dataset: Any) -> str:
    """What ultralytics' trainer of ``task`` takes as ``data=`` for a resolved dataset
    (:class:`~cawb.datasets.resolve.ResolvedDataset`): the folder for classification, else the resolved yaml."""
    return str(dataset.root if task == "classify" else dataset.yaml)


def _checked_task(task: Any, source: str) -> str:
    if task not in TASKS:
        raise InputError(f"{source} is a {task or 'unknown'} model: cawb trains {', '.join(TASKS)} models")
    return task


def checkpoint_task(checkpoint: Mapping[str, Any], shown: str) -> str:
    """The task of a loaded ultralytics checkpoint (``shown``: how to name it), the one its model was made for.

    Raises:
        InputError: a task cawb does not train.
    """
    from ultralytics.nn.tasks import guess_model_task

    model = checkpoint.get("ema") or checkpoint.get("model")
    return _checked_task(getattr(model, "task", None) or guess_model_task(model), shown)


def model_task(source: str | Path, flag: str = "--cfg") -> str:
    """The task of a model source: a YOLOv5 v5.0 yaml (detection), an ultralytics yaml by name or path (its head
    decides, as ultralytics decides), or a ``.pt`` checkpoint (the task it was trained for; the YOLOv5 repository's:
    detection).

    Call it on a source already checked to load or build (:func:`cawb.training.config.plan_run` does).

    Raises:
        InputError: a task cawb does not train (ultralytics' ``semantic`` or ``depth``), or none can be told.
    """
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    from cawb.yolov5.kind import model_kind
    from cawb.yolov5.sources import KIND_V5

    shown = f"{flag} {source}"
    if str(source).lower().endswith(".pt"):
        from cawb.training.checkpoints import load_ultralytics_checkpoint
        from cawb.yolov5.checkpoint_import import is_yolov5_checkpoint

        if is_yolov5_checkpoint(source):  # the YOLOv5 repository's checkpoints are its detectors
            return "detect"
        return checkpoint_task(load_ultralytics_checkpoint(source, flag), shown)
    if model_kind(source) == KIND_V5:
        return "detect"
    path = Path(source)
    if path.is_file():
        from cawb.utils.user_files import read_yaml

        return _checked_task(guess_model_task(read_yaml(path, flag, mapping_of="a model's layers")), shown)
    return _checked_task(guess_model_task(yaml_model_load(str(source))), shown)


def ultralytics_model_class(task: str) -> type:
    """ultralytics' model class of ``task`` (``SegmentationModel``, ...), as its ``YOLO`` maps them."""
    from ultralytics.nn import tasks

    return {"detect": tasks.DetectionModel, "segment": tasks.SegmentationModel, "pose": tasks.PoseModel,
            "obb": tasks.OBBModel, "classify": tasks.ClassificationModel}[task]


def _is_class_folder(path: Path) -> bool:
    """A classification dataset folder as ultralytics takes it: ``train/`` holding one folder per class."""
    train = path / "train"
    return train.is_dir() and any(child.is_dir() for child in train.iterdir())


def _label_files(data: Mapping[str, Any], root: Path) -> Iterator[Path]:
    """The label files of the train split's first images, as ultralytics finds them (``images`` -> ``labels``)."""
    from ultralytics.data.utils import IMG_FORMATS, img2label_paths

    train = data.get("train")
    for entry in (train if isinstance(train, list) else [train]):
        if not isinstance(entry, str):
            return
        source = root / entry
        if source.is_dir():
            images = sorted(str(p) for p in source.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
        elif source.is_file():
            images = [str((root / line.strip()).resolve()) for line in source.read_text().splitlines() if line.strip()]
        else:
            continue
        yield from (Path(p) for p in img2label_paths(images[:_LABELS_SAMPLED]))


def _tasks_of_labels(widths: set[int]) -> frozenset[str] | None:
    """The tasks labels of these row widths (columns per row) can train; None: no labels to tell from."""
    if not widths:
        return None
    if widths == {5}:
        return frozenset({"detect"})
    if all(width >= 7 and width % 2 == 1 for width in widths):  # a class and at least 3 points per row
        return frozenset({"segment", "detect", "obb"} if widths == {9} else {"segment", "detect"})
    return frozenset({"detect"})  # boxes beside polygons: ultralytics' segmentation refuses the mix


@dataclasses.dataclass(frozen=True)
class DatasetTasks:
    """What a dataset can train: ``tasks`` (None: it cannot be told yet, e.g. no labels on disk) and what it holds,
    in words."""

    tasks: frozenset[str] | None
    holds: str


def dataset_tasks(data: str | Path) -> DatasetTasks:
    """The tasks the dataset ``data`` (a dataset yaml or a classification folder) can train; see the module
    docstring. Reads the yaml and up to 200 label files; writes and generates nothing. A yaml that cannot be read
    is left to the dataset's own check (tasks None)."""
    path = Path(data)
    if path.is_dir():  # not a classification folder: its own check says what is wrong with it
        return DatasetTasks(frozenset({"classify"}) if _is_class_folder(path) else None, "a classification folder")
    from cawb.utils.user_files import UserFileError, read_yaml

    try:
        yaml_data = read_yaml(path, "dataset yaml", mapping_of="keys (train, val, names, ...)")
    except (UserFileError, OSError):
        return DatasetTasks(None, "unreadable")
    generator = yaml_data.get("generator")
    if isinstance(generator, Mapping) and generator.get("name") in ("shapes", "shapes-tasks"):
        task = generator.get("task", "detect")
        if task in TASKS:
            return DatasetTasks(frozenset({task, "detect"} if task == "segment" else {task}),
                                f"the generated {TASK_NAMES[task]} data")
    if yaml_data.get("kpt_shape") is not None:
        return DatasetTasks(frozenset({"pose"}), f"pose data (kpt_shape {yaml_data['kpt_shape']})")
    from cawb.datasets.resolve import dataset_root

    root = dataset_root(path, yaml_data)
    if _is_class_folder(root) and not (root / "labels").exists():
        return DatasetTasks(frozenset({"classify"}), "a classification folder")
    widths = set()
    for label_file in _label_files(yaml_data, root):
        if label_file.is_file():
            widths.update(len(line.split()) for line in label_file.read_text().splitlines() if line.strip())
    tasks = _tasks_of_labels(widths)
    if tasks is None:
        return DatasetTasks(None, "no labels found")
    holds = ("boxes (5 columns per label row)" if widths == {5} else "boxes beside polygons" if tasks == {"detect"}
             else "4-corner polygons (oriented boxes or segments)" if "obb" in tasks else "polygons")
    return DatasetTasks(tasks, holds)


def check_class_folder(folder: Path, shown: str) -> None:
    """Refuse, in one line, a folder given as a classification dataset that ultralytics would not read as one.

    Raises:
        InputError: ``--data x: not a classification folder ...``.
    """
    if not _is_class_folder(folder):
        raise InputError(f"{shown}: not a classification folder: it must hold train/<class>/ (and val/<class>/) "
                         "folders of images, as ultralytics reads them")


def check_task_fits_data(task: str, model: str, data: str | Path, shown: str | None = None) -> None:
    """Refuse, in one line, a ``task`` model (``model``: how to name it, e.g. ``--cfg yolo11n-seg.yaml``) and a
    dataset (``shown``: how to name it, default its path) that cannot train it; a dataset whose task cannot be told
    yet passes (its own check speaks later).

    Raises:
        InputError: ``--cfg yolo11n-seg.yaml is a segmentation model, but --data shapes holds boxes ...``.
    """
    found = dataset_tasks(data)
    if found.tasks is None or task in found.tasks:
        return
    name = TASK_NAMES[task]
    a = "an" if name[0] in "aeiou" else "a"
    raise InputError(f"{model} is {a} {name} model, but {shown or data} holds {found.holds}: give {a} {name} dataset "
                     f"({_NEEDS[task]}; offline: {demo_data(task).stem}) or a model of the dataset's task")
