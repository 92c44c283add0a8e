"""Import a checkpoint written by the YOLOv5 repository (releases v5.0 to v7.0) as an ultralytics checkpoint.

The checkpoint is read without YOLOv5's code (its classes are never imported) and its network rebuilt as cawb's
classic YOLOv5 model, with outputs equal to the original's; the new file trains with --weights, and predicts,
validates and exports with ultralytics. It is written once: an existing file is never overwritten.

Example (``python scripts/import_yolov5.py`` in a clone):
    cawb-import-yolov5 yolov5s.pt yolov5s-cawb.pt
"""

from __future__ import annotations

import argparse

from cawb.cli.common import add_version_flag, run_cli
from cawb.cli.parsing import OneLineErrorParser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Bad input ends with one line 'error: ...' and exit status 2, before anything "
                                "is written.")
    parser.add_argument("source", help="the YOLOv5 checkpoint (.pt): a release's yolov5s.pt, a train.py last.pt or "
                        "best.pt")
    parser.add_argument("output", help="the ultralytics checkpoint to write (.pt; must not exist)")
    return add_version_flag(parser)


def main(argv: list[str] | None = None) -> int:
    """Parse, import, write, print what was written. Exit 2 on bad input (:func:`cawb.cli.common.run_cli`)."""
    args = build_parser().parse_args(argv)

    def work() -> int:
        from pathlib import Path

        from cawb.utils.errors import InputError
        from cawb.utils.user_files import check_checkpoint_file, check_output_file

        check_checkpoint_file(args.source, "source")
        output = Path(args.output)
        if output.suffix != ".pt":
            raise InputError(f"output {output}: expected a .pt file name")
        if output.exists() or output.is_symlink():
            raise InputError(f"output {output}: already exists; the import never overwrites a file: give a new name")
        check_output_file(output, "output")

        from cawb.yolov5.checkpoint_import import write_imported_checkpoint  # torch loads once it runs

        model = write_imported_checkpoint(args.source, output)
        head = model.model[-1]
        anchors = [[round(value, 2) for value in level] for level in head.anchors.view(head.nl, -1).tolist()]
        print(f"{output}: {sum(p.numel() for p in model.parameters()):,} parameters, {head.nc} classes, strides "
              f"{[int(s) for s in head.stride.tolist()]}, anchors (pixels) {anchors}")
        return 0

    return run_cli(work)
