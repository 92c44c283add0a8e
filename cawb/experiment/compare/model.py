"""What a comparison is made of: its arms (:class:`Arm`) and one :class:`Run` per (arm, seed), with the run's state.

An arm is a hyp file planned once into a :class:`~cawb.training.config.RunConfig`; each of its runs trains that
configuration with its own seed and run directory. A run's state is a :class:`RunStatus` and what goes with it: its
evaluation record when finished, a one-line error when failed, its holder when another process works on it.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

from cawb.training.config import RunConfig
from cawb.training.hyp import HypFile

__all__ = ["Action", "Arm", "Run", "RunStatus"]


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm of the comparison: a hyp file, planned with the shared settings.

    ``config`` is the arm's run as planned (the file's settings with the comparison's ``epochs`` and, for a CAWB arm,
    the restarts actually passed); ``restarts_hyp`` / ``restarts_used`` are the CAWB restarts written in the file /
    passed to training (None for a cos arm).
    """

    label: str
    hyp: HypFile
    config: RunConfig
    restarts_hyp: tuple[float, ...] | None = None
    restarts_used: tuple[float, ...] | None = None

    @property
    def hyp_path(self) -> Path:
        return self.hyp.path

    @property
    def cawb(self) -> bool:
        """Whether the arm trains with the CAWB schedule."""
        return self.config.schedule is not None

    @property
    def schedule(self) -> str:
        """``cos`` or ``CAWB``: what the table calls the arm's schedule."""
        return "CAWB" if self.cawb else "cos"

    @property
    def epochs(self) -> int:
        return int(self.config.overrides["epochs"])

    @property
    def hyp_epochs(self) -> int | None:
        """The epochs the hyp file was written for (None when it sets none)."""
        epochs = self.hyp.settings.get("epochs")
        return epochs if isinstance(epochs, int) else None

    @property
    def settings(self) -> dict[str, Any]:
        """The settings the runs train with (the planned configuration's)."""
        return self.config.overrides

    @property
    def restarts_effective(self) -> tuple[float, ...]:
        """The restarts the schedule keeps (after the warmup, before the end)."""
        return tuple(self.config.schedule.restart_epochs) if self.config.schedule else ()

    @property
    def restarts_scaled(self) -> bool:
        """True when the restarts were moved from the hyp file's epoch count to the comparison's."""
        return self.restarts_used is not None and self.restarts_used != self.restarts_hyp


class RunStatus(str, enum.Enum):
    """Where a run stands, as this process knows it."""

    PENDING = "pending"  #: not finished: not run yet, held by another process, or interrupted
    FINISHED = "finished"  #: trained and evaluated (its eval.json exists)
    FAILED = "failed"  #: this process's attempt failed (``error`` says why); a rerun retries it


class Action(str, enum.Enum):
    """What a run needs, decided from its run directory."""

    SKIP = "skip"  #: finished earlier: its evaluation is read
    EVALUATE = "evaluate"  #: training finished earlier: evaluate its weights
    RESUME = "resume"  #: continue from weights/last.pt
    TRAIN = "train"  #: train from the start


@dataclasses.dataclass(eq=False)
class Run:
    """One (arm, seed) run: where it lives, what happens to it, and its numbers when it finished.

    ``evaluation`` is the run's ``eval.json``; ``curve`` its per-epoch validation from ``results.csv``:
    ``{"epoch": [...], "map50": [...], "map50_95": [...]}``. ``held_by`` names the process that holds the run while
    another one works on it (``host pid N``); ``error`` is one line, why it failed or why it is missing.
    """

    arm: Arm
    seed: int
    run_dir: Path
    action: Action = Action.TRAIN
    status: RunStatus = RunStatus.PENDING
    error: str | None = None
    held_by: str | None = None
    evaluation: dict[str, Any] | None = None
    curve: dict[str, list[float]] | None = None

    @property
    def name(self) -> str:
        """``<arm> seed <k>``, as messages name a run."""
        return f"{self.arm.label} seed {self.seed}"

    @property
    def last_pt(self) -> Path:
        return self.run_dir / "weights" / "last.pt"

    def finished(self, evaluation: dict[str, Any], curve: dict[str, list[float]] | None) -> None:
        """Record the run as finished with its evaluation record and validation curve."""
        self.status, self.evaluation, self.curve, self.error, self.held_by = (RunStatus.FINISHED, evaluation, curve,
                                                                             None, None)

    def failed(self, error: str) -> None:
        self.status, self.error, self.held_by = RunStatus.FAILED, error, None

    def pending(self, why: str | None = None, held_by: str | None = None) -> None:
        self.status, self.error, self.held_by = RunStatus.PENDING, why, held_by
