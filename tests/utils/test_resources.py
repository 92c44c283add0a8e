"""cawb/utils/resources.py: the bundled hyp and dataset yamls, found in a clone, and named by their short names.

(An installed wheel is tests/test_wheel.py's.)"""

from pathlib import Path

import pytest
import yaml

from cawb.utils.resources import (
    bundled_data,
    bundled_data_dir,
    bundled_data_names,
    bundled_hyp,
    bundled_hyp_dir,
    bundled_hyp_names,
    is_bundled,
    resolve_data,
    resolve_hyp,
)

REPO = Path(__file__).resolve().parents[2]


def test_in_a_clone_the_bundled_files_are_the_top_level_folders_themselves():
    # One source: no copy of hyp/ or data/ inside the package to drift apart.
    assert bundled_hyp_dir() == REPO / "hyp" and bundled_data_dir() == REPO / "data"
    assert not (REPO / "cawb" / "_bundled").exists()
    assert bundled_hyp("hyp.scratch-cawb.yaml") == REPO / "hyp" / "hyp.scratch-cawb.yaml"
    assert bundled_data("shapes.yaml").is_file()


def test_names_list_every_bundled_file():
    hyp_files = sorted(p.name for p in (REPO / "hyp").glob("*.yaml"))
    assert [f"hyp.{name}.yaml" for name in bundled_hyp_names()] == hyp_files
    assert sorted(f"{name}.yaml" for name in bundled_data_names()) == sorted(p.name for p in (REPO / "data").glob("*.yaml"))
    assert "scratch-cawb" in bundled_hyp_names() and "shapes" in bundled_data_names()


@pytest.mark.parametrize("name", ["scratch-cawb", "hyp.scratch-cawb", "hyp.scratch-cawb.yaml"])
def test_a_bundled_hyp_file_by_its_short_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anywhere
    assert resolve_hyp(name) == bundled_hyp("hyp.scratch-cawb.yaml")


def test_a_bundled_dataset_yaml_by_its_short_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data("shapes") == resolve_data("shapes.yaml") == bundled_data("shapes.yaml")


def test_an_existing_path_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("scratch-cawb").write_text(yaml.safe_dump({"lr0": 0.02}))
    assert resolve_hyp("scratch-cawb") == Path("scratch-cawb")
    own = tmp_path / "hyp" / "hyp.scratch-cos.yaml"
    own.parent.mkdir()
    own.write_text("lr0: 0.03\n")
    assert resolve_hyp("hyp/hyp.scratch-cos.yaml") == Path("hyp/hyp.scratch-cos.yaml")


def test_neither_a_path_nor_a_bundled_name_is_one_line_naming_the_flag_and_the_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        resolve_hyp("scratch-cawbb", flag="--arms")
    message = str(error.value)
    assert message.startswith("--arms scratch-cawbb: not found: no such file, nor a bundled hyp name")
    assert "\n" not in message and all(name in message for name in bundled_hyp_names())
    # a path with a folder is a path: never silently replaced by the bundled file of the same name
    bundled = "coco10k, shapes, shapes-cls, shapes-obb, shapes-pose, shapes-seg"
    with pytest.raises(FileNotFoundError, match=rf"^--data data/shapes.yaml: not found: no such file.*{bundled}\)$"):
        resolve_data("data/shapes.yaml")


def test_is_bundled_tells_the_bundled_files_from_a_copy(tmp_path):
    copy = tmp_path / "shapes.yaml"
    copy.write_text(bundled_data("shapes.yaml").read_text())
    assert is_bundled(bundled_data("shapes.yaml")) and is_bundled(bundled_hyp("hyp.shapes-cos.yaml"))
    assert not is_bundled(copy)
