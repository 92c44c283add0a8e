"""Keeping ultralytics off the network: cawb never downloads anything at run time.

ultralytics reaches for the network in three places a cawb run passes through:

* its online checks (pip updates, hub, analytics): off with ``YOLO_OFFLINE``, which cawb's commands set at their
  start and cawb's trainers when they are built, unless the environment sets it; ultralytics reads it once, when
  first imported, so its cached online flags are switched off too
  (:func:`cawb.utils.ultralytics_compat.keep_ultralytics_offline`). ``import cawb`` alone changes nothing;
* ``check_font("Arial.ttf")``, called by every dataset check and by its plots: it sends a request to its assets
  server unless the font is in its config dir. :func:`ensure_local_fonts` puts matplotlib's bundled DejaVu Sans
  there under the names ultralytics asks for (DejaVu Sans is freely redistributable; Arial is not);
* on CUDA, its AMP check loads ``yolo26n.pt`` and downloads it when absent: :func:`offline_amp_check` skips the
  check unless those weights are already on disk.

:class:`OfflineMixin` is the trainer part that does all three.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from cawb.utils.atomic_files import copy_atomic
from cawb.utils.trainer_parts import TrainerPart
from cawb.utils.ultralytics_compat import AMP_CHECK_WEIGHTS, keep_ultralytics_offline, replaced_amp_check

__all__ = ["AMP_CHECK_WEIGHTS", "ULTRALYTICS_FONTS", "OfflineMixin", "ensure_local_fonts", "offline_amp_check"]

#: Font files ultralytics' check_font() looks for in its config dir before downloading them.
ULTRALYTICS_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")

def ensure_local_fonts() -> list[Path]:
    """Give ultralytics local font files so that it never downloads one; returns the files created (if any)."""
    import matplotlib
    from ultralytics.utils import LOGGER, USER_CONFIG_DIR

    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    created = []
    for name in ULTRALYTICS_FONTS:
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(bundled, target)
            created.append(target)
    if created:
        LOGGER.info(f"cawb: ultralytics would download {', '.join(p.name for p in created)}; using matplotlib's "
                    f"bundled DejaVu Sans instead ({created[0].parent})")
    return created


@contextlib.contextmanager
def offline_amp_check() -> Iterator[None]:
    """Within this block ultralytics' trainer skips its AMP check unless its weights are already on disk."""
    from ultralytics.utils import LOGGER, WEIGHTS_DIR

    if (Path(WEIGHTS_DIR) / AMP_CHECK_WEIGHTS).is_file():
        yield
        return

    def amp_check_without_download(original, model, *args, **kwargs) -> bool:
        if next(model.parameters()).device.type != "cuda":
            return original(model, *args, **kwargs)  # decided from the device alone (AMP off on CPU), no weights
        LOGGER.warning(
            f"AMP checks skipped: ultralytics' check needs {AMP_CHECK_WEIGHTS}, which cawb never downloads. "
            "Training with amp=True; pass amp=False if you see NaN losses or zero mAP (e.g. on GTX 16xx cards)."
        )
        return True

    with replaced_amp_check(amp_check_without_download):
        yield


class OfflineMixin(TrainerPart):
    """An ultralytics trainer that never reaches for the network: offline checks, local fonts before its dataset
    check asks its server for one, and no AMP-check download."""

    def __init__(self, *args: Any, **kwargs: Any):
        keep_ultralytics_offline()
        ensure_local_fonts()
        super().__init__(*args, **kwargs)

    def train(self):
        with offline_amp_check():
            return super().train()
