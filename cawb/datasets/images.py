"""Does a split of a dataset hold an image ultralytics can train on? Checked before anything is built.

ultralytics finds a split's images by their suffix (its list of image formats) and checks each one while it
caches the labels, after the trainer has made its run directory. A split with no image of those suffixes, or only
damaged ones, then ends in a traceback (or two colour-coded lines that do not say why); :func:`check_split_images`
says it in one line first. It stops at the first image that opens, so a healthy split costs one image read.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from cawb.utils.errors import InputError

__all__ = ["check_split_images"]

_MIN_SIDE = 10  # pixels: ultralytics refuses smaller images as corrupt


def _image_suffixes() -> frozenset[str]:
    from cawb.utils.ultralytics_compat import image_formats

    return frozenset(f".{suffix}" for suffix in image_formats())


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is no image ultralytics can read (None when it opens), as Pillow says it."""
    from PIL import UnidentifiedImageError

    from cawb.utils.ultralytics_compat import PLUGIN_IMAGE_FORMATS, pillow_image_open

    try:
        with pillow_image_open()(path) as image:
            image.verify()
            width, height = image.size
    except UnidentifiedImageError as error:
        if path.suffix.lower().lstrip(".") in PLUGIN_IMAGE_FORMATS:
            return None  # ultralytics reads these through a plugin of its own: its call
        return " ".join(f"{type(error).__name__}: {error}".split())
    except Exception as error:  # whatever Pillow raises on a damaged or foreign file
        return " ".join(f"{type(error).__name__}: {error}".split())
    if min(width, height) < _MIN_SIDE:
        return f"{width}x{height} pixels, smaller than ultralytics' {_MIN_SIDE}"
    return None


def check_split_images(source: Path, key: str, directory: Path) -> None:
    """Refuse the ``key`` split (``train``, ``val``) of the dataset yaml ``source`` when its image directory holds
    no image ultralytics reads. A split given as a list file is not looked into.

    Raises:
        InputError: one line naming the yaml, the split and its directory: no images (and what is there instead),
            or none of its images can be read (one of them named with PIL's reason).
    """
    if not directory.is_dir():
        return
    suffixes = _image_suffixes()
    others: Counter[str] = Counter()
    damaged: list[tuple[Path, str]] = []
    for folder, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(folder, name)
            suffix = path.suffix.lower()
            if suffix not in suffixes:
                others[suffix or "(no suffix)"] += 1
                continue
            reason = _unreadable(path)
            if reason is None:
                return
            damaged.append((path, reason))
    if damaged:
        path, reason = damaged[0]
        raise InputError(f"{source}: {key}: none of the {len(damaged)} images in {directory} can be read (e.g. "
                         f"{path.name}: {reason})")
    found = (f"it holds {sum(others.values())} other files ({', '.join(sorted(others))})" if others
             else "it is empty")
    raise InputError(f"{source}: {key}: no images in {directory} ({found}; ultralytics reads "
                     f"{', '.join(sorted(suffixes))})")
