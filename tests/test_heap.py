"""pivot.backends.heap: freed heap memory goes back to the system (glibc)."""

from __future__ import annotations

import pytest

from pivot.backends import heap


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_freed_blocks_below_a_live_one_go_back_to_the_system():
    if not heap.available():
        pytest.skip("this C library has no malloc_trim")
    # 60 MB of small blocks (under malloc's mmap threshold: they live in its
    # heap), then one kept above them: freeing the rest leaves the pages
    # inside the heap, where only a trim gives them back.
    blocks = [bytearray(1200) for _ in range(50_000)]
    pinned = bytearray(1200)
    blocks.clear()
    before = _rss_anon_kb()
    assert heap.release_free_memory()
    after = _rss_anon_kb()
    assert after < before - 30_000, (before, after)
    assert len(pinned) == 1200

