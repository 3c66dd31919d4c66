"""Compatibility corpus: pivot resolves each case exactly as real DVC 3.x.

Every directory of tests/dvc_corpus/ is a workspace; its expected.json was
produced by DVC itself (scripts/regen_dvc_corpus.py).  Stage lists must be
equal; for error cases pivot must exit non-zero with one readable message
containing the key phrases of DVC's message, and no traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "dvc_corpus"
META_FILES = {"case.json", "dvc-config", "expected.json"}
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").exists())


def test_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert sum("error" in json.loads((CORPUS / c / "expected.json").read_text()) for c in CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_matches_dvc(ws, case):
    source = CORPUS / case
    shutil.copytree(source, ws.root, dirs_exist_ok=True, ignore=lambda d, names: [n for n in names if n in META_FILES])
    (ws.root / ".dvc").mkdir()
    if (source / "dvc-config").exists():
        (ws.root / ".dvc" / "config").write_text((source / "dvc-config").read_text())
    expected = json.loads((source / "expected.json").read_text())
    if "error" in expected:
        result = ws.pivot("list", "--json", expect=None)
        assert result.exit_code != 0, result.stdout
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("ERROR: ")
        for phrase in expected["phrases"]:
            assert phrase in result.stderr, f"{phrase!r} not in:\n{result.stderr}\nDVC said:\n{expected['error']}"
    else:
        assert ws.pivot_json("list") == expected
