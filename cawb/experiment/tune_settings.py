"""What a tuner study is asked to do and what checking it gives: :class:`TuneSettings` (flags merged with a preset by
:func:`resolve_settings`) and :class:`TunePlan` (what :func:`cawb.experiment.tune.plan_tune` returns and every part of
the study reads: the Optuna pieces in :mod:`.tune_study`, the outputs in :mod:`.tune_report`).

Data and defaults only: no optuna, no training. May import what :mod:`cawb.experiment` may.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from cawb.experiment.presets import COMPARE_PRESETS
from cawb.experiment.tune_space import SearchSpace
from cawb.training.config import ARTICLE_DEFAULTS, RunConfig
from cawb.training.tasks import preset_data_for_model
from cawb.utils.errors import InputError
from cawb.utils.resources import bundled_hyp

__all__ = [
    "CPU_PRESET_MODEL",
    "DEFAULT_PROJECT",
    "DEFAULT_PRUNE_AFTER",
    "DEFAULT_RESTART_GRACE",
    "DEFAULT_STUDY",
    "PRESETS",
    "TunePlan",
    "TuneSettings",
    "resolve_settings",
]

# The comparison's cpu preset is the one source of the offline CPU setup (data, sizes, device); its
# comparison-specific entries are left out, and the model and epochs are the demo's (see PRESETS).
_COMPARE_ONLY = frozenset({"arms", "seeds", "project"})
#: What the tuner's cpu preset trains instead of the comparison's yolov5n-v5.0 for 60 epochs: ultralytics' yolov5n
#: learns the shapes data in the shapes hyp file's 20 epochs, so a study that tells schedules apart stays short
#: (docs/RESULTS.md). --cfg yolov5n-v5.0.yaml --epochs 60 tunes for the article's model.
CPU_PRESET_MODEL = {"cfg": "yolov5n.yaml", "epochs": 20}


def _preset_from_compare(name: str) -> dict[str, Any]:
    return {key: value for key, value in COMPARE_PRESETS[name].items() if key not in _COMPARE_ONLY}


#: Named settings; flags given with a preset override its values.
PRESETS: dict[str, dict[str, Any]] = {
    # Offline, CPU-sized: the comparison's cpu preset (shapes data, small images, CPU), ultralytics' yolov5n for 20
    # epochs and the shapes CAWB hyp.
    "cpu": {**_preset_from_compare("cpu"), **CPU_PRESET_MODEL, "hyp": bundled_hyp("hyp.shapes-cawb.yaml"),
            "project": "runs/tune-cpu", "trials": 12},
}
DEFAULT_PROJECT = "runs/tune"
DEFAULT_STUDY = "cawb-tune"
#: No pruning before this fraction of the epochs: trained from scratch, a detector's early mAP says little about its
#: final one (the CPU preset's study in docs/RESULTS.md).
DEFAULT_PRUNE_AFTER = 0.5
#: Epochs after a restart (and after the warmup) in which a trial is never pruned.
DEFAULT_RESTART_GRACE = 2


@dataclasses.dataclass(frozen=True)
class TuneSettings:
    """What the command line asked for (None: the trainer's default, as train_cawb.py)."""

    data: str | None
    hyp: Path | None
    trials: int | None
    cfg: str | None = None
    epochs: int | None = None
    imgsz: int | None = None
    batch: int | float | None = None
    device: str | None = None
    workers: int | None = None
    storage: str | None = None
    study_name: str = DEFAULT_STUDY
    project: Path = Path(DEFAULT_PROJECT)
    metric: str = "fitness"
    space: Path | None = None
    prune: bool = True
    prune_after: float = DEFAULT_PRUNE_AFTER
    restart_grace: int = DEFAULT_RESTART_GRACE
    seed: int = 0
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def resolve_settings(preset: str | None = None, **flags: Any) -> TuneSettings:
    """Merge a preset with the flags given (None values are "not given").

    Raises:
        InputError: an unknown preset or option, or a required one missing (``data``, ``trials``).
    """
    if preset is not None and preset not in PRESETS:
        raise InputError(f"--preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    fields = {field.name for field in dataclasses.fields(TuneSettings)}
    unknown = sorted(set(flags) - fields)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    named = dict(PRESETS[preset]) if preset else {}
    overrides = {**dict(named.pop("overrides", None) or {}), **dict(flags.pop("overrides", None) or {})}
    values = {**named, **{k: v for k, v in flags.items() if v is not None}}
    if named.get("data") is not None and flags.get("data") is None:  # the demo data of the model's task
        values["data"] = preset_data_for_model(named["data"], values.get("cfg"))
    if values.get("data") is None:
        raise InputError("give --data (a dataset yaml), or --preset cpu for the offline demo")
    if values.get("trials") is None:
        raise InputError("give --trials N: the study's total of finished trials")
    values["overrides"] = overrides
    for key in ("hyp", "project", "space"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    values.setdefault("hyp", ARTICLE_DEFAULTS["hyp"])
    values["data"] = str(values["data"])
    return TuneSettings(**{key: value for key, value in values.items() if key in fields})


@dataclasses.dataclass(frozen=True)
class TunePlan:
    """A checked study: its settings (``data`` and ``hyp`` resolved to files), the space, the base run every trial
    starts from, and where everything goes.

    Attributes:
        base_config: the base run (defaults < base hyp file < flags and ``key=value`` settings, ``cawb`` on, the
            space's fixed restarts or none), planned once and writing under :attr:`trials_dir`; a trial sets its
            drawn values, run name and ``exist_ok`` on a copy.
        epochs: every trial's epoch count.
        warmup: the base run's warmup in epochs, as its schedule uses it.
        storage_url, storage_display: the Optuna storage, and how to show it (passwords hidden).
        identity: what makes trials comparable (stored with the study and compared on every rerun).
        notes: what the user should know before the study starts.
    """

    settings: TuneSettings
    space: SearchSpace
    base_config: RunConfig
    epochs: int
    warmup: float
    storage_url: str
    storage_display: str
    identity: dict[str, Any]
    notes: tuple[str, ...]

    @property
    def project(self) -> Path:
        return self.settings.project.absolute()

    @property
    def trials_dir(self) -> Path:
        return self.project / "trials"

    def output(self, name: str) -> Path:
        return self.project / name
