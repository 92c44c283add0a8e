"""Exact resume: a resumed run continues the uninterrupted run, not an approximation of it.

ultralytics' ``last.pt`` holds what its resume needs to continue *a* run, and the run it continues differs from
the one that was stopped: the model is taken from the EMA weights (rounded to half precision), the optimizer's
momentum buffers are rounded to half precision, the data order and augmentation start again from the seed, and
gradient accumulation starts again at the first batch. So the loss columns after a resume are not the ones the
uninterrupted run would have written.

The trainer therefore writes ``weights/last.pt.resume-state`` beside ``last.pt`` after every epoch (one device
only): the model, EMA and optimizer in full precision, the gradients accumulated since the last optimizer step and
that step's iteration, the random states (Python, NumPy, torch, CUDA), the train loader's shuffling generator and
the images the dataset keeps loaded for mosaic (mosaic draws its partner images from them).
It records the size and modification time of the ``last.pt`` it belongs to; resuming from that ``last.pt`` (the
file ultralytics wrote, in its run directory or moved with it) restores all of it:

* the weights, EMA and optimizer when the trainer has set up (after ultralytics' own resume loaded its copies);
* the gradients, the random states and the data order at the start of the first resumed epoch, and the
  optimizer-step cadence at its first step.

With ``workers=0`` the resumed run then repeats the uninterrupted one bit for bit on the CPU (tested: every
results.csv column but the time). With dataloader workers, the weights, EMA, optimizer and gradient accumulation
are still exact, but the data order and augmentation are not: the workers' random states live in their processes
and they read ahead into the next epoch. With DDP no state is written and the resume is ultralytics' own. A
``last.pt`` without its state (a copy, ``best.pt``, ``epoch3.pt``, a state from an older epoch) resumes as
ultralytics resumes, and the log says so. A run deletes its state file once its last epoch is saved, before it
strips its checkpoints: a finished run cannot be resumed, also when its finish was interrupted.
"""

from __future__ import annotations

import copy
import io
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from cawb.training.hyp import PART_KEYS
from cawb.utils.atomic_files import write_bytes_atomic
from cawb.utils.errors import InputError, error_line
from cawb.utils.trainer_parts import AddedArgs, TrainerPart

__all__ = ["STATE_SUFFIX", "ExactResume", "ExactResumeMixin", "ResumableRandomSampler", "state_path"]

STATE_SUFFIX = ".resume-state"
_FORMAT = 1


def state_path(checkpoint: Path | str) -> Path:
    """The exact-resume state file that belongs to a ``last.pt``."""
    return Path(f"{checkpoint}{STATE_SUFFIX}")


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _random_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_random_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def _cpu_copy(value: Any) -> Any:
    """``value`` with every tensor in it copied to the CPU (dicts, lists and tuples followed), so that training can
    go on changing the originals while the copy is written."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(item) for item in value)
    return copy.deepcopy(value)


def _write_state(path: Path, state: dict[str, Any]) -> None:
    try:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(path, buffer.getvalue())
    except Exception as error:  # noqa: BLE001 - a full disk must not stop the training; resume falls back
        LOGGER.warning(f"cawb: {path.name} not written ({type(error).__name__}: {error}); a resume from this "
                       "epoch's last.pt will be ultralytics' own")


class ResumableRandomSampler(RandomSampler):
    """torch's ``RandomSampler`` (same order, same draws) that notes its generator's state when an epoch's order
    starts, and can be given the state the next epoch's order starts from (a resumed run's first epoch)."""

    start_state: torch.Tensor | None = None
    pending_state: torch.Tensor | None = None

    def __iter__(self):
        if self.pending_state is not None:
            self.generator.set_state(self.pending_state)
            self.pending_state = None
        self.start_state = self.generator.get_state()
        yield from super().__iter__()


def make_order_resumable(loader) -> None:
    """Give the train loader's shuffling sampler the bookkeeping exact resume needs (one device, shuffled, with a
    generator: ultralytics' train loader; a DDP ``DistributedSampler`` orders by seed and epoch and needs none)."""
    sampler = getattr(loader, "sampler", None)
    if type(sampler) is RandomSampler and sampler.generator is not None:
        sampler.__class__ = ResumableRandomSampler


def _mosaic_buffer(dataset) -> list[int] | None:
    """The indices of the images ultralytics' dataset keeps loaded for mosaic, oldest first (mosaic draws its partner
    images from them), or None for a dataset without that buffer."""
    buffer = getattr(dataset, "buffer", None)
    return [int(i) for i in buffer] if isinstance(buffer, list) else None


def _refill_mosaic_buffer(dataset, indices: list[int] | None) -> None:
    """Load the same images in the same order: the buffer holds what it held (it is never full after a load, so
    loading its indices again drops none of them)."""
    if indices is None or not isinstance(getattr(dataset, "buffer", None), list):
        return
    for i in dataset.buffer:
        dataset.ims[i], dataset.im_hw0[i], dataset.im_hw[i] = None, None, None
    dataset.buffer.clear()
    for i in indices:
        dataset.load_image(i)


class ExactResume:
    """The trainer's side of exact resume: callbacks, the step counter and the ``accumulate`` offset.

    :class:`ExactResumeMixin` owns one and calls :meth:`on_optimizer_step` from its ``optimizer_step``; ``accumulate``
    reads :attr:`step_offset`, which holds back the first resumed optimizer step until the iteration where the
    uninterrupted run made it (ultralytics restarts its own step bookkeeping at -1 on every start).
    """

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.iteration = -1  # the global batch index (ultralytics' ni) of the batch being trained
        self.last_step = -1  # ni of the last optimizer step (-1: none yet), as ultralytics' last_opt_step
        self.step_offset = 0
        self._pending: dict[str, Any] | None = None  # restored at the first resumed epoch's start
        self._writer: threading.Thread | None = None
        for event, callback in (("on_pretrain_routine_end", self.restore_weights),
                                ("on_train_epoch_start", self.on_epoch_start),
                                ("on_train_batch_start", self.on_batch_start),
                                ("on_model_save", self.save),
                                ("on_train_end", self.forget)):
            trainer.add_callback(event, callback)

    # -- bookkeeping while training ----------------------------------------------------------------------------
    def on_epoch_start(self, trainer) -> None:
        self.iteration = trainer.epoch * len(trainer.train_loader) - 1
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._restore_epoch_start(pending)

    def on_batch_start(self, trainer) -> None:
        self.iteration += 1

    def on_optimizer_step(self) -> None:
        self.last_step = self.iteration
        self.step_offset = 0

    # -- writing ----------------------------------------------------------------------------------------------
    @staticmethod
    def _next_epoch_order_state(trainer) -> torch.Tensor | None:
        """The state the loader's generator will have when the next epoch's order is drawn, worked out on a copy.

        From the state this epoch's order started from: this epoch's batches, then what the uninterrupted run does
        before the next order: the sampler asked past the epoch's end (torch draws once more there), or, when the
        next epoch closes mosaic, a new loader iterator (ultralytics resets the loader; the new iterator draws the
        workers' base seed). Done with torch's own sampler and loader code on a scratch generator, so whatever they
        draw is drawn the same way.
        """
        loader = trainer.train_loader
        sampler = loader.sampler
        if not isinstance(sampler, ResumableRandomSampler) or sampler.start_state is None:
            return None
        generator = torch.Generator()
        generator.set_state(sampler.start_state)
        scratch = copy.copy(sampler)
        scratch.__class__, scratch.generator = RandomSampler, generator
        batches = BatchSampler(scratch, loader.batch_size, loader.drop_last)
        order = iter(batches)
        for _ in range(len(batches)):
            next(order)
        close = trainer.args.close_mosaic
        if close and trainer.epoch + 1 == max(0, trainer.epochs - close):
            iter(DataLoader(range(1), generator=generator))
        else:
            for _ in order:
                pass
        return generator.get_state()

    def _enabled(self) -> bool:
        return RANK == -1  # one device: with DDP every rank's random state would be needed

    def save(self, trainer) -> None:
        """After ultralytics wrote last.pt: the state that makes resuming it exact, paired with that file.

        The tensors are copied to the CPU here; serialising and writing them (the model, EMA and optimizer state:
        tens of MB) happens in a thread while the next epoch trains. A new save, the end of the run and the
        process's exit wait for it."""
        if not self._enabled() or not trainer.last.is_file():
            return
        if trainer.stop:  # the run ends after this epoch: no resume; a kill while it finishes leaves no state
            self.forget(trainer)
            return
        model = unwrap_model(trainer.model)
        state = {
            "format": _FORMAT,
            "epoch": trainer.epoch,
            "last_pt": _stamp(trainer.last),
            "model": _cpu_copy(model.state_dict()),
            "ema": _cpu_copy(trainer.ema.ema.state_dict()) if trainer.ema else None,
            "optimizer": _cpu_copy(trainer.optimizer.state_dict()),
            "grads": [None if p.grad is None else _cpu_copy(p.grad) for p in model.parameters()],
            "last_step": self.last_step,
            "random": _random_states(),
            "loader": self._next_epoch_order_state(trainer),
            "mosaic_buffer": _mosaic_buffer(trainer.train_loader.dataset),
        }
        self.wait()
        self._writer = threading.Thread(target=_write_state, args=(state_path(trainer.last), state),
                                        name="cawb-exact-resume-state")  # not a daemon: exit waits for it
        self._writer.start()

    def wait(self) -> None:
        """Until the state being written (if any) is on disk."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def forget(self, trainer) -> None:
        """A finished run cannot be resumed: its state file goes (cawb's own file, written every epoch)."""
        self.wait()
        if self._enabled() and getattr(trainer, "last", None) is not None:
            state_path(trainer.last).unlink(missing_ok=True)

    # -- restoring --------------------------------------------------------------------------------------------
    def _load(self, trainer) -> dict[str, Any] | None:
        checkpoint = Path(trainer.args.resume)
        path = state_path(checkpoint)
        fallback = f"cawb: resuming {checkpoint} as ultralytics does (from its EMA weights, data order from the seed)"
        if not self._enabled():
            LOGGER.info(f"{fallback}: exact resume is for one device, not DDP")
            return None
        if not path.is_file():
            LOGGER.warning(f"{fallback}: no {path.name} beside it")
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unreadable state means the plain resume
            LOGGER.warning(f"{fallback}: {path.name} cannot be read ({type(error).__name__})")
            return None
        if (state.get("format") != _FORMAT or state.get("epoch") != trainer.start_epoch - 1
                or state.get("last_pt") != _stamp(checkpoint)):
            LOGGER.warning(f"{fallback}: {path.name} belongs to another state of the run than {checkpoint.name}")
            return None
        return state

    def restore_weights(self, trainer) -> None:
        """Right after ultralytics' resume loaded its rounded copies: the full-precision model, EMA and optimizer."""
        if not trainer.resume or not trainer.args.resume:
            return
        state = self._load(trainer)
        if state is None:
            return
        model = unwrap_model(trainer.model)
        try:
            model.load_state_dict(state["model"])
            if state["ema"] is not None and trainer.ema:
                trainer.ema.ema.load_state_dict(state["ema"])
            trainer.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:  # another model or optimizer layout
            raise InputError(f"--resume {trainer.args.resume}: its {STATE_SUFFIX} file does not fit the model "
                             f"({error_line(error)})") from None
        self._pending = state
        if trainer.train_loader.num_workers == 0:
            what = "model, EMA and optimizer in full precision, accumulated gradients, random states and data order"
        else:
            what = ("model, EMA and optimizer in full precision and accumulated gradients (with dataloader workers "
                    "the data order and augmentation are not restored)")
        LOGGER.info(f"cawb: exact resume from {Path(trainer.args.resume).name}{STATE_SUFFIX}: {what}")

    def _restore_epoch_start(self, state: dict[str, Any]) -> None:
        trainer = self.trainer
        model = unwrap_model(trainer.model)
        for parameter, grad in zip(model.parameters(), state["grads"]):
            parameter.grad = None if grad is None else grad.to(parameter.device)
        self.last_step = state["last_step"]
        self.step_offset = self.last_step + 1  # ultralytics counts from last_opt_step = -1 after a start
        if trainer.train_loader.num_workers == 0:  # workers read ahead and keep their own random states
            _refill_mosaic_buffer(trainer.train_loader.dataset, state["mosaic_buffer"])
            _set_random_states(state["random"])
            sampler = trainer.train_loader.sampler
            if state["loader"] is not None and isinstance(sampler, ResumableRandomSampler):
                sampler.pending_state = state["loader"]


class ExactResumeMixin(TrainerPart):
    """Exact resume for an ultralytics trainer (see the module docstring); ``exact_resume: false`` switches it off."""

    _resume_args = AddedArgs({"exact_resume": PART_KEYS["exact_resume"][0]})

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks: Any = None):
        super().__init__(self._resume_args.widen(cfg), overrides, _callbacks)
        self._resume_args.fill(self.args)
        self._exact_resume = ExactResume(self) if self.args.exact_resume else None

    def train(self):
        try:
            return super().train()
        finally:  # stopped (Ctrl-C, an error) or finished: the last epoch's state is on disk now
            if self._exact_resume is not None:
                self._exact_resume.wait()

    @property
    def accumulate(self) -> int:
        """Batches per optimizer step; until the first step after an exact resume, plus the offset that puts that
        step where the uninterrupted run made it."""
        exact_resume = getattr(self, "_exact_resume", None)
        return self._accumulate + (exact_resume.step_offset if exact_resume is not None else 0)

    @accumulate.setter
    def accumulate(self, value: int) -> None:
        self._accumulate = value

    def optimizer_step(self):
        super().optimizer_step()
        if self._exact_resume is not None:
            self._exact_resume.on_optimizer_step()

    def get_dataloader(self, dataset_path, batch_size=16, rank=0, mode="train"):
        loader = super().get_dataloader(dataset_path, batch_size=batch_size, rank=rank, mode=mode)
        if mode == "train" and self._exact_resume is not None:
            make_order_resumable(loader)
            self._exact_resume.step_offset = 0  # ultralytics' OOM retry rebuilds the loaders and restarts its count
        return loader

    def get_validator(self):
        with self._resume_args.hidden(self):
            return super().get_validator()
