"""Remotes: sharing the cache and the run cache between machines.

- ``config``: remotes in ``.pivot/config`` (for git) and ``.pivot/config.local``;
- ``fs``: the fsspec filesystem of a remote, with the pip hint for a missing extra;
- ``storage``: the layout on a remote, batched existence checks, atomic uploads;
- ``transfer``: push and fetch of objects and run-cache entries, verified;
- ``index``: ``RemoteIndex``, what a run can ask a remote (contains, fetch);
- ``workspace``: putting pulled outputs in place.

See ``docs/remotes.md``.
"""
