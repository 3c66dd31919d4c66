"""Where stages run, as configured: ``--executor``, ``PIVOT_EXECUTOR`` or
``.pivot/config``, and the worker resources stages ask for.

``.pivot/config`` (INI, shared with other sections: read, never rewritten)::

    [executor]
    # or local, dask-local:4, cluster.yaml
    address = dask://scheduler.example:8786
    # attempts after a worker is lost; seconds to reach a scheduler
    retries = 2
    connect-timeout = 10
    # shared (workers see the project) or remote (deps and outs move through the default remote)
    data = shared

    [stage "train@*"]
    resources = gpu=1, mem=8e9

Pure parsing, no Dask import: ``pivot plan`` shows resources without it.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, assert_never

from pivot.errors import PivotError

if TYPE_CHECKING:
    import configparser

CONFIG_NAME = "config"
ENV_VAR = "PIVOT_EXECUTOR"
DEFAULT_RETRIES = 2
DEFAULT_CONNECT_TIMEOUT = 10.0
_STAGE_SECTION = re.compile(r'^stage\s+"(?P<glob>[^"]+)"$')
_RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class ExecutorError(PivotError):
    """An executor that cannot be used as configured."""


class ExecutorData(enum.Enum):
    """How a Dask worker reaches a stage's files."""

    SHARED = "shared"  # the project on a shared file system, at the same path
    REMOTE = "remote"  # by content hash through the project's default remote


DATA_CHOICES = tuple(mode.value for mode in ExecutorData)


class ExecutorKind(enum.Enum):
    LOCAL = "local"  # worker threads in the pivot process
    SCHEDULER = "scheduler"  # an existing Dask scheduler: dask://HOST:PORT
    LOCAL_CLUSTER = "local-cluster"  # dask-local:N, started and stopped by pivot
    CLUSTER_FILE = "cluster-file"  # FILE.yaml: a cluster class and its arguments


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    """One executor choice, with where it came from (for messages)."""

    kind: ExecutorKind
    origin: str  # "--executor", "PIVOT_EXECUTOR", "'.pivot/config' [executor] address"
    address: str = ""  # SCHEDULER: tcp://HOST:PORT
    workers: int = 0  # LOCAL_CLUSTER
    cluster_file: Path | None = None  # CLUSTER_FILE
    retries: int = DEFAULT_RETRIES
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    data: ExecutorData = ExecutorData.SHARED

    @property
    def is_local(self) -> bool:
        return self.kind is ExecutorKind.LOCAL

    def describe(self) -> str:
        match self.kind:
            case ExecutorKind.LOCAL:
                return "local"
            case ExecutorKind.SCHEDULER:
                return f"the Dask scheduler at {self.address}"
            case ExecutorKind.LOCAL_CLUSTER:
                return f"a local Dask cluster of {self.workers} workers"
            case ExecutorKind.CLUSTER_FILE:
                return f"the Dask cluster of '{self.cluster_file}'"
        assert_never(self.kind)


LOCAL = ExecutorSpec(ExecutorKind.LOCAL, "default")


def _read_config(state_dir: Path) -> "configparser.ConfigParser | None":
    path = state_dir / CONFIG_NAME
    if not path.is_file():
        return None
    import configparser  # only when a config file exists: a no-op run stays light

    # no interpolation: values such as '%' in a remote URL belong to other sections
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ExecutorError(f"'.pivot/config' is invalid: {exc}".splitlines()[0]) from None
    return parser


def resolve(option: str | None, root: Path, state_dir: Path, data: str | None = None) -> ExecutorSpec:
    """The executor: ``--executor``, else ``PIVOT_EXECUTOR``, else
    ``[executor] address`` of ``.pivot/config``, else local; its data mode:
    ``data`` (``--executor-data``), else ``[executor] data``, else shared."""
    config = _read_config(state_dir)
    section: Mapping[str, str] = config["executor"] if config is not None and config.has_section("executor") else {}
    if option:
        value, origin = option, "--executor"
    elif os.environ.get(ENV_VAR):
        value, origin = os.environ[ENV_VAR], ENV_VAR
    elif section.get("address"):
        value, origin = section["address"], "'.pivot/config' [executor] address"
    else:
        value, origin = "local", "default"
    retries = _number(section, "retries", DEFAULT_RETRIES, int)
    timeout = _number(section, "connect-timeout", DEFAULT_CONNECT_TIMEOUT, float)
    spec = parse(value.strip(), origin, root, retries=retries, connect_timeout=timeout)
    mode = _data_mode(data, "--executor-data") if data else _data_mode(section.get("data"),
                                                                       "'.pivot/config' [executor] data")
    return replace(spec, data=mode)


def _data_mode(raw: str | None, origin: str) -> ExecutorData:
    if raw is None or not raw.strip():
        return ExecutorData.SHARED
    try:
        return ExecutorData(raw.strip().lower())
    except ValueError:
        raise ExecutorError(f"{origin}: unknown data mode '{raw}' (choose {' or '.join(DATA_CHOICES)})") from None


def _number(section: Mapping[str, str], key: str, default, kind):
    raw = section.get(key)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ExecutorError(f"'.pivot/config' [executor] {key}: expected a non-negative number, got '{raw}'")
    return value


def parse(value: str, origin: str, root: Path, *, retries: int = DEFAULT_RETRIES,
          connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> ExecutorSpec:
    """``local``, ``dask://HOST:PORT`` (also ``tcp://``), ``dask-local:N`` or a YAML file."""
    common: dict[str, Any] = {"origin": origin, "retries": retries, "connect_timeout": connect_timeout}
    if value == "local":
        return ExecutorSpec(ExecutorKind.LOCAL, **common)
    if value.startswith(("dask://", "tcp://", "tls://")):
        host_port = value.split("://", 1)[1]
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ExecutorError(f"{origin}: '{value}' is not dask://HOST:PORT")
        scheme = "tls" if value.startswith("tls://") else "tcp"
        return ExecutorSpec(ExecutorKind.SCHEDULER, address=f"{scheme}://{host_port}", **common)
    if value.startswith("dask-local"):
        _, _, count = value.partition(":")
        if not count:
            count = str(os.cpu_count() or 1)
        if not count.isdigit() or int(count) < 1:
            raise ExecutorError(f"{origin}: '{value}' is not dask-local:N with N >= 1")
        return ExecutorSpec(ExecutorKind.LOCAL_CLUSTER, workers=int(count), **common)
    if value.endswith((".yaml", ".yml")):
        # a path in .pivot/config is relative to the project, one typed or in the environment to here
        base = root if origin.startswith("'.pivot/config'") else Path.cwd()
        path = Path(value) if os.path.isabs(value) else base / value
        if not path.is_file():
            raise ExecutorError(f"{origin}: cluster file '{value}' does not exist")
        return ExecutorSpec(ExecutorKind.CLUSTER_FILE, cluster_file=path, **common)
    raise ExecutorError(
        f"{origin}: unknown executor '{value}' (choose local, dask://HOST:PORT, dask-local:N or a FILE.yaml)"
    )


@dataclass(frozen=True, slots=True)
class ClusterFile:
    """A cluster class (``module.Class``) and the keyword arguments to create it."""

    path: Path
    class_path: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def read_cluster_file(path: Path) -> ClusterFile:
    """``dask_jobqueue.SLURMCluster: {cores: 4, memory: 16GB}`` -- one key."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExecutorError(f"cluster file '{path}': cannot read it: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or len(data) != 1:
        raise ExecutorError(f"cluster file '{path}': expected one key, the cluster class"
                            " (e.g. 'dask_jobqueue.SLURMCluster'), with its arguments")
    (class_path, kwargs), = data.items()
    if not isinstance(class_path, str) or "." not in class_path:
        raise ExecutorError(f"cluster file '{path}': '{class_path}' is not module.Class")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ExecutorError(f"cluster file '{path}': the arguments of '{class_path}' must be a mapping")
    return ClusterFile(path, class_path, kwargs)


# -- resources ------------------------------------------------------------------

Resources = Mapping[str, float]


def parse_resources(text: str, where: str) -> dict[str, float]:
    """``gpu=1, mem=8e9`` -> {"gpu": 1.0, "mem": 8e9}."""
    found: dict[str, float] = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        name, sep, amount = item.partition("=")
        if not sep or not _RESOURCE_NAME.match(name):
            raise ExecutorError(f"{where}: '{item}' is not NAME=AMOUNT")
        try:
            value = float(amount)
        except ValueError:
            raise ExecutorError(f"{where}: '{item}': '{amount}' is not a number") from None
        if value < 0 or value != value:
            raise ExecutorError(f"{where}: '{item}': the amount must be a non-negative number")
        found[name] = value
    return found


def stage_resources(state_dir: Path, addresses: Sequence[str]) -> dict[str, Resources]:
    """Resources per stage address from ``[stage "GLOB"] resources`` sections;
    a later section overrides an earlier one, name by name."""
    config = _read_config(state_dir)
    if config is None:
        return {}
    rules: list[tuple[str, dict[str, float]]] = []
    for section in config.sections():
        match = _STAGE_SECTION.match(section)
        if match is None:
            continue
        raw = config[section].get("resources")
        if raw is not None:
            rules.append((match["glob"], parse_resources(raw, f"'.pivot/config' [{section}] resources")))
    found: dict[str, Resources] = {}
    for address in addresses:
        merged: dict[str, float] = {}
        for glob, wanted in rules:
            if fnmatch.fnmatchcase(address, glob):
                merged.update(wanted)
        if merged:
            found[address] = merged
    return found


def format_resources(resources: Resources) -> str:
    """{"gpu": 1.0} -> ``gpu=1`` (as written)."""
    return ", ".join(f"{name}={_amount(value)}" for name, value in resources.items())


def _amount(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
