"""cawb/experiment/tune_report.py: best_hyp.yaml's text, trials.csv rows, importances and figures, on synthetic
studies (the real tiny studies are in test_tune.py)."""

import optuna
import yaml
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from cawb.experiment.tune_report import _importances, _plot_history, _trial_rows, best_hyp_text

PNG = b"\x89PNG\r\n\x1a\n"


def test_best_hyp_keeps_the_base_file_and_marks_what_the_tuner_set():
    base = "# my base\nlr0: 0.01 # (float) peak lr\ncawb: false\ncawb_steps: [4, 11] # old restarts\n"
    text = best_hyp_text(base, {"cawb": True, "cawb_steps": [3], "lr0": 0.01, "cawb_lf": "linear"},
                         header=["study 's', trial 2"])
    assert text.startswith("# study 's', trial 2\n")
    assert "# my base" in text and "lr0: 0.01 # (float) peak lr" in text  # unchanged lines stay as they were
    assert "cawb_steps: [3] # tuned (base: [4, 11])" in text and "cawb: true # tuned (base: false)" in text
    assert "cawb_lf: linear # tuned" in text  # a key the base lacks is appended
    assert yaml.safe_load(text) == {"lr0": 0.01, "cawb": True, "cawb_steps": [3], "cawb_lf": "linear"}


def test_best_hyp_of_a_base_file_the_line_edit_cannot_handle_is_plain_yaml():
    base = "lr0: 0.01\ncawb_steps:\n  - 4\n  - 11\n"
    text = best_hyp_text(base, {"cawb_steps": [2, 5]}, header=["h"])
    assert yaml.safe_load(text) == {"lr0": 0.01, "cawb_steps": [2, 5]}


def synthetic_study():
    """Six complete trials whose value follows cawb_lf_min (step_scale is noise), one with a conditional restart
    position, and two pruned trials."""
    study = optuna.create_study(direction="maximize")
    lf_min, step, count = FloatDistribution(0, 0.6), FloatDistribution(0.3, 1.2), IntDistribution(0, 3)
    for i, (m, g) in enumerate([(0.0, 1.0), (0.1, 0.4), (0.2, 0.9), (0.3, 0.5), (0.4, 0.8), (0.5, 0.6)]):
        params = {"n_restarts": i % 2, "cawb_lf_min": m, "cawb_step_scale": g}
        distributions = {"n_restarts": count, "cawb_lf_min": lf_min, "cawb_step_scale": step}
        if i % 2:
            params["restart_1"], distributions["restart_1"] = 0.5, FloatDistribution(0, 1)
        study.add_trial(create_trial(value=m, params=params, distributions=distributions,
                                     intermediate_values={1: m / 2, 2: m}, user_attrs={"restart_epochs": [],
                                                                                      "epochs_reached": 2}))
    for value in (0.01, 0.02):
        study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={1: value},
                                     params={"n_restarts": 0, "cawb_lf_min": 0.0, "cawb_step_scale": 1.0},
                                     distributions={"n_restarts": count, "cawb_lf_min": lf_min,
                                                    "cawb_step_scale": step},
                                     user_attrs={"restart_epochs": [], "epochs_reached": 1}))
    return study


def test_importances_rank_what_explains_the_value_and_skip_conditional_positions():
    importances, reason = _importances(synthetic_study())
    assert reason == "" and set(importances) == {"n_restarts", "cawb_lf_min", "cawb_step_scale"}
    assert max(importances, key=importances.get) == "cawb_lf_min"


def test_trials_csv_rows_give_a_value_only_to_complete_trials(tmp_path):
    study = synthetic_study()
    header, rows = _trial_rows(study.get_trials(), "fitness")
    assert header[:5] == ["number", "state", "fitness", "epochs_reached", "restart_epochs"]
    assert header[5:7] == ["n_restarts", "restart_1"]  # the restarts first, then the other parameters
    pruned = [row for row in rows if row[1] == "PRUNED"]
    assert len(pruned) == 2 and all(row[2] == "" and row[3] == 1 for row in pruned)
    assert [row[2] for row in rows if row[1] == "COMPLETE"] == [repr(v) for v in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)]
    _plot_history(study.get_trials(), "fitness", tmp_path / "history.png", "t")
    assert (tmp_path / "history.png").read_bytes().startswith(PNG)
