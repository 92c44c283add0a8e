"""cawb.coco.download, against a real HTTP server on 127.0.0.1 with injected faults; and --download end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from coco_fakes import FakeCoco, FaultyCocoServer, coco_mirror_bodies, write_fake_coco

from cawb.coco.download import (
    DownloadError,
    ImageJob,
    RetryPolicy,
    download_images,
    fetch_annotations,
    mirror_url,
)
from cawb.coco.subset import CocoSubsetError, SubsetOptions, build_coco_subset
from cawb.utils.errors import CawbError

ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(retries=3, backoff_s=0.01, timeout_s=10)
ARCHIVE = "/annotations/annotations_trainval2017.zip"
MEMBERS = ["annotations/instances_train2017.json", "annotations/instances_val2017.json"]


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> FakeCoco:
    return write_fake_coco(tmp_path_factory.mktemp("source") / "coco", with_images=False)


@pytest.fixture
def server(fake: FakeCoco):
    with FaultyCocoServer(coco_mirror_bodies(fake)) as s:
        yield s


def image_jobs(fake: FakeCoco, server: FaultyCocoServer, dest: Path, split: str = "train2017", n: int = 6):
    jobs = []
    for image_id in fake.image_ids[split][:n]:
        name = f"{image_id:012d}.jpg"
        width, height = fake.sizes[image_id]
        jobs.append(ImageJob(f"{server.url}/{split}/{name}", dest / name, width, height))
    return jobs


def test_mirror_url_swaps_the_host_and_keeps_the_path():
    url = "http://images.cocodataset.org/val2017/000000000139.jpg"
    assert mirror_url(url, "http://127.0.0.1:8000") == "http://127.0.0.1:8000/val2017/000000000139.jpg"
    assert mirror_url(url, "https://m.example/coco/") == "https://m.example/coco/val2017/000000000139.jpg"


def test_images_download_through_503_drops_truncation_and_garbage(fake, server, tmp_path: Path):
    jobs = image_jobs(fake, server, tmp_path)
    faults = {0: ["503", "503"], 1: ["drop"], 2: ["truncate"], 3: ["garbage"], 4: ["503", "drop", "truncate"]}
    for k, fault_list in faults.items():
        server.faults[f"/train2017/{jobs[k].dest.name}"] = list(fault_list)
    report = download_images(jobs, workers=3, policy=FAST, progress=False)
    assert report.fetched == len(jobs) and not report.failed and report.present == 0
    for k, job in enumerate(jobs):
        assert job.dest.read_bytes() == fake.jpeg[f"train2017/{job.dest.name}"]
        assert server.requests[f"/train2017/{job.dest.name}"] == 1 + len(faults.get(k, []))
    assert not list(tmp_path.glob("*.part"))


def test_complete_files_are_not_fetched_again(fake, server, tmp_path: Path):
    jobs = image_jobs(fake, server, tmp_path)
    jobs[0].dest.write_bytes(fake.jpeg[f"train2017/{jobs[0].dest.name}"])
    (tmp_path / (jobs[1].dest.name + ".part")).write_bytes(b"half")  # an interrupted earlier attempt
    report = download_images(jobs, workers=2, policy=FAST, progress=False)
    assert (report.present, report.fetched) == (1, len(jobs) - 1)
    assert server.requests[f"/train2017/{jobs[0].dest.name}"] == 0
    assert jobs[1].dest.read_bytes() == fake.jpeg[f"train2017/{jobs[1].dest.name}"]
    again = download_images(jobs, workers=2, policy=FAST, progress=False)
    assert (again.present, again.fetched) == (len(jobs), 0)
    assert sum(server.requests.values()) == len(jobs) - 1


def test_persistent_failure_gives_up_after_the_retries_and_leaves_nothing(fake, server, tmp_path: Path):
    jobs = image_jobs(fake, server, tmp_path, n=2)
    path = f"/train2017/{jobs[0].dest.name}"
    server.faults[path] = ["503"] * 10
    report = download_images(jobs, workers=2, policy=FAST, progress=False)
    assert report.fetched == 1 and list(report.failed) == [jobs[0].dest]
    assert "gave up after 4 attempts" in report.failed[jobs[0].dest] and "503" in report.failed[jobs[0].dest]
    assert server.requests[path] == FAST.retries + 1
    assert not jobs[0].dest.exists() and not list(tmp_path.glob("*.part"))


def test_not_found_and_wrong_size_fail_without_retrying(fake, server, tmp_path: Path):
    jobs = image_jobs(fake, server, tmp_path, n=1)
    wrong_size = ImageJob(jobs[0].url, jobs[0].dest, jobs[0].width + 1, jobs[0].height)
    missing = ImageJob(f"{server.url}/train2017/nope.jpg", tmp_path / "nope.jpg", 10, 10)
    report = download_images([wrong_size, missing], workers=2, policy=FAST, progress=False)
    assert "annotation records" in report.failed[wrong_size.dest]
    assert "HTTP 404" in report.failed[missing.dest]
    assert server.requests[f"/train2017/{jobs[0].dest.name}"] == 1 and server.requests["/train2017/nope.jpg"] == 1
    assert not wrong_size.dest.exists() and not missing.dest.exists()


def test_annotations_archive_is_fetched_resumed_and_extracted(fake, server, tmp_path: Path):
    coco = tmp_path / "coco"
    coco.mkdir()
    whole = server.bodies[ARCHIVE]
    (coco / "annotations_trainval2017.zip.part").write_bytes(whole[:1000])  # an interrupted earlier download
    server.faults[ARCHIVE] = ["truncate"]
    fetch_annotations(coco, MEMBERS, base_url=server.url, policy=FAST, progress=False)
    for member in MEMBERS:
        assert (coco / member).read_bytes() == (fake.root / member).read_bytes()
    assert server.ranges and server.ranges[0] == (ARCHIVE, "bytes=1000-")
    assert not (coco / "annotations_trainval2017.zip").exists() and not list(coco.glob("*.part"))
    requests = server.requests[ARCHIVE]
    fetch_annotations(coco, MEMBERS, base_url=server.url, policy=FAST, progress=False)  # present: no request
    assert server.requests[ARCHIVE] == requests


def test_corrupt_archive_is_reported_and_deleted(tmp_path: Path):
    with FaultyCocoServer({ARCHIVE: b"this is not a zip file"}) as bad:
        with pytest.raises(DownloadError, match="unusable") as info:
            fetch_annotations(tmp_path, MEMBERS, base_url=bad.url, policy=FAST, progress=False)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, CawbError) and isinstance(info.value, RuntimeError)
    assert not list(tmp_path.iterdir())


def test_download_end_to_end_fetches_only_the_drawn_images(fake, server, tmp_path: Path):
    coco, out = tmp_path / "coco", tmp_path / "out"
    server.faults[ARCHIVE] = ["503"]
    for name in list(fake.jpeg)[::4]:
        server.faults[f"/{name}"] = ["drop", "truncate"]
    options = SubsetOptions(
        coco_dir=coco,
        out_dir=out,
        train=10,
        val=4,
        download=True,
        base_url=server.url,
        workers=4,
        retry=FAST,
        progress=False,
    )
    report = build_coco_subset(options)
    assert report.downloaded == 14
    manifest = json.loads((out / "manifest.json").read_text())
    drawn = {f"/train2017/{i:012d}.jpg" for i in manifest["splits"]["train"]["image_ids"]}
    drawn |= {f"/val2017/{i:012d}.jpg" for i in manifest["splits"]["val"]["image_ids"]}
    assert {path for path in server.requests if path != ARCHIVE} == drawn
    for path in drawn:
        assert (coco / path.lstrip("/")).read_bytes() == fake.jpeg[path.lstrip("/")]
    # A second run finds everything: no download, same output.
    before = dict(server.requests)
    assert build_coco_subset(options).downloaded == 0
    assert dict(server.requests) == before
    # The same draw from a local copy gives the same output bytes.
    local = write_fake_coco(tmp_path / "local")
    build_coco_subset(SubsetOptions(coco_dir=local.root, out_dir=tmp_path / "out2", train=10, val=4, progress=False))
    for rel in ("annotations/instances_train.json", "annotations/instances_val.json", "manifest.json"):
        assert (out / rel).read_bytes() == (tmp_path / "out2" / rel).read_bytes()


def test_download_failures_are_reported_and_allowed_only_on_request(fake, server, tmp_path: Path):
    coco, out = tmp_path / "coco", tmp_path / "out"
    train_ids = fake.image_ids["train2017"]
    for image_id in train_ids:
        server.faults[f"/train2017/{image_id:012d}.jpg"] = ["503"] * 10 if image_id % 2 else []
    n_train = len(train_ids)
    options = dict(
        coco_dir=coco,
        out_dir=out,
        train=n_train,
        val=2,
        download=True,
        base_url=server.url,
        workers=4,
        retry=RetryPolicy(retries=1, backoff_s=0.01, timeout_s=10),
        progress=False,
    )
    odd = sum(1 for i in train_ids if i % 2)
    with pytest.raises(CocoSubsetError, match=f"{odd} of {n_train + 2} drawn images are missing.*HTTP 503"):
        build_coco_subset(SubsetOptions(**options))
    assert not out.exists()
    report = build_coco_subset(SubsetOptions(**options, allow_missing=True))
    assert report.splits["train"].missing == odd and report.splits["train"].images == n_train - odd


def test_script_download_against_the_local_mirror(fake, server, tmp_path: Path):
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts/sample_coco.py"),
        "--coco",
        str(tmp_path / "coco"),
        "--out",
        str(tmp_path / "out"),
        "--train",
        "5",
        "--val",
        "3",
        "--download",
        "--base-url",
        server.url,
        "--quiet",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "downloaded 8 images" in result.stdout
    assert len(list((tmp_path / "coco/train2017").iterdir())) == 5


def test_ctrl_c_says_in_one_line_how_to_resume_and_the_same_command_resumes(fake, server, tmp_path: Path):
    import signal

    env = {**os.environ, "YOLO_OFFLINE": "1"}
    cmd = [sys.executable, str(ROOT / "scripts/sample_coco.py"), "--coco", str(tmp_path / "coco"), "--out",
           str(tmp_path / "out"), "--train", "5", "--val", "3", "--download", "--base-url", server.url, "--quiet"]
    server.faults[ARCHIVE] = ["stall"]  # the build waits in the annotations download, well inside its work
    # Ctrl-C as in a terminal: SIGINT handled by default in the child even where this test runs as a background job,
    # whose shell starts it (and so its children) with SIGINT ignored (CI scripts, `cmd &`).
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert server.stalled.wait(60), "the annotations archive was never requested"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        server.release.set()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert err.strip() == "interrupted: finished files and downloads are kept; rerun the same command to resume"
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "downloaded 8 images" in result.stdout and (tmp_path / "out" / "dataset.yaml").is_file()


def test_a_full_disk_is_one_line_and_the_same_command_finishes_once_space_is_freed(fake, server, tmp_path: Path):
    import resource
    import signal

    def small_disk():  # a 4 KiB file-size limit fails the writes as a full disk does (EFBIG, not the signal)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {**os.environ, "YOLO_OFFLINE": "1"}
    cmd = [sys.executable, str(ROOT / "scripts/sample_coco.py"), "--coco", str(tmp_path / "coco"), "--out",
           str(tmp_path / "out"), "--train", "5", "--val", "3", "--download", "--base-url", server.url, "--quiet"]
    full = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=small_disk)
    assert full.returncode == 1, full.stderr
    assert full.stderr.count("\n") == 1 and full.stderr.startswith("error: "), full.stderr
    assert "file too large" in full.stderr and "rerun the same command" in full.stderr, full.stderr
    assert str(tmp_path / "coco") in full.stderr  # names the file it could not write
    assert not (tmp_path / "out" / "dataset.yaml").exists()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "downloaded 8 images" in result.stdout and (tmp_path / "out" / "dataset.yaml").is_file()
