"""A comparison's settings: presets merged with the flags (:class:`CompareSettings`), how this process runs its share
(:class:`ExecutionOptions`), and the checks of both that need nothing on disk."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

from cawb.experiment.compare.report import ARTICLE_EFFECT, METRICS
from cawb.experiment.presets import COMPARE_PRESETS, DEFAULT_PRESET
from cawb.training.config import RUNNER_KEYS
from cawb.training.tasks import preset_data_for_model
from cawb.utils.checks import is_int, is_number, require_int
from cawb.utils.errors import InputError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_PRESET",
    "FROM_HYP",
    "PRESETS",
    "CompareSettings",
    "ExecutionOptions",
    "check_settings",
    "parse_shard",
    "resolve_settings",
]

#: Named settings (``--preset``); flags given with a preset override its values.
PRESETS = COMPARE_PRESETS
#: Settings an arm's hyp file may hold. Without --preset and without the flag, the arms' hyp files decide (they must
#: agree); where none sets it, DEFAULT_PRESET's value is used. With --preset, the preset's value is used.
FROM_HYP = ("epochs", "batch", "imgsz")
#: Seconds after which a run's lock that its holder stopped refreshing may be taken over (--lock-timeout).
DEFAULT_LOCK_TIMEOUT = 600.0
# Settings without which the comparison cannot be made, with why.
_REQUIRED_ON = {"val": "map.png needs the per-epoch validation", "save": "the runs' last.pt and best.pt are evaluated"}


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """The shared settings of one comparison (see :data:`PRESETS` for values). ``epochs``, ``batch`` and ``imgsz``
    None: from the arms' hyp files (see :data:`FROM_HYP`). ``workers`` None: train_cawb's default. ``overrides``:
    other ultralytics training keys, the same for every run. ``effect``: the difference per metric the "how many
    seeds" figures are computed for (default: the article's)."""

    data: Path
    arms: tuple[Path, ...]
    seeds: tuple[int, ...]
    epochs: int | None
    cfg: str
    batch: int | float | None
    imgsz: int | None
    device: str
    workers: int | None
    project: Path
    exist_ok: bool = False
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    effect: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(ARTICLE_EFFECT))


@dataclasses.dataclass(frozen=True)
class ExecutionOptions:
    """How this process runs its part of the plan; none of it changes a run's result (on the CPU, ``threads``
    does: see :func:`cawb.experiment.compare.processes.cpu_threads`).

    ``jobs``: runs at once (1: one after another in this process, ultralytics' log in the terminal; more: one
    worker process each, a live view). ``shard``: ``(K, N)``, this process takes the K-th of N fixed parts of the
    plan. ``threads``: CPU threads per run (None: an equal share with ``jobs`` > 1, ultralytics' choice with 1).
    ``lock_timeout``: seconds after which an unrefreshed lock may be taken over.

    Raises:
        InputError: at construction, one line naming the flag.
    """

    jobs: int = 1
    shard: tuple[int, int] | None = None
    threads: int | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    def __post_init__(self) -> None:
        require_int(self.jobs, "--jobs", 1, unit="runs at once")
        if self.threads is not None:
            require_int(self.threads, "--threads", 1, unit="CPU threads per run")
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise InputError(f"--shard {k}/{n} is invalid: give K/N with 1 <= K <= N (1-based), e.g. --shard 1/4")
        if not is_number(self.lock_timeout, 0, open_min=True):
            raise InputError(f"--lock-timeout {self.lock_timeout!r} is invalid: it must be a number of seconds > 0")


def resolve_settings(preset: str | None = None, **flags: Any) -> CompareSettings:
    """Merge a preset (default :data:`DEFAULT_PRESET`) with the flags given (None values are "not given").

    Keyword flags: ``data, arms, seeds, epochs, cfg, batch, imgsz, device, workers, project, exist_ok``,
    ``overrides`` (a mapping of other ultralytics keys) and ``effect`` (metric -> difference). Without a named
    preset, ``epochs``, ``batch`` and ``imgsz`` not given stay None: the plan takes them from the arms' hyp files
    (:data:`FROM_HYP`).

    Raises:
        InputError: an unknown preset or flag name.
    """
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise InputError(f"--preset {name!r} is unknown: choose one of {', '.join(PRESETS)}")
    fields = {field.name for field in dataclasses.fields(CompareSettings)}
    unknown = sorted(set(flags) - fields)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    given = {key: value for key, value in flags.items() if value is not None}
    values = {"epochs": None, "workers": None, **PRESETS[name], **given}
    if "data" not in given:  # a model of another task than the preset's data: the demo data of its task
        values["data"] = preset_data_for_model(values["data"], given.get("cfg"))
    if preset is None:
        values.update({key: None for key in FROM_HYP if key not in given})
    return CompareSettings(
        data=Path(values["data"]),
        arms=tuple(Path(arm) for arm in values["arms"]),
        seeds=tuple(values["seeds"]),
        epochs=values["epochs"],
        cfg=str(values["cfg"]),
        batch=values["batch"],
        imgsz=values["imgsz"],
        device=str(values["device"]),
        workers=values["workers"],
        project=Path(values["project"]),
        exist_ok=bool(values.get("exist_ok", False)),
        overrides=dict(values.get("overrides") or {}),
        effect={**ARTICLE_EFFECT, **dict(values.get("effect") or {})},
    )


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N (1-based: the K-th of N parts).

    Raises:
        InputError: one line naming the value and the form allowed.
    """
    match = re.fullmatch(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*", str(text))
    allowed = "give K/N with 1 <= K <= N (the K-th of N parts, 1-based), e.g. --shard 1/4"
    if not match:
        raise InputError(f"--shard {text} is invalid: {allowed}")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise InputError(f"--shard {text} is invalid: {allowed}")
    return k, n


def check_settings(settings: CompareSettings) -> None:
    """The checks of the runner's own options (the training settings are the run plan's to check).

    Raises:
        InputError: one line naming the flag or key.
    """
    seeds = settings.seeds
    if not seeds or not all(is_int(seed, 0) for seed in seeds):
        raise InputError(f"--seeds {' '.join(map(str, seeds)) or '(none)'} is invalid: give integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {' '.join(map(str, seeds))} repeats a seed: each (arm, seed) is one run")
    if not settings.arms:
        raise InputError("--arms: give at least one hyp file")
    labels = [arm.stem for arm in settings.arms]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InputError(f"--arms: two hyp files named {repeated[0]}: an arm is named by its file's stem, which "
                         "must be unique")
    if settings.epochs is not None:
        require_int(settings.epochs, "--epochs", 1)
    for metric, value in settings.effect.items():
        if metric not in METRICS:
            raise InputError(f"--effect: unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
        if not is_number(value, 0, 1, open_min=True, open_max=True):
            raise InputError(f"--effect {value!r} for {METRICS[metric]} is invalid: give a difference in mAP "
                             "between 0 and 1, e.g. 0.008")
    for key, value in settings.overrides.items():
        if key in RUNNER_KEYS or key.startswith("cawb"):
            where = "the arm's hyp file" if key.startswith("cawb") else "a flag of compare.py"
            raise InputError(f"{key}={value!r} cannot be given as key=value here: it belongs in {where}")
        if key in _REQUIRED_ON and value is False:
            raise InputError(f"{key}={value!r} is not possible in a comparison: {_REQUIRED_ON[key]}")

