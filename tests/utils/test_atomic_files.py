"""cawb/utils/atomic_files.py: a final name holds the old content or the whole new one, the error names it, and
what a killed writer leaves is cleaned up."""

import errno
import json
import os
import subprocess
import sys

from cawb.utils.atomic_files import discard_temporary, remove_stale_temporaries, temporary_name, write_bytes_atomic

# A process whose file-size limit (1 KiB) refuses the new content's write, as a full disk would.
LIMITED_WRITE = """
import json, resource, signal, sys
from pathlib import Path
from cawb.utils.atomic_files import write_bytes_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    write_bytes_atomic(Path(sys.argv[1]), b"new" * 1000)
except OSError as error:
    print(json.dumps({"errno": error.errno, "filename": error.filename}))
"""


def test_a_refused_write_names_the_final_file_and_leaves_the_old_content(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")
    out = subprocess.run([sys.executable, "-c", LIMITED_WRITE, str(path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"errno": errno.EFBIG, "filename": str(path)}
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # its temporary file went too


def test_a_write_replaces_the_content_whole(tmp_path):
    path = tmp_path / "f"
    write_bytes_atomic(path, b"one")
    write_bytes_atomic(path, b"two", durable=False)
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f"]


def test_temporaries_of_dead_writers_are_removed_and_others_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".last.pt.tmp-{gone.pid}"
    mine = temporary_name(tmp_path / "best.pt")
    foreign = tmp_path / ".notes.tmp"
    for path in (dead, mine, foreign, tmp_path / "last.pt"):
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, foreign.name, "last.pt"])
    assert remove_stale_temporaries(tmp_path / "missing") == []
    assert os.getpid() == int(mine.name.rsplit("-", 1)[1])


def test_discarding_a_temporary_never_raises_so_the_error_being_raised_is_kept(tmp_path):
    tmp = temporary_name(tmp_path / "last.pt")
    tmp.write_bytes(b"half")
    discard_temporary(tmp)
    assert not tmp.exists()
    discard_temporary(tmp)  # already gone
    (tmp_path / "a-directory").mkdir()
    discard_temporary(tmp_path / "a-directory")  # unlink refuses (a directory), as on a read-only file system
    assert (tmp_path / "a-directory").is_dir()
