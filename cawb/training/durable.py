"""Durable checkpoints and one results row per epoch: :class:`DurableCheckpointsMixin`.

ultralytics writes its checkpoints in place: a process killed (or a disk filling up) while ``last.pt`` is written
leaves a truncated file, the only one a resume could start from; a kill while the finished run's ``best.pt`` is
stripped of its optimizer leaves it empty. And it appends a row to ``results.csv`` before it writes the checkpoint
of that epoch, so a run killed between the two trains the epoch again when resumed and appends it again.

The trainer part makes each of those writes go through :mod:`cawb.utils.atomic_files`, which never changes a final
name until the new content is complete and on the disk:

* every checkpoint ``save_model`` writes (``last.pt``, ``best.pt``, ``epochN.pt``) and the stripped finals of
  ``final_eval`` are written to a temporary sibling, fsynced and renamed over the old file
  (:func:`cawb.utils.ultralytics_compat.durable_checkpoint_writes` says how ultralytics' writes are reached);
* at the start of a run, temporary files a killed process left in its ``weights/`` are removed;
* a resumed run cuts ``results.csv`` to the epochs its checkpoint holds (:func:`truncate_results`), so that each
  epoch has one row, as in the uninterrupted run.

A write that fails (no space, a file-size limit, a read-only or vanished place) stops the run with an ``OSError``
naming the final file: the file keeps its previous content, and the run resumes from ``last.pt`` once the cause is
gone. A run whose training finished but whose last step (stripping the checkpoints) was killed is finished by
:func:`finish_stripping` when it is resumed. Training that ends before its last epoch (early stopping, ``time``)
leaves ``last.pt`` looking like an unfinished run's, so the final step starts by writing
``weights/last.pt.training-ended`` (:func:`ended_marker`: the epoch it ended at), which the finish removes: a kill
in between resumes to the finish, not to more epochs.
"""

from __future__ import annotations

import errno
import json
import os
import resource
from pathlib import Path
from typing import Any, Callable

from cawb.utils.atomic_files import (
    discard_temporary,
    remove_stale_temporaries,
    replace_durably,
    temporary_name,
    write_bytes_atomic,
    write_text_atomic,
)
from cawb.utils.errors import error_line
from cawb.utils.trainer_parts import TrainerPart
from cawb.utils.ultralytics_compat import durable_checkpoint_writes

__all__ = ["DurableCheckpointsMixin", "DurablePath", "durable_strip", "ended_marker", "finish_interrupted",
           "finish_stripping",
           "truncate_results"]


class DurablePath(type(Path())):
    """A path whose ``write_bytes`` writes atomically and durably (paths derived from it, ``wdir / "epoch3.pt"``,
    are ``DurablePath`` too)."""

    def write_bytes(self, data) -> int:
        data = bytes(memoryview(data))
        write_bytes_atomic(Path(self), data)
        return len(data)


def _failed_write(directory: Path, needed: int, error: Exception) -> OSError:
    """What made torch's own file writer fail (it raises a RuntimeError that does not say): no space, the process's
    file-size limit, a read-only or missing directory; else the writer's message."""
    try:
        stat = os.statvfs(directory)
    except FileNotFoundError:
        return OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    except OSError as failed:
        return failed
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if stat.f_flag & os.ST_RDONLY:
        code = errno.EROFS
    elif limit != resource.RLIM_INFINITY and needed >= limit:
        code = errno.EFBIG
    elif stat.f_bavail * stat.f_frsize < needed:
        code = errno.ENOSPC
    else:
        return OSError(errno.EIO, f"not written ({error_line(error)})")
    return OSError(code, os.strerror(code))


def durable_strip(original: Callable[..., dict], f: str | Path, s: str | Path = "", updates: dict | None = None):
    """ultralytics' ``strip_optimizer(f, s, updates)`` writing its result (``s``, else over ``f``) via a temporary
    sibling, an fsync and a rename: a kill or a full disk leaves the previous file loadable.

    Raises:
        OSError: naming the file that could not be written, with the cause.
    """
    target = Path(s or f)
    tmp = temporary_name(target)
    try:
        try:
            result = original(f, str(tmp), updates=updates)
        except RuntimeError as error:  # torch.save to a path: its C++ writer's error, the cause left out
            cause = _failed_write(target.parent, Path(f).stat().st_size if Path(f).exists() else 1, error)
            raise OSError(cause.errno, cause.strerror, str(target)) from error
        if tmp.exists():  # not written when f was no checkpoint (ultralytics warns and returns {})
            replace_durably(tmp, target)
        return result
    finally:
        discard_temporary(tmp)


def truncate_results(csv: Path, epochs: int) -> bool:
    """Cut ``results.csv`` (ultralytics' per-epoch rows, numbered from 1) to its header and the rows of epochs
    ``1..epochs``, dropping a row cut short by a full disk. Written atomically; returns whether it changed."""
    try:
        text = csv.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    lines = text.splitlines()
    if not lines:
        return False
    header, kept = lines[0], [lines[0]]
    columns = header.count(",") + 1
    for line in lines[1:]:
        first = line.split(",", 1)[0].strip()
        try:
            epoch = float(first)
        except ValueError:
            continue
        if line.count(",") + 1 == columns and epoch <= epochs:
            kept.append(line)
    new = "\n".join(kept) + "\n"
    if new == text:
        return False
    write_text_atomic(csv, new)
    return True


def ended_marker(last: Path) -> Path:
    """The file that says a run's training ended with the epoch of its ``last.pt`` (written when its final step
    starts, removed when that step is done)."""
    return Path(f"{last}.training-ended")


def _ended_at(last: Path) -> int | None:
    """The epoch (0-based, as checkpoints count) :func:`ended_marker` records, or None without a readable one."""
    try:
        return int(json.loads(ended_marker(last).read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finish_interrupted(last: Path, checkpoint: dict | None = None) -> bool:
    """Whether ``last`` is a run directory's ``weights/last.pt`` whose training ended but whose final step was
    killed: ``last.pt`` holds every epoch (or the epoch training ended at, early) yet is not stripped, or it is
    stripped while ``best.pt`` is not or the exact-resume state is still beside it. (``checkpoint``: ``last`` as
    loaded, when the caller has it.)"""
    from cawb.training.checkpoints import read_checkpoint
    from cawb.training.exact_resume import state_path

    last = Path(last)
    if last.name != "last.pt" or last.parent.name != "weights":
        return False
    checkpoint = read_checkpoint(last) if checkpoint is None else checkpoint
    if checkpoint is None:
        return False
    if checkpoint.get("optimizer") is not None:
        epochs = (checkpoint.get("train_args") or {}).get("epochs")
        if _ended_at(last) == checkpoint.get("epoch"):
            return True
        return isinstance(epochs, int) and checkpoint.get("epoch", -1) + 1 >= epochs
    best = last.with_name("best.pt")
    best_checkpoint = read_checkpoint(best) if best.is_file() else None
    return state_path(last).exists() or (best_checkpoint is not None and best_checkpoint.get("optimizer") is not None)


def finish_stripping(last: Path) -> list[Path]:
    """Finish a run whose training ended but whose final step was killed: strip ``last.pt`` and ``best.pt`` beside it
    as ultralytics' ``final_eval`` does (durably; a file already stripped is left alone) and remove the exact-resume
    state and stale temporaries. Returns the files stripped."""
    from ultralytics.utils.torch_utils import strip_optimizer

    from cawb.training.checkpoints import read_checkpoint
    from cawb.training.exact_resume import state_path

    stripped = []
    remove_stale_temporaries(last.parent)
    results = None  # best.pt gets last.pt's results, as ultralytics' final_eval gives it
    for path in (last, last.with_name("best.pt")):
        checkpoint = read_checkpoint(path) if path.is_file() else None
        if checkpoint is None:
            continue
        if path == last:
            results = checkpoint.get("train_results")
        if checkpoint.get("optimizer") is not None:
            updates = {"train_results": results} if path != last and results is not None else None
            durable_strip(strip_optimizer, path, updates=updates)
            stripped.append(path)
    state_path(last).unlink(missing_ok=True)
    ended_marker(last).unlink(missing_ok=True)
    return stripped


class DurableCheckpointsMixin(TrainerPart):
    """Checkpoints written atomically and durably, killed writes cleaned up, one ``results.csv`` row per epoch."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)  # the run directory is known (and made) now
        from ultralytics.utils import LOGGER, RANK

        if RANK in {-1, 0}:
            for directory in (self.save_dir, self.wdir):  # results.csv is cut in one, the checkpoints in the other
                for path in remove_stale_temporaries(directory):
                    LOGGER.info(f"cawb: removed {path.name}, left by a process killed while writing it")

    def save_model(self):
        with durable_checkpoint_writes(self, DurablePath, durable_strip):
            return super().save_model()

    def final_eval(self):
        from ultralytics.utils import RANK

        marker = ended_marker(self.last)
        if RANK in {-1, 0} and self.last.is_file():
            write_text_atomic(marker, json.dumps({"epoch": self.epoch}))
        with durable_checkpoint_writes(self, DurablePath, durable_strip):
            result = super().final_eval()
        if RANK in {-1, 0}:
            marker.unlink(missing_ok=True)
        return result

    def resume_training(self, ckpt):
        super().resume_training(ckpt)
        if ckpt is not None and self.resume:
            from ultralytics.utils import LOGGER, RANK

            if RANK in {-1, 0} and truncate_results(self.csv, self.start_epoch):
                LOGGER.info(f"cawb: {self.csv.name} cut to the {self.start_epoch} epoch(s) the checkpoint holds "
                            "(rows written after it was saved are trained again)")
