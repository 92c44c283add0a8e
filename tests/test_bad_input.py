"""Every command-line face refuses bad input the same way: exit status 2, one line on stderr that names the
culprit (flag, key or file), no traceback, and nothing written or changed on disk.

Each case runs the face as a subprocess from the checkout (``python train_cawb.py ...``, ``python
scripts/<face>.py ...``), in a working directory of its own beside a fresh set of fixture files (:func:`make_fixtures`),
and compares a snapshot of both before and after; the checkout is compared once over the whole table. The cases
run in parallel threads (a subprocess spends most of its time importing), and each one fails before any training,
parsing or loading: that is what is tested. The faces that train (train_cawb.py, compare.py, tune.py) run with
their defaults, the offline demo's, in an empty working directory: a case that got as far as the data would
generate the demo dataset there, which the snapshot would see. The fixture directory is on ``PYTHONPATH`` (for a
custom ``cawb_lf`` module).

To add a case, add a row to ``CASES``: ``Case(id, face, args, names)``. ``args`` and ``names`` may use
``{fx}`` (the case's fixture directory, see :func:`make_fixtures`), ``{ro}`` (a directory this process cannot write
in) and ``{repo}`` (the checkout). ``names``: strings the one-line message must contain (the flag, key or file).
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every case runs a face in its own process

REPO = Path(__file__).resolve().parents[1]
TRAIN, PLOT_LR = "train_cawb.py", "scripts/plot_lr.py"
SAMPLE_COCO, EVALUATE = "scripts/sample_coco.py", "scripts/evaluate.py"
COMPARE, TUNE = "scripts/compare.py", "scripts/tune.py"
IMPORT_YOLOV5 = "scripts/import_yolov5.py"


@dataclass(frozen=True)
class Case:
    id: str
    face: str
    args: tuple[str, ...]
    names: tuple[str, ...]
    needs_unreadable_files: bool = False  # chmod 000 binds only when not root


# --- fixtures: every bad (and good) file the cases name, made anew for each case ------------------------------------

GOOD_HYP = "lr0: 0.01\nlrf: 0.1\noptimizer: SGD\nwarmup_epochs: 1\ncawb: true\ncawb_steps: [3]\nepochs: 6\n"
BAD_HYPS = {
    "empty.yaml": b"",
    "comments.yaml": b"# lr0: 0.01\n",
    "binary.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "latin1.yaml": "lr0: 0.01\nname: caf\u00e9\n".encode("latin-1"),
    "malformed.yaml": b"lr0: 0.01\nlrf: [0.1\nmomentum: 0.9\n",
    "dupkey.yaml": b"lr0: 0.01\nlrf: 0.1\nlr0: 0.02\n",
    "list.yaml": b"- lr0\n- lrf\n",
    "typo.yaml": b"lr00: 0.01\n",
    "lr0_inf.yaml": b"lr0: .inf\n",
    "lr0_neg.yaml": b"lr0: -1\n",
    "lr0_str.yaml": b"lr0: abc\n",
    "lr0_list.yaml": b"lr0: [0.1, 0.2]\n",
    "epochs_str.yaml": b'epochs: "three"\n',
    "sgdd.yaml": b"lr0: 0.01\noptimizer: SGDD\n",
    "v5gains.yaml": b"optimizer: SGD\nbox: 0.05\nobj: 1.0\n",  # v5.0's loss gains: wrong for an anchor-free model
    "batch_zero.yaml": b"batch: 0\n",
    "close_mosaic_neg.yaml": b"close_mosaic: -5\n",
    "cawb_off_steps.yaml": b"cawb: false\ncawb_steps: [3]\ncawb_step_scale: 0.5\n",
}
MODELS = {  # a layer with a module ultralytics' builder does not know
    "model_unknown.yaml": b"nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv3, [32, 3, 2]]\n"
                          b"head:\n  - [[1], 1, Detect, [nc]]\n",
}
SPACES = {"space_steps.yaml": b"cawb_steps: [30, 80]\n"}
# a custom decay (cawb_lf: badlf:nan_late) that is fine for 3 epochs and NaN from x = 4 on
LF_MODULE = b"def nan_late(x, period):\n    return float('nan') if x > 3 else 1.0\n"
# a dataset yaml whose generator would write where a folder of the user's is
FOREIGN_DATA = (b"path: user_dir\ntrain: images/train\nval: images/val\nnames: {0: circle, 1: rectangle, 2: triangle}\n"
                b"category_ids: [3, 7, 11]\nval_json: annotations/instances_val.json\ngenerator:\n  name: shapes\n"
                b"  seed: 0\n  train_images: 4\n  val_images: 2\n  imgsz: 64\n  max_objects: 2\n"
                b"  empty_fraction: 0.1\n")
GOOD_DATA = (
    "path: .\ntrain: images/train\nval: images/val\nval_json: annotations/val.json\n"
    "category_ids: [1, 2]\nnames: {0: circle, 1: square}\n"
)
BAD_DATA = {
    "data_empty.yaml": b"",
    "data_binary.yaml": b"\x00\x01\x02\x03binary",
    "data_malformed.yaml": b"train: images/train\nval: [images/val\nnames: [a]\n",
    "data_dupkey.yaml": b"train: images/train\nval: images/val\nnames: [a]\ntrain: other\n",
    "data_names_str.yaml": b"train: images/train\nval: images/val\nval_json: val.json\ncategory_ids: [1, 2]\n"
                           b"names: {cat: 0, dog: 1}\n",
    "data_no_coco.yaml": b"train: images/train\nval: images/val\nnames: [a, b]\n",
    "data_nc.yaml": b"train: images/train\nval: images/val\nnc: 5\nnames: [a, b, c]\n",
    # datasets whose split directories (made by make_fixtures) hold no image ultralytics can train on
    "data_empty_dirs.yaml": b"path: empty_set\ntrain: images/train\nval: images/val\nnames: [a]\n",
    "data_gif.yaml": b"path: gif_set\ntrain: images/train\nval: images/val\nnames: [a]\n",
    "data_corrupt.yaml": b"path: corrupt_set\ntrain: images/train\nval: images/val\nnames: [a]\n",
}


def torch_files() -> dict[str, bytes]:
    """Files torch.save writes: one that passes the file check (and is never loaded as a model by the cases that use
    it), and a state_dict, which is not an ultralytics checkpoint."""
    import torch

    files = {}
    for name, obj in (("ok.pt", {}), ("state_dict.pt", {"weight": torch.zeros(2)})):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        files[name] = buffer.getvalue()
    return files


def make_fixtures(fx: Path, saved: dict[str, bytes]) -> None:
    fx.mkdir(parents=True)
    (fx / "good.yaml").write_text(GOOD_HYP)
    (fx / "data.yaml").write_text(GOOD_DATA)
    for name, content in {**BAD_HYPS, **BAD_DATA, **MODELS, **SPACES, **saved}.items():
        (fx / name).write_bytes(content)
    (fx / "badlf.py").write_bytes(LF_MODULE)
    (fx / "foreign_data.yaml").write_bytes(FOREIGN_DATA)
    # a finished run of the user's, which --exist-ok must not train over
    (fx / "runs" / "exp" / "weights").mkdir(parents=True)
    (fx / "runs" / "exp" / "weights" / "best.pt").write_bytes(saved["ok.pt"])
    (fx / "runs" / "exp" / "results.csv").write_text("epoch,metrics/mAP50(B)\n1,0.5\n")
    (fx / "dir.yaml").mkdir()
    (fx / "dir.pt").mkdir()
    os.mkfifo(fx / "fifo.yaml")
    (fx / "loop.yaml").symlink_to(fx / "loop.yaml")  # ELOOP: unreadable for every user, root included
    (fx / "unreadable.yaml").write_text(GOOD_HYP)
    (fx / "unreadable.yaml").chmod(0)
    (fx / "file").write_text("a file of the user's\n")
    (fx / "garbage.pt").write_bytes(bytes(range(256)) * 8)
    (fx / "empty.pt").write_bytes(b"")
    (fx / "text.pt").write_text("model: yolov5s.yaml\n")
    # A COCO directory whose annotation files do not parse: an error about anything else shows it came first.
    for split in ("train2017", "val2017"):
        annotations = fx / "coco" / "annotations" / f"instances_{split}.json"
        annotations.parent.mkdir(parents=True, exist_ok=True)
        annotations.write_text('{"images": [')
    (fx / "coco_dirann" / "annotations" / "instances_train2017.json").mkdir(parents=True)
    (fx / "coco_dirann" / "annotations" / "instances_val2017.json").write_text("{}")
    for name, files in (("empty_set", {}), ("gif_set", {"a.gif": b"GIF89a"}),
                        ("corrupt_set", {"a.jpg": b"not a jpeg", "b.png": b"not a png"})):
        for split in ("train", "val"):
            (fx / name / "images" / split).mkdir(parents=True)
            for file, content in files.items():
                (fx / name / "images" / split / file).write_bytes(content)
    (fx / "user_dir" / "images").mkdir(parents=True)
    (fx / "user_dir" / "images" / "holiday.jpg").write_bytes(b"\xff\xd8 a photo of the user's")


# --- the table ------------------------------------------------------------------------------------------------------


#: (case, file, what the message says) of the refusals every file flag shares.
HYP_FILE_CASES = [
    ("missing", "missing.yaml", "not found"),
    ("directory", "dir.yaml", "is a directory"),
    ("empty", "empty.yaml", "is empty"),
    ("binary", "binary.yaml", "is binary"),
    ("malformed", "malformed.yaml", "line 3: not valid YAML"),
    ("duplicate-key", "dupkey.yaml", "line 3: duplicate key 'lr0' (first at line 1)"),
]
DATA_FILE_CASES = [
    ("missing", "missing.yaml", "not found"),
    ("directory", "dir.yaml", "is a directory"),
    ("empty", "data_empty.yaml", "is empty"),
    ("binary", "data_binary.yaml", "is binary"),
    ("malformed", "data_malformed.yaml", "line 3: not valid YAML"),
    ("duplicate-key", "data_dupkey.yaml", "line 4: duplicate key 'train' (first at line 1)"),
]


def file_cases(prefix: str, face: str, flag: str, files: list[tuple[str, str, str]], *extra: str) -> list[Case]:
    return [Case(f"{prefix}-{case}", face, (flag, f"{{fx}}/{name}", *extra), (name, message))
            for case, name, message in files]


def evaluate_case(id: str, names: tuple[str, ...], **changes: str) -> Case:
    """evaluate.py with good arguments but ``changes`` (``weights=...``, ``data=...``, ...)."""
    args = {"weights": "{fx}/ok.pt", "data": "{fx}/data.yaml", "imgsz": "64", "out": "eval", **changes}
    return Case(id, EVALUATE, tuple(item for key, value in args.items() for item in (f"--{key}", value)), names)


def sample_case(id: str, names: tuple[str, ...], *flags: str, coco: str = "{fx}/coco", out: str = "coco10k",
                **changes: str) -> Case:
    """sample_coco.py on a COCO directory whose annotations do not parse, with ``changes`` and extra ``flags``."""
    args = {"coco": coco, "out": out, **changes}
    pairs = tuple(item for key, value in args.items() for item in (f"--{key.replace('_', '-')}", value))
    return Case(id, SAMPLE_COCO, pairs + flags + ("--quiet",), names)


CASES: list[Case] = [
    # train_cawb.py: the hyp file and the dataset yaml (its other inputs further down)
    *file_cases("train/hyp", TRAIN, "--hyp", HYP_FILE_CASES),
    Case("train/hyp-comments-only", TRAIN, ("--hyp", "{fx}/comments.yaml"), ("comments.yaml", "is empty")),
    Case("train/hyp-not-utf8", TRAIN, ("--hyp", "{fx}/latin1.yaml"), ("latin1.yaml", "is not UTF-8 text")),
    *file_cases("train/data", TRAIN, "--data", DATA_FILE_CASES),
    Case("train/data-names-not-indices", TRAIN, ("--data", "{fx}/data_names_str.yaml"),
         ("data_names_str.yaml", "names key 'cat' is not a class index")),
    # plot_lr.py
    *file_cases("plot_lr/hyp", PLOT_LR, "--hyp", HYP_FILE_CASES, "--out", "lr.png"),
    Case("plot_lr/hyp-fifo", PLOT_LR, ("--hyp", "{fx}/fifo.yaml"), ("fifo.yaml", "is a FIFO")),
    Case("plot_lr/hyp-symlink-loop", PLOT_LR, ("--hyp", "{fx}/loop.yaml"), ("loop.yaml", "cannot be read")),
    Case("plot_lr/hyp-unreadable", PLOT_LR, ("--hyp", "{fx}/unreadable.yaml"),
         ("unreadable.yaml", "permission denied"), needs_unreadable_files=True),
    Case("plot_lr/hyp-not-a-mapping", PLOT_LR, ("--hyp", "{fx}/list.yaml"), ("list.yaml", "must be a mapping")),
    Case("plot_lr/hyp-unknown-key", PLOT_LR, ("--hyp", "{fx}/typo.yaml"), ("typo.yaml", "'lr00'")),
    Case("plot_lr/lr0-inf", PLOT_LR, ("--hyp", "{fx}/lr0_inf.yaml"), ("lr0_inf.yaml", "lr0=inf is invalid")),
    Case("plot_lr/lr0-negative", PLOT_LR, ("--hyp", "{fx}/lr0_neg.yaml"), ("lr0_neg.yaml", "lr0=-1 is invalid")),
    Case("plot_lr/lr0-not-a-number", PLOT_LR, ("--hyp", "{fx}/lr0_str.yaml"), ("lr0_str.yaml", "lr0='abc'")),
    Case("plot_lr/compare-duplicate-key", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--compare", "{fx}/dupkey.yaml"),
         ("dupkey.yaml", "duplicate key 'lr0'")),
    Case("plot_lr/points-unbounded", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--epochs", "100000", "--batches",
                                               "100000"), ("100000 epochs x 100000 batches", "2,000,000")),
    Case("plot_lr/epochs-zero", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--epochs", "0"), ("--epochs", ">= 1")),
    Case("plot_lr/out-directory", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--out", "."), ("--out", "is a directory")),
    Case("plot_lr/out-under-a-file", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--out", "{fx}/file/lr.png"),
         ("--out", "file is a file, not a directory")),
    Case("plot_lr/out-read-only", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--out", "{ro}/lr.png"),
         ("--out", "cannot write in")),
    Case("plot_lr/out-not-png", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--out", "lr.jpg"), ("--out", ".png")),
    Case("plot_lr/csv-under-a-file", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--csv", "{fx}/file/lr.csv"),
         ("--csv", "is a file, not a directory")),
    Case("plot_lr/csv-read-only", PLOT_LR, ("--hyp", "{fx}/good.yaml", "--csv", "{ro}/lr.csv"),
         ("--csv", "cannot write in")),
    # sample_coco.py: checked before the annotations are fetched or parsed (they would not parse here)
    sample_case("sample_coco/out-under-a-file", ("--out", "file is a file, not a directory"), out="{fx}/file/c10k"),
    sample_case("sample_coco/out-is-a-file", ("--out", "is a file, not a directory"), out="{fx}/file"),
    sample_case("sample_coco/out-read-only", ("--out", "cannot write in"), out="{ro}/coco10k"),
    sample_case("sample_coco/out-holds-a-users-images", ("--out", "'images'", "even --force"), "--force",
                out="{fx}/user_dir"),
    sample_case("sample_coco/out-is-coco", ("--out", "must not be the COCO directory"), out="{fx}/coco"),
    sample_case("sample_coco/coco-missing", ("--coco", "is not a directory"), coco="{fx}/nowhere"),
    sample_case("sample_coco/coco-is-a-file", ("--coco", "is not a directory"), coco="{fx}/file"),
    sample_case("sample_coco/coco-under-a-file-with-download", ("--coco", "file is a file, not a directory"),
                "--download", coco="{fx}/file/coco"),
    sample_case("sample_coco/annotation-file-is-a-directory", ("instances_train2017.json", "is a directory"),
                coco="{fx}/coco_dirann"),
    sample_case("sample_coco/train-zero", ("--train", "positive integer"), train="0"),
    sample_case("sample_coco/workers-zero", ("--workers", "positive integer"), workers="0"),
    sample_case("sample_coco/base-url-not-http", ("--base-url", "http://"), "--download", base_url="ftp://mirror"),
    # evaluate.py
    evaluate_case("evaluate/weights-missing", ("--weights", "nope.pt", "not found"), weights="{fx}/nope.pt"),
    evaluate_case("evaluate/weights-directory", ("--weights", "dir.pt", "is a directory"), weights="{fx}/dir.pt"),
    evaluate_case("evaluate/weights-garbage", ("--weights", "garbage.pt", "is not a checkpoint"),
                  weights="{fx}/garbage.pt"),
    evaluate_case("evaluate/weights-empty", ("--weights", "empty.pt", "the file is empty"), weights="{fx}/empty.pt"),
    evaluate_case("evaluate/weights-text", ("--weights", "text.pt", "is not a checkpoint"), weights="{fx}/text.pt"),
    evaluate_case("evaluate/weights-a-state-dict", ("state_dict.pt", "is not an ultralytics checkpoint"),
                  weights="{fx}/state_dict.pt"),
    evaluate_case("evaluate/data-missing", ("missing.yaml", "not found"), data="{fx}/missing.yaml"),
    evaluate_case("evaluate/data-directory", ("dir.yaml", "is a directory"), data="{fx}/dir.yaml"),
    evaluate_case("evaluate/data-binary", ("data_binary.yaml", "is binary"), data="{fx}/data_binary.yaml"),
    evaluate_case("evaluate/data-malformed", ("data_malformed.yaml", "line 3"), data="{fx}/data_malformed.yaml"),
    evaluate_case("evaluate/data-duplicate-key", ("data_dupkey.yaml", "duplicate key 'train'"),
                  data="{fx}/data_dupkey.yaml"),
    evaluate_case("evaluate/data-names-not-indices", ("data_names_str.yaml", "names key"),
                  data="{fx}/data_names_str.yaml"),
    evaluate_case("evaluate/data-without-coco-keys", ("data_no_coco.yaml", "val_json and category_ids"),
                  data="{fx}/data_no_coco.yaml"),
    evaluate_case("evaluate/out-under-a-file", ("--out", "file is a file, not a directory"), out="{fx}/file/eval"),
    evaluate_case("evaluate/out-is-a-file", ("--out", "is a file, not a directory"), out="{fx}/file"),
    evaluate_case("evaluate/out-read-only", ("--out", "cannot write in"), out="{ro}/eval"),
    evaluate_case("evaluate/imgsz-too-small", ("--imgsz", ">= 32"), imgsz="16"),
    evaluate_case("evaluate/batch-zero", ("--batch", ">= 1"), batch="0"),
    evaluate_case("evaluate/device-absent", ("--device 99", "Invalid CUDA"), device="99"),
]


def train_case(id: str, names: tuple[str, ...], *args: str) -> Case:
    """train_cawb.py with ``args``: with no --data, the offline demo's defaults (its data generated in the working
    directory, were a case to get that far)."""
    return Case(id, TRAIN, args, names)


def compare_case(id: str, names: tuple[str, ...], *args: str) -> Case:
    """compare.py --preset cpu (the shapes data generated in the working directory, were a case to get that far)."""
    return Case(id, COMPARE, ("--preset", "cpu", *args), names)


def tune_case(id: str, names: tuple[str, ...], *args: str) -> Case:
    """tune.py --preset cpu --trials 2 (the shapes data generated in the working directory, were a case to get
    that far)."""
    return Case(id, TUNE, ("--preset", "cpu", "--trials", "2", *args), names)


CASES += [
    # train_cawb.py: ultralytics values, in a hyp file and as key=value, as ultralytics' own checks and its trainer
    # would refuse them (before the model and data are built)
    train_case("train/hyp-lr0-not-a-number", ("lr0_str.yaml", "lr0='abc'", "[0, 1]"), "--hyp", "{fx}/lr0_str.yaml"),
    train_case("train/hyp-lr0-a-list", ("lr0_list.yaml", "lr0=[0.1, 0.2]"), "--hyp", "{fx}/lr0_list.yaml"),
    train_case("train/hyp-epochs-text", ("epochs_str.yaml", "epochs='three'", ">= 1"), "--hyp",
               "{fx}/epochs_str.yaml", "--epochs", "3"),
    train_case("train/hyp-optimizer-unknown", ("sgdd.yaml", "optimizer='SGDD'", "AdamW", "SGD"), "--hyp",
               "{fx}/sgdd.yaml"),
    train_case("train/kv-lr0-not-a-number", ("command line", "lr0='abc'"), "lr0=abc"),
    train_case("train/kv-lr0-empty", ("command line", "lr0 is empty"), "lr0="),
    train_case("train/kv-model-replaces-cfg", ("model='yolov5s.yaml'", "--cfg"), "model=yolov5s.yaml"),
    train_case("train/kv-malformed", ("cawb_steps=[2,", "not valid YAML"), "cawb_steps=[2,"),
    train_case("train/kv-given-twice", ("lr0 is given twice",), "lr0=0.01", "lr0=0.02"),
    train_case("train/flag-not-an-integer", ("--epochs", "'x'"), "--epochs", "x"),
    train_case("train/flag-unknown", ("unrecognized arguments", "--lr0=0.01"), "--lr0=0.01"),
    # the model files: read, and built, before the data
    train_case("train/cfg-directory", ("--cfg", "dir.yaml", "is a directory"), "--cfg", "{fx}/dir.yaml"),
    train_case("train/cfg-a-hyp-file", ("--cfg", "good.yaml", "not a model yaml", "--hyp"), "--cfg", "{fx}/good.yaml"),
    train_case("train/cfg-unknown-module", ("--cfg", "model_unknown.yaml", "'Conv3'"), "--cfg",
               "{fx}/model_unknown.yaml"),
    train_case("train/weights-garbage", ("--weights", "garbage.pt", "is not a checkpoint"), "--weights",
               "{fx}/garbage.pt"),
    train_case("train/weights-a-state-dict", ("--weights", "state_dict.pt", "is not an ultralytics checkpoint"),
               "--weights", "{fx}/state_dict.pt"),
    train_case("train/resume-a-state-dict", ("--resume", "state_dict.pt", "is not an ultralytics checkpoint"),
               "--resume", "{fx}/state_dict.pt"),
    train_case("train/data-nc-disagrees-with-names", ("data_nc.yaml", "nc=5", "3 classes"), "--data",
               "{fx}/data_nc.yaml"),
    train_case("train/data-without-images", ("data_empty_dirs.yaml", "train: no images", "it is empty"), "--data",
               "{fx}/data_empty_dirs.yaml"),
    train_case("train/data-images-of-another-format", ("data_gif.yaml", "no images", ".gif", ".jpg"), "--data",
               "{fx}/data_gif.yaml"),
    train_case("train/data-images-all-corrupt", ("data_corrupt.yaml", "none of the 2 images", "cannot identify"),
               "--data", "{fx}/data_corrupt.yaml"),
    train_case("train/data-generated-over-a-users-folder", ("foreign_data.yaml", "user_dir", "move it away"), "--data",
               "{fx}/foreign_data.yaml", "--cfg", "yolov5n.yaml"),
    # ultralytics values a hyp file may set, checked as their flags are
    train_case("train/hyp-batch-zero", ("batch_zero.yaml", "batch=0", ">= 1"), "--hyp", "{fx}/batch_zero.yaml"),
    train_case("train/hyp-close-mosaic-negative", ("close_mosaic_neg.yaml", "close_mosaic=-5", ">= 0"), "--hyp",
               "{fx}/close_mosaic_neg.yaml"),
    train_case("train/hyp-cawb-off-with-cawb-keys", ("cawb_off_steps.yaml", "cawb=false contradicts", "cawb_steps"),
               "--hyp", "{fx}/cawb_off_steps.yaml"),
    # outputs: refused before anything is created
    train_case("train/name-outside-the-project", ("name='../../escape'", "directory name"), "--name",
               "../../escape"),
    train_case("train/project-read-only", ("--project", "cannot write in"), "--project", "{ro}/runs"),
    train_case("train/project-under-a-file", ("--project", "file is a file, not a directory"), "--project",
               "{fx}/file/runs"),
    train_case("train/exist-ok-on-a-finished-run", ("--exist-ok", "exp holds a run", "weights/best.pt", "results.csv"),
               "--project", "{fx}/runs", "--name", "exp", "--exist-ok"),
    # restarts and the decay function
    train_case("train/restart-negative", ("cawb_steps=[-2, 5]", ">= 0"), "--cawb-steps", "-2", "5"),
    train_case("train/restarts-repeated", ("cawb_steps=[5, 5]", "more than once"), "--cawb-steps", "5", "5",
               "--epochs", "8"),
    train_case("train/restarts-outside-the-run", ("cawb_steps", "8 fall outside this 5-epoch run"), "--epochs", "5",
               "--cawb-steps", "3", "8"),
    train_case("train/lf-os-system", ("cawb_lf='os:system'", "did not return a number"), "--cawb-lf", "os:system"),
    train_case("train/lf-nan-at-epoch-4", ("cawb_lf='badlf:nan_late'", "x=4", "returned nan"), "--cawb-lf",
               "badlf:nan_late", "--epochs", "12"),
    # plot_lr.py: the one checker of ultralytics values, for every key of the file
    Case("plot_lr/hyp-optimizer-unknown", PLOT_LR, ("--hyp", "{fx}/sgdd.yaml"), ("sgdd.yaml", "optimizer='SGDD'")),
    # compare.py: every run's settings checked once at plan time (not a failed run per arm and seed)
    compare_case("compare/kv-lr0-not-a-number", ("command line", "lr0='abc'"), "lr0=abc"),
    compare_case("compare/kv-malformed", ("cawb_steps=[2,", "not valid YAML"), "cawb_steps=[2,"),
    compare_case("compare/arm-optimizer-unknown", ("sgdd.yaml", "optimizer='SGDD'"), "--arms", "{fx}/sgdd.yaml"),
    compare_case("compare/project-read-only", ("--project", "cannot write in"), "--project", "{ro}/cmp"),
    compare_case("compare/project-under-a-file", ("--project", "file is a file, not a directory"), "--project",
                 "{fx}/file/cmp"),
    compare_case("compare/jobs-zero", ("--jobs 0", ">= 1"), "--jobs", "0"),
    # the model and every arm against it are checked before the demo dataset would be generated
    compare_case("compare/cfg-not-found", ("--cfg nosuch.yaml", "not found"), "--cfg", "nosuch.yaml"),
    compare_case("compare/second-arm-gains-for-the-other-model", ("v5gains.yaml", "v5.0's loss gains"), "--cfg",
                 "yolov5n.yaml", "--arms", "shapes-cos", "{fx}/v5gains.yaml"),
    compare_case("compare/shard-not-k-of-n", ("--shard x", "K/N"), "--shard", "x"),
    compare_case("compare/report-only-with-nothing-run", ("--report-only", "no finished run"), "--report-only"),
    # tune.py
    tune_case("tune/kv-lr0-not-a-number", ("command line", "lr0='abc'"), "lr0=abc"),
    tune_case("tune/hyp-optimizer-unknown", ("sgdd.yaml", "optimizer='SGDD'"), "--hyp", "{fx}/sgdd.yaml"),
    tune_case("tune/project-read-only", ("--project", "cannot write in"), "--project", "{ro}/tune"),
    tune_case("tune/space-restarts-outside-the-run", ("--space", "space_steps.yaml", "30, 80 fall outside"),
              "--space", "{fx}/space_steps.yaml", "--epochs", "5"),
    tune_case("tune/trials-zero", ("--trials", ">= 1"), "--trials", "0"),
    tune_case("tune/storage-server-unreachable", ("--storage postgresql://u@localhost/db", "cannot be opened"),
              "--storage", "postgresql://u@localhost/db"),
    tune_case("tune/prune-after-not-a-fraction", ("--prune-after 1.5", "0 <= f < 1"), "--prune-after", "1.5"),
    # import_yolov5.py
    Case("import/arguments-missing", IMPORT_YOLOV5, (), ("required", "source, output")),
    Case("import/source-missing", IMPORT_YOLOV5, ("{fx}/missing.pt", "new.pt"), ("missing.pt", "not found")),
    Case("import/source-directory", IMPORT_YOLOV5, ("{fx}/dir.pt", "new.pt"), ("dir.pt", "is a directory")),
    Case("import/source-garbage", IMPORT_YOLOV5, ("{fx}/garbage.pt", "new.pt"), ("garbage.pt", "not a checkpoint")),
    Case("import/source-not-yolov5", IMPORT_YOLOV5, ("{fx}/state_dict.pt", "new.pt"),
         ("state_dict.pt", "not a YOLOv5 detection checkpoint")),
    Case("import/output-exists", IMPORT_YOLOV5, ("{fx}/ok.pt", "{fx}/garbage.pt"),
         ("garbage.pt", "already exists; the import never overwrites a file")),
    Case("import/output-not-pt", IMPORT_YOLOV5, ("{fx}/ok.pt", "new.onnx"), ("new.onnx", "expected a .pt file")),
    Case("import/output-read-only", IMPORT_YOLOV5, ("{fx}/ok.pt", "{ro}/new.pt"), ("new.pt", "cannot write in")),
]


# --- running them ---------------------------------------------------------------------------------------------------


#: What the checkout comparison leaves out: git's own files, the virtual environment and caches.
CHECKOUT_SKIP = frozenset({".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    changed: list[str]
    args: list[str]


def snapshot(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links, leaving out directories named in ``skip``): kind, size,
    mode and modification time."""
    entries = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in skip and not name.endswith(".egg-info")]
        for name in dirnames + filenames:
            path = Path(directory, name)
            info = os.lstat(path)
            entries[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mode,
                                                    info.st_mtime_ns)
    return entries


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def run_case(case: Case, root: Path, saved: dict[str, bytes], read_only: Path) -> Outcome:
    fx, cwd = root / "fx", root / "cwd"
    make_fixtures(fx, saved)
    cwd.mkdir()
    fill = {"fx": str(fx), "ro": str(read_only), "repo": str(REPO)}
    args = [arg.format(**fill) for arg in case.args]
    before = snapshot(root)
    env = {**os.environ, "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(fx)}
    try:
        result = subprocess.run([sys.executable, str(REPO / case.face), *args], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=180)
    finally:
        (fx / "unreadable.yaml").chmod(0o644)  # so that pytest can clean up (and a snapshot can read it)
    after = snapshot(root)
    after[str(Path("fx", "unreadable.yaml"))] = before[str(Path("fx", "unreadable.yaml"))]  # our own chmod back
    return Outcome(result.returncode, result.stdout, result.stderr, changes(before, after), args)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, read_only_dir) -> dict[str, Outcome]:
    """Run the selected cases, in parallel; compare the checkout before and after them all."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_bad_input_is_refused_cleanly"
                and not (item.callspec.params["case"].needs_unreadable_files and os.geteuid() == 0)]
    saved = torch_files()
    root = tmp_path_factory.mktemp("bad-input")
    checkout = snapshot(REPO, CHECKOUT_SKIP)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case.id: pool.submit(run_case, case, root / f"case{index}", saved, read_only_dir)
                   for index, case in enumerate(selected)}
        results = {case_id: future.result() for case_id, future in futures.items()}
    assert changes(checkout, snapshot(REPO, CHECKOUT_SKIP)) == [], "a case wrote into the checkout"
    return results


def test_the_case_ids_are_unique_and_every_face_is_tried():
    assert len({case.id for case in CASES}) == len(CASES)
    assert {case.face for case in CASES} == {TRAIN, PLOT_LR, SAMPLE_COCO, EVALUATE, COMPARE, TUNE, IMPORT_YOLOV5}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly(case: Case, outcomes):
    if case.needs_unreadable_files and os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file: an unreadable file cannot be made for this user")
    outcome = outcomes[case.id]
    shown = f"{case.face} {' '.join(outcome.args)}\nstderr: {outcome.stderr!r}"
    assert outcome.returncode == 2, shown
    assert "Traceback" not in outcome.stderr, shown
    assert outcome.stderr.startswith("error: ") and outcome.stderr.strip().count("\n") == 0, shown
    for name in case.names:
        assert name in outcome.stderr, f"{name!r} not named\n{shown}"
    assert outcome.changed == [], f"changed on disk: {outcome.changed}\n{shown}"
