"""The run-directory protocol: what a comparison run's directory holds and what that means.

One ultralytics run directory per (arm, seed) under ``<project>/runs/<arm label>-seed<k>/``:

* ``run.json``: the settings that define the run's result (:func:`run_identity`), written before training starts; a
  run directory whose record differs from the plan is refused, so results of different setups never mix;
* ``eval.json``: its evaluation record, written atomically last: it marks the run finished (:func:`load_finished`);
* ``weights/last.pt``: a run to resume, or, when ultralytics stripped it at the end, a run to evaluate;
* ``compare.log``, ``progress.json``: a ``--jobs`` worker's log and progress.

A directory in the way of a fresh start is never deleted (:func:`prepare_run_dir`): when it holds only what a start of
training leaves before its first epoch ends, those files are removed; anything else and it is moved aside whole.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from cawb.experiment.compare.model import Action, Arm, Run
from cawb.training.checkpoints import checkpoint_finished
from cawb.training.tasks import TASK_METRICS, TASKS, fitness
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.errors import InputError, error_line
from cawb.utils.user_files import move_aside

__all__ = [
    "EVAL_RECORD",
    "RUN_RECORD",
    "best_epoch",
    "decide_action",
    "evaluate_run",
    "final_numbers",
    "load_finished",
    "prepare_run_dir",
    "read_epoch_metrics",
    "read_evaluation",
    "run_identity",
]

EVAL_RECORD = "eval.json"
RUN_RECORD = "run.json"
# Files a start of training leaves before its first epoch ends (no checkpoint yet): the runner's own, ultralytics'
# args.yaml and its first plots. A run dir holding only these may be cleared for a fresh start; anything else in it
# (a checkpoint, results.csv, a file of the user's) makes the runner move the whole dir aside instead.
_START_LEFTOVERS = re.compile(r"(run\.json|compare\.log|progress\.json|args\.yaml|labels(_correlogram)?\.jpg|"
                              r"train_batch\d+\.jpg|weights)$")
# Kept when a run dir is cleared: the runner's record and the log of the failed attempt (the next is appended).
_KEPT_ON_CLEAR = {RUN_RECORD, "compare.log"}


def run_identity(arm: Arm, seed: int, data: Path, cfg: str, batch: Any, imgsz: Any,
                 overrides: Mapping[str, Any]) -> dict[str, Any]:
    """What defines a run's result (not where or on which device it runs): stored in run.json and compared."""
    return {"arm": arm.label, "hyp_sha256": arm.hyp.sha256, "seed": seed, "data": str(Path(data).absolute()),
            "cfg": cfg, "epochs": arm.epochs, "batch": batch, "imgsz": imgsz,
            "cawb_steps": list(arm.restarts_used) if arm.restarts_used is not None else None,
            "overrides": json.loads(json.dumps(dict(overrides), default=str))}


def read_evaluation(run_dir: Path, notes: list[str] | None = None) -> dict[str, Any] | None:
    """A run's ``eval.json``, or None when it has none; a corrupt one is named in ``notes`` and counts as none
    (the run is then evaluated again: the record is rebuilt from its weights)."""
    path = run_dir / EVAL_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        task = record.get("task", "detect")  # records of detection runs carry no task
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        first = _record_keys(task)[0]
        if not all(isinstance(record.get(weights), dict) and first in record[weights] for weights in
                   ("final", "best")):
            raise ValueError("the final/best records are missing")
    except (OSError, ValueError, AttributeError) as error:
        if notes is not None:
            notes.append(f"{path} is not a readable evaluation record ({error_line(error)}): the run is evaluated "
                         "again from its weights")
        return None
    return record


def _record_keys(task: str) -> list[str]:
    """The keys of a run's numbers in its evaluation record: pycocotools' under the bare name for detection,
    ultralytics' validator's prefixed (the only source of the other tasks)."""
    keys = [metric.key for metric in TASK_METRICS[task]]
    return keys if task == "detect" else [f"ultralytics_{key}" for key in keys]


def final_numbers(record: Mapping[str, Any]) -> tuple[str, str]:
    """The final weights' numbers of an evaluation record in words (``mAP_0.5 0.1234 mAP_0.5:0.95 0.0567``,
    ``top-1 accuracy 0.8125 top-5 accuracy 1.0000``) and their source (``pycocotools``, ``ultralytics validator``)."""
    task = record.get("task", "detect")
    final = record["final"]
    keys = _record_keys(task)
    numbers = " ".join(f"{metric.label} {final[key]:.4f}" for metric, key in zip(TASK_METRICS[task], keys))
    return numbers, "pycocotools" if task == "detect" else "ultralytics validator"


def load_finished(run: Run, notes: list[str] | None = None) -> bool:
    """Whether the run is finished on disk (its ``eval.json``); if so, the run records its evaluation and curve."""
    evaluation = read_evaluation(run.run_dir, notes)
    if evaluation is None:
        return False
    run.finished(evaluation, read_epoch_metrics(run.run_dir / "results.csv", run.arm.config.task))
    return True


def _read_run_record(run_dir: Path) -> dict[str, Any]:
    record = run_dir / RUN_RECORD
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise InputError(f"{record} cannot be read ({error_line(error)}): it records the settings the run was made "
                         f"with. Restore it, or move {run_dir} away (its results are kept there) to train the run "
                         "again") from None
    return stored


def decide_action(run_dir: Path, identity: Mapping[str, Any], notes: list[str]) -> Action:
    """What a run dir needs (skip / evaluate / resume / train), refusing one made with other settings.

    Raises:
        InputError: a directory not made by compare, or made with other settings, or an unreadable run.json.
    """
    if not run_dir.exists():
        return Action.TRAIN
    if not (run_dir / RUN_RECORD).is_file():
        raise InputError(f"{run_dir} exists but was not made by compare ({RUN_RECORD} missing): move it away or "
                         "use another --project")
    stored = _read_run_record(run_dir)
    differ = [key for key in identity if stored.get(key) != identity[key]]
    last = run_dir / "weights" / "last.pt"
    if differ and ((run_dir / EVAL_RECORD).is_file() or last.is_file()):
        changes = "; ".join(f"{key} {stored.get(key)!r} -> {identity[key]!r}" for key in differ)
        raise InputError(f"{run_dir} was made with other settings ({changes}): use another --project, or move it "
                         "away to train it again")
    if read_evaluation(run_dir, notes) is not None:
        return Action.SKIP
    if last.is_file():
        finished = checkpoint_finished(last)
        if finished is None:
            notes.append(f"{run_dir.name}: weights/last.pt cannot be read: the run is trained again from the start "
                         "and its directory moved aside first (nothing in it is deleted)")
            return Action.TRAIN
        return Action.EVALUATE if finished else Action.RESUME
    return Action.TRAIN


def prepare_run_dir(run: Run, identity: Mapping[str, Any], log: Callable[[str], None]) -> None:
    """Make a run dir ready for a start from scratch (other actions need nothing); an existing dir is never deleted:

    * when it holds only what a start of training leaves before its first epoch ends (run.json, compare.log,
      progress.json, ultralytics' args.yaml and first plots, an empty weights/), those ultralytics files are removed
      (rebuilt by the new start) and run.json and compare.log kept (the new attempt's log is appended);
    * otherwise (a checkpoint, even an unreadable one, results.csv, eval records, any file of the user's) the whole
      directory is moved aside to ``<name>.aside-<n>`` beside it, and ``log`` says where.

    Then the dir and its run.json are (re)made.
    """
    if run.action != Action.TRAIN:
        return
    run_dir = run.run_dir
    if run_dir.exists():
        entries = list(run_dir.iterdir())
        weights = run_dir / "weights"
        only_leftovers = all(_START_LEFTOVERS.fullmatch(entry.name) for entry in entries) and (
            not weights.exists() or (weights.is_dir() and not any(weights.iterdir())))
        if only_leftovers:
            for entry in entries:
                if entry.name not in _KEPT_ON_CLEAR:
                    entry.rmdir() if entry.is_dir() else entry.unlink()
        else:
            aside = move_aside(run_dir)
            log(f"compare: {run.name}: {run_dir} holds an earlier attempt that cannot be resumed; moved aside to "
                f"{aside} (nothing deleted), training from the start")
    text = json.dumps(dict(identity), indent=2)
    if run_dir.exists():
        write_text_atomic(run_dir / RUN_RECORD, text)
        return
    # Made whole under a temporary name, then renamed into place: another process planning meanwhile never sees
    # the run dir without its run.json (which it would refuse as "not made by compare").
    draft = run_dir.with_name(f".{run_dir.name}.new-{os.getpid()}")
    shutil.rmtree(draft, ignore_errors=True)  # only ever our own draft: the name holds our pid
    draft.mkdir(parents=True)
    write_text_atomic(draft / RUN_RECORD, text)
    os.rename(draft, run_dir)


def read_epoch_metrics(results_csv: Path, task: str = "detect") -> dict[str, list[float]] | None:
    """Per-epoch numbers of the task (:data:`cawb.training.tasks.TASK_METRICS`: ``metrics/mAP50(B)`` and
    ``metrics/mAP50-95(B)`` for detection) of an ultralytics results.csv, by epoch.

    A resumed run may repeat an epoch (it was validated but its checkpoint not written); the last row wins.
    Returns ``{"epoch", "map50", "map50_95"}`` lists sorted by epoch (the task's keys; for the other tasks also
    ``"fitness"``, ultralytics' pick of best.pt, which for detection is mAP50-95), or None without the file.
    """
    if not results_csv.is_file():
        return None
    metrics = TASK_METRICS[task]
    rows: dict[int, list[float]] = {}
    with open(results_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            row = {key.strip(): value for key, value in row.items() if key}
            values = [float(row[metric.column]) for metric in metrics]
            rows[int(float(row["epoch"]))] = values + ([] if task == "detect" else [fitness(task, row)])
    epochs = sorted(rows)
    keys = [metric.key for metric in metrics] + ([] if task == "detect" else ["fitness"])
    return {"epoch": epochs, **{key: [rows[e][i] for e in epochs] for i, key in enumerate(keys)}}


def best_epoch(curve: Mapping[str, list[float]] | None) -> int | None:
    """The epoch ultralytics saved as best.pt: the highest fitness (mAP50-95 for detection), the later on ties (it
    rewrites best.pt whenever an epoch equals the best fitness)."""
    if not curve or not curve["epoch"]:
        return None
    fitnesses = curve.get("fitness", curve.get("map50_95"))
    best = max(fitnesses)
    return max(epoch for epoch, value in zip(curve["epoch"], fitnesses) if value == best)


def evaluate_run(run: Run, dataset: Any, imgsz: int, batch: Any, device: str) -> None:
    """pycocotools (and ultralytics', and YOLOv5 v5.0's) mAP of the run's last.pt and best.pt, or for the other tasks
    than detection ultralytics' validator's numbers of the task; writes eval.json atomically, last, and records the
    run as finished."""
    from cawb.experiment.evaluate import evaluate_coco, evaluate_with_validator

    task = run.arm.config.task
    batch = batch if isinstance(batch, int) and batch >= 1 else 16
    record: dict[str, Any] = {"arm": run.arm.label, "seed": run.seed}
    if task != "detect":
        record.update(task=task, source="ultralytics")
    for weights, file in (("final", "last.pt"), ("best", "best.pt")):
        path = run.run_dir / "weights" / file
        save_dir = run.run_dir / "eval" / weights
        if task != "detect":
            values = evaluate_with_validator(path, run.arm.config.overrides["data"], task, imgsz=imgsz,
                                             save_dir=save_dir, batch=batch, device=device)
            record[weights] = {"weights": str(path), **{f"ultralytics_{key}": v for key, v in values.items()}}
            continue
        result = evaluate_coco(path, dataset, imgsz=imgsz, save_dir=save_dir, batch=batch, device=device)
        record[weights] = {"weights": str(path), "predictions": str(result["predictions"]),
                           **{key: result[key] for key in ("map50", "map50_95", "ultralytics_map50",
                                                           "ultralytics_map50_95", "v5_map50", "v5_map50_95",
                                                           "stats", "num_detections")}}
    curve = read_epoch_metrics(run.run_dir / "results.csv", task)
    record["epochs_trained"] = len(curve["epoch"]) if curve else None
    record["best_epoch"] = best_epoch(curve)
    write_text_atomic(run.run_dir / EVAL_RECORD, json.dumps(record, indent=2) + "\n")
    run.finished(record, curve)
