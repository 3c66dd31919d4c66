"""The project root and the places pivot keeps its state."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_MARKERS = (".pivot", ".dvc", ".git")


def find_root(start: Path) -> Path:
    """The nearest ancestor of ``start`` holding ``.pivot/``, ``.dvc/`` or
    ``.git/``; ``start`` itself when there is none (no git repository needed)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        for marker in ROOT_MARKERS:
            if (directory / marker).is_dir():
                return directory
    return start


@dataclass(frozen=True)
class Project:
    """A project root plus the current directory pivot was started in."""

    root: Path
    cwd: Path

    @classmethod
    def discover(cls, cwd: Path | None = None) -> "Project":
        cwd = (cwd or Path.cwd()).resolve()
        return cls(root=find_root(cwd), cwd=cwd)

    @property
    def state_dir(self) -> Path:
        """``<root>/.pivot``: everything pivot writes lives below it."""
        return self.root / ".pivot"

    def ensure_state_dir(self) -> Path:
        """Create ``.pivot/`` (with a .gitignore keeping only lock records);
        refuse one that a symlink carries outside the project."""
        from pivot.containment import state_dir_escape
        from pivot.errors import StateError

        escape = state_dir_escape(self.root)
        if escape is not None:
            raise StateError(f"refusing to write pivot's state: {escape}")
        state = self.state_dir
        if not state.is_dir():
            state.mkdir(parents=True, exist_ok=True)
        gitignore = state / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE)
        return state

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """``path`` (absolute, or relative to the cwd) relative to the root, POSIX."""
        absolute = Path(os.path.normpath(self.cwd / path))
        rel = os.path.relpath(absolute, self.root)
        return Path(rel).as_posix()

    def abspath(self, relpath: str) -> Path:
        """A root-relative POSIX path as an absolute path."""
        return self.root / relpath


# Lock records and the shared config (remotes) are meant to be committed;
# config.local, caches, databases and logs are not.
GITIGNORE = """\
# pivot: commit locks/ and config, ignore the rest
/*
!/locks/
!/config
!/.gitignore
"""
