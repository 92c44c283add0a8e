"""Training on ultralytics: the CAWB trainer subclass, the library behind ``train_cawb.py``, the switches that keep
ultralytics offline, and the learning rate ultralytics applies for a hyp file.

* :mod:`.trainer`: ``CawbDetectionTrainer``, the thin ``DetectionTrainer`` subclass; it also builds and trains the
  YOLOv5 v5.0 models of :mod:`cawb.yolov5` beside ultralytics' own;
* :mod:`.model`: ``cawb.YOLO``, ultralytics' ``YOLO`` that also builds the v5.0 yamls and trains with that trainer;
* :mod:`.train`: ``train_cawb.py``'s library: defaults, precedence, checks (``plan_run``) and ``train()`` (its
  flags are :mod:`cawb.cli.train`);
* :mod:`.offline`: local fonts and the AMP check without downloads;
* :mod:`.lr_curve`: the per-epoch / per-iteration lr of a hyp file, warmup included, and its plot;
* :mod:`.ultralytics_settings`: ultralytics' own type and range checks of its settings, run up front;
* :mod:`.checkpoints`: what a ``.pt`` file holds, where a resume may write, ``--exist-ok`` over a run refused;
* :mod:`.exact_resume`: the state beside ``last.pt`` that makes a resumed run repeat the stopped one.

May import: the core (``cawb.schedule``, ``cawb.lr_scheduler``, ``cawb.hyp``), ``cawb.yolov5``, ``cawb.datasets``,
``cawb.utils``, torch and ultralytics. Not ``cawb.experiment`` or ``cawb.coco``. ultralytics is imported inside
functions where a ``--help`` would otherwise wait for it.
"""
