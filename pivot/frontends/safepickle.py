"""Reading pivot's load caches without trusting them.

``.pivot/pipeline.pickle`` and ``.pivot/parser/`` are pivot's own caches,
but a checkout can ship a ``.pivot/`` too, and unpickling runs whatever
callable a pickle names.  These caches hold only plain data and a few
known record classes, so they are read with an unpickler that resolves
exactly those classes and nothing else: a pickle naming anything else
(``os.system``, a dotted path into a module) fails to load, which for a
cache is only a miss.
"""

from __future__ import annotations

import io
import pickle
from typing import IO, Any, Collection

# Constructors that only build values, for data a YAML file can hold.
SAFE_VALUE_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
    }
)


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a class or function that this cache never holds."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler resolving only the ``(module, name)`` pairs ``allowed``."""

    def __init__(self, file: IO[bytes], allowed: Collection[tuple[str, str]]) -> None:
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise RefusedGlobal(f"refusing to load {module}.{name} from a cache file")
        return super().find_class(module, name)


def restricted_loads(data: bytes, allowed: Collection[tuple[str, str]] = ()) -> Any:
    """One object from ``data``, resolving only ``allowed`` classes."""
    return RestrictedUnpickler(io.BytesIO(data), allowed).load()


def classes_of(module: str, *names: str) -> frozenset[tuple[str, str]]:
    return frozenset((module, name) for name in names)
