"""The experiment: cos-vs-CAWB comparisons over seeds, their report, pycocotools evaluation, and the tuner.

* :mod:`.compare`: the runner behind ``scripts/compare.py`` (plan, train/resume/skip each (arm, seed), collect);
* :mod:`.report`: statistics over seeds, ``table.md`` / ``table.csv`` / ``summary.json`` and the figures;
* :mod:`.evaluate`: pycocotools mAP of trained weights (``scripts/evaluate.py``);
* :mod:`.tune`, :mod:`.tune_space`, :mod:`.tune_report`: the Optuna search over the CAWB settings behind
  ``scripts/tune.py``, its search space, and its outputs (``best_hyp.yaml``, ``trials.csv``, figures).

The top adapter layer: may import the core, ``cawb.training``, ``cawb.datasets`` and ``cawb.utils``; nothing in
``cawb`` imports it. torch, ultralytics and OpenCV are imported inside functions, so the scripts' ``--help`` is quick.
"""
