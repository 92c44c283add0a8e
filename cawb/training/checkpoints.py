"""ultralytics checkpoints and run directories: what a ``.pt`` file holds, and where a run may write.

Two rules protect finished work from ultralytics' own habits:

* ultralytics resumes a checkpoint into the run directory recorded inside it (``train_args['save_dir']``),
  whatever has happened there since; :func:`resume_directory` picks a directory where the resume overwrites
  nothing but its own run's state;
* with ``exist_ok`` ultralytics trains into an existing ``project/name``, deleting its ``results.csv`` and
  overwriting its weights; :func:`check_run_dir_reuse` refuses a directory that holds a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from cawb.utils.errors import InputError
from cawb.utils.user_files import UserFileError, check_checkpoint_file, check_output_dir

__all__ = [
    "RUN_STATE",
    "check_run_dir_reuse",
    "checkpoint_finished",
    "is_finished",
    "load_ultralytics_checkpoint",
    "read_checkpoint",
    "resume_directory",
]

#: What a run directory holds once training has written to it.
RUN_STATE = ("weights/last.pt", "weights/best.pt", "results.csv")

_EXPECTED = "expected an ultralytics checkpoint (a run's weights/last.pt or best.pt, or a model saved by ultralytics)"


def read_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """An ultralytics checkpoint as torch loads it, or None when it is unreadable or not a dict."""
    from ultralytics.utils.patches import torch_load

    try:
        checkpoint = torch_load(path, map_location="cpu")
    except Exception:  # a truncated or foreign file: whatever unpickling raises, it is no checkpoint
        return None
    return checkpoint if isinstance(checkpoint, dict) else None


def is_finished(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a checkpoint is a finished run's: ultralytics strips them at the end (epoch -1, no optimizer)."""
    return checkpoint.get("epoch", -1) < 0 or checkpoint.get("optimizer") is None


def checkpoint_finished(path: str | Path) -> bool | None:
    """Whether an ultralytics ``last.pt`` is a finished run's (True), an interrupted run's (False: resumable), or
    unreadable / not a checkpoint (None)."""
    checkpoint = read_checkpoint(path)
    return None if checkpoint is None else is_finished(checkpoint)


def load_ultralytics_checkpoint(path: str | Path, what: str) -> dict[str, Any]:
    """The checkpoint at ``path`` once it is known to hold an ultralytics model (``ema`` or ``model``).

    Raises:
        FileNotFoundError, ValueError: one line naming ``what`` and ``path``: missing, a directory, unreadable, not
            a file torch writes, damaged, or holding something else (a state_dict, a tensor, ...).
    """
    from ultralytics.nn.tasks import BaseModel
    from ultralytics.utils.patches import torch_load

    path = check_checkpoint_file(path, what)
    try:
        checkpoint = torch_load(path, map_location="cpu")
    except Exception as error:  # whatever unpickling a damaged or foreign file raises
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise UserFileError(f"{what} {path}: cannot be loaded ({reason}); {_EXPECTED}") from None
    model = (checkpoint.get("ema") or checkpoint.get("model")) if isinstance(checkpoint, dict) else None
    if not isinstance(model, BaseModel):
        if isinstance(checkpoint, dict):
            held = f"a dict without a model, keys {sorted(map(str, checkpoint))[:5]}"
        else:
            held = f"a {type(checkpoint).__name__}"
        raise UserFileError(f"{what} {path}: is not an ultralytics checkpoint (it holds {held}); {_EXPECTED}")
    return checkpoint


def resume_directory(path: Path, checkpoint: Mapping[str, Any]) -> tuple[Path, list[str]]:
    """Where resuming the checkpoint ``path`` may write, and what to tell the user about it.

    * A checkpoint that is a run directory's ``weights/last.pt`` continues in that directory, where it is now (a
      moved or copied run directory continues where it is, not where it was made).
    * Any other checkpoint (a loose copy of ``last.pt``, ``weights/epoch3.pt``, ``best.pt``) continues in the
      directory it belongs to (its run directory, else the one it records) only if that holds no training state
      (:data:`RUN_STATE`); otherwise in a new directory beside it, numbered as ultralytics numbers runs
      (``exp-2``), and the note says so.

    Raises:
        ValueError: the directory cannot be told or cannot be written (one line).
    """
    from ultralytics.utils.files import increment_path

    recorded_text = (checkpoint.get("train_args") or {}).get("save_dir")
    recorded = Path(recorded_text) if recorded_text else None
    own = path.parent.parent if path.parent.name == "weights" else None
    home = own or recorded
    if home is None:
        raise InputError(f"--resume {path}: the checkpoint does not record its run directory; copy it to "
                         "<a new directory>/weights/last.pt and resume that")
    notes = []
    state = [name for name in RUN_STATE if (home / name).exists() and not (home / name).samefile(path)]
    if (own is not None and path.name == "last.pt") or not state:
        save_dir = home
        if recorded is not None and save_dir.absolute() != recorded.absolute():
            notes.append(f"--resume {path}: continuing in {save_dir}, where the checkpoint is (the run was started "
                         f"in {recorded}, which is not touched)")
    else:
        save_dir = increment_path(home)
        notes.append(f"--resume {path}: {home} holds another state of this run ({', '.join(state)}), which a resume "
                     f"would overwrite; continuing in a new directory {save_dir} ({home} is not touched)")
    try:
        check_output_dir(save_dir, f"--resume {path}: run directory")
    except UserFileError as error:
        raise InputError(str(error)) from None
    return save_dir, notes


def check_run_dir_reuse(run_dir: Path) -> None:
    """Refuse to train into ``run_dir`` (``--exist-ok``) when it holds a run: ultralytics would delete its
    ``results.csv`` and overwrite its weights. (Without ``exist_ok`` ultralytics picks a new name, ``exp-2``.)

    Raises:
        ValueError: one line naming the directory and what it holds.
    """
    weights = run_dir / "weights"
    held = [name for name in RUN_STATE if (run_dir / name).exists()]
    if weights.is_dir():
        held += sorted(f"weights/{p.name}" for p in weights.glob("*.pt") if f"weights/{p.name}" not in held)
    if held:
        raise InputError(f"--exist-ok: {run_dir} holds a run ({', '.join(held[:4])}), which training there would "
                         "overwrite (ultralytics deletes its results.csv): give another --name, leave out --exist-ok "
                         "to get a new numbered directory, or move it away")
