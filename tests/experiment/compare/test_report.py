"""cawb/experiment/compare/report.py: the report files on hand-made runs, and where they go."""

import csv
import io
import json
import math
from pathlib import Path

import pytest

from cawb.experiment.compare.model import Arm, Run, RunStatus
from cawb.experiment.compare.report import report_paths, write_report
from cawb.experiment.power import paired_t_power

REPO_ROOT = Path(__file__).resolve().parents[3]
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_paths_never_reuse_an_existing_report(tmp_path):
    assert report_paths(tmp_path, exist_ok=False).table_md == tmp_path / "table.md"
    (tmp_path / "table.md").write_text("earlier")
    second = report_paths(tmp_path, exist_ok=False)
    assert second.suffix == "-2" and second.summary_json == tmp_path / "summary-2.json"
    (tmp_path / "map-2.png").write_bytes(b"")  # any file of a set takes the whole set
    assert report_paths(tmp_path, exist_ok=False).table_csv == tmp_path / "table-3.csv"
    assert report_paths(tmp_path, exist_ok=True).table_md == tmp_path / "table.md"


def _arm(label, cawb):
    from cawb.training.config import RunConfig
    from cawb.training.hyp import read_hyp_file, schedule_from_hyp

    hyp = read_hyp_file(REPO_ROOT / "hyp" / f"hyp.shapes-{'cawb' if cawb else 'cos'}.yaml")
    config = RunConfig(model_source="yolov5n.yaml", weights=None, overrides=dict(hyp.settings),
                       schedule=schedule_from_hyp(hyp.settings))
    return Arm(label=label, hyp=hyp, config=config, restarts_hyp=(4, 11) if cawb else None,
               restarts_used=(4, 11) if cawb else None)


def _run(arm, seed, final50, final5095, tmp_path, status="finished", v5=None):
    numbers = {"map50": final50, "map50_95": final5095, "ultralytics_map50": final50 + 0.01,
               "ultralytics_map50_95": final5095 + 0.005, "stats": [final5095, final50], "num_detections": 10,
               "weights": "w.pt", "predictions": "p.json"}
    if v5 is not None:  # records written before YOLOv5 v5.0's numbers existed lack them
        numbers.update(v5_map50=v5[0], v5_map50_95=v5[1])
    evaluation = {"final": numbers, "best": {**numbers, "map50": final50 + 0.02}, "epochs_trained": 3,
                  "best_epoch": 2}
    curve = {"epoch": [1, 2, 3], "map50": [0.1, final50 - 0.1, final50], "map50_95": [0.05, 0.1, final5095]}
    if status != "finished":
        return Run(arm=arm, seed=seed, run_dir=tmp_path / f"{arm.label}-{seed}", status=RunStatus(status),
                   error="RuntimeError: boom")
    return Run(arm=arm, seed=seed, run_dir=tmp_path / f"{arm.label}-{seed}", status=RunStatus(status),
               evaluation=evaluation, curve=curve)


SETTINGS = {"data": "data/shapes.yaml", "cfg": "yolov5n.yaml", "epochs": 20, "imgsz": 128, "batch": 16,
            "seeds": [0, 1, 2], "train_images": 256, "val_images": 64, "batches_per_epoch": 16}


def test_report_on_hand_made_runs(tmp_path):
    arms = [_arm("cos-arm", False), _arm("cawb-arm", True)]
    cos_arm, cawb_arm = arms
    runs = [_run(cos_arm, 0, 0.30, 0.16, tmp_path), _run(cos_arm, 1, 0.32, 0.17, tmp_path),
            _run(cos_arm, 2, 0.34, 0.18, tmp_path),
            _run(cawb_arm, 0, 0.31, 0.165, tmp_path), _run(cawb_arm, 1, 0.34, 0.18, tmp_path),
            _run(cawb_arm, 2, 0.0, 0.0, tmp_path, status="failed")]
    paths = report_paths(tmp_path / "project", exist_ok=False)
    summary = write_report(arms, runs, SETTINGS, paths)

    for path in (paths.table_md, paths.table_csv, paths.summary_json):
        assert path.is_file()
    for path in (paths.lr_png, paths.map_png):
        assert path.read_bytes()[:8] == PNG
    assert json.loads(paths.summary_json.read_text()) == summary

    cos = summary["arms"]["cos-arm"]["final"]["map50"]["pycocotools"]
    assert cos["n"] == 3 and cos["mean"] == pytest.approx(0.32) and cos["std"] == pytest.approx(0.02)
    ultra = summary["arms"]["cos-arm"]["final"]["map50"]["ultralytics"]
    assert ultra["mean"] == pytest.approx(0.33)
    cawb = summary["arms"]["cawb-arm"]["final"]["map50"]["pycocotools"]
    assert cawb["n"] == 2 and cawb["mean"] == pytest.approx(0.325)  # the failed seed 2 is not counted
    assert cawb["std"] == pytest.approx(math.sqrt(2 * 0.015**2))  # deviations +-0.015 over n - 1 = 1

    (difference,) = summary["differences"]
    assert difference["label"] == "CAWB - cos" and difference["article"] == {"map50": 0.008, "map50_95": 0.004}
    paired = difference["final"]["map50"]["pycocotools"]
    assert paired["seeds"] == [0, 1] and paired["values"] == pytest.approx([0.01, 0.02])
    assert paired["mean"] == pytest.approx(0.015) and paired["std"] == pytest.approx(math.sqrt(2 * 0.005**2))
    assert summary["failed"] == ["cawb-arm seed 2: RuntimeError: boom"]
    # how many seeds: the spread of the 2 pairs (std 0.00707) and the article's effect, +0.008 on mAP_0.5
    power = difference["final"]["map50"]
    assert power["effect"] == 0.008 and power["pairs"] == 2 and power["sd"] == pytest.approx(math.sqrt(2 * 0.005**2))
    needed = power["seeds_needed"]
    assert paired_t_power(needed, 0.008, power["sd"]) >= 0.8 > paired_t_power(needed - 1, 0.008, power["sd"])
    assert paired_t_power(2, power["detectable_difference"], power["sd"]) == pytest.approx(0.8)
    assert summary["power"]["alpha"] == 0.05 and summary["power"]["power"] == 0.8

    table = paths.table_md.read_text()
    assert "| cos-arm | cos | 3 | 0.320 ± 0.020 |" in table
    assert "| cawb-arm | CAWB (restarts 4, 11) | 2 | 0.325 ± 0.021 |" in table
    assert "| CAWB - cos, paired |  | 2 pairs | +0.015 ± 0.007 |" in table
    assert "0.294 | 0.161 |" in table and "0.302 | 0.165 |" in table and "+0.008 | +0.004 |" in table
    assert "pycocotools" in table and "anchor-based YOLOv5" in table and "FAILED: cawb-arm seed 2" in table
    assert (f"- How many seeds, CAWB - cos, final mAP_0.5: with the spread of the 2 paired differences (sample std "
            f"0.0071) as the seed noise, a paired t-test (5% two-sided, 80% power, noncentral t) needs {needed} seeds "
            "per arm to tell a difference of +0.008 from zero") in table

    rows = list(csv.DictReader(io.StringIO(paths.table_csv.read_text())))
    assert [row["arm"] for row in rows] == ["cos-arm", "cawb-arm", "CAWB - cos (paired)"]
    assert float(rows[0]["final_map50_mean"]) == pytest.approx(0.32)
    assert float(rows[0]["final_map50_std"]) == pytest.approx(0.02)
    assert float(rows[2]["article_map50"]) == pytest.approx(0.008)


def test_one_seed_shows_n_a_and_three_arms_difference_against_the_first(tmp_path):
    arms = [_arm("a", False), _arm("b", True), _arm("c", True)]
    runs = [_run(arm, 0, 0.3, 0.15, tmp_path) for arm in arms]
    summary = write_report(arms, runs, {**SETTINGS, "seeds": [0]}, report_paths(tmp_path, exist_ok=False))
    assert [d["label"] for d in summary["differences"]] == ["b - a", "c - a"]
    assert [d["article"] for d in summary["differences"]] == [{"map50": 0.008, "map50_95": 0.004}] * 2
    assert summary["pairing"] == "each arm's seed k minus a seed k"
    table = (tmp_path / "table.md").read_text()
    assert "0.300 ± n/a" in table and "1 pair |" in table and "cannot be told" in table
    assert all(d[w][m]["seeds_needed"] is None and d[w][m]["detectable_difference"] is None
               for d in summary["differences"] for w in ("final", "best") for m in ("map50", "map50_95"))
    assert "How many seeds: it takes the spread of at least 2 pairs" in table


def test_a_chosen_effect_is_used_and_table_csv_keeps_full_precision(tmp_path):
    arms = [_arm("cos-arm", False), _arm("cawb-arm", True)]
    values = {0: (0.123456789012345, 0.1), 1: (0.2, 0.11), 2: (0.3, 0.12)}
    runs = [_run(arms[0], seed, a, b, tmp_path) for seed, (a, b) in values.items()]
    runs += [_run(arms[1], seed, a + 0.01 * (seed + 1), b, tmp_path) for seed, (a, b) in values.items()]
    paths = report_paths(tmp_path / "p", exist_ok=False)
    summary = write_report(arms, runs, {**SETTINGS, "effect": {"map50": 0.02, "map50_95": 0.01}}, paths)
    record = summary["differences"][0]["final"]["map50"]
    assert record["effect"] == 0.02 and summary["power"]["effect"] == {"map50": 0.02, "map50_95": 0.01}
    assert paired_t_power(record["seeds_needed"], 0.02, record["sd"]) >= 0.8
    rows = list(csv.DictReader(io.StringIO(paths.table_csv.read_text())))
    cos_mean = summary["arms"]["cos-arm"]["final"]["map50"]["pycocotools"]["mean"]
    assert float(rows[0]["final_map50_mean"]) == cos_mean  # exactly: not rounded to 6 digits
    assert float(rows[2]["final_map50_std"]) == summary["differences"][0]["final"]["map50"]["pycocotools"]["std"]


def test_map_curves_use_the_epochs_every_seed_has_and_draw_few_seeds_one_by_one():
    from cawb.experiment.compare.report import MAX_SEED_LINES, _band

    arm = _arm("arm", True)
    band = _band(arm, [{"epoch": [1, 2, 3], "map50": [0.1, 0.2, 0.3]}, {"epoch": [1, 2], "map50": [0.3, 0.4]}],
                 "map50")
    assert band.x == [1, 2] and band.mean == pytest.approx([0.2, 0.3])
    assert band.low == [0.1, 0.2] and band.high == [0.3, 0.4] and band.label == "arm (2 seeds, thin: each seed)"
    assert band.members == [[0.1, 0.2], [0.3, 0.4]] and band.schedule == "CAWB" and band.restarts == [4.0, 11.0]
    many = _band(arm, [{"epoch": [1], "map50": [0.1 * i]} for i in range(MAX_SEED_LINES + 1)], "map50")
    assert many.members == [] and many.label == f"arm ({MAX_SEED_LINES + 1} seeds)"


def test_the_table_shows_yolov5_v5_0_numbers_beside_the_article(tmp_path):
    arms = [_arm("cos-arm", False), _arm("cawb-arm", True)]
    runs = [_run(arms[0], 0, 0.30, 0.16, tmp_path, v5=(0.31, 0.17)),
            _run(arms[0], 1, 0.32, 0.17, tmp_path, v5=(0.33, 0.18)),
            _run(arms[1], 0, 0.31, 0.165, tmp_path, v5=(0.34, 0.18)), _run(arms[1], 1, 0.34, 0.18, tmp_path)]
    summary = write_report(arms, runs, {**SETTINGS, "seeds": [0, 1]}, report_paths(tmp_path, exist_ok=False))
    cos = summary["arms"]["cos-arm"]["final"]["map50"]["yolov5 v5.0"]
    assert cos["n"] == 2 and cos["mean"] == pytest.approx(0.32)
    assert summary["arms"]["cawb-arm"]["final"]["map50"]["yolov5 v5.0"]["n"] == 1  # seed 1's record has none
    paired = summary["differences"][0]["final"]["map50"]["yolov5 v5.0"]
    assert paired["seeds"] == [0] and paired["values"] == pytest.approx([0.03])

    table = (tmp_path / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| arm"))
    assert header.endswith("| final mAP_0.5 (YOLOv5 v5.0) | final mAP_0.5:0.95 (YOLOv5 v5.0) | best epoch mAP_0.5 "
                           "(YOLOv5 v5.0) | best epoch mAP_0.5:0.95 (YOLOv5 v5.0) | article mAP_0.5 | article "
                           "mAP_0.5:0.95 |")
    assert "| 0.320 ± 0.014 | 0.175 ± 0.007 | 0.320 ± 0.014 | 0.175 ± 0.007 | 0.294 | 0.161 |" in table
    assert "hold those columns against the article's" in table
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    assert float(rows[0]["final_map50_v5_mean"]) == pytest.approx(0.32) and rows[1]["final_map50_v5_std"] == ""
