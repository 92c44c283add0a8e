"""benchmarks/gpu_check.sh: the prepared GPU check runs whole, here on the CPU at toy sizes (--dry-run)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_dry_run_measures_every_part_and_appends_to_the_file_it_is_given(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Measured results\n")
    docs_before = (REPO / "docs" / "RESULTS.md").read_bytes()
    out = tmp_path / "out"
    completed = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--results",
                                str(results), "--out", str(out)], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "YOLO_VERBOSE": "False"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (REPO / "docs" / "RESULTS.md").read_bytes() == docs_before  # a dry run never writes into docs

    section = results.read_text().split("\n", 1)[1]
    assert section.lstrip().startswith("### GPU check, ")
    assert "dry run on the CPU (toy sizes: not a measurement)" in section
    assert (out / "gpu_check.md").read_text() in section
    figures = json.loads((out / "gpu_check.json").read_text())
    assert figures["dry_run"] and figures["card"].startswith("CPU")
    for arm in ("v5.0", "ultralytics"):
        assert figures["timing"][arm]["epoch_s"] > 0
    assert figures["timing"]["v5.0"]["article_hours"] > 0
    norms = figures["norms"]
    assert norms["steps"] == len(norms["norms"]) == 4 and all(n > 0 for n in norms["norms"])
    assert figures["jobs"]["wall_s"]["1"] > 0
    assert figures["ddp"] == {"skipped": "0 GPUs: DDP needs two"}
    for line in ("| epoch of yolov5n-v5.0.yaml (16 images", "| the article preset extrapolated: 150 epochs x 10,000",
                 "| training images/s, v5.0 / ultralytics |", "| gradient norm, first 4 optimizer steps, clipping off",
                 "| compare.py, 2 runs of 1 epoch(s) with their evaluation | --jobs 1: ", "| DDP | skipped: 0 GPUs"):
        assert line in section


@pytest.mark.slow
def test_without_a_gpu_the_full_check_refuses_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    completed = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == ("error: no CUDA GPU here; run with --dry-run to test the "
                                                         "script on the CPU")
