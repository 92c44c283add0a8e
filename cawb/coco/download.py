"""Fetch only the parts of COCO2017 a subset needs: the annotations archive and the sampled images.

Downloads go to ``NAME.part`` and are renamed to NAME only once complete and verified, so a file under its final
name is always whole: a rerun skips those and fetches the rest (resumable). The annotations archive, the one big
file, also resumes a partial ``.part`` with an HTTP Range request. Transient failures (HTTP 408/425/429/5xx,
refused or dropped connections, timeouts, a body shorter than its Content-Length, an image that does not decode)
are retried with exponential backoff; others (e.g. 404, an image of the wrong size) fail at once.
"""

from __future__ import annotations

import http.client
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from cawb.utils.atomic_files import discard_temporary, named_write_errors
from cawb.utils.errors import CawbError, is_disk_fault

DEFAULT_BASE_URL = "http://images.cocodataset.org"
ANNOTATIONS_ARCHIVE = "annotations/annotations_trainval2017.zip"  # URL path under the base URL
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
_USER_AGENT = "cawb-sample-coco"
_CHUNK = 1 << 20
_MAX_BACKOFF_S = 30.0


class DownloadError(CawbError, RuntimeError):
    """A download failed for good (after retries, or at once for a permanent error). One-line message."""


class _Transient(Exception):
    """One attempt failed in a way a retry may fix."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``retries`` extra attempts after the first, sleeping ``backoff_s * 2**k`` before the
    k-th retry (capped at 30 s); ``timeout_s`` bounds each socket operation."""

    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 60.0


@dataclass(frozen=True)
class ImageJob:
    """Fetch ``url`` to ``dest``; it must decode as an image of ``width`` x ``height`` pixels."""

    url: str
    dest: Path
    width: int
    height: int


@dataclass
class DownloadReport:
    """``fetched``: images downloaded now; ``present``: already complete; ``failed``: dest -> reason."""

    fetched: int = 0
    present: int = 0
    failed: dict[Path, str] = field(default_factory=dict)


def mirror_url(url: str, base_url: str) -> str:
    """``url`` with its scheme and host replaced by ``base_url`` (whose path, if any, is prefixed).

    ``mirror_url("http://images.cocodataset.org/val2017/1.jpg", "http://m:8000/coco")`` is
    ``"http://m:8000/coco/val2017/1.jpg"``.
    """
    path = urllib.parse.urlsplit(url).path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def fetch_annotations(
    coco_dir: Path,
    members: Iterable[str],
    *,
    base_url: str = DEFAULT_BASE_URL,
    policy: RetryPolicy = RetryPolicy(),
    progress: bool = True,
) -> None:
    """Make ``coco_dir / m`` exist for each archive member ``m`` (e.g. ``annotations/instances_val2017.json``).

    If any is missing, download ``annotations_trainval2017.zip`` from ``base_url`` into ``coco_dir`` (resuming a
    partial download), extract the missing members (CRC-checked), then delete the archive.

    Raises:
        DownloadError: the archive cannot be fetched, is corrupt (then it is deleted, so a rerun fetches it
            anew), or lacks a member.
    """
    missing = [m for m in members if not (coco_dir / m).is_file()]
    if not missing:
        return
    archive = coco_dir / Path(ANNOTATIONS_ARCHIVE).name
    url = f"{base_url.rstrip('/')}/{ANNOTATIONS_ARCHIVE}"
    if not archive.is_file():
        coco_dir.mkdir(parents=True, exist_ok=True)
        part = archive.with_name(archive.name + ".part")
        _with_retries(lambda: _get(url, part, policy.timeout_s, resume=True, progress=progress), url, policy)
        os.replace(part, archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in missing:
                _extract(zf, member, coco_dir / member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError) as e:
        archive.unlink(missing_ok=True)
        raise DownloadError(f"annotations archive from {url} is unusable ({e}); deleted it, rerun to fetch again")
    archive.unlink()


def _extract(zf: zipfile.ZipFile, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        # reading the member to the end checks its CRC
        with named_write_errors(dest), zf.open(member) as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        os.replace(part, dest)
    finally:
        discard_temporary(part)


def download_images(
    jobs: list[ImageJob], *, workers: int = 8, policy: RetryPolicy = RetryPolicy(), progress: bool = True
) -> DownloadReport:
    """Fetch every job whose ``dest`` does not exist yet, ``workers`` at a time; never raises for one image.

    A job that fails for good is listed in ``report.failed`` with its reason and leaves no file at ``dest``.

    Raises:
        OSError: the disk refused a write (no space, read-only, ...: every image would fail), naming the file; the
            images fetched before stay.
    """
    report = DownloadReport()
    todo = []
    for job in jobs:
        if job.dest.is_file():
            report.present += 1
        else:
            todo.append(job)
    if not todo:
        return report
    for directory in {job.dest.parent for job in todo}:
        directory.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(_download_image, job, policy): job for job in todo}
        with tqdm(total=len(todo), desc="download images", unit="img", disable=not progress) as bar:
            for future in as_completed(futures):
                reason = future.result()
                if reason is None:
                    report.fetched += 1
                else:
                    report.failed[futures[future].dest] = reason
                bar.update()
    finally:  # on Ctrl-C, do not start the queued downloads; running ones finish their file
        pool.shutdown(wait=True, cancel_futures=True)
    return report


def _download_image(job: ImageJob, policy: RetryPolicy) -> str | None:
    """Fetch and verify one image; None on success, else why it failed."""
    part = job.dest.with_name(job.dest.name + ".part")

    def attempt() -> None:
        _get(job.url, part, policy.timeout_s, resume=False, progress=False)
        _check_image(part, job.width, job.height)
        os.replace(part, job.dest)

    try:
        _with_retries(attempt, job.url, policy)
    except (DownloadError, OSError) as e:
        if is_disk_fault(e):  # every other image would fail the same way: stop the download
            raise
        return str(e)
    finally:
        discard_temporary(part)
    return None


def _check_image(path: Path, width: int, height: int) -> None:
    import cv2  # deferred: only downloads need it, and it is a heavy import

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise _Transient("the body does not decode as an image")
    got_h, got_w = image.shape[:2]
    if (got_w, got_h) != (width, height):
        raise DownloadError(f"image decodes at {got_w}x{got_h} but its annotation records {width}x{height}")


def _with_retries(attempt, url: str, policy: RetryPolicy) -> None:
    for k in range(policy.retries + 1):
        if k:
            time.sleep(min(policy.backoff_s * 2 ** (k - 1), _MAX_BACKOFF_S))
        try:
            attempt()
            return
        except _Transient as e:
            last = e
    raise DownloadError(f"{url}: gave up after {policy.retries + 1} attempts, last: {last}")


def _get(url: str, part: Path, timeout_s: float, *, resume: bool, progress: bool) -> None:
    """One GET of ``url`` into ``part``; with ``resume``, continue a partial ``part`` via a Range request.

    Raises _Transient for retryable failures, DownloadError for the rest.
    """
    start = part.stat().st_size if resume and part.is_file() else 0
    headers = {"User-Agent": _USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as response:
            if start and response.status != 206:  # the server ignored the range: start over
                start = 0
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None and length.isdigit() else None
            received = 0
            total = None if expected is None else start + expected
            with (
                named_write_errors(part),
                open(part, "ab" if start else "wb") as out,
                tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, desc=Path(url).name, disable=not progress
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        if e.code in _RETRYABLE_HTTP:
            raise _Transient(f"HTTP {e.code}") from None
        if e.code == 416 and start:  # the partial file does not fit the resource any more: start over
            part.unlink(missing_ok=True)
            raise _Transient("HTTP 416 for the resumed range") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        raise _Transient(f"{type(e).__name__}: {e}") from None
    if expected is not None and received != expected:
        raise _Transient(f"body truncated at {received} of {expected} bytes")
