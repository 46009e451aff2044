"""The in-memory SD card of a simulated box, shared by its HTTP and FTP servers.

The WES card is FAT: names are **case-insensitive and case-preserving**, ``/`` is the
root of both the web site and the FTP tree (wes.md §1, §5). Paths are POSIX-like
(``/WEBPROG/CGX/PCEVAL.CGX``); ``.`` and ``..`` are resolved; a path never escapes the
root. Files are immutable ``bytes`` (templates shared by many cards cost nothing).
Pure data structure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from wesh.errors import UsageError

__all__ = ["SdCard", "SdEntry", "split_path"]

_MAX_NAME = 255
_MAX_FILE_BYTES = 4 * 1024 * 1024
_FORBIDDEN = set('\\:*?"<>|\x00')


def split_path(path: str) -> list[str]:
    """Return the components of ``path`` from the root, ``.``/``..`` resolved.

    Raises:
        UsageError: a component is too long or holds a character FAT refuses.
    """
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        if len(part) > _MAX_NAME or _FORBIDDEN & set(part):
            raise UsageError(f"invalid file name {part[:40]!r}", where=path[:80])
        parts.append(part)
    return parts


@dataclass(slots=True)
class SdEntry:
    """A file (``data`` set) or a directory (``children`` set); ``version`` grows on write."""

    name: str
    data: bytes | None = None
    children: dict[str, SdEntry] | None = None
    mtime: float = 0.0
    version: int = 0

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.children is not None

    @property
    def size(self) -> int:
        """Size in bytes (0 for a directory)."""
        return len(self.data) if self.data is not None else 0


def _children(entry: SdEntry) -> dict[str, SdEntry]:
    if entry.children is None:
        raise UsageError(f"{entry.name!r} is a file, not a directory")
    return entry.children


@dataclass(slots=True)
class SdCard:
    """A case-insensitive in-memory tree (``writes`` counts changes, for caches)."""

    root: SdEntry = field(default_factory=lambda: SdEntry("/", children={}))
    writes: int = 0

    def _find(self, parts: list[str]) -> SdEntry | None:
        entry = self.root
        for part in parts:
            if entry.children is None:
                return None
            child = entry.children.get(part.casefold())
            if child is None:
                return None
            entry = child
        return entry

    def entry(self, path: str) -> SdEntry | None:
        """Return the file or directory at ``path``, or ``None``."""
        try:
            return self._find(split_path(path))
        except UsageError:
            return None

    def read(self, path: str) -> bytes | None:
        """Return the content of the file at ``path``, or ``None`` (missing or a directory)."""
        entry = self.entry(path)
        return entry.data if entry is not None else None

    def real_path(self, path: str) -> str | None:
        """Return ``path`` spelt as stored (``/data.cgx`` → ``/DATA.CGX``), or ``None``."""
        parts = split_path(path)
        entry = self.root
        names: list[str] = []
        for part in parts:
            if entry.children is None or part.casefold() not in entry.children:
                return None
            entry = entry.children[part.casefold()]
            names.append(entry.name)
        return "/" + "/".join(names)

    def _parent(self, parts: list[str], *, create: bool, mtime: float = 0.0) -> dict[str, SdEntry]:
        """Return the children table of the directory holding ``parts[-1]``."""
        if not parts:
            raise UsageError("the root cannot be replaced")
        children = _children(self.root)
        for part in parts[:-1]:
            child = children.get(part.casefold())
            if child is None:
                if not create:
                    raise UsageError(f"no directory {part!r}")
                child = SdEntry(part, children={}, mtime=mtime)
                children[part.casefold()] = child
            children = _children(child)
        return children

    def write(self, path: str, data: bytes, *, mtime: float = 0.0, parents: bool = True) -> None:
        """Create or replace the file at ``path`` (making parent directories if asked)."""
        if len(data) > _MAX_FILE_BYTES:
            raise UsageError(f"file larger than {_MAX_FILE_BYTES} bytes", where=path[:80])
        parts = split_path(path)
        parent = self._parent(parts, create=parents, mtime=mtime)
        key = parts[-1].casefold()
        old = parent.get(key)
        if old is not None and old.is_dir:
            raise UsageError("a directory has this name", where=path[:80])
        version = old.version + 1 if old is not None else 1
        name = old.name if old is not None else parts[-1]
        parent[key] = SdEntry(name, data=bytes(data), mtime=mtime, version=version)
        self.writes += 1

    def mkdir(
        self, path: str, *, parents: bool = False, exist_ok: bool = False, mtime: float = 0.0
    ) -> None:
        """Create the directory ``path``."""
        parts = split_path(path)
        existing = self._find(parts)
        if existing is not None:
            if existing.is_dir and exist_ok:
                return
            raise UsageError("already exists", where=path[:80])
        parent = self._parent(parts, create=parents, mtime=mtime)
        parent[parts[-1].casefold()] = SdEntry(parts[-1], children={}, mtime=mtime)

    def remove(self, path: str, *, directory: bool) -> None:
        """Delete a file (``directory=False``) or an empty directory."""
        parts = split_path(path)
        entry = self._find(parts)
        if entry is None or not parts:
            raise UsageError("no such file or directory", where=path[:80])
        if entry.is_dir != directory:
            raise UsageError(
                "is a directory" if entry.is_dir else "not a directory", where=path[:80]
            )
        if entry.children:
            raise UsageError("directory not empty", where=path[:80])
        del self._parent(parts, create=False)[parts[-1].casefold()]
        self.writes += 1

    def rename(self, source: str, destination: str) -> None:
        """Move a file or directory."""
        src_parts, dst_parts = split_path(source), split_path(destination)
        entry = self._find(src_parts)
        if entry is None or not src_parts or not dst_parts:
            raise UsageError("no such file or directory", where=source[:80])
        if [p.casefold() for p in src_parts] == [p.casefold() for p in dst_parts]:
            entry.name = dst_parts[-1]  # a change of case only
            entry.version += 1
            self.writes += 1
            return
        dst_parent = self._parent(dst_parts, create=False)
        if dst_parts[-1].casefold() in dst_parent:
            raise UsageError("destination exists", where=destination[:80])
        del self._parent(src_parts, create=False)[src_parts[-1].casefold()]
        entry.name = dst_parts[-1]
        entry.version += 1
        dst_parent[dst_parts[-1].casefold()] = entry
        self.writes += 1

    def listdir(self, path: str) -> list[SdEntry]:
        """Return the entries of directory ``path`` sorted by name (empty if not a directory)."""
        entry = self.entry(path)
        if entry is None or entry.children is None:
            return []
        return sorted(entry.children.values(), key=lambda e: e.name.casefold())

    def walk(self) -> Iterator[tuple[str, SdEntry]]:
        """Yield ``(path, entry)`` for every file, depth first."""
        stack: list[tuple[str, SdEntry]] = [("", self.root)]
        while stack:
            prefix, entry = stack.pop()
            for child in sorted(
                (entry.children or {}).values(), key=lambda e: e.name, reverse=True
            ):
                path = f"{prefix}/{child.name}"
                if child.is_dir:
                    stack.append((path, child))
                else:
                    yield path, child
