"""cawb/utils/user_files.py: reading the files users name, and checking output places, with one-line errors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cawb.utils.user_files import (
    UserFileError,
    UserFileNotFoundError,
    check_checkpoint_file,
    check_output_dir,
    check_output_file,
    parse_yaml,
    read_yaml,
)


def refused(call, *args, **kwargs) -> str:
    """The message of the UserFileError ``call`` raises, checked to be one line."""
    with pytest.raises(UserFileError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    return message


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- read_yaml -------------------------------------------------------------------------------------------------


def test_a_good_file_is_read_and_a_merge_key_may_be_overridden(tmp_path):
    path = tmp_path / "hyp.yaml"
    path.write_text("\ufefflr0: 0.01\nbase: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  x: 3\n", encoding="utf-8")
    assert read_yaml(path, "hyp file") == {"lr0": 0.01, "base": {"x": 1, "y": 2}, "merged": {"x": 3, "y": 2}}


def test_missing_file_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_yaml(tmp_path / "nope.yaml", "hyp file")
    message = refused(read_yaml, tmp_path / "nope.yaml", "hyp file")
    assert message == f"hyp file {tmp_path / 'nope.yaml'} not found"
    with pytest.raises(UserFileNotFoundError):
        read_yaml(tmp_path / "nope.yaml", "hyp file")


def test_dangling_symlink_says_where_it_points(tmp_path):
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    message = refused(read_yaml, tmp_path / "link.yaml", "hyp file")
    assert "not found" in message and "gone.yaml" in message


def test_a_path_through_a_file_is_not_found(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "a part of the path is a file" in refused(read_yaml, tmp_path / "file" / "hyp.yaml", "hyp file")


def test_directory_is_named_as_a_directory(tmp_path):
    message = refused(read_yaml, tmp_path, "dataset yaml")
    assert message.startswith(f"dataset yaml {tmp_path}: is a directory; expected a YAML file")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "hyp.fifo"
    os.mkfifo(fifo)
    messages = []
    reader = threading.Thread(target=lambda: messages.append(refused(read_yaml, fifo, "hyp file")), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "is a FIFO" in messages[0]


def test_unreadable_file_follows_the_real_permissions(tmp_path):
    path = tmp_path / "hyp.yaml"
    path.write_text("lr0: 0.01\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root: permission bits do not stop it, so it must be read
            assert read_yaml(path, "hyp file") == {"lr0": 0.01}
        else:
            assert refused(read_yaml, path, "hyp file") == f"hyp file {path}: cannot be read (permission denied)"
    finally:
        path.chmod(0o644)


def test_a_file_that_cannot_be_opened_says_why(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)  # opening it fails for every user, root included (ELOOP)
    assert "cannot be read (too many levels of symbolic links)" in refused(read_yaml, loop, "hyp file")


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary (a NUL byte at offset 8)"),
        (b"lr0: 0.01\nname: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 19)"),
    ],
)
def test_binary_and_non_utf8_files_are_named(tmp_path, content, message):
    path = tmp_path / "weights.yaml"
    path.write_bytes(content)
    text = refused(read_yaml, path, "hyp file")
    assert text.startswith(f"hyp file {path}: {message}")


def test_a_file_too_large_for_settings_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("".join(f"k{i}: {i}\n" for i in range(200)))
    assert refused(read_yaml, path, "hyp file", max_bytes=1000).startswith(f"hyp file {path}: is larger than")
    assert len(read_yaml(path, "hyp file", max_bytes=10_000)) == 200


@pytest.mark.parametrize(
    "text,message",
    [
        ("lr0: 0.01\nlrf: [0.1\nmomentum: 0.9\n", "line 3: not valid YAML"),
        ("lr0: 0.01\n  lrf: 0.1\n", "line 2: not valid YAML"),
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first at line 1); each key may appear once"),
        ("outer:\n  k: 1\n  k: 2\n", "line 3: duplicate key 'k' (first at line 2)"),
        ("m: {x: 1, x: 2}\n", "line 1: duplicate key 'x' (first at line 1)"),
        ("- {a: 1}\n- {b: 1, b: 2}\n", "line 2: duplicate key 'b'"),
    ],
)
def test_malformed_yaml_and_duplicate_keys_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    assert refused(read_yaml, path, "dataset yaml", mapping_of=None).startswith(f"dataset yaml {path} {message}")


def test_the_same_key_in_different_mappings_is_fine(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: {k: 1}\nb: {k: 2}\n")
    assert read_yaml(path, "x") == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n"])
def test_empty_files_are_refused_unless_the_caller_allows_them(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    expected = f"hyp file {path}: is empty; expected a YAML file of key: value settings"
    assert refused(read_yaml, path, "hyp file") == expected
    assert read_yaml(path, "hyp file", allow_empty=True) == {}
    assert read_yaml(path, "hyp file", mapping_of=None, allow_empty=True) is None


def test_top_level_type_is_checked_when_asked(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert "must be a mapping of class names, got a list" in refused(read_yaml, path, "x", mapping_of="class names")
    assert read_yaml(path, "x", mapping_of=None) == [1, 2]


def test_parse_yaml_names_its_source():
    assert parse_yaml("[1, 2]", "lr0=...") == [1, 2]
    assert refused(parse_yaml, "{a: 1, a: 2}", "--space value").startswith("--space value line 1: duplicate key 'a'")
    assert refused(parse_yaml, "[2,", "cawb_steps=[2,").startswith("cawb_steps=[2, line 1: not valid YAML")


# --- check_checkpoint_file -----------------------------------------------------------------------------------------


def test_real_torch_checkpoints_pass_in_both_formats(tmp_path):
    torch = pytest.importorskip("torch")
    for name, zip_format in (("new.pt", True), ("legacy.pt", False)):
        torch.save({"epoch": 1, "model": None}, tmp_path / name, _use_new_zipfile_serialization=zip_format)
        assert check_checkpoint_file(tmp_path / name, "--weights") == tmp_path / name


def test_other_content_is_not_taken_for_a_checkpoint(tmp_path):
    import zipfile

    import torch

    good = tmp_path / "good.pt"
    torch.save({"model": None}, good)
    cases = {
        "garbage.pt": b"\x00\x01garbage" * 100,
        "empty.pt": b"",
        "text.pt": b"model: yolov5s.yaml\n",
        "truncated.pt": good.read_bytes()[: good.stat().st_size // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    expected = {
        "garbage.pt": "is not a checkpoint (the file starts with",
        "empty.pt": "is not a checkpoint (the file is empty)",
        "text.pt": "is not a checkpoint",
        "truncated.pt": "is a damaged zip archive",
        "other.zip": "is a zip archive without data.pkl",
    }
    for name, message in expected.items():
        text = refused(check_checkpoint_file, tmp_path / name, "--weights")
        assert text.startswith(f"--weights {tmp_path / name}: {message}"), text
        assert text.endswith("expected a PyTorch checkpoint (.pt) written by torch.save")
    assert "is a directory" in refused(check_checkpoint_file, tmp_path, "--weights")


# --- output places -------------------------------------------------------------------------------------------------


def test_creatable_places_pass_and_nothing_is_created(tmp_path):
    before = tree(tmp_path)
    assert check_output_file(tmp_path / "new" / "deeper" / "lr.png", "--out") == tmp_path / "new" / "deeper" / "lr.png"
    assert check_output_dir(tmp_path / "new" / "run", "--out") == tmp_path / "new" / "run"
    (tmp_path / "lr.png").write_bytes(b"old")
    check_output_file(tmp_path / "lr.png", "--out")  # an existing file may be replaced
    check_output_dir(tmp_path, "--out")
    assert tree(tmp_path) == sorted(before + ["lr.png"])


def test_a_directory_where_a_file_is_expected_and_the_reverse(tmp_path):
    (tmp_path / "file.csv").write_text("x")
    message = refused(check_output_file, tmp_path, "--csv")
    assert message.startswith(f"--csv {tmp_path}: is a directory; expected a file")
    assert refused(check_output_dir, tmp_path / "file.csv", "--out") == (
        f"--out {tmp_path / 'file.csv'}: is a file, not a directory; expected a directory"
    )


def test_a_place_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    targets = ((check_output_file, tmp_path / "file" / "a" / "lr.png"), (check_output_dir, tmp_path / "file" / "out"))
    for check, target in targets:
        message = refused(check, target, "--out")
        assert message.startswith(f"--out {target}: {tmp_path / 'file'} is a file, not a directory")


def test_a_read_only_place_is_refused_and_left_alone(read_only_dir):
    before = sorted(os.listdir(read_only_dir))
    targets = ((check_output_file, read_only_dir / "sub" / "lr.png"), (check_output_dir, read_only_dir / "out"))
    for check, target in targets:
        message = refused(check, target, "--out")
        assert message.startswith(f"--out {target}: cannot write in {read_only_dir} (")
    assert sorted(os.listdir(read_only_dir)) == before


def test_a_read_only_existing_file_follows_the_real_permissions(tmp_path):
    path = tmp_path / "lr.csv"
    path.write_text("epoch,lr\n")
    path.chmod(0o444)
    try:
        if os.access(path, os.W_OK):  # root
            assert check_output_file(path, "--csv") == path
        else:
            assert "the file is read-only" in refused(check_output_file, path, "--csv")
    finally:
        path.chmod(0o644)
