"""Uploading named cache objects: what a stage's entries need on the remote.

``push`` (``transfer.py``) works from lock records; a distributed run
(``--executor-data remote``) moves single stages' inputs and outputs as
soon as they exist, so it needs the same guarantees for a plain list of
entries: only what the remote lacks is sent, files go up before the
manifests that list them, every upload is atomic (``RemoteStorage.upload``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from pivot.remote.storage import OBJECTS, RemoteStorage
from pivot.state.hashing import DIR_SUFFIX

if TYPE_CHECKING:
    from pivot.state.locks import LockEntry
    from pivot.state.store import Cache


def push_objects(storage: RemoteStorage, cache: "Cache", entries: Iterable["LockEntry"],
                 known: set[str] | None = None) -> int:
    """Upload from ``cache`` the objects of ``entries`` (a directory: its
    files, then its manifest) that the remote lacks; returns how many were
    sent.  ``known`` holds digests already known to be on the remote and
    is updated.  ``RemoteError`` (naming the remote) when an upload fails."""
    known = set() if known is None else known
    files: dict[str, None] = {}
    manifests: dict[str, None] = {}
    for entry in entries:
        if entry.hash.endswith(DIR_SUFFIX):
            manifests[entry.hash] = None
            files.update(dict.fromkeys(item.hash for item in cache.load_manifest(entry.hash) or ()))
        else:
            files[entry.hash] = None
    sent = 0
    for batch in (files, manifests):  # a manifest goes up only once its files are there
        unknown = [digest for digest in batch if digest not in known]
        missing = sorted(set(unknown) - storage.present(OBJECTS, unknown))
        storage.map(lambda digest: storage.upload(cache.object_path(digest), OBJECTS, digest), missing)
        known.update(unknown)
        sent += len(missing)
    return sent
