"""cawb/utils/locks.py: lock files that one process of many gets, stale ones taken over, a heartbeat."""

import json
import os
import subprocess
import sys
import threading
import time

from cawb.utils.locks import Heartbeat, LockOwner, acquire_lock, read_lock_owner, stale_reason, this_host


def write_lock(path, host, pid, age=0.0, worker_pid=None):
    owner = LockOwner(host=host, pid=pid, started=time.time() - age, token="t" + str(pid), worker_pid=worker_pid)
    path.write_text(owner.to_json())
    os.utime(path, (time.time() - age, time.time() - age))
    return owner


def gone_pid():
    """The id of a process that has exited (reaped): no process has it now (pid reuse aside, within a test)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_one_holder_at_a_time_named_in_the_lock(tmp_path):
    path = tmp_path / "locks" / "run.lock"
    lock, holder = acquire_lock(path, timeout=60)
    assert lock is not None and holder is None and lock.taken_over is None
    owner = read_lock_owner(path)
    assert (owner.host, owner.pid) == (this_host(), os.getpid())

    second, holder = acquire_lock(path, timeout=60)
    assert second is None and holder == owner and f"pid {os.getpid()}" in holder.describe()

    lock.set_worker(4321)
    assert read_lock_owner(path).worker_pid == 4321 and "worker pid 4321" in read_lock_owner(path).describe()
    lock.release()
    assert not path.exists()
    third, _ = acquire_lock(path, timeout=60)
    assert third is not None


def test_release_leaves_a_lock_another_process_took_over(tmp_path):
    path = tmp_path / "run.lock"
    lock, _ = acquire_lock(path, timeout=60)
    write_lock(path, "elsewhere", 99)  # another process took it over (e.g. after our machine stalled)
    assert not lock.holds() and not lock.refresh()
    lock.release()
    assert read_lock_owner(path).host == "elsewhere"


def test_a_lock_whose_process_is_gone_on_this_host_is_taken_over_at_once(tmp_path):
    path = tmp_path / "run.lock"
    dead = gone_pid()
    write_lock(path, this_host(), dead)
    assert "is gone" in stale_reason(path, timeout=3600)
    lock, holder = acquire_lock(path, timeout=3600)
    assert lock is not None and f"{this_host()} pid {dead}" in lock.taken_over and "is gone" in lock.taken_over
    assert read_lock_owner(path).pid == os.getpid()


def test_a_live_worker_keeps_the_lock_when_its_runner_is_gone(tmp_path):
    path = tmp_path / "run.lock"
    write_lock(path, this_host(), gone_pid(), worker_pid=os.getpid())
    assert stale_reason(path, timeout=3600) is None
    assert acquire_lock(path, timeout=3600)[0] is None


def test_a_lock_of_another_host_is_taken_over_only_after_the_timeout(tmp_path):
    path = tmp_path / "run.lock"
    write_lock(path, "node-17", 123, age=30)
    lock, holder = acquire_lock(path, timeout=60)
    assert lock is None and holder.host == "node-17"
    write_lock(path, "node-17", 123, age=90)
    lock, _ = acquire_lock(path, timeout=60)
    assert lock is not None and "not refreshed for 90 s" in lock.taken_over


def test_an_unreadable_lock_is_waited_for_then_taken_over_by_age(tmp_path):
    path = tmp_path / "run.lock"
    path.write_text("")  # a holder between creating the file and writing it
    assert acquire_lock(path, timeout=60) == (None, None)
    os.utime(path, (time.time() - 120, time.time() - 120))
    lock, _ = acquire_lock(path, timeout=60)
    assert lock is not None and "unreadable holder" in lock.taken_over


def race(path, contenders=16):
    """Everyone tries at once (a barrier); returns the locks won."""
    barrier, won = threading.Barrier(contenders), []

    def contend():
        barrier.wait()
        lock, _ = acquire_lock(path, timeout=60)
        if lock is not None:
            won.append(lock)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_of_many_contenders_exactly_one_gets_a_free_lock(tmp_path):
    for attempt in range(5):
        assert len(race(tmp_path / f"free-{attempt}.lock")) == 1


def test_of_many_contenders_exactly_one_takes_over_a_stale_lock(tmp_path):
    dead = gone_pid()
    for attempt in range(5):
        path = tmp_path / f"stale-{attempt}.lock"
        write_lock(path, this_host(), dead)
        won = race(path)
        assert len(won) == 1 and won[0].holds()
        assert not list(tmp_path.glob(f"stale-{attempt}.lock.stale-*"))  # the moved-aside files are cleaned up


def test_the_heartbeat_keeps_a_held_lock_fresh(tmp_path):
    path = tmp_path / "run.lock"
    lock, _ = acquire_lock(path, timeout=60)
    os.utime(path, (time.time() - 50, time.time() - 50))
    with Heartbeat(interval=0.05) as heartbeat:
        heartbeat.add(lock)
        deadline = time.time() + 5
        while time.time() - path.stat().st_mtime > 10 and time.time() < deadline:
            time.sleep(0.02)
    assert time.time() - path.stat().st_mtime < 10
    assert json.loads(path.read_text())["pid"] == os.getpid()
