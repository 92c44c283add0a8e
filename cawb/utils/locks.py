"""Claim a piece of work across processes and machines that share a directory: one lock file per piece.

A lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3+), so
of several processes creating it at once exactly one succeeds. It names its holder: the host, the process id, an
optional worker process id (the child that does the work), when it was taken, and a random token. The holder
refreshes the file's modification time (a heartbeat, :class:`Heartbeat`) while it works.

A lock may be taken over when it is stale:

* its host is this host and none of the processes it names is alive (the holder crashed or was killed), or
* it has not been refreshed for ``timeout`` seconds (its holder's machine died, or lost the shared disk). Hosts
  must agree on the time to within a small part of the timeout (NTP).

Takeover is done under a second lock, ``NAME.takeover`` (created the same way, held for a few file operations), so
that of several processes finding the same stale lock one replaces it and the others see the new holder: it moves
the stale file aside under a unique name, checks that it moved the content it judged stale (put back otherwise),
removes it and creates a fresh lock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import threading
import time
from pathlib import Path

from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.hosts import pid_alive, this_host  # re-exported: part of the lock protocol's surface

__all__ = ["FileLock", "Heartbeat", "LockOwner", "acquire_lock", "pid_alive", "read_lock_owner", "stale_reason",
           "this_host"]


@dataclasses.dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as its file says."""

    host: str
    pid: int
    started: float
    token: str
    worker_pid: int | None = None

    def describe(self) -> str:
        """``host pid 123`` (``, worker pid 456``), as messages name a holder."""
        worker = f", worker pid {self.worker_pid}" if self.worker_pid else ""
        return f"{self.host} pid {self.pid}{worker}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self)) + "\n"


def read_lock_owner(path: Path) -> LockOwner | None:
    """The holder a lock file names; None when the file is missing, empty (being written) or not a lock."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return LockOwner(host=str(data["host"]), pid=int(data["pid"]), started=float(data["started"]),
                         token=str(data["token"]), worker_pid=data.get("worker_pid"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _age(path: Path, now: float | None = None) -> float | None:
    try:
        return (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return None


def stale_reason(path: Path, timeout: float, owner: LockOwner | None = None) -> str | None:
    """Why the lock at ``path`` may be taken over, or None while its holder may still be working.

    ``owner`` is the lock's content as read before (read again when None). A file without a readable owner (a
    holder between creating and writing it, or foreign content) is stale only by age.
    """
    owner = owner if owner is not None else read_lock_owner(path)
    age = _age(path)
    if age is None:
        return "it is gone"
    if owner is not None and owner.host == this_host():
        pids = [owner.pid] + ([owner.worker_pid] if owner.worker_pid else [])
        if not any(pid_alive(pid) for pid in pids):
            if len(pids) == 1:
                return f"its process {pids[0]} on this host is gone"
            return f"its processes {', '.join(map(str, pids))} on this host are gone"
    if age > timeout:
        return f"it was not refreshed for {age:.0f} s (more than the {timeout:g} s timeout)"
    return None


class FileLock:
    """A lock this process holds. ``release()`` removes the file only while it still holds this lock's token."""

    def __init__(self, path: Path, owner: LockOwner, taken_over: str | None = None):
        self.path = path
        self.owner = owner
        #: why an earlier holder's lock was taken over (None: the lock was free)
        self.taken_over = taken_over

    def holds(self) -> bool:
        """Whether the file still names this lock (False once released or taken over by another process)."""
        current = read_lock_owner(self.path)
        return current is not None and current.token == self.owner.token

    def refresh(self) -> bool:
        """Touch the file (the heartbeat); False when it is no longer this lock's."""
        if not self.holds():
            return False
        try:
            os.utime(self.path)
        except FileNotFoundError:
            return False
        return True

    def set_worker(self, pid: int | None) -> None:
        """Name the process that does the work besides the holder (it keeps the lock alive if the holder dies)."""
        self.owner = dataclasses.replace(self.owner, worker_pid=pid)
        if self.holds():
            write_text_atomic(self.path, self.owner.to_json())

    def release(self) -> None:
        if self.holds():
            self.path.unlink(missing_ok=True)


def _create(path: Path, owner: LockOwner) -> bool:
    """Create the lock file with O_EXCL; False when it exists."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(owner.to_json())
    return True


def _new_owner() -> LockOwner:
    return LockOwner(host=this_host(), pid=os.getpid(), started=time.time(), token=secrets.token_hex(8))


def acquire_lock(path: str | Path, timeout: float) -> tuple[FileLock | None, LockOwner | None]:
    """Take the lock at ``path``, taking over a stale one. Never waits.

    Returns ``(lock, None)`` when this process now holds it (``lock.taken_over`` says whose stale lock it
    replaced), or ``(None, holder)`` when another process holds it (``holder`` None: a lock being written or
    foreign content, not yet stale).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _new_owner()
    if _create(path, owner):
        return FileLock(path, owner), None
    try:
        judged = path.read_bytes()
    except FileNotFoundError:  # released between our attempt and this read: try once more
        return (FileLock(path, owner), None) if _create(path, owner) else (None, read_lock_owner(path))
    holder = read_lock_owner(path)
    reason = stale_reason(path, timeout, holder)
    if reason is None:
        return None, holder
    # Only the holder of the takeover guard replaces a stale lock, so no process ever removes a fresh lock that
    # another one has just made. A guard left by a process that died inside this short section expires.
    guard = path.with_name(f"{path.name}.takeover")
    if not _create(guard, owner):
        try:
            left = guard.read_bytes()
        except FileNotFoundError:
            return None, holder
        age = _age(guard)
        if (age is None or age < _GUARD_TIMEOUT or not _remove_if_unchanged(guard, left)
                or not _create(guard, owner)):
            return None, holder
    try:
        if not _remove_if_unchanged(path, judged):  # it changed since we judged it: whoever changed it holds it
            return (FileLock(path, owner), None) if _create(path, owner) else (None, read_lock_owner(path))
        if not _create(path, owner):
            return None, read_lock_owner(path)
    finally:
        guard.unlink(missing_ok=True)
    who = holder.describe() if holder else "an unreadable holder"
    return FileLock(path, owner, taken_over=f"{who}: {reason}"), None


#: Seconds after which a takeover guard (held for a few file operations) counts as left by a dead process.
_GUARD_TIMEOUT = 60.0


def _remove_if_unchanged(path: Path, expected: bytes) -> bool:
    """Remove ``path`` if it still holds ``expected``: read, moved aside under a unique name, checked again, removed
    (put back if it changed in between). False when it is gone or changed."""
    try:
        if path.read_bytes() != expected:  # changed: leave it alone (moving it would open a window to others)
            return False
        aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(8)}")
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if aside.read_bytes() != expected:
        try:
            os.link(aside, path)  # put it back, unless a new file took its place meanwhile
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


class Heartbeat:
    """A daemon thread that refreshes the locks it is given every ``interval`` seconds, while they are held.

    Use as a context manager; ``add``/``discard`` the locks as work starts and ends.
    """

    def __init__(self, interval: float):
        self.interval = interval
        self._locks: set[FileLock] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="cawb-lock-heartbeat", daemon=True)

    def add(self, lock: FileLock) -> None:
        with self._guard:
            self._locks.add(lock)

    def discard(self, lock: FileLock) -> None:
        with self._guard:
            self._locks.discard(lock)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._guard:
                locks = list(self._locks)
            for lock in locks:
                lock.refresh()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
