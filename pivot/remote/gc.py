"""``pivot gc --remote NAME``: objects on a remote that no current lock
record of this checkout needs.

A remote is shared by the team: what one checkout does not need, another
branch may.  So this only lists by default (``--dry`` is implied) and
removes only with ``--delete-on-remote``, documented as a team-wide act.
Run-cache entries are left alone (an entry whose objects are gone is simply
not restorable: plans check before they restore).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pivot.remote.storage import OBJECTS, RemoteStorage
from pivot.remote.transfer import parse_manifest
from pivot.state.gc import read_records
from pivot.state.hashing import DIR_SUFFIX

if TYPE_CHECKING:
    from pivot.state import State


@dataclass(frozen=True)
class RemoteGarbage:
    remote: str
    unneeded: tuple[str, ...]  # object digests no current lock record needs
    kept: int  # objects on the remote that are needed


def find_garbage(state: "State", storage: RemoteStorage) -> RemoteGarbage:
    """What the remote holds that no lock record under ``.pivot/locks`` needs
    (their outputs, and the files listed by their directory manifests)."""
    needed: set[str] = set()
    for record in read_records(state.locks.dir):
        for entry in record.outs:
            needed.add(entry.hash)
            if entry.hash.endswith(DIR_SUFFIX):
                needed.update(e.hash for e in _manifest(state, storage, entry.hash))
    present = storage.list_all(OBJECTS)
    unneeded = tuple(sorted(present - needed))
    return RemoteGarbage(storage.name, unneeded, len(present) - len(unneeded))


def delete(storage: RemoteStorage, digests: tuple[str, ...]) -> None:
    storage.map(lambda digest: storage.remove(OBJECTS, digest), list(digests))


def _manifest(state: "State", storage: RemoteStorage, digest: str) -> tuple:
    """A directory's manifest, from the local cache or else the remote (a
    manifest that is in neither, or damaged, protects nothing more)."""
    local = state.cache.load_manifest(digest)
    if local is not None:
        return local
    try:
        return parse_manifest(storage.read(OBJECTS, digest))
    except (FileNotFoundError, ValueError):
        return ()
