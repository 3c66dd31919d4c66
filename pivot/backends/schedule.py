"""Scheduling state of one run, as one object (Ninja's ``Plan``).

The runner asks it which stage may start next, tells it when a stage
started and how it settled, and it answers with what that releases or
blocks.  It never touches the disk or spawns anything, so the local
executor and the Dask executor drive the same object and schedule alike.
"""

from __future__ import annotations

import heapq
from typing import Mapping, Sequence


class Schedule:
    """The stages of a plan that have work, from not started to settled.

    A stage is *waiting* (for upstream stages with work), *ready*, *running*
    or settled.  Ready stages start in plan order.  Once ``stop`` was called
    nothing more starts; what never started is ``unstarted()``.
    """

    def __init__(
        self,
        work: Sequence[str],
        upstream: Mapping[str, Sequence[str]],
        downstream: Mapping[str, Sequence[str]],
    ) -> None:
        self._order = {address: i for i, address in enumerate(work)}
        self._downstream = downstream
        self._pending = set(work)  # not settled yet (waiting, ready or running)
        self._waiting = {a: {u for u in upstream[a] if u in self._pending} for a in work}
        self._ready: list[tuple[int, str]] = [(self._order[a], a) for a in work if not self._waiting[a]]
        heapq.heapify(self._ready)
        self.running: dict[str, float] = {}  # address -> when it started (Unix seconds)
        self.stop_reason: str | None = None

    # -- questions -----------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Nothing running, and nothing more will start."""
        return not self.running and (not self._ready or self.stop_reason is not None)

    def can_start(self, limit: int) -> bool:
        return bool(self._ready) and self.stop_reason is None and len(self.running) < limit

    def unstarted(self) -> list[str]:
        """Stages that never settled, in plan order (after a stop)."""
        return sorted(self._pending - self.running.keys(), key=self._order.__getitem__)

    def width(self) -> int:
        """How many stages can run at once at most, by DAG level: an executor
        never needs more workers than this."""
        level: dict[str, int] = {}
        for address in sorted(self._pending, key=self._order.__getitem__):
            ups = [level[u] for u in self._waiting.get(address, ()) if u in level]
            level[address] = 1 + max(ups, default=-1)
        counts: dict[int, int] = {}
        for depth in level.values():
            counts[depth] = counts.get(depth, 0) + 1
        return max(counts.values(), default=0)

    # -- events --------------------------------------------------------------

    def next_ready(self) -> str:
        """The next stage to start (plan order); call only when ``can_start``."""
        return heapq.heappop(self._ready)[1]

    def started(self, address: str, at: float) -> None:
        self.running[address] = at

    def stop(self, reason: str) -> None:
        """Start nothing more (a failure without -k, an interrupt); the first reason stays."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def succeeded(self, address: str) -> None:
        """``address`` settled without failing: downstream stages may start."""
        self._settle(address)
        for consumer in self._downstream[address]:
            waits = self._waiting.get(consumer)
            if waits is not None and address in waits:
                waits.discard(address)
                if not waits:
                    heapq.heappush(self._ready, (self._order[consumer], consumer))

    def failed(self, address: str) -> list[str]:
        """``address`` failed: returns every pending stage downstream of it,
        transitively (blocked, settled by this call), in discovery order."""
        self._settle(address)
        blocked: list[str] = []
        stack = list(self._downstream[address])
        while stack:
            consumer = stack.pop()
            if consumer not in self._pending:
                continue
            self._settle(consumer)
            blocked.append(consumer)
            stack.extend(self._downstream[consumer])
        return blocked

    def interrupted(self, address: str) -> None:
        """Ended by an interrupt: settled, releasing nothing."""
        self._settle(address)

    def abandon(self) -> dict[str, float]:
        """Give up on every running stage; returns them with their start times."""
        gone = dict(self.running)
        for address in gone:
            self._settle(address)
        return gone

    def _settle(self, address: str) -> None:
        self._pending.discard(address)
        self._waiting.pop(address, None)
        self.running.pop(address, None)
