"""Remotes in ``.pivot/config`` (committed: the team shares the URLs) and
``.pivot/config.local`` (git-ignored: per-user settings), INI like DVC's::

    [core]
    remote = storage

    [remote "storage"]
    url = s3://bucket/pivot
    endpointurl = http://127.0.0.1:9000

A key in ``config.local`` overrides the same key in ``config``; a remote may
live in either file.  Edits change only the lines they concern (comments and
other sections, such as ``[cache]``, are kept) and are written atomically.
Credentials are never stored: each backend reads its own standard chain.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pivot import atomic
from pivot.errors import PivotError

CONFIG_NAME = "config"
LOCAL_NAME = "config.local"
CORE = "core"
DEFAULT_KEY = "remote"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SECTION = re.compile(r'\s*\[\s*(.*?)\s*\]\s*$')
_REMOTE_SECTION = re.compile(r'remote\s+"(.*)"')


class ConfigError(PivotError):
    """A config file that cannot be read, or an edit that makes no sense."""


def remote_section(name: str) -> str:
    return f'remote "{name}"'


def check_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ConfigError(f"invalid remote name '{name}': use letters, digits, '_', '.' and '-'")
    return name


@dataclass(frozen=True)
class Remote:
    """One remote as configured: both files merged, ``url`` kept apart."""

    name: str
    url: str
    options: Mapping[str, str] = field(default_factory=dict)
    source: str = ".pivot/config"  # the file that gives the url

    def option(self, key: str) -> str | None:
        return self.options.get(key)


@dataclass(frozen=True)
class RemoteSettings:
    """Every configured remote and the default one's name."""

    remotes: Mapping[str, Remote]
    default: str | None
    incomplete: tuple[str, ...] = ()  # sections with options but no url

    def get(self, name: str | None) -> Remote:
        """The remote called ``name``, or the default one."""
        if name is None:
            if self.default is None:
                raise ConfigError(
                    "no remote given and no default remote: add one with "
                    "`pivot remote add -d NAME URL`, or pass -r NAME"
                )
            name = self.default
            if name not in self.remotes:
                raise ConfigError(f"the default remote '{name}' ([core] remote) is not configured")
        remote = self.remotes.get(name)
        if remote is None:
            if name in self.incomplete:
                raise ConfigError(f"remote '{name}' has no url in .pivot/config or .pivot/config.local")
            raise ConfigError(f"unknown remote '{name}' (not in .pivot/config or .pivot/config.local)")
        return remote


class IniFile:
    """An INI file edited line by line, so what pivot does not change stays
    as the user wrote it."""

    def __init__(self, path: Path, show: str) -> None:
        self.path = path
        self.show = show  # root-relative name for messages
        try:
            self.lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            self.lines = []
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {show}: {exc}") from None
        self.parsed()  # refuse to edit a file we cannot read

    def parsed(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        try:
            parser.read_string("\n".join(self.lines) + "\n", source=self.show)
        except configparser.Error as exc:
            raise ConfigError(f"{self.show} is invalid: {' '.join(str(exc).split())}") from None
        return parser

    def _section_span(self, section: str) -> tuple[int, int] | None:
        """Line range [header, end) of ``section``."""
        start = None
        for index, line in enumerate(self.lines):
            match = _SECTION.match(line)
            if match is None:
                continue
            if start is not None:
                return start, index
            if _normal(match.group(1)) == _normal(section):
                start = index
        return (start, len(self.lines)) if start is not None else None

    def set(self, section: str, key: str, value: str) -> None:
        span = self._section_span(section)
        new_line = f"{key} = {value}"
        if span is None:
            if self.lines and self.lines[-1].strip():
                self.lines.append("")
            self.lines.extend([f"[{section}]", new_line])
            return
        start, end = span
        for index in range(start + 1, end):
            if _key_of(self.lines[index]) == key:
                self.lines[index] = new_line
                return
        last = start
        for index in range(start + 1, end):
            if self.lines[index].strip():
                last = index
        self.lines.insert(last + 1, new_line)

    def unset(self, section: str, key: str) -> bool:
        span = self._section_span(section)
        if span is None:
            return False
        start, end = span
        kept = [line for line in self.lines[start + 1 : end] if _key_of(line) != key]
        if len(kept) == end - start - 1:
            return False
        self.lines[start + 1 : end] = kept
        return True

    def remove_section(self, section: str) -> bool:
        span = self._section_span(section)
        if span is None:
            return False
        start, end = span
        del self.lines[start:end]
        while start > 0 and start - 1 < len(self.lines) and not self.lines[start - 1].strip() and (
            start == len(self.lines) or not self.lines[start].strip()
        ):
            del self.lines[start - 1]  # no double blank line where the section was
            start -= 1
        return True

    def save(self) -> None:
        self.parsed()  # never write what we could not read back
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.lines).strip("\n")
        atomic.write_text(self.path, text + "\n" if text else "")


def _normal(section: str) -> str:
    return " ".join(section.split())


def _key_of(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped[0] in "#;[" or "=" not in stripped:
        return None
    return stripped.split("=", 1)[0].strip().lower()


def config_files(state_dir: Path) -> tuple[IniFile, IniFile]:
    return (
        IniFile(state_dir / CONFIG_NAME, f".pivot/{CONFIG_NAME}"),
        IniFile(state_dir / LOCAL_NAME, f".pivot/{LOCAL_NAME}"),
    )


def load(state_dir: Path) -> RemoteSettings:
    """The remotes of both files, ``config.local`` winning key by key."""
    urls: dict[str, tuple[str, str]] = {}
    options: dict[str, dict[str, str]] = {}
    default: str | None = None
    for ini in config_files(state_dir):
        parser = ini.parsed()
        for section in parser.sections():
            match = _REMOTE_SECTION.fullmatch(_normal(section))
            if match is None:
                continue
            name = match.group(1)
            values = dict(parser.items(section))
            if "url" in values:
                urls[name] = (values.pop("url"), ini.show)
            options.setdefault(name, {}).update(values)
        if parser.has_option(CORE, DEFAULT_KEY):
            default = parser.get(CORE, DEFAULT_KEY).strip() or None
    remotes = {
        name: Remote(name, url, options.get(name, {}), source) for name, (url, source) in urls.items()
    }
    incomplete = tuple(name for name in options if name not in urls)
    return RemoteSettings(remotes, default, incomplete)


# -- edits (``pivot remote ...``) ---------------------------------------------


def _target(state_dir: Path, local: bool) -> IniFile:
    shared, private = config_files(state_dir)
    return private if local else shared


def normalise_url(url: str, root: Path, cwd: Path) -> str:
    """A relative local path given on the command line becomes relative to
    the project root (how every clone reads it back)."""
    import os

    from pivot.remote.fs import scheme_of

    if scheme_of(url) or os.path.isabs(os.path.expanduser(url)):
        return url
    return Path(os.path.relpath(os.path.normpath(cwd / url), root)).as_posix()


def add_remote(state_dir: Path, name: str, url: str, *, default: bool, local: bool, force: bool) -> IniFile:
    from pivot.remote.fs import backend_for

    check_name(name)
    backend_for(url, name)  # refuse an unsupported scheme now, not at the first push
    settings = load(state_dir)
    if name in settings.remotes and not force:
        existing = settings.remotes[name]
        raise ConfigError(
            f"remote '{name}' already exists in {existing.source} ({existing.url}); "
            f"use `pivot remote modify {name} url URL` or -f"
        )
    ini = _target(state_dir, local)
    ini.set(remote_section(name), "url", url)
    if default:
        ini.set(CORE, DEFAULT_KEY, name)
    ini.save()
    if not local:
        share_config(state_dir)
    return ini


def remove_remote(state_dir: Path, name: str) -> list[str]:
    """Remove ``name`` from both files (and as their default); the files changed."""
    changed: list[str] = []
    for ini in config_files(state_dir):
        touched = ini.remove_section(remote_section(name))
        parser = ini.parsed()
        if parser.has_option(CORE, DEFAULT_KEY) and parser.get(CORE, DEFAULT_KEY).strip() == name:
            touched = ini.unset(CORE, DEFAULT_KEY) or touched
        if touched:
            ini.save()
            changed.append(ini.show)
    if not changed:
        raise ConfigError(f"unknown remote '{name}' (not in .pivot/config or .pivot/config.local)")
    return changed


def modify_remote(state_dir: Path, name: str, key: str, value: str | None, *, local: bool) -> IniFile:
    """Set (or, with ``value`` None, unset) ``key`` of remote ``name``."""
    from pivot.remote.fs import check_key

    key = key.strip().lower()
    settings = load(state_dir)
    if name not in settings.remotes and name not in settings.incomplete:
        raise ConfigError(f"unknown remote '{name}' (add it first: `pivot remote add {name} URL`)")
    if key == "url" and value is not None:
        url = value
    elif name in settings.remotes:
        url = settings.remotes[name].url
    else:
        raise ConfigError(f"remote '{name}' has no url: set it first with `pivot remote modify {name} url URL`")
    ini = _target(state_dir, local)
    if value is None:
        if not ini.unset(remote_section(name), key):
            raise ConfigError(f"remote '{name}' has no '{key}' in {ini.show}")
    else:
        check_key(url, key, value, name=name)
        ini.set(remote_section(name), key, value)
    ini.save()
    return ini


def set_default(state_dir: Path, name: str | None, *, local: bool) -> IniFile:
    ini = _target(state_dir, local)
    if name is None:
        ini.unset(CORE, DEFAULT_KEY)
    else:
        if name not in load(state_dir).remotes:
            raise ConfigError(f"unknown remote '{name}' (add it first: `pivot remote add {name} URL`)")
        ini.set(CORE, DEFAULT_KEY, name)
    ini.save()
    return ini


# what ``.pivot/.gitignore`` held before ``config`` was meant for git
_OLD_GITIGNORE = """\
# pivot: commit locks/, ignore the rest
/*
!/locks/
!/.gitignore
"""


def share_config(state_dir: Path) -> None:
    """Make sure git sees ``.pivot/config``: a ``.gitignore`` that pivot
    wrote before remotes existed is brought up to date (an edited one is
    the user's and stays as it is); ``config.local`` stays ignored."""
    from pivot.project import GITIGNORE

    gitignore = state_dir / ".gitignore"
    try:
        text = gitignore.read_text(encoding="utf-8")
    except OSError:
        text = None
    if text is None or text == _OLD_GITIGNORE:
        atomic.write_text(gitignore, GITIGNORE)
