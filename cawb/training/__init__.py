"""Training on ultralytics: hyp files, the checked run configuration, cawb's trainer parts and the trainer made of
them, and the library behind ``train_cawb.py``.

* :mod:`.hyp`: hyp YAML files (ultralytics' keys plus the ``cawb_*`` keys), checked, and the schedule they describe;
  :mod:`.ultralytics_settings`: ultralytics' own type and range checks of its settings, run up front;
* :mod:`.config`: :func:`~cawb.training.config.plan_run`, which merges defaults < hyp file < options and checks all
  of it once into a frozen :class:`~cawb.training.config.RunConfig`;
* :mod:`.train`: ``train(config)``, what ``train_cawb.py`` runs (its flags are :mod:`cawb.cli.train`);
* the trainer parts, each a mixin for any ultralytics trainer: :mod:`.cawb_mixin` (the CAWB schedule),
  :mod:`.durable` (checkpoints written atomically and durably, one ``results.csv`` row per epoch),
  :mod:`.exact_resume` (a resumed run repeats the stopped one), :mod:`.lr_figure` (``lr.png``), :mod:`.offline`
  (nothing downloaded), :mod:`.warmup_floor` (the recipe's keys for the other tasks); with
  :class:`cawb.yolov5.trainer.V5RecipeMixin` they make :mod:`.trainer`'s ``CawbDetectionTrainer``, and the trainer of
  each other task; :mod:`.tasks`: which task a model and a dataset are for, and each task's numbers and offline
  data; :mod:`.model`: ``cawb.YOLO``, ultralytics' ``YOLO`` that builds the v5.0 yamls too;
* :mod:`.lr_curve`: the per-epoch / per-iteration lr of a hyp file, warmup included;
* :mod:`.checkpoints`: what a ``.pt`` file holds, where a resume may write, ``--exist-ok`` over a run refused.

May import: the schedule (``cawb.schedule``, ``cawb.lr_scheduler``), ``cawb.yolov5``, ``cawb.datasets``,
``cawb.utils``, torch and ultralytics. Not ``cawb.experiment`` or ``cawb.coco``. ultralytics is imported inside
functions where a ``--help`` would otherwise wait for it.
"""
