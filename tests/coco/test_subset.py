"""cawb.coco.subset (and scripts/sample_coco.py): the built subset is right, deterministic, and safe to rerun."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from coco_fakes import FAKE_CATEGORIES, QUIRK_ANNOTATIONS, QUIRK_IMAGE_ID, QUIRK_LABEL, FakeCoco, write_fake_coco

from cawb.coco.subset import (
    CocoSubsetError,
    SubsetOptions,
    build_coco_subset,
    draw_subsets,
    label_name,
    rank_image_ids,
)
from cawb.datasets.resolve import resolve_dataset_yaml
from cawb.utils.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(tmp_path: Path) -> FakeCoco:
    return write_fake_coco(tmp_path / "coco")


def build(fake: FakeCoco, out: Path, **kw) -> object:
    options = {"train": 10, "val": 5, "seed": 0, "progress": False, **kw}
    return build_coco_subset(SubsetOptions(coco_dir=fake.root, out_dir=out, **options))


def tree_bytes(root: Path) -> dict[str, bytes | str]:
    """Every file under ``root`` by relative path: contents, or the target of a symlink."""
    files = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            files[key] = os.readlink(path)
        elif path.is_file():
            files[key] = path.read_bytes()
    return files


def drawn_ids(out: Path, split: str) -> list[int]:
    return json.loads((out / "manifest.json").read_text())["splits"][split]["image_ids"]


# --- labels, JSON, yaml -------------------------------------------------------------------------------------------


def test_quirk_image_label_follows_the_standard_mapping_and_clipping(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    n_train = len(fake.image_ids["train2017"])
    report = build(fake, out, train=n_train)
    assert (out / "labels/train" / f"{QUIRK_IMAGE_ID:012d}.txt").read_text() == QUIRK_LABEL
    # Two of the quirk image's non-crowd boxes (zero width, outside the image) cannot be kept.
    assert report.splits["train"].dropped_boxes >= 2


def test_labels_match_an_independent_conversion_of_the_source(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    build(fake, out, train=20, val=8)
    yolo_class = {1: 0, 3: 2, 13: 11, 90: 79}
    for split, source in (("train", "train2017"), ("val", "val2017")):
        doc = json.loads(fake.annotation_file(source).read_text())
        images = {im["id"]: im for im in doc["images"]}
        for image_id in drawn_ids(out, split):
            im = images[image_id]
            expected = []
            for a in sorted((a for a in doc["annotations"] if a["image_id"] == image_id), key=lambda a: a["id"]):
                x, y, w, h = a["bbox"]
                x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, im["width"]), min(y + h, im["height"])
                if a["iscrowd"] or x2 <= x1 or y2 <= y1:
                    continue
                cx, cy = (x1 + x2) / 2 / im["width"], (y1 + y2) / 2 / im["height"]
                bw, bh = (x2 - x1) / im["width"], (y2 - y1) / im["height"]
                expected.append(f"{yolo_class[a['category_id']]} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
            assert (out / "labels" / split / label_name(im["file_name"])).read_text() == "".join(expected)


def test_json_subset_is_valid_coco_with_crowd_annotations_and_intact_categories(fake: FakeCoco, tmp_path: Path):
    from pycocotools.coco import COCO

    out = tmp_path / "out"
    n_train = len(fake.image_ids["train2017"])
    build(fake, out, train=n_train - 5, val=6)
    for split, source in (("train", "train2017"), ("val", "val2017")):
        src = json.loads(fake.annotation_file(source).read_text())
        subset_path = out / "annotations" / f"instances_{split}.json"
        coco = COCO(str(subset_path))
        ids = drawn_ids(out, split)
        assert sorted(coco.getImgIds()) == ids
        expected = sorted((a for a in src["annotations"] if a["image_id"] in set(ids)), key=lambda a: a["id"])
        assert [coco.anns[i] for i in sorted(coco.anns)] == expected  # every field, crowd ones included
        assert coco.dataset["categories"] == src["categories"]
        assert coco.dataset["info"] == src["info"] and coco.dataset["licenses"] == src["licenses"]
        assert [coco.imgs[i] for i in ids] == sorted(
            (im for im in src["images"] if im["id"] in set(ids)), key=lambda im: im["id"]
        )
    train_anns = json.loads((out / "annotations/instances_train.json").read_text())["annotations"]
    assert any(a["iscrowd"] for a in train_anns)


def test_dataset_yaml_is_accepted_by_ultralytics(fake: FakeCoco, tmp_path: Path):
    from ultralytics.data.converter import coco80_to_coco91_class
    from ultralytics.data.utils import check_det_dataset

    out = tmp_path / "out"
    build(fake, out)
    raw = yaml.safe_load((out / "dataset.yaml").read_text())
    assert "path" not in raw and "download" not in raw
    assert raw["category_ids"] == coco80_to_coco91_class()
    assert (out / raw["val_json"]).is_file() and (out / raw["train_json"]).is_file()
    data = check_det_dataset(str(out / "dataset.yaml"), autodownload=False)
    assert data["nc"] == 80 and data["names"][0] == "person" and data["names"][79] == "toothbrush"
    assert Path(data["train"]) == (out / "images/train").resolve()
    assert Path(data["val"]) == (out / "images/val").resolve()


def test_ultralytics_reads_the_labels(fake: FakeCoco, tmp_path: Path):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    out = tmp_path / "out"
    n_train = len(fake.image_ids["train2017"])
    report = build(fake, out, train=n_train)
    data = check_det_dataset(str(out / "dataset.yaml"), autodownload=False)
    dataset = YOLODataset(img_path=data["train"], data=data, task="detect", imgsz=64, augment=False, cache=False)
    assert len(dataset.im_files) == n_train
    assert sum(len(label["cls"]) for label in dataset.labels) == report.splits["train"].boxes
    quirk = next(lb for lb in dataset.labels if Path(lb["im_file"]).name == f"{QUIRK_IMAGE_ID:012d}.jpg")
    assert sorted(quirk["cls"].ravel().tolist()) == [0, 11, 79]


def test_images_are_symlinks_by_default_and_copies_with_copy(fake: FakeCoco, tmp_path: Path):
    build(fake, tmp_path / "links")
    build(fake, tmp_path / "copies", copy=True)
    for image_id in drawn_ids(tmp_path / "links", "train"):
        name = f"{image_id:012d}.jpg"
        link, copy = tmp_path / "links/images/train" / name, tmp_path / "copies/images/train" / name
        assert link.is_symlink() and link.resolve() == (fake.root / "train2017" / name).resolve()
        assert not copy.is_symlink() and copy.read_bytes() == fake.jpeg[f"train2017/{name}"]


# --- the draw -----------------------------------------------------------------------------------------------------


def test_rank_is_the_documented_sha256_order():
    ids = [5, 17, 123456, 3, 99]
    key = {i: hashlib.sha256(f"7:{i}".encode()).hexdigest() for i in ids}
    assert rank_image_ids(ids, 7) == sorted(ids, key=key.get)
    assert rank_image_ids(reversed(ids), 7) == rank_image_ids(ids, 7)


def test_shares_are_disjoint_and_a_larger_draw_contains_a_smaller():
    pool = range(1000, 1200)
    both = draw_subsets(pool, [("train", 50), ("val", 20)], 3, source="x")
    alone = draw_subsets(pool, [("train", 50)], 3, source="x")
    assert both["train"] == alone["train"] and not set(both["train"]) & set(both["val"])
    assert set(draw_subsets(pool, [("train", 10)], 3, source="x")["train"]) < set(alone["train"])
    assert draw_subsets(pool, [("train", 50)], 4, source="x")["train"] != alone["train"]


def test_same_seed_gives_byte_identical_output_and_file_order_does_not_matter(fake: FakeCoco, tmp_path: Path):
    build(fake, tmp_path / "a", seed=5)
    build(fake, tmp_path / "b", seed=5)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    # The same data, pretty-printed, shuffled and with annotations before images: same draw, same labels.
    other = write_fake_coco(tmp_path / "coco2", indent=1, shuffle_records=True, annotations_first=True)
    build(other, tmp_path / "c", seed=5)
    for split in ("train", "val"):
        assert drawn_ids(tmp_path / "c", split) == drawn_ids(tmp_path / "a", split)
        a, c = tree_bytes(tmp_path / "a" / "labels" / split), tree_bytes(tmp_path / "c" / "labels" / split)
        assert a == c
    build(fake, tmp_path / "d", seed=6)
    assert drawn_ids(tmp_path / "d", "train") != drawn_ids(tmp_path / "a", "train")


def test_val_from_train_is_disjoint_and_keeps_the_train_draw(fake: FakeCoco, tmp_path: Path):
    build(fake, tmp_path / "v", train=12, val=6)
    build(fake, tmp_path / "t", train=12, val=6, val_from="train")
    train, val = drawn_ids(tmp_path / "t", "train"), drawn_ids(tmp_path / "t", "val")
    assert train == drawn_ids(tmp_path / "v", "train")
    assert set(val) <= set(fake.image_ids["train2017"]) and not set(train) & set(val)
    manifest = json.loads((tmp_path / "t/manifest.json").read_text())
    assert manifest["sources"]["val"]["annotations"] == "annotations/instances_train2017.json"
    for image_id in val:
        assert (tmp_path / "t/images/val" / f"{image_id:012d}.jpg").resolve().parent.name == "train2017"


def test_empty_images_can_be_drawn_by_default_and_skipped_on_request(fake: FakeCoco, tmp_path: Path):
    n_train = len(fake.image_ids["train2017"])
    build(fake, tmp_path / "all", train=n_train)
    assert set(drawn_ids(tmp_path / "all", "train")) & fake.empty_image_ids
    annotated = set(fake.image_ids["train2017"]) - fake.empty_image_ids
    build(fake, tmp_path / "skip", train=len(annotated), skip_empty=True)
    assert set(drawn_ids(tmp_path / "skip", "train")) == annotated
    with pytest.raises(CocoSubsetError, match=f"only {len(annotated)} eligible"):
        build(fake, tmp_path / "more", train=len(annotated) + 1, skip_empty=True)


def test_manifest_records_seed_counts_checksums_and_ids(fake: FakeCoco, tmp_path: Path):
    report = build(fake, tmp_path / "out", seed=3)
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["settings"]["seed"] == 3
    for split, source in (("train", "train2017"), ("val", "val2017")):
        src = manifest["sources"][split]
        assert src["sha256"] == hashlib.sha256(fake.annotation_file(source).read_bytes()).hexdigest()
        assert src["bytes"] == fake.annotation_file(source).stat().st_size
        assert len(manifest["splits"][split]["image_ids"]) == report.splits[split].images == (10, 5)[split == "val"]
        assert manifest["splits"][split]["boxes"] == report.splits[split].boxes


# --- bad input and faults -----------------------------------------------------------------------------------------


def test_missing_annotation_file(fake: FakeCoco, tmp_path: Path):
    fake.annotation_file("val2017").unlink()
    with pytest.raises(CocoSubsetError, match="instances_val2017.json not found"):
        build(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda text: text[: len(text) // 2], "not a valid COCO annotation file"),
        (lambda text: text.replace('"width"', '"wide"', 1), "missing required field `width`"),
        (lambda text: text.replace('"id": 90', '"id": 12', 1), "category id 12"),
        (lambda text: text.replace('"categories"', '"cats"'), "no 'categories'"),
        (lambda text: text.replace('"file_name": "', '"file_name": "../', 1), "plain file name"),
    ],
)
def test_corrupt_annotation_file(fake: FakeCoco, tmp_path: Path, corrupt, message: str):
    path = fake.annotation_file("train2017")
    path.write_text(corrupt(path.read_text()))
    with pytest.raises(CocoSubsetError, match=message) as info:
        build(fake, tmp_path / "out")
    assert "\n" not in str(info.value) and isinstance(info.value, InputError)
    assert not (tmp_path / "out").exists()


def test_more_images_than_exist(fake: FakeCoco, tmp_path: Path):
    with pytest.raises(CocoSubsetError, match="asked for 13 val images from .* only 12 eligible"):
        build(fake, tmp_path / "out", val=13)
    with pytest.raises(CocoSubsetError, match="25 train \\+ 6 val"):
        build(fake, tmp_path / "out", train=25, val=6, val_from="train")


@pytest.mark.parametrize("field_name, value", [("train", 0), ("val", -1), ("workers", 0)])
def test_non_positive_counts_are_refused(fake: FakeCoco, tmp_path: Path, field_name: str, value: int):
    with pytest.raises(CocoSubsetError, match=f"--{field_name} must be a positive integer"):
        build(fake, tmp_path / "out", **{field_name: value})


def test_output_must_not_be_or_contain_the_coco_dir(fake: FakeCoco, tmp_path: Path):
    with pytest.raises(CocoSubsetError, match="must not be the COCO directory"):
        build(fake, fake.root, force=True)
    with pytest.raises(CocoSubsetError, match="must not be the COCO directory"):
        build(fake, fake.root.parent, force=True)


def test_missing_images_are_counted_and_allowed_only_on_request(fake: FakeCoco, tmp_path: Path):
    n_train = len(fake.image_ids["train2017"])
    gone = fake.image_ids["train2017"][:3]
    for image_id in gone:
        (fake.root / "train2017" / f"{image_id:012d}.jpg").unlink()
    with pytest.raises(CocoSubsetError, match="3 of 35 drawn images are missing.*--allow-missing"):
        build(fake, tmp_path / "out", train=n_train)
    assert not (tmp_path / "out").exists()
    report = build(fake, tmp_path / "out", train=n_train, allow_missing=True)
    assert report.splits["train"].missing == 3 and report.splits["train"].images == n_train - 3
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["splits"]["train"]["missing_image_ids"] == gone
    assert not set(gone) & set(manifest["splits"]["train"]["image_ids"])
    subset = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    assert not {im["id"] for im in subset["images"]} & set(gone)
    assert not {a["image_id"] for a in subset["annotations"]} & set(gone)


def test_existing_output_is_refused_unless_force(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CocoSubsetError, match="already holds files of its own; pass --force"):
        build(fake, out)
    build(fake, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"  # --force deletes only what a build writes
    with pytest.raises(CocoSubsetError, match="already holds a subset built with other settings"):
        build(fake, out, seed=1)
    first = tree_bytes(out)
    build(fake, out)  # same settings: a rerun is allowed and changes nothing
    assert tree_bytes(out) == first
    build(fake, out, seed=1, train=4, force=True)
    assert len(list((out / "labels/train").iterdir())) == 4
    assert len(list((out / "images/train").iterdir())) == 4


def test_changed_source_files_are_refused_unless_force(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    build(fake, out)
    path = fake.annotation_file("val2017")
    path.write_text(path.read_text() + "\n")
    with pytest.raises(CocoSubsetError, match="checksums differ"):
        build(fake, out)
    build(fake, out, force=True)


def test_interrupted_build_leaves_only_whole_files_and_a_rerun_completes_it(fake: FakeCoco, tmp_path: Path):
    import shutil

    build(fake, tmp_path / "clean", train=20)
    reference = tree_bytes(tmp_path / "clean")
    out = tmp_path / "out"
    build(fake, out, train=20)
    for name in ("images", "labels", "annotations"):
        shutil.rmtree(out / name)
    # Make the writer fail part-way through the train labels: a directory sits where one label file must go.
    names = sorted(p for p in reference if p.startswith("labels/train/"))
    obstacle = out / names[len(names) // 2]
    obstacle.mkdir(parents=True)
    (obstacle / "x").touch()
    with pytest.raises(OSError):
        build(fake, out, train=20)
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
    written = {k: v for k, v in tree_bytes(out).items() if k.startswith("labels/train/") and k.count("/") == 2}
    assert len(written) == len(names) // 2 and all(reference[k] == v for k, v in written.items())
    assert not (out / "annotations/instances_train.json").exists()
    (obstacle / "x").unlink()
    obstacle.rmdir()
    (out / "labels/train/.leftover.txt.tmp-1").write_text("half")  # what a killed writer may leave
    build(fake, out, train=20)  # no --force needed: same settings
    assert tree_bytes(out) == reference


# --- the script ---------------------------------------------------------------------------------------------------


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/sample_coco.py"), *args], capture_output=True, text=True, env=env
    )


def test_script_builds_and_reports(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    result = run_script("--coco", str(fake.root), "--out", str(out), "--train", "8", "--val", "4", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "train: 8 images" in result.stdout and "val: 4 images" in result.stdout
    assert (out / "dataset.yaml").is_file()


def test_script_error_is_one_line_exit_2(fake: FakeCoco, tmp_path: Path):
    result = run_script("--coco", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: --coco") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_script_help_explains_every_flag():
    result = run_script("--help")
    assert result.returncode == 0
    for flag in (
        "--coco",
        "--out",
        "--train",
        "--val",
        "--seed",
        "--val-from",
        "--skip-empty",
        "--copy",
        "--force",
        "--allow-missing",
        "--download",
        "--base-url",
        "--workers",
        "--retries",
        "--quiet",
    ):
        assert flag in result.stdout


def test_bundled_dataset_yaml_resolves_to_a_build_at_the_default_output(fake: FakeCoco, tmp_path: Path, monkeypatch):
    from cawb.cli.sample_coco import parse_args
    from cawb.utils.resources import bundled_data

    data = yaml.safe_load(bundled_data("coco10k.yaml").read_text())
    assert "download" not in data
    # Both relative to the working directory: the default --out of the build, and the bundled yaml's path:.
    monkeypatch.chdir(tmp_path)
    default_out = parse_args(["--coco", "anywhere"]).out
    assert not default_out.is_absolute()
    build(fake, tmp_path / default_out)
    resolved = resolve_dataset_yaml(bundled_data("coco10k.yaml"), out_dir=tmp_path)
    annotations = (tmp_path / default_out / "annotations").resolve()
    assert resolved.root == (tmp_path / default_out).resolve()
    assert resolved.val_json.resolve() == annotations / "instances_val.json"
    assert resolved.train_json.resolve() == annotations / "instances_train.json"
    built = yaml.safe_load((tmp_path / default_out / "dataset.yaml").read_text())
    assert {k: data[k] for k in ("train", "val", "names", "category_ids")} == {
        k: built[k] for k in ("train", "val", "names", "category_ids")
    }


def test_quirk_annotations_are_all_in_the_json(fake: FakeCoco, tmp_path: Path):
    build(fake, tmp_path / "out", train=len(fake.image_ids["train2017"]))
    subset = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    kept = {a["id"] for a in subset["annotations"] if a["image_id"] == QUIRK_IMAGE_ID}
    assert kept == {a["id"] for a in QUIRK_ANNOTATIONS}  # crowd, zero-area and outside boxes included


def test_coco_json_without_info_or_licenses_and_without_images_is_valid():
    from cawb.coco.subset import coco_json_bytes

    categories = json.dumps(FAKE_CATEGORIES).encode()
    empty = json.loads(coco_json_bytes({"categories": categories}, [], []))
    assert empty == {"images": [], "annotations": [], "categories": FAKE_CATEGORIES}
    one = json.loads(coco_json_bytes({"categories": categories, "info": b'{"a": 1}'}, [b'{"id": 1}'], [b'{"id": 2}']))
    assert list(one) == ["info", "images", "annotations", "categories"] and one["images"] == [{"id": 1}]


# --- bad places, found before the annotations are parsed ------------------------------------------------------------


def corrupt_annotations(fake: FakeCoco) -> None:
    """Make parsing fail: an error about anything else then proves that it was found before parsing."""
    for split in ("train2017", "val2017"):
        fake.annotation_file(split).write_text('{"images": [')


def test_force_never_deletes_a_users_files_named_like_a_builds_output(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "holiday.jpg").write_bytes(b"mine")
    before = tree_bytes(out)
    with pytest.raises(CocoSubsetError, match="holds 'images', which sample_coco did not write .* even --force"):
        build(fake, out, force=True)
    assert tree_bytes(out) == before


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "read_only"])
def test_unwritable_out_is_refused_before_parsing(fake: FakeCoco, tmp_path: Path, where: str, request):
    corrupt_annotations(fake)
    (tmp_path / "file").write_text("mine")
    out = {"under_a_file": tmp_path / "file" / "out", "a_file": tmp_path / "file"}.get(where)
    if out is None:
        out = request.getfixturevalue("read_only_dir") / "out"
    with pytest.raises(CocoSubsetError) as caught:
        build(fake, out)
    message = str(caught.value)
    assert message.startswith(f"--out {out}: ") and "\n" not in message
    assert (tmp_path / "file").read_text() == "mine"


def test_an_annotation_file_that_is_a_directory_says_so(fake: FakeCoco, tmp_path: Path):
    path = fake.annotation_file("val2017")
    path.unlink()
    path.mkdir()
    with pytest.raises(CocoSubsetError, match="annotation file .*instances_val2017.json: is a directory; expected"):
        build(fake, tmp_path / "out")


def test_script_write_failure_is_one_line_and_a_rerun_resumes(fake: FakeCoco, tmp_path: Path):
    out = tmp_path / "out"
    args = ("--coco", str(fake.root), "--out", str(out), "--train", "8", "--val", "4", "--quiet")
    assert run_script(*args).returncode == 0
    shutil.rmtree(out / "annotations")
    (out / "annotations" / "instances_train.json" / "x").mkdir(parents=True)  # a directory where the JSON goes
    result = run_script(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "rerun the same command to resume" in result.stderr
    shutil.rmtree(out / "annotations" / "instances_train.json")
    assert run_script(*args).returncode == 0
