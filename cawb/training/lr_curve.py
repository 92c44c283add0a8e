"""The learning rate a hyp file gives under ultralytics' trainer, per epoch or per iteration.

ultralytics applies a per-epoch multiplier ``lf(epoch)`` (stepped at the start of each epoch; ``lf(epoch - 1)`` from
epoch 1 on with ``lr_epoch_lag``, the cadence of a scheduler stepped after each epoch) and, during the first
``warmup_epochs`` (at least ``warmup_min_iters`` iterations, cawb's key for v5.0's 1000-iteration floor), ramps each
iteration's lr linearly from 0 toward ``lr0 * lf(epoch)``, lag or not. With ``cawb: true`` the
multiplier is the CAWB schedule; otherwise it is ultralytics' own cos/linear one, taken from ultralytics' trainer
code itself so the two cannot drift apart (through :mod:`cawb.utils.ultralytics_compat`, as the warmup length).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from cawb.schedule import CawbSchedule
from cawb.training.hyp import schedule_from_hyp
from cawb.training.ultralytics_settings import ultralytics_defaults
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.checks import is_int, require_int
from cawb.utils.errors import HypError
from cawb.utils.ultralytics_compat import stock_lr_factor, stock_warmup_iterations, warmup_lands_on_target
from cawb.yolov5.recipe import kind_defaults, with_warmup_floor
from cawb.yolov5.sources import KIND_ULTRALYTICS

__all__ = [
    "MAX_PLOT_POINTS",
    "LrCurve",
    "epoch_lr_factor",
    "lr_curve",
    "plot_hyp_lr",
    "warmup_iterations",
    "write_lr_csv",
]


def warmup_iterations(hyp: Mapping[str, Any], epochs: int, batches_per_epoch: int) -> int:
    """How many iterations the trainer ramps the lr over: ultralytics' count (it leaves the last epoch unwarmed),
    raised to ``warmup_min_iters``."""
    return with_warmup_floor(stock_warmup_iterations(hyp, epochs, batches_per_epoch), hyp, epochs, batches_per_epoch)


def epoch_lr_factor(hyp: Mapping[str, Any], epochs: int, source: str = "hyp") -> Callable[[float], float]:
    """The per-epoch lr multiplier the trainer uses for this hyp: CAWB's when ``cawb`` is true, else stock."""
    schedule = schedule_from_hyp(hyp, epochs=epochs, source=source)
    return schedule if schedule is not None else stock_lr_factor(hyp, epochs)


class LrCurve(SimpleNamespace):
    """``epochs`` (0-based, fractional per iteration) and ``lrs`` of the weights param group, plus the ``label``,
    the ``restart_epochs`` drawn, the ``dropped_restart_epochs`` of the hyp that this run would not make
    (:func:`cawb.schedule.restart_is_made`) and the ``schedule`` (``CAWB``, ``cos`` or ``linear``: figures colour by
    it)."""

    epochs: list[float]
    lrs: list[float]
    label: str
    restart_epochs: list[float]
    dropped_restart_epochs: list[float]
    schedule: str


def lr_curve(
    hyp: Mapping[str, Any],
    epochs: int | None = None,
    batches_per_epoch: int | None = None,
    label: str = "",
    source: str = "hyp",
    factor: Callable[[float], float] | None = None,
) -> LrCurve:
    """The weights group's lr (base ``lr0``) per epoch, or per iteration with the warmup ramp when
    ``batches_per_epoch`` is given, as ultralytics' trainer would apply it (with the hyp's ``lr_epoch_lag``; unset
    is false: give a v5.0 model's settings with its kind's defaults). ``factor`` is the per-epoch multiplier when it
    is known already (a planned run's schedule, a trainer's ``lf``); by default it is the hyp's.

    Raises:
        HypError: bad epochs/batches or an invalid CAWB setting.
    """
    defaults = ultralytics_defaults()
    total = epochs if epochs is not None else hyp.get("epochs", defaults["epochs"])
    if not is_int(total, 1):
        raise HypError(f"{source}: epochs={total!r} is invalid: it must be an integer >= 1")
    if batches_per_epoch is not None:
        require_int(batches_per_epoch, "batches per epoch", 1, error=HypError)
    lr0 = float(hyp.get("lr0", defaults["lr0"]))
    if factor is None:
        factor = epoch_lr_factor(hyp, total, source)
    cawb = isinstance(factor, CawbSchedule)
    restarts = {"restart_epochs": list(factor.restart_epochs) if cawb else [],
                "dropped_restart_epochs": list(factor.dropped_restart_epochs) if cawb else [],
                "schedule": "CAWB" if cawb else ("cos" if hyp.get("cos_lr", defaults["cos_lr"]) else "linear")}
    lag = 1 if hyp.get("lr_epoch_lag") else 0
    if batches_per_epoch is None:
        xs = [float(epoch) for epoch in range(total)]
        return LrCurve(epochs=xs, lrs=[lr0 * factor(max(epoch - lag, 0)) for epoch in range(total)], label=label,
                       **restarts)

    warmup = warmup_iterations(hyp, total, batches_per_epoch)
    # Same rule as the installed ultralytics' trainer: ramp from 0 while iteration <= warmup, landing on the target
    # at the end; older releases ramp while iteration < warmup and keep the ramp's last value to the epoch's end.
    last_ramped = warmup if warmup_lands_on_target() else warmup - 1
    xs, lrs = [], []
    for epoch in range(total):
        target = lr0 * factor(epoch)  # where the warmup ramps to
        scheduled = lr0 * factor(max(epoch - lag, 0))  # what the scheduler sets at the epoch's start
        for batch in range(batches_per_epoch):
            iteration = batch + batches_per_epoch * epoch
            if warmup and iteration <= last_ramped:
                lr = target * iteration / warmup
            elif warmup and batch and iteration - batch <= last_ramped:  # warmup ended earlier in this epoch
                lr = target * last_ramped / warmup
            else:
                lr = scheduled
            xs.append(epoch + batch / batches_per_epoch)
            lrs.append(lr)
    return LrCurve(epochs=xs, lrs=lrs, label=label, **restarts)


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


#: Most points :func:`plot_hyp_lr` computes per curve (epochs x batches per epoch). A point costs about 200 bytes
#: on the way to the figure and the CSV, so this bounds memory near 0.4 GB a curve; the figure, about 1,300 pixels
#: wide, could not show more apart, and after the warmup the lr changes only once per epoch anyway.
MAX_PLOT_POINTS = 2_000_000


def plot_hyp_lr(
    hyp_path: str | Path,
    out: str | Path,
    epochs: int | None = None,
    batches_per_epoch: int | None = None,
    compare: str | Path | None = None,
    csv_path: str | Path | None = None,
    kind: str = KIND_ULTRALYTICS,
) -> list[LrCurve]:
    """Plot the lr schedule of a hyp file (and of a second one to compare) and write its CSV.

    This is what ``scripts/plot_lr.py`` runs. ``hyp_path`` and ``compare`` are paths or bundled hyp names
    (:func:`cawb.utils.resources.resolve_hyp`); ``kind`` is the kind of model trained with them, whose defaults
    fill what the files leave unset (a ``"v5.0"`` model trains with ``lr_epoch_lag``). Returns the curves drawn, the
    ``hyp_path`` one first; a curve's ``dropped_restart_epochs`` lists the file's restarts that fall outside
    ``epochs``.

    Everything is checked before anything is computed or written: ``out`` (a ``.png`` file name in a writable
    place) and ``csv_path`` (a ``.csv`` one), the hyp files, every value in them as training checks it
    (:func:`cawb.training.hyp.validate_hyp`), and the number of points (at most :data:`MAX_PLOT_POINTS` per curve).

    Raises:
        HypError: a bad hyp file, setting, output place or size, before anything is written.
        FileNotFoundError: a hyp file that is neither a path nor a bundled name.
    """
    from cawb.training.hyp import load_hyp
    from cawb.utils.resources import resolve_hyp
    from cawb.utils.user_files import UserFileError, check_output_file

    try:
        for flag, path, suffix in (("--out", out, ".png"), ("--csv", csv_path, ".csv")):
            if path is not None:
                check_output_file(path, flag)
                if Path(path).suffix.lower() != suffix:
                    raise HypError(f"{flag} {path}: the file name must end in {suffix} (it is written as "
                                   f"{suffix[1:].upper()})")
    except UserFileError as error:
        raise HypError(str(error)) from None
    paths = [resolve_hyp(hyp_path)] + ([resolve_hyp(compare, flag="--compare")] if compare else [])
    hyps = [(Path(path), load_hyp(path)) for path in paths]
    for path, hyp in hyps:
        total = epochs if epochs is not None else hyp.get("epochs", ultralytics_defaults()["epochs"])
        points = total * batches_per_epoch if isinstance(total, int) and isinstance(batches_per_epoch, int) else 0
        if points > MAX_PLOT_POINTS:
            raise HypError(f"{path}: {total} epochs x {batches_per_epoch} batches = {points:,} "
                           f"points, more than plot_lr draws ({MAX_PLOT_POINTS:,}); after the warmup the lr changes "
                           "once per epoch, so leave out --batches or give fewer --epochs")
    defaults = kind_defaults(kind)
    curves = [lr_curve({**defaults, **hyp}, epochs, batches_per_epoch, label=path.stem, source=str(path))
              for path, hyp in hyps]
    from cawb.utils.plots import plot_lr_curves  # matplotlib: once everything has been checked

    plot_lr_curves(curves, out)
    if csv_path:
        write_lr_csv(curves[0], csv_path)
    return curves
