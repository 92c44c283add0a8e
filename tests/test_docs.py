"""README.md and .ci/run agree with the code: the test command, the hyp keys and their defaults."""

import re
from pathlib import Path

import yaml

from cawb.training.hyp import CAWB_HYP_KEYS, cawb_hyp_defaults

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def quick_start_commands():
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("pip install")]


def test_ci_runs_exactly_the_readme_test_command():
    main_job, test_command = quick_start_commands()
    assert main_job == "pip install -e . && python train_cawb.py"
    ci = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ci[-1] == test_command


def test_readme_hyp_key_table_matches_the_code():
    rows = dict(re.findall(r"^\| `(cawb\w*)` \| `([^`]*)` \|", README, flags=re.MULTILINE))
    assert set(rows) == set(CAWB_HYP_KEYS)
    for key, default in cawb_hyp_defaults().items():
        assert yaml.safe_load(rows[key]) == default, key


def test_readme_pipeline_table_gives_each_keys_v5_0_and_ultralytics_values():
    from cawb.yolov5.recipe import PIPELINE_KEYS

    rows = re.findall(r"^\| [^|]+ \| [^|]+ \| `(\w+): ([^`]+)` \| .*\(`([^`]+)`\) \|$", README, flags=re.MULTILINE)
    assert {key: (yaml.safe_load(v5), yaml.safe_load(ultralytics)) for key, v5, ultralytics in rows} == {
        key: (v5, ultralytics) for key, (ultralytics, v5, _) in PIPELINE_KEYS.items()}
