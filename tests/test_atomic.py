"""The one atomic writer: old file or new file, never half, and a temporary
name that `pivot gc` recognises."""

from __future__ import annotations

import pickle

import pytest

from pivot import atomic


def _temp_files(directory):
    return [p.name for p in directory.iterdir() if atomic.is_temp_name(p.name)]


def test_write_text_replaces_the_file(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"
    assert _temp_files(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "pipeline.pickle"
    target.write_bytes(b"old")
    with pytest.raises((pickle.PicklingError, AttributeError)):
        with atomic.writing(target) as handle:
            handle.write(b"half")
            pickle.dump(lambda: None, handle)  # lambdas cannot be pickled
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_replacing_hands_out_a_name_for_the_caller_to_create(tmp_path):
    target = tmp_path / "object"
    with atomic.replacing(target) as tmp:
        assert not tmp.exists() and tmp.parent == tmp_path
        tmp.write_text("copied")
    assert target.read_text() == "copied"


def test_temporary_names_are_recognised_and_only_they_are(tmp_path):
    tmp = atomic.temp_path(tmp_path / "gen.json")
    assert tmp.name.startswith(".gen.json.") and atomic.is_temp_name(tmp.name)
    assert atomic.is_temp_name(".gen.json.4242-139872.tmp"), "earlier pivots' pid-thread names"
    for name in ("gen.json", ".gen.json", "notes.tmp", ".gen.json.pivot-ab12cd34", ".x.12.tmp"):
        assert not atomic.is_temp_name(name), name


def test_a_long_name_still_gives_a_valid_temporary_name(tmp_path):
    target = tmp_path / ("é" * 120 + ".json")  # 244 bytes: the temporary name must be cut
    atomic.write_text(target, "{}")
    assert target.read_text() == "{}"
    assert len(atomic.temp_path(target).name.encode()) <= 255
