"""The experiment: cos-vs-CAWB comparisons over seeds, their report, pycocotools evaluation, and the tuner.

* :mod:`.compare`: the runner behind ``scripts/compare.py`` (settings, planning, the run-directory protocol,
  execution with ``--jobs`` and shards, report collection, the statistics and figures); :mod:`.presets`: its named
  settings;
* :mod:`.power`: how many seeds a paired t-test needs (noncentral t);
* :mod:`.evaluate`: pycocotools mAP of trained weights (``scripts/evaluate.py``);
* :mod:`.tune` (planning a study and running its trials), :mod:`.tune_settings` (its settings and presets),
  :mod:`.tune_study` (the Optuna study: storage, sampler, pruner), :mod:`.tune_space` (the search space) and
  :mod:`.tune_report` (``best_hyp.yaml``, ``trials.csv``, figures): the Optuna search over the CAWB settings behind
  ``scripts/tune.py``.

The top adapter layer: may import the core, ``cawb.training``, ``cawb.yolov5``, ``cawb.datasets`` and
``cawb.utils``; nothing in ``cawb`` imports it. torch, ultralytics and OpenCV are imported inside functions, so the
scripts' ``--help`` is quick.
"""
