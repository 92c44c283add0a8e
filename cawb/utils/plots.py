"""Figures: learning-rate curves (and, for experiments, metric curves). matplotlib only, no pyplot state.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas, so nothing needs a display and
no global pyplot state leaks between calls; fonts are matplotlib's bundled ones (nothing is fetched).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Iterable, Mapping, Protocol, Sequence

from matplotlib.figure import Figure

from cawb.utils.atomic_files import write_bytes_atomic

__all__ = ["BandCurve", "LrLine", "plot_lr_curves", "plot_map_curves", "save_figure"]


class LrLine(Protocol):
    """What :func:`plot_lr_curves` draws: x values in epochs, the lrs, a label and the restart epochs to mark.

    :class:`cawb.training.lr_curve.LrCurve` is one; anything with these attributes will do.
    """

    epochs: Sequence[float]
    lrs: Sequence[float]
    label: str
    restart_epochs: Sequence[float]


def save_figure(figure: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save a figure as PNG atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def plot_lr_curves(
    curves: Sequence[LrLine],
    path: str | Path,
    title: str = "Learning rate (weights param group)",
    measured: Iterable[tuple[str, Sequence[float], Sequence[float]]] = (),
) -> Path:
    """Draw one line per curve, with its restart epochs marked, and save it as a PNG.

    Args:
        curves: planned curves (from :func:`cawb.training.lr_curve.lr_curve`), drawn as lines.
        path: where the PNG goes.
        title: figure title.
        measured: optional ``(label, epochs, lrs)`` points actually recorded by a run, drawn as markers.
    """
    figure = Figure(figsize=(9, 4.5))
    axes = figure.add_subplot()
    for index, curve in enumerate(curves):
        color = f"C{index}"
        axes.plot(curve.epochs, curve.lrs, color=color, linewidth=1.5, label=curve.label or None, drawstyle="steps-post")
        for restart in curve.restart_epochs:
            axes.axvline(restart, color=color, linestyle=":", linewidth=0.8, alpha=0.7)
    for index, (label, epochs, lrs) in enumerate(measured, start=len(curves)):
        axes.plot(epochs, lrs, linestyle="none", marker="o", markersize=3, color=f"C{index}", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("lr")
    axes.set_title(title)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if any(curve.label for curve in curves) or measured:
        axes.legend()
    return save_figure(figure, path)


@dataclasses.dataclass(frozen=True)
class BandCurve:
    """A line with a shaded band around it, e.g. the mean over seeds between their minimum and maximum."""

    label: str
    x: Sequence[float]
    mean: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]


def plot_map_curves(
    panels: Mapping[str, Sequence[BandCurve]], path: str | Path, title: str = "", xlabel: str = "epoch"
) -> Path:
    """Draw one panel per entry of ``panels`` (its key is the y label), side by side, and save it as a PNG.

    In every panel curve ``i`` has colour ``Ci``, so an arm keeps its colour across panels when it has the same
    position in each list. The band is drawn only where ``low`` and ``high`` differ (one seed: a plain line).
    """
    figure = Figure(figsize=(6 * max(len(panels), 1), 4.5))
    for column, (ylabel, curves) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), column)
        for index, curve in enumerate(curves):
            color = f"C{index}"
            axes.plot(curve.x, curve.mean, color=color, linewidth=1.5, label=curve.label)
            if any(high != low for low, high in zip(curve.low, curve.high)):
                axes.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        if any(curve.label for curve in curves):
            axes.legend()
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)
