"""train_cawb.py with a fault at a chosen moment: the child process of tests/training/test_durable.py.

    python fault_child.py WHEN TARGET COUNT MARKER -- TRAIN_CAWB_ARGS...

runs ``train_cawb.py TRAIN_CAWB_ARGS`` (its ``main``, exit status included) and, the COUNT-th time this process
writes the file TARGET (``last.pt``, ``best.pt``, ``epoch1.pt``, ``last.pt.resume-state``):

* ``write``: blocks inside cawb's atomic write, half of the bytes in its temporary file; writes MARKER and sleeps
  until it is killed;
* ``strip``: likewise inside ultralytics' final ``strip_optimizer`` (its torch.save to the temporary file, cut to
  half);
* ``full``: makes the disk full first, then lets the write fail: MARKER names a file to grow on a small file system
  (a tmpfs) until it is full; MARKER ``rlimit`` sets the process's file-size limit to 64 KiB instead;
* ``readonly``: remounts the file system mounted at MARKER read-only first, then lets the write fail;
* ``vanish``: removes the directory MARKER (the run's output directory) first, then lets the write fail.
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cawb.utils.atomic_files as atomic_files


def block(path: Path, marker: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)
    marker.write_text(str(path))
    time.sleep(600)


def fill_disk(marker: str) -> None:
    if marker == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal's default: death
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        return
    with open(marker, "ab") as filler:
        try:
            while True:
                filler.write(b"\0" * (1 << 20))
                filler.flush()
        except OSError:
            pass


def main() -> int:
    when, target, count, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    argv = sys.argv[sys.argv.index("--") + 1:]
    seen = {"writes": 0}

    def aimed(path) -> bool:
        if Path(path).name != f".{target}.tmp-{os.getpid()}":
            return False
        seen["writes"] += 1
        return seen["writes"] == count

    if when in ("write", "full", "readonly", "vanish"):
        original_write = atomic_files._write_file

        def faulty_write(tmp, data, durable):
            if aimed(tmp):
                if when == "full":
                    fill_disk(marker)
                elif when == "readonly":
                    subprocess.run(["mount", "-o", "remount,ro", marker], check=True)
                elif when == "vanish":
                    shutil.rmtree(marker)
                else:
                    original_write(tmp, data, durable)
                    block(tmp, Path(marker))
            original_write(tmp, data, durable)

        atomic_files._write_file = faulty_write
    elif when == "strip":
        import torch

        original_save = torch.save

        def blocking_save(obj, f, *args, **kwargs):
            original_save(obj, f, *args, **kwargs)
            if isinstance(f, (str, os.PathLike)) and aimed(f):
                block(Path(f), Path(marker))

        torch.save = blocking_save

    from cawb.cli.train import main as train_cawb

    return train_cawb(argv)


if __name__ == "__main__":
    sys.exit(main())
