"""Per-site keys of the sync link: generation, files, loading.

Each site has one secret key shared by its agent and headquarters' receiver. It is made
once at headquarters with ``wesh sync keygen SITE`` and copied to the site's gateway.

A key file is ``<dir>/<site>.key``, mode ``0600`` in a ``0700`` directory, written
atomically (a temporary file renamed). Its text is small TOML::

    # wesh sync key: keep it secret (mode 0600)
    site = "res-les-tilleuls-b1"
    key_id = 40213
    key = "5f0c...64 hex digits..."
    created = "2024-03-31T12:00:00+00:00"

``key_id`` (1..65535) travels in every packet's header so that the receiver picks the
key without trying them all; ``site`` is what the key authenticates. Loading refuses a
file that group or others may read or write, and a directory that they may write: a
leaked key lets anyone speak for the site.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from wesh.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from wesh.sync.crypto import KeyLike

__all__ = [
    "KEY_BYTES",
    "KeyRing",
    "SiteKey",
    "check_site_id",
    "generate_key",
    "key_path",
    "keygen",
    "load_key",
    "write_key",
]

_LOG = logging.getLogger(__name__)

KEY_BYTES = 32
_SITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SUFFIX = ".key"


@dataclass(frozen=True, slots=True)
class SiteKey:
    """A site's secret key (the ``key`` bytes never appear in ``repr``)."""

    site: str
    key_id: int
    key: bytes = field(repr=False)
    created: datetime | None = None


def check_site_id(site: str) -> str:
    """Return ``site`` if it is a usable site id (also a file name), else raise ``UsageError``."""
    if not _SITE_RE.fullmatch(site):
        raise UsageError(
            f"bad site id {site!r}: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return site


def generate_key(site: str, *, key_id: int | None = None, now: datetime | None = None) -> SiteKey:
    """Make a new random key for ``site`` (pure but for the random source)."""
    check_site_id(site)
    if key_id is None:
        key_id = 1 + secrets.randbelow(0xFFFF)
    if not 1 <= key_id <= 0xFFFF:
        raise UsageError(f"key id {key_id} out of range 1..65535")
    return SiteKey(site, key_id, secrets.token_bytes(KEY_BYTES), now or datetime.now(UTC))


def key_path(directory: Path, site: str) -> Path:
    """Where the key of ``site`` lives in ``directory``."""
    return directory / f"{check_site_id(site)}{_SUFFIX}"


def _render(key: SiteKey) -> str:
    created = key.created.isoformat() if key.created is not None else ""
    return (
        "# wesh sync key: keep it secret (mode 0600)\n"
        f'site = "{key.site}"\n'
        f"key_id = {key.key_id}\n"
        f'key = "{key.key.hex()}"\n' + (f'created = "{created}"\n' if created else "")
    )


def _ensure_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"cannot prepare the key directory: {exc}", where=str(directory)) from exc


def write_key(key: SiteKey, directory: Path, *, overwrite: bool = False) -> Path:
    """Write ``key`` to ``<directory>/<site>.key`` (0600, atomic); return the path.

    Raises:
        UsageError: the file exists and ``overwrite`` is false.
        ConfigError: the directory or file cannot be written.
    """
    if len(key.key) != KEY_BYTES:
        raise UsageError(f"a key has {KEY_BYTES} bytes, not {len(key.key)}")
    _ensure_private_dir(directory)
    path = key_path(directory, key.site)
    if path.exists() and not overwrite:
        raise UsageError(
            f"a key already exists for site {key.site!r} (use --force to replace it)",
            where=str(path),
        )
    tmp = directory / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _render(key).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write the key file: {exc}", where=str(path)) from exc
    return path


def keygen(site: str, directory: Path, *, force: bool = False, key_id: int | None = None) -> Path:
    """Generate and write a key for ``site`` (what ``wesh sync keygen`` does)."""
    return write_key(generate_key(site, key_id=key_id), directory, overwrite=force)


def _check_private(path: Path, st: os.stat_result) -> None:
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"key file is accessible to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "chmod 600 it",
            where=str(path),
        )


def _parse(path: Path, text: str) -> SiteKey:
    where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"key file is not valid TOML: {exc}", where=where) from exc
    site, key_id, key_hex = data.get("site"), data.get("key_id"), data.get("key")
    if not isinstance(site, str) or not _SITE_RE.fullmatch(site):
        raise ConfigError("key file has no valid 'site'", where=where)
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= 0xFFFF:
        raise ConfigError("key file has no valid 'key_id' (1..65535)", where=where)
    if not isinstance(key_hex, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", key_hex):
        raise ConfigError(f"key file has no valid 'key' ({KEY_BYTES} bytes in hex)", where=where)
    created: datetime | None = None
    raw_created = data.get("created")
    if isinstance(raw_created, str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(raw_created)
    return SiteKey(site, key_id, bytes.fromhex(key_hex), created)


def _read(path: Path) -> SiteKey:
    try:
        with path.open("rb") as handle:
            _check_private(path, os.fstat(handle.fileno()))
            raw = handle.read(4096)
    except OSError as exc:
        raise ConfigError(f"cannot read the key file: {exc}", where=str(path)) from exc
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ConfigError("key file is not ASCII text", where=str(path)) from exc
    return _parse(path, text)


def load_key(directory: Path, site: str) -> SiteKey:
    """Load the key of ``site`` from ``directory`` (checks mode and content)."""
    path = key_path(directory, site)
    key = _read(path)
    if key.site != site:
        raise ConfigError(f"key file names site {key.site!r}, not {site!r}", where=str(path))
    return key


class KeyRing:
    """The keys known to a receiver, by site and by key id."""

    def __init__(self, keys: Mapping[str, SiteKey] | None = None) -> None:
        self._by_site: dict[str, SiteKey] = {}
        self._by_id: dict[int, list[SiteKey]] = {}
        for key in (keys or {}).values():
            self.add(key)

    def add(self, key: SiteKey) -> None:
        """Add (or replace) the key of ``key.site``."""
        old = self._by_site.get(key.site)
        if old is not None:
            self._by_id[old.key_id].remove(old)
        self._by_site[key.site] = key
        self._by_id.setdefault(key.key_id, []).append(key)

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Load every ``*.key`` file of ``directory``; a bad file is skipped with an error logged.

        Raises:
            ConfigError: the directory is missing, unreadable, or writable by group or others.
        """
        try:
            st = directory.stat()
            names = sorted(entry.name for entry in os.scandir(directory))
        except OSError as exc:
            raise ConfigError(
                f"cannot read the key directory: {exc}", where=str(directory)
            ) from exc
        if stat.S_IMODE(st.st_mode) & 0o022:
            raise ConfigError(
                "key directory is writable by group or others; chmod 700 it", where=str(directory)
            )
        ring = cls()
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = directory / name
            try:
                key = _read(path)
            except ConfigError as exc:
                _LOG.error("Skipping key file: %s", exc)
                continue
            if name != f"{key.site}{_SUFFIX}":
                _LOG.error("Skipping key file %s: it names site %s", path, key.site)
                continue
            ring.add(key)
        return ring

    def for_site(self, site: str) -> SiteKey | None:
        """Return the key of ``site``, if known."""
        return self._by_site.get(site)

    def for_key_id(self, key_id: int) -> list[KeyLike]:
        """Return the keys with this id (ids are random: two sites may share one).

        (Typed as the codec's ``KeyLike`` so that a ring is its ``KeyLookup``; the items
        are :class:`SiteKey`.)
        """
        return list(self._by_id.get(key_id, ()))

    def sites(self) -> list[str]:
        """Return the sites with a key, sorted."""
        return sorted(self._by_site)

    def __iter__(self) -> Iterator[SiteKey]:
        return iter(list(self._by_site.values()))

    def __len__(self) -> int:
        return len(self._by_site)
