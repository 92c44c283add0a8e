"""The experiment: cos-vs-CAWB comparisons over seeds, their report, pycocotools evaluation, and the tuner.

* :mod:`.compare`: the runner behind ``scripts/compare.py`` (plan, train/resume/skip each (arm, seed), collect;
  shards and run locks shared with other processes);
* :mod:`.parallel` and :mod:`.worker`: ``--jobs N``: device slots, one worker process per run, its progress;
* :mod:`.report`: statistics over seeds, ``table.md`` / ``table.csv`` / ``summary.json`` and the figures;
* :mod:`.power`: how many seeds a paired t-test needs (noncentral t);
* :mod:`.evaluate`: pycocotools mAP of trained weights (``scripts/evaluate.py``);
* :mod:`.tune`, :mod:`.tune_space`, :mod:`.tune_report`: the Optuna search over the CAWB settings behind
  ``scripts/tune.py``, its search space, and its outputs (``best_hyp.yaml``, ``trials.csv``, figures).

The top adapter layer: may import the core, ``cawb.training``, ``cawb.yolov5``, ``cawb.datasets`` and
``cawb.utils``; nothing in ``cawb`` imports it. torch, ultralytics and OpenCV are imported inside functions, so the
scripts' ``--help`` is quick.
"""
