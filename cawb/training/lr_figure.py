"""``lr.png`` beside ultralytics' own figures: :class:`LrFigureMixin`.

The figure shows the weights group's planned learning rate (per iteration, warmup included, in its schedule's
colour as in compare.py's figures) and the per-epoch learning rates the run recorded in ``results.csv`` (black
markers), so a glance tells whether the run followed its schedule.
"""

from __future__ import annotations

from cawb.training.lr_curve import lr_curve
from cawb.utils.plots import plot_lr_curves
from cawb.utils.trainer_parts import TrainerPart

__all__ = ["LrFigureMixin"]


class LrFigureMixin(TrainerPart):
    """Draws ``lr.png`` in the run directory whenever ultralytics draws its metrics (``plots: true``)."""

    def plot_metrics(self):
        super().plot_metrics()
        self.plot_lr()

    def plot_lr(self):
        """Save ``lr.png``: the planned weights-group lr with the per-epoch lrs recorded."""
        batches = len(self.train_loader) if getattr(self, "train_loader", None) is not None else None
        planned = lr_curve(vars(self.args), epochs=self.epochs, batches_per_epoch=batches, label="planned",
                           factor=getattr(self, "lf", None))
        results = self.read_results_csv()
        measured = []
        if results.get("lr/pg0") and results.get("epoch"):
            offset = 1 - 1 / batches if batches else 0.0  # results.csv holds the lr of each epoch's last batch
            epochs = [epoch - 1 + offset for epoch in results["epoch"]]
            measured.append(("recorded (results.csv lr/pg0)", epochs, results["lr/pg0"]))
        path = plot_lr_curves([planned], self.save_dir / "lr.png", title=f"{planned.schedule} learning rate",
                              measured=measured)
        self.on_plot(path)
