"""Figures: learning-rate curves (and, for experiments, metric curves). matplotlib only, no pyplot state.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas, so nothing needs a display and
no global pyplot state leaks between calls; fonts are matplotlib's bundled ones (nothing is fetched).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from matplotlib.figure import Figure

from cawb.utils.atomic_files import write_bytes_atomic

__all__ = ["RESTART_NOTE", "SCHEDULE_COLORS", "BandCurve", "LrLine", "lr_figure", "map_figure", "plot_lr_curves",
           "plot_map_curves", "save_figure", "schedule_colors"]

#: Each schedule's colour in every figure (lr.png, map.png, a run's lr.png): cos and CAWB never swap colours.
SCHEDULE_COLORS = {"cos": "tab:blue", "CAWB": "tab:orange", "linear": "tab:green"}
# Colours for further lines: a second CAWB arm, or a line whose schedule is not known.
_MORE_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
#: How the figures explain a restart marker at x = s (a ``cawb_steps`` value): the restart epoch still belongs to the
#: cycle it ends, so the lr jumps the epoch after (epoch s + 1 spans x = s + 1 to s + 2), and ultralytics validates
#: an epoch at its end, so the first mAP trained at the new lr sits at x = s + 2.
RESTART_NOTE = {"lr": "the lr jumps the epoch after, at x = s + 1",
                "map": "the lr jumps at x = s + 1; the first mAP after it is at x = s + 2"}


def schedule_colors(schedules: Sequence[str | None]) -> list[str]:
    """One colour per line, in order: the first line of a schedule gets :data:`SCHEDULE_COLORS`' colour, any
    further line (a second CAWB arm) or a line of unknown schedule the next colour no line uses yet."""
    colors, used = [], set()
    for schedule in schedules:
        color = SCHEDULE_COLORS.get(schedule or "")
        if color is None or color in used:
            color = next((c for c in _MORE_COLORS if c not in used), "black")
        used.add(color)
        colors.append(color)
    return colors


class LrLine(Protocol):
    """What :func:`plot_lr_curves` draws: x values in epochs, the lrs, a label, the restart epochs to mark and the
    schedule (``cos``, ``CAWB``, ``linear``; it picks the colour).

    :class:`cawb.training.lr_curve.LrCurve` is one; anything with these attributes will do.
    """

    epochs: Sequence[float]
    lrs: Sequence[float]
    label: str
    restart_epochs: Sequence[float]
    schedule: str | None


def save_figure(figure: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save a figure as PNG atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _epochs_text(epochs: Iterable[float]) -> str:
    return ", ".join(f"{epoch:g}" for epoch in epochs)


def _mark_restarts(axes, restarts: Sequence[float], color: str, name: str, note: str) -> None:
    """Dotted lines at the restart epochs, with one legend entry that says what they mean."""
    for index, restart in enumerate(restarts):
        label = f"{name} restarts at {_epochs_text(restarts)} ({note})" if index == 0 else None
        axes.axvline(restart, color=color, linestyle=":", linewidth=0.9, alpha=0.8, label=label)


def _with_last_step(xs: Sequence[float], lrs: Sequence[float]) -> tuple[list[float], list[float]]:
    """A step curve's points with the last one's width drawn: each lr holds from its x to the next one, so the last
    (epoch E - 1, or the last iteration) holds for one step more, to x = E (``steps-post`` alone draws it with no
    width at all)."""
    xs, lrs = list(xs), list(lrs)
    if not xs:
        return xs, lrs
    width = xs[-1] - xs[-2] if len(xs) > 1 else 1.0
    return xs + [xs[-1] + width], lrs + [lrs[-1]]


def lr_figure(
    curves: Sequence[LrLine],
    title: str = "Learning rate (weights param group)",
    measured: Iterable[tuple[str, Sequence[float], Sequence[float]]] = (),
) -> Figure:
    """The figure :func:`plot_lr_curves` saves: one step line per curve in its schedule's colour (each lr drawn over
    the epoch or iteration it holds, the last one's included), restarts dotted and labelled, measured points as
    black markers (a second measured series in grey)."""
    figure = Figure(figsize=(9, 4.5))
    axes = figure.add_subplot()
    colors = schedule_colors([getattr(curve, "schedule", None) for curve in curves])
    for curve, color in zip(curves, colors):
        xs, lrs = _with_last_step(curve.epochs, curve.lrs)
        axes.plot(xs, lrs, color=color, linewidth=1.5, label=curve.label or None, drawstyle="steps-post")
        schedule = getattr(curve, "schedule", None)
        name = curve.label if (len(curves) > 1 or not schedule) and curve.label else schedule or "CAWB"
        _mark_restarts(axes, curve.restart_epochs, color, name, RESTART_NOTE["lr"])
    for index, (label, epochs, lrs) in enumerate(measured):
        axes.plot(epochs, lrs, linestyle="none", marker="o", markersize=3, color="black" if index == 0 else "grey",
                  label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("lr")
    axes.set_title(title)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[1]:
        axes.legend(fontsize="small")
    return figure


def plot_lr_curves(
    curves: Sequence[LrLine],
    path: str | Path,
    title: str = "Learning rate (weights param group)",
    measured: Iterable[tuple[str, Sequence[float], Sequence[float]]] = (),
) -> Path:
    """Draw one line per curve, with its restart epochs marked, and save it as a PNG.

    Args:
        curves: planned curves (from :func:`cawb.training.lr_curve.lr_curve`), drawn as lines, coloured by schedule.
        path: where the PNG goes.
        title: figure title.
        measured: optional ``(label, epochs, lrs)`` points actually recorded by a run, drawn as markers.
    """
    return save_figure(lr_figure(curves, title, measured), path)


@dataclasses.dataclass(frozen=True)
class BandCurve:
    """A line with a shaded band around it, e.g. the mean over seeds between their minimum and maximum.

    ``members`` are the individual curves (one per seed) at the same ``x``, drawn thin when given; ``schedule``
    picks the colour (see :func:`schedule_colors`); ``restarts`` are marked as dotted lines.
    """

    label: str
    x: Sequence[float]
    mean: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]
    schedule: str | None = None
    members: Sequence[Sequence[float]] = ()
    restarts: Sequence[float] = ()


def map_figure(
    panels: Mapping[str, Sequence[BandCurve]], title: str = "", xlabel: str = "epoch", note: str = ""
) -> Figure:
    """The figure :func:`plot_map_curves` saves (see there)."""
    figure = Figure(figsize=(6 * max(len(panels), 1), 5.2), layout="constrained")
    legend: dict[str, Any] = {}
    for column, (ylabel, curves) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), column)
        colors = schedule_colors([curve.schedule for curve in curves])
        for curve, color in zip(curves, colors):
            axes.plot(curve.x, curve.mean, color=color, linewidth=1.8, label=curve.label)
            for member in curve.members:
                axes.plot(curve.x, member, color=color, linewidth=0.6, alpha=0.6)
            if any(high != low for low, high in zip(curve.low, curve.high)):
                axes.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.18, linewidth=0)
            _mark_restarts(axes, curve.restarts, color, curve.schedule or curve.label, RESTART_NOTE["map"])
        values = [value for curve in curves for value in (*curve.mean, *curve.high)]
        if values and not any(values):
            axes.text(0.5, 0.5, "every per-epoch mAP here is 0:\nthe models detected nothing yet", ha="center",
                      va="center", transform=axes.transAxes, color="dimgray")
            axes.set_ylim(-0.02, 0.2)
        else:
            axes.set_ylim(bottom=0)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)  # the panels share their entries: one legend under them all
    if legend:
        figure.legend(list(legend.values()), list(legend), loc="outside lower center", fontsize="small",
                      ncols=1 if len(legend) > 3 else len(legend))
    if title:
        figure.suptitle(title + (f"\n{note}" if note else ""), fontsize="medium")
    return figure


def plot_map_curves(
    panels: Mapping[str, Sequence[BandCurve]], path: str | Path, title: str = "", xlabel: str = "epoch",
    note: str = "",
) -> Path:
    """Draw one panel per entry of ``panels`` (its key is the y label), side by side, and save it as a PNG.

    A curve's colour follows its schedule (:func:`schedule_colors`: the same in every panel and in the lr figures);
    its members are thin lines of that colour, its band (drawn only where ``low`` and ``high`` differ) a shade
    of it. A panel whose values are all 0 says so instead of looking empty. One legend for all panels goes under
    them; ``note`` goes under the title.
    """
    return save_figure(map_figure(panels, title, xlabel, note), path)
