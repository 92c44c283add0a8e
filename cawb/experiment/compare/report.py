"""The cos-vs-CAWB report: statistics over seeds, table.md / table.csv / summary.json, lr.png and map.png.

Input is what :mod:`cawb.experiment.compare` collected: the arms (:class:`~cawb.experiment.compare.model.Arm`) and
one :class:`~cawb.experiment.compare.model.Run` per (arm, seed),
holding the run's evaluation record (pycocotools', ultralytics' and YOLOv5 v5.0's mAPs of ``last.pt`` and
``best.pt``) and its per-epoch validation curve from ``results.csv``. Nothing here trains or evaluates. The table
shows pycocotools' numbers and, beside the article's, v5.0's (:mod:`cawb.experiment.v5_metric`), the metric the
article reported.

The numbers are the model's task's (:data:`cawb.training.tasks.TASK_METRICS`): box mAP for detection, as above;
mask mAP for segmentation, pose mAP for pose, OBB mAP, top-1 and top-5 accuracy for classification, from ultralytics'
validator (:data:`VALIDATOR_SOURCES`), which the table says. The article's numbers are shown for detection only.

Statistics (per weights file, metric and mAP source; the functions are
:mod:`cawb.experiment.compare.seed_statistics`'s):

* per arm: mean and sample standard deviation (``n - 1`` denominator; none for one seed) over the seeds that
  finished;
* paired difference: for each seed finished in both arms, ``other[seed] - base[seed]``; its mean, sample std,
  standard error ``std / sqrt(n)`` and the 95% Student-t interval ``mean +- t(0.975, n - 1) * se``. The verdict
  says the difference holds on these seeds only when that interval excludes 0 (a paired t-test at the 5% level),
  and that it cannot be told with fewer than two pairs;
* how many seeds (:mod:`cawb.experiment.power`): with the differences' sample std as the planning spread, the
  number of seeds a paired t-test (5% two-sided, 80% power) needs to tell a difference of ``effect`` (the article's
  by default) from zero, and the smallest difference the seeds run can detect; None with fewer than two pairs.

Pairing: with exactly one cos arm (``cawb: false``) and one CAWB arm, the difference is CAWB - cos; otherwise
every arm after the first minus the first arm.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

from cawb.experiment.compare.model import Arm, Run, RunStatus
from cawb.experiment.compare.seed_statistics import (
    PairedDifference,
    mean_std,
    paired_difference,
    seed_power,
    t_quantile_975,
    verdict,
)
from cawb.experiment.power import ALPHA, POWER
from cawb.training.lr_curve import lr_curve
from cawb.training.tasks import TASK_METRICS, TASK_NAMES
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.plots import BandCurve, plot_lr_curves, plot_map_curves
from cawb.utils.user_files import display_path

__all__ = [
    "ARTICLE",
    "ARTICLE_EFFECT",
    "ARTICLE_NOTE",
    "MAX_SEED_LINES",
    "METRICS",
    "SOURCES",
    "TABLE_SOURCES",
    "VALIDATOR_SOURCES",
    "WEIGHTS",
    "ReportPaths",
    "build_summary",
    "draw_lr_curves",
    "draw_map_curves",
    "render_table_csv",
    "render_table_md",
    "report_paths",
    "task_metrics",
    "task_sources",
    "write_report",
]

#: Metric keys of an evaluation record -> how the table names them.
#: (Other tasks: :func:`task_metrics`.)
METRICS = {metric.key: metric.label for metric in TASK_METRICS["detect"]}
#: Weights evaluated per run -> how the table names them.
WEIGHTS = {"final": "final", "best": "best epoch"}
#: mAP sources in an evaluation record: pycocotools under the bare metric key, ultralytics' validator and YOLOv5
#: v5.0's test.py (the article's metric, :mod:`cawb.experiment.v5_metric`) prefixed.
SOURCES = {"pycocotools": "", "ultralytics": "ultralytics_", "yolov5 v5.0": "v5_"}
#: The sources the table shows, each with the suffix of its columns' keys (titled "... (YOLOv5 v5.0)").
TABLE_SOURCES = {"pycocotools": "", "yolov5 v5.0": " v5"}
#: The source of the other tasks' records, and of their tables: ultralytics' validator only (pycocotools has no OBB
#: or accuracy, and its keypoint evaluation is COCO's 17 person keypoints).
VALIDATOR_SOURCES = {"ultralytics": "ultralytics_"}


def task_metrics(task: str) -> dict[str, str]:
    """The numbers a comparison of ``task`` reports: record key -> how the table names them."""
    return {metric.key: metric.label for metric in TASK_METRICS[task]}


def task_sources(task: str) -> dict[str, str]:
    """The sources of a ``task`` run's evaluation record (the first is the official one): name -> key prefix."""
    return SOURCES if task == "detect" else VALIDATOR_SOURCES

#: The seed article's reported numbers, by the arm's ``cawb`` value (False: cosine, True: CAWB).
ARTICLE = {False: {"map50": 0.294, "map50_95": 0.161}, True: {"map50": 0.302, "map50_95": 0.165}}
ARTICLE_NOTE = (
    "The article's values come from one run per arm with the anchor-based YOLOv5 of 2021 (yolov5s from scratch, "
    "150 epochs, 640 px) on a different random 10k/1k draw of COCO2017: only the direction and size of the "
    "difference are comparable with the rows above."
)

#: The article's CAWB - cos difference per metric (+0.008 mAP_0.5, +0.004 mAP_0.5:0.95): the default effect size of
#: the "how many seeds" figures.
ARTICLE_EFFECT = {metric: round(ARTICLE[True][metric] - ARTICLE[False][metric], 6) for metric in METRICS}
#: map.png draws each seed's curve as a thin line when an arm has at most this many seeds (beyond, the band only).
MAX_SEED_LINES = 5


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    """Where one report's files go; ``suffix`` is "" or "-2", "-3", ... when an earlier report is kept."""

    table_md: Path
    table_csv: Path
    summary_json: Path
    lr_png: Path
    map_png: Path
    suffix: str

    def all(self) -> tuple[Path, ...]:
        return (self.table_md, self.table_csv, self.summary_json, self.lr_png, self.map_png)


def report_paths(project: Path, exist_ok: bool) -> ReportPaths:
    """The report files in ``project``: the plain names, or, when any of them exists and ``exist_ok`` is false,
    the first ``-N`` suffix (N >= 2) under which none exists, so an earlier report is never overwritten."""

    def named(suffix: str) -> ReportPaths:
        return ReportPaths(project / f"table{suffix}.md", project / f"table{suffix}.csv",
                           project / f"summary{suffix}.json", project / f"lr{suffix}.png",
                           project / f"map{suffix}.png", suffix)

    paths = named("")
    number = 2
    while not exist_ok and any(path.exists() for path in paths.all()):
        paths, number = named(f"-{number}"), number + 1
    return paths


def _pairs(arms: Sequence[Arm]) -> tuple[list[tuple[Arm, Arm, str, str, str]], str]:
    """(base, other, row label, other's name, base's name) per difference, and the pairing rule in words."""
    if len(arms) == 2 and {arm.cawb for arm in arms} == {False, True}:
        cos, cawb = sorted(arms, key=lambda arm: arm.cawb)
        return [(cos, cawb, "CAWB - cos", "CAWB", "cos")], "CAWB seed k minus cos seed k"
    if len(arms) < 2:
        return [], "one arm: no differences"
    base = arms[0]
    return ([(base, other, f"{other.label} - {base.label}", other.label, base.label) for other in arms[1:]],
            f"each arm's seed k minus {base.label} seed k")


def _values(runs: Sequence[Run], arm: Arm, weights: str, key: str) -> dict[int, float]:
    """seed -> value of one number of the finished runs of ``arm`` (records written before a number existed lack
    it: those runs are left out of that number)."""
    return {run.seed: float(run.evaluation[weights][key]) for run in runs
            if run.arm is arm and run.status == RunStatus.FINISHED and run.evaluation is not None
            and run.evaluation[weights].get(key) is not None}


def _spread(values: Mapping[int, float]) -> dict[str, Any]:
    mean, std = mean_std(list(values.values()))
    return {"n": len(values), "mean": mean, "std": std, "min": min(values.values(), default=None),
            "max": max(values.values(), default=None), "values": {str(seed): v for seed, v in sorted(values.items())}}


def _difference_record(difference: PairedDifference) -> dict[str, Any]:
    return {"n": difference.n, "seeds": list(difference.seeds), "values": list(difference.values),
            "mean": difference.mean, "std": difference.std, "se": difference.se,
            "t975": t_quantile_975(difference.n - 1) if difference.n >= 2 else None,
            "ci95": list(difference.ci95) if difference.ci95 else None}


def _effect(effect: Mapping[str, float] | None, metrics: Mapping[str, str]) -> dict[str, float]:
    """The effect size per metric of the task: given by key, or (keys of another task's numbers, as ``--effect``
    gives them) in order; the article's by default."""
    effect = dict(effect or ARTICLE_EFFECT)
    if set(effect) != set(metrics):
        effect = dict(zip(metrics, effect.values()))
    return {metric: float(value) for metric, value in effect.items()}


def build_summary(arms: Sequence[Arm], runs: Sequence[Run], settings: Mapping[str, Any],
                  paths: ReportPaths) -> dict[str, Any]:
    """Every number of the report as plain JSON data (paths as strings)."""
    task = arms[0].config.task if arms else "detect"
    metrics, sources = task_metrics(task), task_sources(task)
    official = next(iter(sources))
    summary_arms = {}
    for arm in arms:
        numbers = {weights: {metric: {source: _spread(_values(runs, arm, weights, prefix + metric))
                                      for source, prefix in sources.items()}
                             for metric in metrics} for weights in WEIGHTS}
        summary_arms[arm.label] = {
            "hyp": display_path(arm.hyp_path), "schedule": arm.schedule, "cawb": arm.cawb, "epochs": arm.epochs,
            "hyp_epochs": arm.hyp_epochs,
            "restarts_hyp": list(arm.restarts_hyp) if arm.restarts_hyp is not None else None,
            "restarts_used": list(arm.restarts_used) if arm.restarts_used is not None else None,
            "restarts_scaled": arm.restarts_scaled, "restarts_effective": list(arm.restarts_effective),
            "article": ARTICLE[arm.cawb] if task == "detect" else None, **numbers,
        }
    pairs, rule = _pairs(arms)
    effect = _effect(settings.get("effect"), metrics)
    differences = []
    for base, other, label, other_name, base_name in pairs:
        record: dict[str, Any] = {"label": label, "base": base.label, "other": other.label,
                                  "article": _article_difference(base, other) if task == "detect" else None}
        for weights in WEIGHTS:
            record[weights] = {}
            for metric in metrics:
                by_source = {source: paired_difference(_values(runs, base, weights, prefix + metric),
                                                       _values(runs, other, weights, prefix + metric))
                             for source, prefix in sources.items()}
                record[weights][metric] = {source: _difference_record(d) for source, d in by_source.items()}
                record[weights][metric]["verdict"] = verdict(by_source[official], other_name, base_name)
                record[weights][metric].update(seed_power(by_source[official], effect[metric]))
        differences.append(record)
    return {
        "settings": dict(settings),
        "task": task,
        "metrics": metrics,
        "official_source": official,
        "pairing": rule,
        "arms": summary_arms,
        "differences": differences,
        "power": {"test": "paired t-test, two-sided", "alpha": ALPHA, "power": POWER, "effect": effect,
                  "distribution": "noncentral t (scipy.stats.nct)",
                  "sd": f"the sample std of the {official} paired differences of the seeds run",
                  "fields": f"differences[].{{final,best}}.{{{','.join(metrics)}}}.seeds_needed / "
                            "detectable_difference"},
        "article_note": ARTICLE_NOTE,
        "runs": [_run_summary(run) for run in runs],
        "failed": [f"{run.name}: {run.error}" for run in runs if run.status == RunStatus.FAILED],
        "missing": [f"{run.name}: {run.error or 'not finished'}" for run in runs if run.status == RunStatus.PENDING],
        "outputs": {name: str(path) for name, path in zip(("table_md", "table_csv", "summary_json", "lr_png",
                                                             "map_png"), paths.all())},
    }


def _article_difference(base: Arm, other: Arm) -> dict[str, float] | None:
    if base.cawb == other.cawb:
        return None
    return {metric: round(ARTICLE[other.cawb][metric] - ARTICLE[base.cawb][metric], 6) for metric in METRICS}


def _run_summary(run: Run) -> dict[str, Any]:
    record = {"arm": run.arm.label, "seed": run.seed, "run_dir": str(run.run_dir), "action": run.action.value,
              "status": run.status.value, "error": run.error}
    if run.evaluation is not None:
        keep = ("weights", "map50", "map50_95", "ultralytics_map50", "ultralytics_map50_95", "v5_map50",
                "v5_map50_95", "stats", "num_detections", "predictions")
        if run.evaluation.get("task", "detect") != "detect":  # ultralytics' validator's numbers of the task
            keep = tuple(run.evaluation["final"])
        record.update({weights: {key: run.evaluation[weights].get(key) for key in keep} for weights in WEIGHTS})
        record.update(epochs_trained=run.evaluation["epochs_trained"], best_epoch=run.evaluation["best_epoch"])
    return record


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _mean_pm_std(spread: Mapping[str, Any], signed: bool = False) -> str:
    if not spread["n"]:
        return "n/a"
    return f"{_number(spread['mean'], signed)} ± {_number(spread['std'])}"


def _metrics(summary: Mapping[str, Any]) -> dict[str, str]:
    """The summary's numbers (record key -> name); a summary written before other tasks existed is detection's."""
    return summary.get("metrics", METRICS)


def _with_article(summary: Mapping[str, Any]) -> bool:
    """The article's numbers are detection mAPs: shown beside a detection comparison only."""
    return summary.get("task", "detect") == "detect"


def _table_sources(summary: Mapping[str, Any]) -> dict[str, str]:
    """The sources the table shows, with their columns' suffixes: detection's, or the official one alone."""
    return TABLE_SOURCES if _with_article(summary) else {summary["official_source"]: ""}


def _table_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The table's rows (arms, then differences) as column -> text; the same rows feed table.md and table.csv."""
    rows = []
    metrics, official, sources = _metrics(summary), summary["official_source"], _table_sources(summary)
    first, article_metrics = next(iter(metrics)), metrics if _with_article(summary) else {}
    for label, arm in summary["arms"].items():
        schedule = arm["schedule"]
        if arm["cawb"] and arm["restarts_effective"]:
            schedule += f" (restarts {', '.join(f'{s:g}' for s in arm['restarts_effective'])})"
        row = {"arm": label, "schedule": schedule, "seeds": str(arm["final"][first][official]["n"])}
        for source, suffix in sources.items():
            for weights in WEIGHTS:
                for metric in metrics:
                    row[f"{weights} {metric}{suffix}"] = _mean_pm_std(arm[weights][metric][source])
        for metric in article_metrics:
            row[f"article {metric}"] = _number(arm["article"][metric])
        rows.append(row)
    for difference in summary["differences"]:
        pairs = difference["final"][first][official]["n"]
        row = {"arm": f"{difference['label']}, paired", "schedule": "",
               "seeds": f"{pairs} pair{'s' if pairs != 1 else ''}"}
        for source, suffix in sources.items():
            for weights in WEIGHTS:
                for metric in metrics:
                    record = difference[weights][metric][source]
                    row[f"{weights} {metric}{suffix}"] = _mean_pm_std(record, signed=True) if record["n"] else "n/a"
        for metric in article_metrics:
            article = difference["article"]
            row[f"article {metric}"] = _number(article[metric], signed=True) if article else ""
        rows.append(row)
    return rows


def _column_title(column: str, metrics: Mapping[str, str]) -> str:
    weights, _, rest = column.partition(" ")
    metric, _, source = rest.partition(" ")
    if metric in metrics:
        return f"{WEIGHTS.get(weights, weights)} {metrics[metric]}" + (" (YOLOv5 v5.0)" if source else "")
    return column


def _source_words(summary: Mapping[str, Any]) -> str:
    """What the table's numbers are and where they come from, in words."""
    if _with_article(summary):
        return ("mAP: pycocotools COCOeval bbox on the val split's ground-truth JSON (the project's official numbers; "
                "ultralytics' validator numbers are in summary.json), mean ± sample std over seeds (n/a for one "
                "seed). Final: weights/last.pt. Best epoch: weights/best.pt, ultralytics' pick of the highest "
                "per-epoch mAP_0.5:0.95 on this same val split, hence optimistic. (YOLOv5 v5.0): the same detections "
                "scored as YOLOv5 v5.0's test.py reported mAP (crowd boxes as targets, up to 300 detections per "
                "image, its matching and interpolation), the metric of the article's numbers: hold those columns "
                "against the article's.")
    numbers = " and ".join(_metrics(summary).values())
    return (f"{numbers}: ultralytics' {TASK_NAMES[summary['task']]} validator on the val split (pycocotools does not "
            "apply to this task), mean ± sample std over seeds (n/a for one seed). Final: weights/last.pt. Best "
            "epoch: weights/best.pt, ultralytics' pick of the highest per-epoch fitness on this same val split, hence "
            "optimistic.")


def render_table_md(summary: Mapping[str, Any]) -> str:
    """table.md: the settings, the table (pycocotools numbers), the verdicts, the article note, failed runs."""
    settings = summary["settings"]
    metrics = _metrics(summary)
    rows = _table_rows(summary)
    columns = list(rows[0]) if rows else []
    what = "mAP" if _with_article(summary) else " and ".join(metrics.values())
    lines = [
        f"# {' vs '.join(summary['arms'])}: {what} on the val split",
        "",
        (f"{settings['cfg']} from scratch, {settings['epochs']} epochs, imgsz {settings['imgsz']}, batch "
         f"{settings['batch']}, seeds {', '.join(map(str, settings['seeds']))}; data {settings['data']} "
         f"({settings['train_images']} train / {settings['val_images']} val images)."),
        "",
        _source_words(summary),
        "",
        "| " + " | ".join(_column_title(column, metrics) for column in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(row[column] for column in columns) + " |" for row in rows),
        "",
    ]
    for label, arm in summary["arms"].items():
        if arm["restarts_scaled"]:
            lines.append(f"- {label}: restarts {arm['restarts_hyp']} of the hyp file's {arm['hyp_epochs']} epochs "
                         f"scaled to {arm['restarts_used']} of {arm['epochs']}.")
        ignored = sorted(set(arm["restarts_used"] or ()) - set(arm["restarts_effective"]))
        if arm["cawb"] and ignored:
            lines.append(f"- {label}: restarts {', '.join(f'{s:g}' for s in ignored)} ignored: the run would not "
                         "make them (a restart shows from the epoch after it, so it must come after the warmup and "
                         "before the last epoch).")
    if summary["differences"]:
        lines.append(f"- Paired rows: mean ± sample std over seeds of the per-seed difference "
                     f"({summary['pairing']}).")
    for difference in summary["differences"]:
        for weights, weights_name in WEIGHTS.items():
            for metric, metric_name in metrics.items():
                lines.append(f"- {difference['label']}, {weights_name} {metric_name}: "
                             f"{difference[weights][metric]['verdict']}.")
    power = summary["power"]
    if summary["differences"] and all(difference[weights][metric]["seeds_needed"] is None
                                      for difference in summary["differences"] for weights in WEIGHTS
                                      for metric in metrics):
        effects = " / ".join(f"{power['effect'][metric]:+.3f} {name}" for metric, name in metrics.items())
        lines.append(f"- How many seeds: it takes the spread of at least 2 pairs to say; run 2 or more seeds in "
                     f"both arms, and the report gives the seeds a {_TEST_WORDS.format(**power)} needs to tell "
                     f"{effects} from zero.")
    else:
        for difference in summary["differences"]:
            for weights, weights_name in WEIGHTS.items():
                for metric, metric_name in metrics.items():
                    lines.append(f"- How many seeds, {difference['label']}, {weights_name} {metric_name}: "
                                 f"{_power_words(difference[weights][metric], power)}.")
    if _with_article(summary):
        lines.append(f"- {summary['article_note']}")
    for failure in summary["failed"]:
        lines.append(f"- FAILED: {failure}")
    for missing in summary.get("missing", ()):
        lines.append(f"- MISSING (not in this table): {missing}")
    return "\n".join(lines) + "\n"


_TEST_WORDS = "paired t-test ({alpha:.0%} two-sided, {power:.0%} power, noncentral t)"


def _power_words(record: Mapping[str, Any], power: Mapping[str, Any]) -> str:
    """The "how many seeds" sentence of one difference (see :func:`seed_power`)."""
    test = "a " + _TEST_WORDS.format(**power)
    if record["seeds_needed"] is None:
        return (f"it takes the spread of at least 2 pairs to say (run 2 or more seeds in both arms); "
                f"{record['pairs']} pair here")
    pairs = record["pairs"]
    return (f"with the spread of the {pairs} paired differences (sample std {record['sd']:.4f}) as the seed noise, "
            f"{test} needs {record['seeds_needed']} seeds per arm to tell a difference of {record['effect']:+.3f} "
            f"from zero; the {pairs} seeds run detect {record['detectable_difference']:.4f} or more (the std of so "
            "few pairs is itself uncertain)")


def render_table_csv(summary: Mapping[str, Any]) -> str:
    """table.csv: the table's rows, each mean and std in its own column (full precision: Python's shortest
    round-trip repr of each float; empty for n/a)."""
    metrics, official, sources = _metrics(summary), summary["official_source"], _table_sources(summary)
    first, article_metrics = next(iter(metrics)), metrics if _with_article(summary) else {}
    header = ["arm", "schedule", "n"]
    for suffix in sources.values():
        for weights in WEIGHTS:
            for metric in metrics:
                name = f"{weights}_{metric}{suffix.replace(' ', '_')}"
                header += [f"{name}_mean", f"{name}_std"]
    header += [f"article_{metric}" for metric in article_metrics]

    def cell(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for label, arm in summary["arms"].items():
        row = [label, arm["schedule"], arm["final"][first][official]["n"]]
        for source in sources:
            for weights in WEIGHTS:
                for metric in metrics:
                    spread = arm[weights][metric][source]
                    row += [cell(spread["mean"]), cell(spread["std"])]
        writer.writerow(row + [cell(arm["article"][metric]) for metric in article_metrics])
    for difference in summary["differences"]:
        row = [f"{difference['label']} (paired)", "", difference["final"][first][official]["n"]]
        for source in sources:
            for weights in WEIGHTS:
                for metric in metrics:
                    record = difference[weights][metric][source]
                    row += [cell(record["mean"]), cell(record["std"])]
        article = difference["article"]
        writer.writerow(row + [cell(article[metric]) if article else "" for metric in article_metrics])
    return buffer.getvalue()


def _band(arm: Arm, curves: Sequence[Mapping[str, list[float]]], metric: str) -> BandCurve:
    """Mean, min and max over runs at the epochs every run has; each run's own curve too with few seeds."""
    epochs = sorted(set.intersection(*(set(curve["epoch"]) for curve in curves)))
    per_run = [dict(zip(curve["epoch"], curve[metric])) for curve in curves]
    columns = [[values[epoch] for values in per_run] for epoch in epochs]
    members = [[values[epoch] for epoch in epochs] for values in per_run] if len(curves) <= MAX_SEED_LINES else []
    seeds = f"{len(curves)} seed{'s' if len(curves) != 1 else ''}" + (", thin: each seed" if len(members) > 1 else "")
    return BandCurve(label=f"{arm.label} ({seeds})", x=epochs, mean=[statistics.fmean(c) for c in columns],
                     low=[min(c) for c in columns], high=[max(c) for c in columns], schedule=arm.schedule,
                     members=members if len(members) > 1 else [], restarts=list(arm.restarts_effective))


#: What map.png says about its numbers' source, under the panels.
MAP_SOURCE_NOTE = ("Per-epoch mAP from ultralytics' validator during training (results.csv); table.md's numbers come "
                   "from pycocotools on the final and best weights, and differ slightly (docs/COMPARE.md, Caveats).")
#: The same, for the tasks whose table comes from ultralytics' validator too.
VALIDATOR_NOTE = ("Per-epoch values from ultralytics' validator during training (results.csv); table.md's numbers "
                  "come from the same validator on the final and best weights.")


def draw_map_curves(arms: Sequence[Arm], runs: Sequence[Run], path: Path, title: str) -> Path:
    """map.png: per-epoch the task's two numbers (mAP_0.5 and mAP_0.5:0.95 for detection; ultralytics' validation
    during training), mean over seeds with a min-max band and, with at most :data:`MAX_SEED_LINES` seeds, each
    seed's line; one colour per schedule (as in lr.png); CAWB restarts dotted. Arms without a finished run are left
    out."""
    task = arms[0].config.task if arms else "detect"
    metrics = task_metrics(task)
    panels: dict[str, list[BandCurve]] = {f"{name} (ultralytics validator, per epoch)": []
                                          for name in metrics.values()}
    for arm in arms:
        curves = [run.curve for run in runs if run.arm is arm and run.status == RunStatus.FINISHED and run.curve]
        if not curves:
            continue
        for metric, panel in zip(metrics, panels.values()):
            panel.append(_band(arm, curves, metric))
    return plot_map_curves(panels, path, title=title, note=MAP_SOURCE_NOTE if task == "detect" else VALIDATOR_NOTE)


def draw_lr_curves(arms: Sequence[Arm], batches_per_epoch: int | None, path: Path) -> Path:
    """lr.png: each arm's planned lr (weights group), per iteration with the warmup ramp when the batch count is
    known, overlaid."""
    curves = [lr_curve(arm.settings, epochs=arm.epochs, batches_per_epoch=batches_per_epoch, label=arm.label,
                       source=str(arm.hyp_path), factor=arm.config.schedule) for arm in arms]
    per = f"{batches_per_epoch} batches per epoch, warmup included" if batches_per_epoch else "per epoch"
    return plot_lr_curves(curves, path, title=f"Learning rate by arm ({per})")


def write_report(arms: Sequence[Arm], runs: Sequence[Run], settings: Mapping[str, Any],
                 paths: ReportPaths) -> dict[str, Any]:
    """Write table.md, table.csv, summary.json, lr.png and map.png (each atomically); return the summary.

    ``settings`` must hold ``data, cfg, epochs, imgsz, batch, seeds, train_images, val_images`` (the table's
    header) and ``batches_per_epoch`` (None draws the lr per epoch, without the warmup ramp); all of it is
    copied into summary.json.
    """
    summary = build_summary(arms, runs, settings, paths)
    paths.table_md.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths.table_md, render_table_md(summary))
    write_text_atomic(paths.table_csv, render_table_csv(summary))
    draw_lr_curves(arms, settings.get("batches_per_epoch"), paths.lr_png)
    draw_map_curves(arms, runs, paths.map_png, title=f"{settings['cfg']}, {settings['epochs']} epochs: "
                    "mean over seeds, band = min to max")
    write_text_atomic(paths.summary_json, json.dumps(summary, indent=2) + "\n")
    return summary
