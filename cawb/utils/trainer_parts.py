"""What cawb's trainer parts share: the settings each adds to an ultralytics trainer's args, and being built from a
checked run configuration.

A trainer part is a mixin placed before an ultralytics trainer class (``class T(CawbMixin, SegmentationTrainer)``).
Its settings ride in the trainer's ``args`` beside ultralytics' own, so checkpoints (``train_args``), resume and DDP
workers carry them; :class:`AddedArgs` makes ultralytics accept them (its key check compares overrides with the base
config's keys), fills them into the args of a checkpoint written before they existed, and hides them from
ultralytics' components that check keys again (its validators).

A trainer built by :meth:`TrainerPart.configured` holds the :class:`cawb.training.config.RunConfig` it was planned
from (``run_config``): its parts use the checked settings and check nothing again. Built the usual way (ultralytics'
``model.train(trainer=...)``, a DDP worker), each part checks its own settings in ``__init__``, before ultralytics
creates the run directory.

Imports ultralytics inside functions only.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

__all__ = ["AddedArgs", "TrainerPart"]


class AddedArgs:
    """A trainer part's settings (``defaults``: key -> default) in ultralytics' trainer args."""

    def __init__(self, defaults: Mapping[str, Any]):
        self.defaults = dict(defaults)

    def widen(self, cfg: Any) -> dict[str, Any]:
        """The base config ``cfg`` (a dict, path or namespace, as ultralytics takes it) with these keys added."""
        from ultralytics.cfg import cfg2dict

        return {**self.defaults, **cfg2dict(cfg)}

    def fill(self, args: Any) -> None:
        """Give ``args`` the keys it lacks (the settings of a checkpoint written before a key existed)."""
        for key, default in self.defaults.items():
            if not hasattr(args, key):
                setattr(args, key, default)

    @contextlib.contextmanager
    def hidden(self, trainer: Any) -> Iterator[None]:
        """Within the block ``trainer.args`` lacks these keys (ultralytics' validator refuses keys it does not know)."""
        from ultralytics.utils import IterableSimpleNamespace

        args = trainer.args
        trainer.args = IterableSimpleNamespace(**{k: v for k, v in vars(args).items() if k not in self.defaults})
        try:
            yield
        finally:
            trainer.args = args


class TrainerPart:
    """Base of cawb's trainer mixins: the run configuration a trainer was built from, if any."""

    #: The checked configuration this trainer was built from (:meth:`configured`); None when built from raw args.
    run_config: Any = None

    @classmethod
    def configured(cls, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Build the trainer for a checked run configuration (``functools.partial(T.configured, config)`` is what
        ultralytics' ``model.train(trainer=...)`` takes): its parts use it instead of checking the args again."""
        trainer = cls.__new__(cls)
        trainer.run_config = config
        trainer.__init__(*args, **kwargs)
        return trainer
