"""YOLOv5-style training with CAWB: the library behind ``train_cawb.py``.

:func:`train` trains one planned run (:class:`~cawb.training.config.RunConfig`, from
:func:`~cawb.training.config.plan_run`) with cawb's trainer of the model's task
(:func:`~cawb.training.trainer.trainer_for_task`: :class:`~cawb.training.trainer.CawbDetectionTrainer` for a
detector) and says where the results are. Given options instead of a plan, it plans first:
``train(data="my.yaml", epochs=100)``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cawb.training.config import RunConfig, plan_run
from cawb.training.tasks import TASK_METRICS, metric_values
from cawb.utils.errors import CawbError, InputError, Interrupted

__all__ = ["Callbacks", "TrainResult", "TrainingInterrupted", "TrainingWriteFailed", "callback_lists", "train"]

#: ultralytics callbacks by event: a list of functions of the trainer per event, as ultralytics keeps them (a single
#: function is taken as a list of one).
Callbacks = Mapping[str, "Callable[[Any], None] | Sequence[Callable[[Any], None]]"]


class TrainingInterrupted(Interrupted):
    """Training stopped by Ctrl-C; ``last`` is the checkpoint to resume from (None if no epoch finished)."""

    def __init__(self, last: Path | None):
        super().__init__(f"interrupted; resume from {last}" if last else "interrupted before the first checkpoint")
        self.last = last


class TrainingWriteFailed(CawbError, OSError):
    """Training stopped because a file could not be written (no space, a file-size limit, a read-only or vanished
    place): the ``OSError`` as raised (``errno``, ``strerror``, ``filename``: the file), and ``last``, the checkpoint
    to resume from once the cause is gone (None if no epoch was saved). Every checkpoint keeps its previous content."""

    def __init__(self, error: OSError, last: Path | None):
        super().__init__(error.errno, error.strerror or str(error), error.filename, None, error.filename2)
        self.last = last


@dataclasses.dataclass
class TrainResult:
    """What a finished run left: its directory, final weights and final validation numbers (ultralytics' validator):
    ``map50``/``map50_95`` the box mAPs (None for classification), ``metrics`` all of ultralytics' numbers."""

    save_dir: Path
    weights: Path
    map50: float | None
    map50_95: float | None
    metrics: dict[str, float]
    #: what the plan said before training (where a resume continues, restarts of the hyp file left out, ...)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: the model's task (``detect``, ``segment``, ``pose``, ``obb``, ``classify``)
    task: str = "detect"

    @property
    def task_metrics(self) -> dict[str, float | None]:
        """The numbers that judge the task (:data:`cawb.training.tasks.TASK_METRICS`) by their short names:
        ``mAP50``, ``mAP50-95`` for detection, ``mask mAP50`` ..., ``top-1``, ``top-5`` for classification."""
        values = metric_values(self.task, self.metrics)
        return {metric.short: values[metric.key] for metric in TASK_METRICS[self.task]}


def callback_lists(callbacks: Callbacks | None) -> dict[str, list[Callable[[Any], None]]]:
    """``callbacks`` with every event's value as a list (a single function becomes a list of one)."""
    return {event: [functions] if callable(functions) else list(functions)
            for event, functions in (callbacks or {}).items()}


def train(config: RunConfig | None = None, *, callbacks: Callbacks | None = None,
          refuse_restarts_outside: bool = True, **options: Any) -> TrainResult:
    """Train the planned run ``config``, or plan one from ``options`` first (see :func:`plan_run`).

    ``callbacks`` maps ultralytics callback events (e.g. ``"on_fit_epoch_end"``) to functions of the trainer, or to
    lists of them, added to ultralytics' own.

    Raises:
        InputError: bad options, before training (only when planning here).
        TrainingInterrupted: Ctrl-C during training (its ``last`` is the checkpoint to resume from).
        TrainingWriteFailed: (an ``OSError``) a file could not be written (its ``last`` likewise).
    """
    if config is None:
        config = plan_run(refuse_restarts_outside=refuse_restarts_outside, **options)
    elif options:
        raise InputError(f"train() takes a planned RunConfig or options, not both ({', '.join(sorted(options))})")
    from ultralytics.utils import LOGGER

    from cawb.training.durable import finish_interrupted
    from cawb.training.model import YOLO  # ultralytics' YOLO that also builds the v5.0 yamls
    from cawb.training.trainer import trainer_for_task

    for note in config.notes:
        LOGGER.warning(note)
    if config.resume is not None and finish_interrupted(config.resume):
        return _finish(config.resume, config.notes, config.task)

    model = YOLO(config.model_source)
    for event, functions in callback_lists(callbacks).items():
        for function in functions:
            model.add_callback(event, function)
    if config.weights is not None:
        model.load(config.weights)
    resume = {"resume": True} if config.resume is not None else {}
    trainer = functools.partial(trainer_for_task(config.task).configured, config)
    try:
        model.train(trainer=trainer, **resume, **config.overrides)
    except KeyboardInterrupt:
        raise TrainingInterrupted(_resumable(model)) from None
    except OSError as error:
        raise TrainingWriteFailed(error, _resumable(model)) from error
    trainer = model.trainer
    metrics = model.metrics
    metrics = dict(getattr(metrics, "results_dict", metrics) or {})
    weights = trainer.best if trainer.best.exists() else trainer.last
    return TrainResult(
        save_dir=Path(trainer.save_dir),
        weights=Path(weights),
        map50=metrics.get("metrics/mAP50(B)"),
        map50_95=metrics.get("metrics/mAP50-95(B)"),
        metrics=metrics,
        notes=list(config.notes),
        task=config.task,
    )


def _resumable(model: Any) -> Path | None:
    """The ``last.pt`` a stopped training leaves to resume from, if it wrote one."""
    last = getattr(getattr(model, "trainer", None), "last", None)
    return Path(last) if last is not None and Path(last).is_file() else None


def _finish(last: Path, notes: list[str], task: str) -> TrainResult:
    """The result of a run whose training had ended when its final step was killed, once that step is done."""
    from ultralytics.utils import LOGGER

    from cawb.training.durable import finish_stripping

    stripped = finish_stripping(last)
    best = last.with_name("best.pt")
    note = (f"--resume {last}: every epoch was trained; the run's final step (stripping "
            f"{', '.join(p.name for p in stripped) or 'the checkpoints'}) had been interrupted and is done now; the "
            "final validation is not repeated (scripts/evaluate.py evaluates the weights)")
    LOGGER.info(note)
    return TrainResult(save_dir=last.parent.parent, weights=best if best.is_file() else last, map50=None,
                       map50_95=None, metrics={}, notes=[*notes, note], task=task)
