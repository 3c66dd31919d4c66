"""End to end: pivot runs a two-file DVC pipeline and produces exactly the
bytes real DVC produced for it (recorded in tests/fixtures/dvcrepro)."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "dvcrepro"


def _expected_files() -> list[Path]:
    expected = FIXTURE / "expected"
    return sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file() and not p.name.endswith(".lock.txt"))


def test_outputs_match_what_dvc_repro_produced(ws) -> None:
    shutil.copytree(FIXTURE / "project", ws.root, dirs_exist_ok=True)
    for stored in ws.root.rglob("dvc.yaml.fixture"):
        stored.rename(stored.with_name("dvc.yaml"))
    first = ws.pivot("run", "-j", "2")
    assert "4 ran, 0 restored, 0 up to date, 0 failed" in first.stdout
    files = _expected_files()
    assert len(files) == 9
    for rel in files:
        assert (ws.root / rel).read_bytes() == (FIXTURE / "expected" / rel).read_bytes(), rel
    produced_parts = sorted(p.name for p in (ws.root / "parts").iterdir())
    assert produced_parts == ["part-aa", "part-ab", "part-ac"]
    assert "0 ran, 0 restored, 4 up to date" in ws.pivot("run").stdout
