import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import shutil
from pathlib import Path

import pytest
import yaml

from cawb.datasets.resolve import resolve_dataset_yaml
from cawb.datasets.shapes import CATEGORY_IDS, CLASS_NAMES, generate_shapes_dataset
from cawb.utils.resources import bundled_data

REPO_SHAPES_YAML = bundled_data("shapes.yaml")


@pytest.fixture(scope="module")
def repo_like(tmp_path_factory) -> Path:
    """A copy of the bundled shapes.yaml in <tmp>/data/: a user's yaml, so its datasets/shapes lands in
    <tmp>/data/datasets/shapes."""
    root = tmp_path_factory.mktemp("repo")
    (root / "data").mkdir()
    shutil.copy(REPO_SHAPES_YAML, root / "data" / "shapes.yaml")
    return root


@pytest.fixture
def small_shapes(tmp_path) -> Path:
    return generate_shapes_dataset(tmp_path / "ds", train_images=4, val_images=3, imgsz=64)


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_users_yaml_generates_data_relative_to_itself_whatever_the_cwd(repo_like, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the yaml's directory nor its parent
    ds = resolve_dataset_yaml(os.path.relpath(repo_like / "data" / "shapes.yaml", tmp_path))
    root = repo_like / "data" / "datasets" / "shapes"
    assert ds.root == root
    assert ds.val == (root / "images" / "val",) and ds.train == (root / "images" / "train",)
    assert ds.val_json == root / "annotations" / "instances_val.json" and ds.val_json.is_file()
    assert ds.train_json == root / "annotations" / "instances_train.json" and ds.train_json.is_file()
    assert ds.names == dict(enumerate(CLASS_NAMES)) and ds.nc == len(CLASS_NAMES)
    assert ds.category_ids == CATEGORY_IDS
    generator = yaml.safe_load(REPO_SHAPES_YAML.read_text())["generator"]
    assert len(list(ds.val[0].glob("*.png"))) == generator["val_images"]
    assert len(list(ds.train[0].glob("*.png"))) == generator["train_images"]


def test_bundled_yaml_generates_its_data_under_the_working_directory(tmp_path, monkeypatch):
    """The bundled yamls live in the installation, which cawb never writes: their path: is the working dir's."""
    monkeypatch.chdir(tmp_path)
    ds = resolve_dataset_yaml(bundled_data("shapes.yaml"))
    assert ds.source == REPO_SHAPES_YAML
    assert ds.root == tmp_path / "datasets" / "shapes" and ds.yaml.parent == ds.root
    val_images = yaml.safe_load(REPO_SHAPES_YAML.read_text())["generator"]["val_images"]
    assert ds.val_json.is_file() and len(list(ds.val[0].glob("*.png"))) == val_images


def test_resolved_yaml_is_what_ultralytics_reads(repo_like):
    from ultralytics.data.utils import check_det_dataset

    ds = resolve_dataset_yaml(repo_like / "data" / "shapes.yaml")
    resolved = yaml.safe_load(ds.yaml.read_text())
    assert Path(resolved["path"]).is_absolute() and Path(resolved["path"]) == ds.root
    data = check_det_dataset(str(ds.yaml))
    assert Path(data["val"]) == ds.val[0] and Path(data["train"]) == ds.train[0]
    assert data["names"] == ds.names


def test_second_resolution_reuses_the_data(repo_like):
    first = resolve_dataset_yaml(repo_like / "data" / "shapes.yaml")
    png = next(first.val[0].glob("*.png"))
    before = png.stat().st_mtime_ns
    resolve_dataset_yaml(repo_like / "data" / "shapes.yaml")
    assert png.stat().st_mtime_ns == before


def test_changed_generator_arguments_are_refused_on_existing_data(repo_like, tmp_path):
    data = yaml.safe_load((repo_like / "data" / "shapes.yaml").read_text())
    data["path"] = str(repo_like / "data" / "datasets" / "shapes")
    data["generator"]["seed"] += 1
    with pytest.raises(ValueError, match="changed.yaml: .* delete"):  # one line naming the yaml, then the data
        resolve_dataset_yaml(_write(tmp_path / "changed.yaml", data))


def test_a_file_of_the_users_where_the_resolved_copy_goes_is_never_replaced(small_shapes, tmp_path):
    mine = tmp_path / "run" / "shapes.resolved.yaml"
    mine.parent.mkdir()
    mine.write_text("# my own notes\n")
    with pytest.raises(ValueError, match="shapes.resolved.yaml exists and was not written by cawb"):
        resolve_dataset_yaml(small_shapes, out_dir=tmp_path / "run")
    assert mine.read_text() == "# my own notes\n"
    mine.unlink()
    first = resolve_dataset_yaml(small_shapes, out_dir=tmp_path / "run").yaml.read_text()
    assert resolve_dataset_yaml(small_shapes, out_dir=tmp_path / "run").yaml.read_text() == first  # its own: rewritten


def test_resolved_copy_goes_to_out_dir(small_shapes, tmp_path):
    ds = resolve_dataset_yaml(small_shapes, out_dir=tmp_path / "run")
    assert ds.yaml == tmp_path / "run" / "shapes.resolved.yaml" and ds.yaml.is_file()
    assert ds.root == small_shapes.parent  # no path: key -> the yaml's own directory
    # The copy resolves to the same dataset.
    again = resolve_dataset_yaml(ds.yaml, out_dir=tmp_path / "run2")
    assert (again.root, again.val, again.val_json, again.category_ids) == (
        ds.root,
        ds.val,
        ds.val_json,
        ds.category_ids,
    )


def test_missing_data_without_generator_fails_in_one_line_with_the_build_hint(tmp_path):
    yaml_path = _write(
        tmp_path / "data" / "coco10k.yaml",
        {
            "path": "../datasets/coco10k",
            "train": "images/train2017",
            "val": "images/val2017",
            "names": {0: "person"},
            "build": "python scripts/sample_coco.py --out datasets/coco10k",
        },
    )
    with pytest.raises(FileNotFoundError) as err:
        resolve_dataset_yaml(yaml_path)
    message = str(err.value)
    assert "\n" not in message
    assert str(yaml_path) in message
    assert str(tmp_path / "datasets" / "coco10k") in message
    assert "python scripts/sample_coco.py" in message
    assert not (tmp_path / "datasets").exists()


def test_missing_val_json_is_reported(small_shapes, tmp_path):
    data = yaml.safe_load(small_shapes.read_text())
    data["path"] = str(small_shapes.parent)
    data["val_json"] = "annotations/nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        resolve_dataset_yaml(_write(tmp_path / "x.yaml", data))


def test_download_key_is_dropped(small_shapes, tmp_path):
    data = {**yaml.safe_load(small_shapes.read_text()), "path": str(small_shapes.parent), "download": "https://x/y.zip"}
    ds = resolve_dataset_yaml(_write(tmp_path / "x.yaml", data))
    assert "download" not in yaml.safe_load(ds.yaml.read_text())


@pytest.mark.parametrize(
    "change, key",
    [
        ({"category_ids": [3, 7]}, "category_ids"),
        ({"category_ids": [3, 3, 11]}, "category_ids"),
        ({"names": None}, "names"),
        ({"names": {1: "a", 2: "b"}}, "names"),
        ({"val": 5}, "val"),
        ({"path": 3}, "path"),
        ({"val_json": ["a.json"]}, "val_json"),
        ({"generator": {"name": "nope"}}, "generator"),
        ({"generator": {"name": "shapes", "colours": 3}}, "colours"),
        ({"generator": {"name": "shapes", "train_images": -1}}, "train_images"),
    ],
)
def test_bad_keys_are_rejected_naming_the_key(small_shapes, tmp_path, change, key):
    data = {**yaml.safe_load(small_shapes.read_text()), "path": str(tmp_path / "gen"), **change}
    with pytest.raises(ValueError, match=key) as err:
        resolve_dataset_yaml(_write(tmp_path / "x.yaml", data))
    assert "\n" not in str(err.value)


def test_names_that_disagree_with_the_generator_are_refused(tmp_path):
    data = {
        "path": "gen",
        "train": "images/train",
        "val": "images/val",
        "names": {0: "circle", 1: "square", 2: "triangle"},
        "category_ids": list(CATEGORY_IDS),
        "generator": {"name": "shapes", "train_images": 2, "val_images": 2, "imgsz": 64},
    }
    with pytest.raises(ValueError, match="differ from what generator"):
        resolve_dataset_yaml(_write(tmp_path / "x.yaml", data))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"train: images/train\nval: [images/val\n", "line 3: not valid YAML"),
        (b"train: a\nval: b\nnames: [x]\ntrain: c\n", "line 4: duplicate key 'train' (first at line 1)"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is binary"),
        (b"- train\n- val\n", "must be a mapping"),
    ],
)
def test_unusable_yaml_files_are_refused_in_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "data.yaml"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        resolve_dataset_yaml(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.yaml"]


def test_a_directory_is_not_a_dataset_yaml(tmp_path):
    with pytest.raises(ValueError, match="is a directory; expected a YAML file"):
        resolve_dataset_yaml(tmp_path)


@pytest.mark.parametrize(
    "names, message",
    [
        ({"zero": "a", 1: "b"}, "names key 'zero' is not a class index"),
        ({0: "a", "1": "b"}, "names key '1' is not a class index"),
        ({0: "a", 2: "b"}, "names keys [0, 2] are invalid: they must be 0..1"),
        ({0: "a", 1: None}, "names[1]=None is invalid"),
        ([], "names=[] is invalid"),
    ],
)
def test_names_must_be_indexed_by_integers(small_shapes, tmp_path, names, message):
    data = {**yaml.safe_load(small_shapes.read_text()), "path": str(small_shapes.parent), "names": names}
    data.pop("category_ids")
    with pytest.raises(ValueError) as err:
        resolve_dataset_yaml(_write(tmp_path / "x.yaml", data))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_required_keys_are_checked_before_anything_is_written(small_shapes, tmp_path):
    from cawb.datasets.resolve import check_dataset_yaml

    data = {**yaml.safe_load(small_shapes.read_text()), "path": str(small_shapes.parent)}
    del data["val_json"]
    path = _write(tmp_path / "x.yaml", data)
    with pytest.raises(ValueError, match="val_json must be set \\(val_json for COCO evaluation\\)"):
        resolve_dataset_yaml(path, out_dir=tmp_path / "out", require={"val_json": "for COCO evaluation"})
    assert not (tmp_path / "out").exists()
    assert check_dataset_yaml(path)["names"] == data["names"]  # without the requirement it is fine


# --- ultralytics' conventions: datasets_dir, names of the yamls it ships, its reader's leniencies ---------------


@pytest.fixture
def ultralytics_reads(monkeypatch, tmp_path):
    """ultralytics' own reader of dataset yamls, with the datasets_dir cawb reads (its module keeps a copy taken at
    import), in a working directory of its own."""
    import ultralytics.data.utils as data_utils

    from cawb.utils.ultralytics_compat import datasets_dir

    monkeypatch.setattr(data_utils, "DATASETS_DIR", datasets_dir())
    monkeypatch.chdir(tmp_path)
    return lambda path: data_utils.check_det_dataset(str(path), autodownload=False)


def _image_dirs(root: Path, *splits: str) -> Path:
    """Split directories under ``root``, each with one image (a split without any is refused)."""
    from PIL import Image

    for split in splits:
        (root / split).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16)).save(root / split / "0.png")
    return root


def test_a_path_relative_to_ultralytics_datasets_dir_is_found_as_yolo_train_finds_it(ultralytics_reads, tmp_path):
    from cawb.utils.ultralytics_compat import datasets_dir

    root = _image_dirs(datasets_dir() / "mine", "images/train", "images/val")
    mine = _write(tmp_path / "elsewhere" / "mine.yaml", {"path": "mine", "train": "images/train", "val": "images/val",
                                                          "names": ["a"]})
    ds = resolve_dataset_yaml(mine, out_dir=tmp_path / "out")
    assert ds.root == root == Path(ultralytics_reads(mine)["path"]).resolve()
    assert ds.val == (root / "images" / "val",)


def test_ultralytics_rule_wins_when_the_yaml_relative_place_exists_too(ultralytics_reads, tmp_path, caplog):
    beside = _image_dirs(tmp_path / "project" / "data", "images/train", "images/val")
    in_cwd = _image_dirs(tmp_path / "data", "images/train", "images/val")  # the working directory is tmp_path
    mine = _write(tmp_path / "project" / "mine.yaml", {"path": "data", "train": "images/train", "val": "images/val",
                                                         "names": ["a"]})
    ds = resolve_dataset_yaml(mine, out_dir=tmp_path / "out")
    assert ds.root == in_cwd == Path(ultralytics_reads(mine)["path"]).resolve() != beside
    assert "exists in several places" in caplog.text


def test_a_dataset_exported_for_yolov5_reads_as_ultralytics_reads_it(ultralytics_reads, tmp_path):
    # no path:, splits as '../train/images', classes by nc and names, the val split called validation
    root = _image_dirs(tmp_path / "export", "train/images", "valid/images")
    export = _write(root / "data.yaml", {"train": "../train/images", "validation": "../valid/images", "nc": 2,
                                         "names": ["cat", "dog"]})
    ds = resolve_dataset_yaml(export, out_dir=tmp_path / "out")
    theirs = ultralytics_reads(export)
    assert ds.train == (root / "train" / "images",) and Path(theirs["train"]) == ds.train[0]
    assert ds.val == (root / "valid" / "images",) and Path(theirs["val"]) == ds.val[0]
    only_nc = _write(root / "nc.yaml", {"train": "train/images", "val": "valid/images", "nc": 2})
    assert resolve_dataset_yaml(only_nc, out_dir=tmp_path / "out").names == {0: "class_0", 1: "class_1"} == \
        ultralytics_reads(only_nc)["names"]


def test_a_yaml_ultralytics_ships_is_found_by_name_and_read_under_its_datasets_dir(ultralytics_reads, tmp_path):
    from cawb.utils.resources import resolve_data
    from cawb.utils.ultralytics_compat import datasets_dir, ultralytics_dataset_yaml

    shipped = ultralytics_dataset_yaml("coco8.yaml")
    assert resolve_data("coco8.yaml") == resolve_data("coco8") == shipped and shipped.is_file()
    root = _image_dirs(datasets_dir() / "coco8", "images/train", "images/val")
    try:
        ds = resolve_dataset_yaml(shipped, out_dir=tmp_path / "out")
        assert ds.root == root and ds.nc == 80 and ds.val == (root / "images" / "val",)
    finally:
        shutil.rmtree(root)


def test_a_shipped_dataset_that_is_not_on_disk_is_refused_saying_where_and_that_nothing_is_downloaded(tmp_path,
                                                                                                      monkeypatch):
    from cawb.utils.ultralytics_compat import datasets_dir, ultralytics_dataset_yaml

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        resolve_dataset_yaml(ultralytics_dataset_yaml("coco8.yaml"))
    message = str(err.value)
    assert "\n" not in message and f"ultralytics would download it into {datasets_dir() / 'coco8'}" in message
    assert "cawb never downloads" in message and f"{tmp_path / 'coco8'} (the working directory's)" in message
    assert list(tmp_path.iterdir()) == [] and not (datasets_dir() / "coco8").exists()
