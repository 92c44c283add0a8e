"""What cawb takes from ultralytics' trainer: its stock schedule and warmup, the AMP check, how it writes
checkpoints, the CPU thread count it sets."""

from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Mapping

from cawb.utils.ultralytics_compat.settings import default_settings
from cawb.utils.ultralytics_compat.support import _release, installed_version

#: ultralytics' fitness per task, what its trainer picks ``best.pt`` by: the sum of these metric columns times the
#: weight (a fixed table: each task's metrics class computes it in code, the same in every supported release).
FITNESS_COLUMNS = {"detect": (("metrics/mAP50-95(B)",), 1.0),
                   "segment": (("metrics/mAP50-95(B)", "metrics/mAP50-95(M)"), 1.0),
                   "pose": (("metrics/mAP50-95(B)", "metrics/mAP50-95(P)"), 1.0),
                   "obb": (("metrics/mAP50-95(B)",), 1.0),
                   "classify": (("metrics/accuracy_top1", "metrics/accuracy_top5"), 0.5)}

def _trainer_stand_in(settings: Mapping[str, Any], epochs: int) -> SimpleNamespace:
    """Just enough of a trainer for ultralytics' scheduler and warmup methods to run on."""
    import torch

    args = SimpleNamespace(**{**default_settings(), **settings, "epochs": epochs})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return SimpleNamespace(args=args, epochs=epochs, optimizer=optimizer)


def stock_lr_factor(settings: Mapping[str, Any], epochs: int) -> Callable[[float], float]:
    """ultralytics' own per-epoch lr multiplier for these settings (one-cycle cosine 1 -> ``lrf`` with ``cos_lr``,
    else linear), taken from its trainer so that the two cannot drift apart."""
    from ultralytics.engine.trainer import BaseTrainer

    stand_in = _trainer_stand_in(settings, epochs)
    BaseTrainer._setup_scheduler(stand_in)
    return stand_in.lf


def stock_warmup_iterations(settings: Mapping[str, Any], epochs: int, batches_per_epoch: int) -> int:
    """How many iterations ultralytics' own trainer ramps the lr over (0: no warmup): its
    ``_get_warmup_iterations``, which leaves the last epoch unwarmed."""
    from ultralytics.engine.trainer import BaseTrainer

    return BaseTrainer._get_warmup_iterations(_trainer_stand_in(settings, epochs), batches_per_epoch)


#: The first release whose training loop sets the lr at the last warmup iteration too (``ni <= nw``), landing on
#: the scheduled value there. Before it the ramp stops one iteration short (``ni < nw``) and the lr stays at the
#: ramp's last value until the next epoch's scheduler step. A fact of the releases' training loops, which no
#: attribute shows: a fixed table.
_WARMUP_LANDS_ON_TARGET_FROM = "8.4.183"


def warmup_lands_on_target() -> bool:
    """Whether the installed ultralytics applies the warmup ramp at iteration ``nw`` itself (the scheduled lr), or
    (older releases) stops at ``nw - 1`` and keeps that value for the rest of the epoch."""
    version = installed_version()
    return version is None or _release(version) >= _release(_WARMUP_LANDS_ON_TARGET_FROM)


def model_names_for_load(trainer: Any, model: Any) -> Any:
    """``model`` with the dataset's class names set where ultralytics does that before loading weights (so that
    its loader can remap class heads by name); unchanged on releases that do not."""
    set_names = getattr(trainer, "set_model_names_for_load", None)
    return set_names(model) if callable(set_names) else model


#: The weights ultralytics' AMP check runs in every supported release (it downloads them when they are not in its
#: weights dir).
AMP_CHECK_WEIGHTS = "yolo26n.pt"


@contextlib.contextmanager
def replaced_amp_check(replacement: Callable[..., bool]) -> Iterator[None]:
    """Within the block ultralytics' trainer runs ``replacement(original_check, model, ...)`` as its AMP check."""
    import ultralytics.engine.trainer as ultralytics_trainer

    original = ultralytics_trainer.check_amp
    ultralytics_trainer.check_amp = functools.partial(replacement, original)
    try:
        yield
    finally:
        ultralytics_trainer.check_amp = original


@contextlib.contextmanager
def durable_checkpoint_writes(trainer: Any, path_type: type, strip: Callable[..., dict]) -> Iterator[None]:
    """Within the block, the checkpoint writes of ultralytics' trainer go through cawb's writers.

    Every supported release writes its checkpoints in two places, both in place: ``save_model`` writes the
    serialised checkpoint with ``write_bytes`` of the paths ``trainer.last``, ``trainer.best`` and
    ``trainer.wdir / "epochN.pt"``; ``final_eval`` calls the ``strip_optimizer`` its trainer module imported, which
    ``torch.save``s over the file. Here those three paths are ``path_type`` (a ``Path`` whose ``write_bytes`` is
    cawb's) and the trainer module's ``strip_optimizer`` is ``strip(original, f, s="", updates=None)``.
    """
    import ultralytics.engine.trainer as ultralytics_trainer

    saved = trainer.wdir, trainer.last, trainer.best
    original = ultralytics_trainer.strip_optimizer
    trainer.wdir, trainer.last, trainer.best = (path_type(path) for path in saved)
    ultralytics_trainer.strip_optimizer = functools.partial(strip, original)
    try:
        yield
    finally:
        trainer.wdir, trainer.last, trainer.best = saved
        ultralytics_trainer.strip_optimizer = original


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run CPU training with ``threads`` threads (None: leave ultralytics' choice), restoring the count after.

    ultralytics' ``select_device`` sets torch's thread count to its ``NUM_THREADS`` (``min(8, CPUs - 1)``) each time
    it picks the CPU, so the value it reads is set too. The count matters beyond speed: on the CPU, float sums
    split over another number of threads round differently, so a run repeats bit for bit only with the same count.
    """
    if threads is None:
        yield
        return
    import torch
    from ultralytics.utils import torch_utils

    saved = torch.get_num_threads(), torch_utils.NUM_THREADS
    torch.set_num_threads(threads)
    torch_utils.NUM_THREADS = threads
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch_utils.NUM_THREADS = saved[1]


