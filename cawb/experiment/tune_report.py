"""The tuner's outputs: trials.csv, history.png, importance.png, best_hyp.yaml, lr-best.png and the summary.

Everything is read from the study (any worker may write them, for the whole study) and written atomically. The
trial user attributes named here are what :mod:`cawb.experiment.tune` records for each trial.

May import what :mod:`cawb.experiment` may; optuna, matplotlib (lazily) and yaml.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import math
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from cawb.experiment.tune_settings import TunePlan
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.errors import error_line
from cawb.utils.user_files import display_path

__all__ = [
    "METRICS",
    "METRIC_KEYS",
    "OUTPUT_NAMES",
    "TuneResult",
    "best_hyp_text",
    "describe_hyp",
    "trial_counts",
    "write_outputs",
]

#: ``--metric`` values: what each trial maximises, as ultralytics' validator computes it after every epoch. The mAPs
#: are the model's task's (mask mAP for segmentation, pose mAP for pose), the accuracies classification's.
METRICS: dict[str, str] = {
    "fitness": "the fitness that picks best.pt (detection: mAP50-95, 0.1 mAP50 + 0.9 mAP50-95 for classic YOLOv5 "
               "models: fitness_map50_weight; box + mask mAP50-95 for segmentation; (top-1 + top-5) / 2 for "
               "classification)",
    "map50": "the task's mAP50 (ultralytics validator)",
    "map50-95": "the task's mAP50-95 (ultralytics validator)",
    "top1": "top-1 accuracy (classification, ultralytics validator)",
    "top5": "top-5 accuracy (classification, ultralytics validator)",
}
#: ``--metric`` -> the key of the number in :data:`cawb.training.tasks.TASK_METRICS` (fitness is ultralytics' own).
METRIC_KEYS = {"map50": "map50", "map50-95": "map50_95", "top1": "top1", "top5": "top5"}

# Trial user attributes.
HYP_ATTR, RESTARTS_ATTR, EPOCHS_ATTR = "hyp", "restart_epochs", "epochs_reached"
FRACTIONS_ATTR, RUN_DIR_ATTR, ERROR_ATTR = "restart_fractions", "run_dir", "error"
#: The trial attribute naming the process that trains it ({"host": ..., "pid": ...}): a rerun on that host fails a
#: RUNNING trial whose process is gone at once, instead of after the storage's heartbeat grace.
PROCESS_ATTR = "process"
#: What the tuner writes in its project directory.
OUTPUT_NAMES = ("best_hyp.yaml", "trials.csv", "history.png", "importance.png", "lr-best.png")
#: Complete trials needed before importance.png is drawn.
MIN_IMPORTANCE_TRIALS = 4


def trial_counts(study: optuna.Study) -> dict[TrialState, int]:
    """How many trials of the study are in each state."""
    counts = {state: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state] += 1
    return counts


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def describe_hyp(hyp: Mapping[str, Any]) -> str:
    """A trial's values in one line: restarts first, then each key without its ``cawb_`` prefix."""
    parts = [f"restarts {list(hyp.get('cawb_steps', []))}"]
    parts += [f"{key.removeprefix('cawb_')} {_fmt(value)}" for key, value in hyp.items() if key not in ("cawb", "cawb_steps")]
    return ", ".join(parts)


def _yaml_inline(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


_KEY_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<rest>.*)$")


def best_hyp_text(base_text: str, values: Mapping[str, Any], header: Sequence[str]) -> str:
    """The base hyp file with ``values`` set: each changed line is rewritten in place (its comment replaced by
    ``# tuned (base: old)``), keys the base lacks are appended, the other lines and comments are kept. A base
    file this line edit cannot handle (a value spread over several lines) is written as plain YAML instead.
    The result always loads to the base mapping updated with ``values``."""
    base = yaml.safe_load(base_text) or {}
    expected = {**base, **values}
    remaining = dict(values)
    lines = []
    for line in base_text.splitlines():
        match = _KEY_LINE.match(line)
        key = match.group("key") if match else None
        if key in remaining:
            new = remaining.pop(key)
            if base.get(key) == new and type(base.get(key)) is type(new):
                lines.append(line)
            else:
                lines.append(f"{key}: {_yaml_inline(new)} # tuned (base: {_yaml_inline(base.get(key))})")
        else:
            lines.append(line)
    if remaining:
        lines += ["", "# Set by the tuner (not in the base file)"]
        lines += [f"{key}: {_yaml_inline(value)} # tuned" for key, value in remaining.items()]
    text = "\n".join([*(f"# {line}" for line in header), "", *lines]) + "\n"
    try:
        if yaml.safe_load(text) == expected:
            return text
    except yaml.YAMLError:
        pass
    plain = yaml.safe_dump(expected, sort_keys=False, default_flow_style=None, width=120)
    return "\n".join(f"# {line}" for line in header) + "\n\n" + plain


def _trial_rows(trials: Sequence[FrozenTrial], metric: str) -> tuple[list[str], list[list[Any]]]:
    params = sorted({name for trial in trials for name in trial.params},
                    key=lambda name: (not name.startswith(("n_restarts", "restart_")), name))
    header = ["number", "state", metric, EPOCHS_ATTR, RESTARTS_ATTR, *params, "started", "duration_s", "run_dir",
              "error"]
    rows = []
    for trial in trials:
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        restarts = trial.user_attrs.get(RESTARTS_ATTR)
        # Optuna gives a pruned trial its last report as value; only a complete trial has a final one.
        value = repr(trial.value) if trial.state == TrialState.COMPLETE and trial.value is not None else ""
        rows.append([trial.number, trial.state.name, value,
                     trial.user_attrs.get(EPOCHS_ATTR, ""),
                     "" if restarts is None else " ".join(map(str, restarts)),
                     *[trial.params.get(name, "") for name in params],
                     trial.datetime_start.isoformat(timespec="seconds") if trial.datetime_start else "",
                     "" if duration is None else f"{duration:.1f}", trial.user_attrs.get(RUN_DIR_ATTR, ""),
                     trial.user_attrs.get(ERROR_ATTR, "")])
    return header, rows


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def _plot_history(trials: Sequence[FrozenTrial], metric: str, path: Path, title: str) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from cawb.utils.plots import save_figure

    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.last_step is not None]
    axes.plot([t.number for t in complete], [t.value for t in complete], "o", color="C0", label="complete")
    if pruned:
        axes.plot([t.number for t in pruned], [t.intermediate_values[t.last_step] for t in pruned], "x", color="0.5",
                  label="pruned (last epoch reported)")
    best_x, best_y, best = [], [], -math.inf
    for trial in sorted(complete, key=lambda t: t.number):
        best = max(best, trial.value)
        best_x.append(trial.number)
        best_y.append(best)
    if best_x:
        axes.step(best_x, best_y, where="post", color="C1", label="best so far")
    failed = sum(t.state == TrialState.FAIL for t in trials)
    axes.set_xlabel("trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(metric)
    axes.set_title(title + (f" ({failed} failed, not drawn)" if failed else ""))
    axes.grid(alpha=0.3)
    if complete or pruned:
        axes.legend()
    save_figure(figure, path)


def _plot_importance(importances: Mapping[str, float] | None, reason: str, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    from cawb.utils.plots import save_figure

    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    if importances:
        names = list(importances)[::-1]
        axes.barh(names, [importances[name] for name in names], color="C0")
        axes.set_xlabel("importance (Optuna PED-ANOVA, normalised)")
    else:
        axes.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, transform=axes.transAxes)
        axes.set_axis_off()
    axes.set_title(title)
    save_figure(figure, path)


def _importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances over the complete trials, for the parameters every complete trial has (a
    restart position exists only in trials with that many restarts: it is left out)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len({t.value for t in complete}) < 2:
        return None, "every complete trial has the same value: no parameter explains a difference"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shared = sorted(set.intersection(*(set(t.params) for t in complete)))
            if not shared:
                return None, "no parameter is searched in every complete trial"
            importances = optuna.importance.get_param_importances(
                study, params=shared, evaluator=optuna.importance.PedAnovaImportanceEvaluator())  # no scikit-learn
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return None, f"importances could not be computed: {error_line(error)}"
    importances = {name: float(value) for name, value in importances.items() if math.isfinite(value)}
    if not importances or not any(importances.values()):
        return None, "no parameter explains the differences between trials (all importances are 0)"
    return importances, ""


@dataclasses.dataclass
class TuneResult:
    """What a worker's run left: the counts over the whole study, the best trial, the files, the summary."""

    counts: dict[str, int]
    ran: int
    best: FrozenTrial | None
    importances: dict[str, float] | None
    files: list[Path]
    summary: list[str]
    exit_code: int


def write_outputs(plan: TunePlan, study: optuna.Study, ran: int = 0, seconds: float | None = None,
                  stop_note: str | None = None) -> TuneResult:
    """Write trials.csv, history.png, best_hyp.yaml, lr-best.png and importance.png (when there is enough to draw
    them) for the whole study, atomically, and build the one-screen summary."""
    from cawb.training.lr_curve import plot_hyp_lr

    settings, metric = plan.settings, plan.settings.metric
    trials = study.get_trials(deepcopy=False)
    counts = trial_counts(study)
    title = f"study '{settings.study_name}': {metric} per trial"
    files = []
    header, rows = _trial_rows(trials, metric)
    _write_csv(plan.output("trials.csv"), header, rows)
    files.append(plan.output("trials.csv"))
    _plot_history(trials, metric, plan.output("history.png"), title)
    files.append(plan.output("history.png"))

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    if best is not None:
        best_path = plan.output("best_hyp.yaml")
        write_text_atomic(best_path, _best_hyp(plan, best, counts))
        files.append(best_path)
        plot_hyp_lr(best_path, plan.output("lr-best.png"), epochs=plan.epochs, compare=settings.hyp,
                    kind=plan.base_config.kind)
        files.append(plan.output("lr-best.png"))
    importances = None
    if len(complete) >= MIN_IMPORTANCE_TRIALS:
        importances, reason = _importances(study)
        _plot_importance(importances, reason, plan.output("importance.png"),
                         f"study '{settings.study_name}': what mattered for {metric} ({len(complete)} complete trials)")
        files.append(plan.output("importance.png"))

    summary = _summary(plan, counts, ran, seconds, best, importances, files)
    exit_code = 0 if best is not None and stop_note is None else 1
    if stop_note is not None:
        summary.append(f"stopped: {stop_note}")
    return TuneResult(counts={state.name: n for state, n in counts.items()}, ran=ran, best=best,
                      importances=importances, files=files, summary=summary, exit_code=exit_code)


def _best_hyp(plan: TunePlan, best: FrozenTrial, counts: Mapping[TrialState, int]) -> str:
    settings = plan.settings
    values = dict(best.user_attrs[HYP_ATTR])
    values.update(settings.overrides)
    base_text = Path(settings.hyp).read_text(encoding="utf-8")
    base = yaml.safe_load(base_text) or {}
    if base.get("epochs") != plan.epochs:
        values["epochs"] = plan.epochs  # the restarts are epochs of this run length
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Tuned CAWB settings: the best trial of study '{settings.study_name}' ({plan.storage_display}), "
        f"written {when} by scripts/tune.py.",
        f"trial {best.number}: {settings.metric} {best.value:.6g} after {plan.epochs} epochs (of best.pt: "
        f"{METRICS[settings.metric]}); the study: {counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed trials.",
        f"Base: {settings.hyp}; every value the tuner set is marked '# tuned'.",
        f"Train with it: {_train_command(plan)}",
    ]
    return best_hyp_text(base_text, values, header)


def _train_command(plan: TunePlan) -> str:
    s = plan.settings
    parts = ["python train_cawb.py", f"--data {display_path(Path(s.data))}"]
    for flag, value in (("--cfg", s.cfg), ("--imgsz", s.imgsz), ("--batch-size", s.batch), ("--device", s.device),
                        ("--workers", s.workers)):
        if value is not None:
            parts.append(f"{flag} {value}")
    parts.append(f"--hyp {display_path(plan.output('best_hyp.yaml'))}")
    return " ".join(parts)


def _summary(plan: TunePlan, counts: Mapping[TrialState, int], ran: int, seconds: float | None,
             best: FrozenTrial | None, importances: Mapping[str, float] | None, files: Sequence[Path]) -> list[str]:
    s = plan.settings
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    took = f" in {datetime.timedelta(seconds=round(seconds))}" if seconds is not None else ""
    lines = [f"study '{s.study_name}' ({plan.storage_display}): {finished} of {s.trials} trials finished "
             f"({counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned), "
             f"{counts[TrialState.FAIL]} failed, {counts[TrialState.RUNNING]} running elsewhere; this run: "
             f"{ran} trial(s){took}"]
    if best is None:
        lines.append("best: none yet (no trial completed)")
    else:
        hyp = best.user_attrs[HYP_ATTR]
        lines.append(f"best: {s.metric} {best.value:.4f}, trial {best.number} ({plan.epochs} epochs): "
                     f"{describe_hyp(hyp)}")
    if importances:
        lines.append("importance: " + ", ".join(f"{name} {value:.2f}" for name, value in list(importances.items())[:6]))
    lines.append(f"outputs in {display_path(plan.project)}: " + " ".join(path.name for path in files))
    if best is not None:
        lines.append(f"train with it: {_train_command(plan)}")
    running = counts[TrialState.RUNNING]
    if finished < s.trials and running and finished + running >= s.trials:
        lines.append(f"{s.trials - finished} trial(s) to go, running elsewhere now: rerun the same command once they "
                     "end (one whose process died on another host counts as running until the storage's heartbeat "
                     "grace has passed)")
    elif finished < s.trials:
        lines.append(f"{s.trials - finished} trial(s) to go: rerun the same command to continue")
    return lines
