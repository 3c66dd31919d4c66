"""pivot.yaml12 reads YAML as ruamel's 1.2 safe loader does (checked against ruamel)."""

from __future__ import annotations

import math

import pytest

from pivot import yaml12
from pivot.errors import PivotError

# value -> (type, str()) as ruamel.yaml 0.19 safe (YAML 1.2) produced them
RUAMEL_1_2 = {
    "yes": (str, "yes"), "no": (str, "no"), "on": (str, "on"), "y": (str, "y"),
    "1e3": (float, "1000.0"), "1.0e-5": (float, "1e-05"), "0.10": (float, "0.1"),
    "null": (type(None), "None"), "~": (type(None), "None"), "NULL": (type(None), "None"),
    "007": (int, "7"), "08": (int, "8"), "0o17": (int, "15"), "0x1F": (int, "31"), "0b101": (int, "5"),
    "1_000": (int, "1000"), ".inf": (float, "inf"), "-.inf": (float, "-inf"), "+.5": (float, "0.5"),
    "1:30": (str, "1:30"), "12:30:00": (str, "12:30:00"), "True": (bool, "True"), "FALSE": (bool, "False"),
    ".5e3": (str, ".5e3"), "1.": (float, "1.0"), "-1E+3": (float, "-1000.0"), "2021-01-01": (None, "2021-01-01"),
}  # fmt: skip


@pytest.mark.parametrize("text", sorted(RUAMEL_1_2))
def test_scalars_resolve_like_yaml_1_2(text):
    kind, rendered = RUAMEL_1_2[text]
    value = yaml12.load_text(f"v: {text}\n", "t.yaml")["v"]
    assert str(value) == rendered
    if kind is not None:
        assert type(value) is kind


def test_nan_and_empty():
    assert math.isnan(yaml12.load_text("v: .nan", "t.yaml")["v"])
    assert yaml12.load_text("v:", "t.yaml") == {"v": None}
    assert yaml12.load_text("", "t.yaml") is None


def test_syntax_error_names_file_line_and_column():
    with pytest.raises(PivotError, match=r"^dvc.yaml:3:5: 'dvc.yaml' is invalid"):
        yaml12.load_text("stages:\n  a: 1\n   b: [\n", "dvc.yaml")


def test_duplicate_keys_are_errors_as_in_ruamel():
    with pytest.raises(PivotError, match='dvc.yaml:3:3: .*duplicate key "a"'):
        yaml12.load_text("s:\n  a: 1\n  a: 2\n", "dvc.yaml")


def test_document_keeps_key_lines(tmp_path):
    path = tmp_path / "dvc.yaml"
    path.write_text("stages:\n  first:\n    cmd: x\n\n  second:\n    cmd: y\n")
    doc = yaml12.load_document_file(path, "dvc.yaml")
    assert doc.lines[("stages", "second")] == 5
    assert doc.line_of("stages", "second", "cmd", 0) == 6


def test_missing_file_is_a_pivot_error(tmp_path):
    with pytest.raises(PivotError, match="'p.yaml' does not exist"):
        yaml12.load_file(tmp_path / "p.yaml", "p.yaml")
