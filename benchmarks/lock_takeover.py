"""Why the comparison's run locks are cawb's own (cawb/utils/locks.py) and not filelock's SoftFileLease.

A holder is killed with SIGKILL; then a claim tries to take its lock over, with filelock's SoftFileLease (watching
the lease for longer than its duration) and with cawb's locks. This is done in each directory given: a local disk,
and a file system without the atomic rename-exchange SoftFileLease takes over with (NFS, FUSE: mount one with
``bindfs SRC DIR``, Debian package bindfs).

    python benchmarks/lock_takeover.py /tmp/local /tmp/bindfs-mount

Prints, per directory: whether renameat2(RENAME_EXCHANGE) works there, and what each claim got.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEASE_SECONDS = 5.0

HOLD = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
kind, path = sys.argv[1:3]
if kind == "filelock":
    from filelock import SoftFileLease
    held = SoftFileLease(path, lease_duration={LEASE_SECONDS}, thread_local=False)  # kept: dropping it releases it
    held.acquire(blocking=False)
else:
    from cawb.utils.locks import acquire_lock
    held, _ = acquire_lock(path, {LEASE_SECONDS})
    assert held is not None
print("held", flush=True)
time.sleep(60)
"""


def exchange_supported(directory: Path) -> str:
    """``ok`` or the errno name renameat2(..., RENAME_EXCHANGE) gives in ``directory`` (x86_64/aarch64 Linux)."""
    number = {"x86_64": 316, "aarch64": 276}.get(platform.machine())
    if number is None or sys.platform != "linux":
        return "not measured on this platform"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    a, b = directory / ".exchange-a", directory / ".exchange-b"
    a.write_text("a")
    b.write_text("b")
    try:
        result = libc.syscall(ctypes.c_long(number), ctypes.c_int(-100), ctypes.c_char_p(bytes(a)), ctypes.c_int(-100),
                              ctypes.c_char_p(bytes(b)), ctypes.c_uint(2))
        return "ok" if result == 0 else errno.errorcode[ctypes.get_errno()]
    finally:
        a.unlink()
        b.unlink()


def claim_after_kill(kind: str, directory: Path) -> str:
    path = directory / f"{kind}.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    if kind == "filelock":
        from filelock import SoftFileLease, Timeout

        lease = SoftFileLease(path, lease_duration=LEASE_SECONDS, thread_local=False)
        try:  # watched for longer than the lease: an expired lease may be taken over by age, too
            lease.acquire(timeout=2.5 * LEASE_SECONDS)
            taken = True
            lease.release()
        except Timeout:
            taken = False
    else:
        sys.path.insert(0, str(REPO))
        from cawb.utils.locks import acquire_lock

        lock, _ = acquire_lock(path, LEASE_SECONDS)
        taken = lock is not None
        if lock is not None:
            lock.release()
    for leftover in directory.glob(f"{kind}.lock*"):
        leftover.unlink()
    return f"{'taken over' if taken else 'NOT taken over'} after {time.monotonic() - start:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", type=Path)
    args = parser.parse_args()
    for directory in args.directories:
        print(f"{directory}: rename-exchange {exchange_supported(directory)}")
        for kind in ("filelock", "cawb"):
            print(f"  killed holder, {kind:<8}: {claim_after_kill(kind, directory)}", flush=True)


if __name__ == "__main__":
    main()
