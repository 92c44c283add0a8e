"""cawb's one point of contact with ultralytics' internals, for the range of ultralytics releases it supports.

cawb is a plugin: it runs on the ultralytics a user already has. Whatever it uses that ultralytics does not promise
to keep (private trainer hooks, module constants, the settings file, cached online flags, the AMP check) is reached
through this package, which finds out what the installed release offers by looking for the feature itself (a
method, a constant, a module), not by reading its version string, and gives the rest of cawb one surface, this
package's names (its modules support, settings, trainer, v5_pipeline, places and network are its inside:
import from the package):

* the range: :data:`OLDEST_SUPPORTED` up to :data:`NEWEST_TESTED` (docs/RESULTS.md lists the releases tried and
  why older ones are not supported); :func:`require_supported_ultralytics` refuses any other installation, or a
  newer one that lacks a hook cawb overrides or calls (:data:`HOOKS`), with one line that names
  the installed version, the range and the fix;
* settings: ultralytics' defaults (:func:`default_settings`), its type lists (:func:`setting_rules`) and the
  optimizer names its trainer builds (:func:`optimizer_names`, a fixed table: ultralytics keeps them in a local);
* the trainer: its stock per-epoch lr multiplier (:func:`stock_lr_factor`), its warmup length
  (:func:`stock_warmup_iterations`) and how the ramp ends (:func:`warmup_lands_on_target`, a fixed table), what
  picks ``best.pt`` (:data:`FITNESS_COLUMNS`, a fixed table), the class names set before loading weights (:func:`model_names_for_load`), the AMP check it runs
  (:func:`replaced_amp_check`) and how it writes checkpoints (:func:`durable_checkpoint_writes`);
* datasets: the image suffixes its loaders read (:func:`image_formats`) and Pillow's own ``Image.open``
  (:func:`pillow_image_open`);
* the process: :func:`cpu_threads` (the CPU thread count ultralytics resets torch to);
* where YOLOv5 v5.0 trained otherwise: the optimizer step with the clipping threshold as a setting
  (:func:`optimizer_step`), the per-epoch schedule lagged by one epoch (:func:`lag_epoch_schedule`), the training
  augmentation configured per dataset (:func:`configure_train_augmentation`), and what ultralytics fixes in its code
  (:data:`ULTRALYTICS_MAX_GRAD_NORM`, :data:`ULTRALYTICS_BOX_AR_THR`, the metric names :data:`MAP50_KEY` and
  :data:`MAP50_95_KEY`);
* its places: its ``datasets_dir`` and ``runs_dir`` settings (:func:`datasets_dir`, :func:`runs_dir`, read from its
  settings object at the time of use, so a change made in the same process counts) and the dataset yamls it ships
  (:func:`ultralytics_dataset_yaml`: ``coco8.yaml`` by name, as ``yolo train`` takes it);
* the network: :func:`keep_ultralytics_offline` (its offline variable and the online flags it caches).

Imports ultralytics only inside functions: ``import cawb`` and every ``--help`` stay free of it (and of torch).
"""

from __future__ import annotations

from cawb.utils.ultralytics_compat.network import (
    OFFLINE_VARIABLE,
    keep_ultralytics_offline,
)
from cawb.utils.ultralytics_compat.places import (
    datasets_dir,
    is_ultralytics_dataset_yaml,
    runs_dir,
    settings_file,
    ultralytics_dataset_names,
    ultralytics_dataset_yaml,
)
from cawb.utils.ultralytics_compat.settings import (
    PLUGIN_IMAGE_FORMATS,
    default_settings,
    image_formats,
    optimizer_names,
    pillow_image_open,
    setting_rules,
)
from cawb.utils.ultralytics_compat.support import (
    HOOKS,
    NEWEST_TESTED,
    OLDEST_SUPPORTED,
    UnsupportedUltralytics,
    installed_version,
    require_supported_ultralytics,
)
from cawb.utils.ultralytics_compat.trainer import (
    AMP_CHECK_WEIGHTS,
    FITNESS_COLUMNS,
    cpu_threads,
    durable_checkpoint_writes,
    model_names_for_load,
    replaced_amp_check,
    stock_lr_factor,
    stock_warmup_iterations,
    warmup_lands_on_target,
)
from cawb.utils.ultralytics_compat.v5_pipeline import (
    MAP50_95_KEY,
    MAP50_KEY,
    ULTRALYTICS_BOX_AR_THR,
    ULTRALYTICS_MAX_GRAD_NORM,
    configure_train_augmentation,
    lag_epoch_schedule,
    optimizer_step,
)

__all__ = [
    "AMP_CHECK_WEIGHTS",
    "FITNESS_COLUMNS",
    "MAP50_95_KEY",
    "MAP50_KEY",
    "NEWEST_TESTED",
    "OFFLINE_VARIABLE",
    "OLDEST_SUPPORTED",
    "PLUGIN_IMAGE_FORMATS",
    "HOOKS",
    "ULTRALYTICS_BOX_AR_THR",
    "ULTRALYTICS_MAX_GRAD_NORM",
    "UnsupportedUltralytics",
    "configure_train_augmentation",
    "cpu_threads",
    "datasets_dir",
    "default_settings",
    "durable_checkpoint_writes",
    "image_formats",
    "pillow_image_open",
    "installed_version",
    "is_ultralytics_dataset_yaml",
    "keep_ultralytics_offline",
    "lag_epoch_schedule",
    "model_names_for_load",
    "optimizer_names",
    "optimizer_step",
    "replaced_amp_check",
    "require_supported_ultralytics",
    "runs_dir",
    "settings_file",
    "setting_rules",
    "stock_lr_factor",
    "stock_warmup_iterations",
    "ultralytics_dataset_names",
    "ultralytics_dataset_yaml",
    "warmup_lands_on_target",
]
