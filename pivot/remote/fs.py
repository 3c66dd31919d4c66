"""The fsspec filesystem behind a remote URL.

Each cloud backend is an optional extra; the module that implements it is
imported only when a remote of that kind is used, and a missing one is a
``PivotError`` naming the exact ``pip install`` line.  Options come from
the remote's config keys; credentials never do (each backend reads its own
standard chain: AWS env vars and profiles, ``GOOGLE_APPLICATION_CREDENTIALS``,
the Azure environment, the SSH agent and keys).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from pivot.errors import PivotError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from pivot.remote.config import Remote

# keys every remote accepts
COMMON_KEYS = frozenset({"url", "jobs"})
# keys pivot refuses to store: credentials come from the backend's own chain
SECRET_KEYS = frozenset({
    "access_key_id", "secret_access_key", "session_token", "password", "ask_password", "account_key",
    "sas_token", "connection_string", "client_secret", "passphrase", "token", "key", "secret",
})


class MissingExtra(PivotError):
    """The backend of a remote is not installed."""


@dataclass(frozen=True)
class Backend:
    """One kind of remote: the module implementing it, the extra that
    installs it, the config keys it understands."""

    kind: str  # s3, gs, azure, ssh, http, local
    module: str | None  # imported to use it; None: part of fsspec's core
    extra: str | None
    keys: frozenset[str] = frozenset()
    read_only: bool = False
    listable: bool = True  # a directory can be listed (HTTP cannot)
    atomic_put: bool = True  # a single put is all-or-nothing for readers (object stores)

    def pip_line(self) -> str:
        return f"pip install 'pivot[{self.extra}]'"

    def installed(self) -> bool:
        """Whether the backend imports (found is not enough: a broken or
        shadowed install fails only when imported)."""
        if self.module is None:
            return True
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True


S3 = Backend("s3", "s3fs", "s3", frozenset({"endpointurl", "profile", "region"}))
GS = Backend("gs", "gcsfs", "gs", frozenset({"projectname", "credentialpath"}))
AZURE = Backend("azure", "adlfs", "azure", frozenset({"account_name"}))
SSH = Backend("ssh", "sshfs", "ssh", frozenset({"user", "port", "keyfile"}), atomic_put=False)
HTTP = Backend("http", "aiohttp", "http", read_only=True, listable=False)
LOCAL = Backend("local", None, None, atomic_put=False)

SCHEMES: dict[str, Backend] = {
    "s3": S3,
    "gs": GS,
    "gcs": GS,
    "azure": AZURE,
    "az": AZURE,
    "ssh": SSH,
    "sftp": SSH,
    "http": HTTP,
    "https": HTTP,
    "file": LOCAL,
    "": LOCAL,
}


def scheme_of(url: str) -> str:
    if "://" not in url:
        return ""  # a local or network path
    return url.split("://", 1)[0].lower()


def backend_for(url: str, name: str = "") -> Backend:
    scheme = scheme_of(url)
    backend = SCHEMES.get(scheme)
    if backend is None:
        supported = ", ".join(f"{s}://" for s in SCHEMES if s)
        who = f"remote '{name}': " if name else ""
        raise PivotError(f"{who}unsupported URL scheme '{scheme}://' in '{url}' (supported: {supported}, or a path)")
    return backend


def check_key(url: str, key: str, value: str, *, name: str = "") -> None:
    """Refuse a key this kind of remote does not understand, or a secret."""
    backend = backend_for(url, name)
    if key in SECRET_KEYS:
        raise PivotError(
            f"pivot never stores credentials ('{key}'): {backend.kind} remotes read them from "
            "the backend's standard chain (environment, profile, agent); see docs/remotes.md"
        )
    allowed = COMMON_KEYS | backend.keys
    if key not in allowed:
        raise PivotError(
            f"unknown key '{key}' for {backend.kind} remote '{name}' (known: {', '.join(sorted(allowed))})"
        )
    if key == "jobs" and not (value.isdigit() and int(value) > 0):
        raise PivotError(f"remote '{name}': jobs must be a positive integer, not '{value}'")
    if key == "port" and not value.isdigit():
        raise PivotError(f"remote '{name}': port must be a number, not '{value}'")


def local_path(url: str, root: Path) -> Path:
    """A local remote's directory: ``file://`` URLs and paths, relative ones
    taken from the project root (so every clone finds a sibling directory)."""
    path = url[len("file://") :] if url.lower().startswith("file://") else url
    path = os.path.expanduser(path)
    return Path(path) if os.path.isabs(path) else root / path


def open_fs(remote: "Remote", root: Path) -> tuple["AbstractFileSystem", str, Backend]:
    """The filesystem of ``remote`` and the base path on it (no protocol)."""
    backend = backend_for(remote.url, remote.name)
    if backend.module is not None:
        try:
            importlib.import_module(backend.module)
        except ImportError:
            raise MissingExtra(
                f"remote '{remote.name}' ({remote.url}) needs the {backend.kind} backend: "
                f"run `{backend.pip_line()}`"
            ) from None
    options = remote.options
    if backend is LOCAL:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True), str(local_path(remote.url, root)), backend
    split = urlsplit(remote.url)
    bucket_path = f"{split.netloc}{split.path}".rstrip("/")
    if backend is S3:
        import s3fs

        client: dict[str, Any] = {}
        if options.get("endpointurl"):
            client["endpoint_url"] = options["endpointurl"]
        if options.get("region"):
            client["region_name"] = options["region"]
        # pivot retries with its own bounded backoff (storage.RETRIES): one
        # attempt each in botocore and s3fs, or a dead endpoint takes minutes
        kwargs: dict[str, Any] = {
            "client_kwargs": client,
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 10},
            "skip_instance_cache": True,
        }
        if options.get("profile"):
            kwargs["profile"] = options["profile"]
        fs = s3fs.S3FileSystem(**kwargs)
        fs.retries = 1
        return fs, bucket_path, backend
    if backend is GS:
        import gcsfs

        gs_kwargs: dict[str, Any] = {"skip_instance_cache": True}
        if options.get("projectname"):
            gs_kwargs["project"] = options["projectname"]
        if options.get("credentialpath"):
            gs_kwargs["token"] = options["credentialpath"]
        return gcsfs.GCSFileSystem(**gs_kwargs), bucket_path, backend
    if backend is AZURE:
        import adlfs

        az_kwargs: dict[str, Any] = {"skip_instance_cache": True}
        if options.get("account_name"):
            az_kwargs["account_name"] = options["account_name"]
        return adlfs.AzureBlobFileSystem(**az_kwargs), bucket_path, backend
    if backend is SSH:
        import sshfs

        ssh_kwargs: dict[str, Any] = {"skip_instance_cache": True}
        user = options.get("user") or split.username
        if user:
            ssh_kwargs["username"] = user
        port = options.get("port") or split.port
        if port:
            ssh_kwargs["port"] = int(port)
        if options.get("keyfile"):
            ssh_kwargs["client_keys"] = [os.path.expanduser(options["keyfile"])]
        return sshfs.SSHFileSystem(split.hostname or "", **ssh_kwargs), split.path.rstrip("/") or "/", backend
    if backend is HTTP:
        from fsspec.implementations.http import HTTPFileSystem

        return HTTPFileSystem(skip_instance_cache=True), remote.url.rstrip("/"), backend
    raise AssertionError(backend)


def option_summary(options: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
