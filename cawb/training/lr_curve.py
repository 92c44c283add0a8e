"""The learning rate a hyp file gives under ultralytics' trainer, per epoch or per iteration.

ultralytics applies a per-epoch multiplier ``lf(epoch)`` (stepped at the start of each epoch) and, during the first
``warmup_epochs``, ramps each iteration's lr linearly from 0 toward ``lr0 * lf(epoch)``. With ``cawb: true`` the
multiplier is the CAWB schedule; otherwise it is ultralytics' own cos/linear one, taken from ultralytics' trainer
code itself so the two cannot drift apart.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from cawb.hyp import HypError, schedule_from_hyp, ultralytics_defaults
from cawb.schedule import CawbSchedule
from cawb.utils.atomic_files import write_text_atomic

__all__ = ["LrCurve", "epoch_lr_factor", "lr_curve", "stock_lr_factor", "warmup_iterations", "write_lr_csv"]


def _trainer_stand_in(hyp: Mapping[str, Any], epochs: int) -> SimpleNamespace:
    """Just enough of a trainer for ultralytics' scheduler and warmup methods to run on."""
    import torch

    args = SimpleNamespace(**{**ultralytics_defaults(), **hyp, "epochs": epochs})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return SimpleNamespace(args=args, epochs=epochs, optimizer=optimizer)


def stock_lr_factor(hyp: Mapping[str, Any], epochs: int) -> Callable[[float], float]:
    """ultralytics' own per-epoch multiplier (one-cycle cosine 1 -> lrf with ``cos_lr``, else linear)."""
    from ultralytics.engine.trainer import BaseTrainer

    stand_in = _trainer_stand_in(hyp, epochs)
    BaseTrainer._setup_scheduler(stand_in)
    return stand_in.lf


def warmup_iterations(hyp: Mapping[str, Any], epochs: int, batches_per_epoch: int) -> int:
    """How many iterations ultralytics' trainer ramps the lr over (it always leaves the last epoch unwarmed)."""
    from ultralytics.engine.trainer import BaseTrainer

    return BaseTrainer._get_warmup_iterations(_trainer_stand_in(hyp, epochs), batches_per_epoch)


def epoch_lr_factor(hyp: Mapping[str, Any], epochs: int, source: str = "hyp") -> Callable[[float], float]:
    """The per-epoch lr multiplier the trainer uses for this hyp: CAWB's when ``cawb`` is true, else stock."""
    schedule = schedule_from_hyp(hyp, epochs=epochs, source=source)
    return schedule if schedule is not None else stock_lr_factor(hyp, epochs)


class LrCurve(SimpleNamespace):
    """``epochs`` (0-based, fractional per iteration) and ``lrs`` of the weights param group, plus the ``label``, the
    CAWB ``restart_epochs`` and the ``schedule`` (``CAWB``, ``cos`` or ``linear``: figures colour by it)."""

    epochs: list[float]
    lrs: list[float]
    label: str
    restart_epochs: list[float]
    schedule: str


def lr_curve(
    hyp: Mapping[str, Any],
    epochs: int | None = None,
    batches_per_epoch: int | None = None,
    label: str = "",
    source: str = "hyp",
) -> LrCurve:
    """The weights group's lr (base ``lr0``) per epoch, or per iteration with the warmup ramp when
    ``batches_per_epoch`` is given, as ultralytics' trainer would apply it.

    Raises:
        HypError: bad epochs/batches or an invalid CAWB setting.
    """
    defaults = ultralytics_defaults()
    total = epochs if epochs is not None else hyp.get("epochs", defaults["epochs"])
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise HypError(f"{source}: epochs={total!r} is invalid: it must be an integer >= 1")
    if batches_per_epoch is not None and (
        isinstance(batches_per_epoch, bool) or not isinstance(batches_per_epoch, int) or batches_per_epoch < 1
    ):
        raise HypError(f"batches per epoch={batches_per_epoch!r} is invalid: it must be an integer >= 1")
    lr0 = float(hyp.get("lr0", defaults["lr0"]))
    factor = epoch_lr_factor(hyp, total, source)
    cawb = isinstance(factor, CawbSchedule)
    restarts = list(factor.restart_epochs) if cawb else []
    schedule = "CAWB" if cawb else ("cos" if hyp.get("cos_lr", defaults["cos_lr"]) else "linear")
    if batches_per_epoch is None:
        xs = [float(epoch) for epoch in range(total)]
        return LrCurve(epochs=xs, lrs=[lr0 * factor(epoch) for epoch in range(total)], label=label,
                       restart_epochs=restarts, schedule=schedule)

    warmup = warmup_iterations(hyp, total, batches_per_epoch)
    xs, lrs = [], []
    for epoch in range(total):
        target = lr0 * factor(epoch)
        for batch in range(batches_per_epoch):
            iteration = batch + batches_per_epoch * epoch
            # Same rule as the trainer: ramp from 0 while iteration <= warmup, landing on the target at the end.
            lr = target * iteration / warmup if warmup and iteration <= warmup else target
            xs.append(epoch + batch / batches_per_epoch)
            lrs.append(lr)
    return LrCurve(epochs=xs, lrs=lrs, label=label, restart_epochs=restarts, schedule=schedule)


def write_lr_csv(curve: LrCurve, path: str | Path) -> Path:
    """Write ``epoch,lr`` rows (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["epoch", "lr"])
    writer.writerows([f"{epoch:.6g}", f"{lr:.8g}"] for epoch, lr in zip(curve.epochs, curve.lrs))
    write_text_atomic(path, buffer.getvalue())
    return path


def plot_hyp_lr(
    hyp_path: str | Path,
    out: str | Path,
    epochs: int | None = None,
    batches_per_epoch: int | None = None,
    compare: str | Path | None = None,
    csv_path: str | Path | None = None,
) -> list[LrCurve]:
    """Plot the lr schedule of a hyp file (and of a second one to compare) and write its CSV.

    This is what ``scripts/plot_lr.py`` runs. Returns the curves drawn, the ``hyp_path`` one first.

    Raises:
        HypError: a bad hyp file or setting, before anything is written.
    """
    from cawb.hyp import load_hyp
    from cawb.utils.plots import plot_lr_curves

    curves = []
    for path in [hyp_path] + ([compare] if compare else []):
        hyp = load_hyp(path)
        curves.append(lr_curve(hyp, epochs, batches_per_epoch, label=Path(path).stem, source=str(path)))
    plot_lr_curves(curves, out)
    if csv_path:
        write_lr_csv(curves[0], csv_path)
    return curves
