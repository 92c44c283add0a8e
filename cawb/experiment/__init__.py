"""The experiment: cos-vs-CAWB comparisons over seeds, their report, and pycocotools evaluation.

* :mod:`.compare`: the runner behind ``scripts/compare.py`` (plan, train/resume/skip each (arm, seed), collect);
* :mod:`.report`: statistics over seeds, ``table.md`` / ``table.csv`` / ``summary.json`` and the figures;
* :mod:`.evaluate`: pycocotools mAP of trained weights (``scripts/evaluate.py``).

The top adapter layer: may import the core, ``cawb.training``, ``cawb.yolov5``, ``cawb.datasets`` and
``cawb.utils``; nothing in ``cawb`` imports it. torch, ultralytics and OpenCV are imported inside functions, so the
scripts' ``--help`` is quick.
"""
