"""A node's data directory: its persistent node id, its term, its lineage and its replica log.

Layout of ``DataDir(path)``:

- ``LOCK``: held (an exclusive OS lock) while a node process uses the directory, so a second process on the same
  directory refuses to start with :class:`DataDirLockedError` instead of sharing the log;
- ``node_id``: the node's id, made once (a uuid4 in hex) and kept across restarts;
- ``term``: the highest election term this node has seen, written durably before the node acts on it, so terms
  never go back across restarts;
- ``lineage.json``: the sessions the replica log followed, ``[[term, master, start], ...]``;
- ``log/``: the replica log (an :class:`~clusterstate.EventLog`), which the master opens as its own when elected;
- ``log.diverged-{term}-{n}/``: a replica log set aside because it extended past the point where it diverged from
  the master's (kept for the operator, never read again).

Every small file is replaced atomically: written to a temporary file, fsynced, renamed over, and the directory
fsynced, so a crash leaves the old or the new contents, never a torn one.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

from clusterstate import EventLog
from clusterstate.errors import ClusterStateError

from .errors import InvalidLineageError, InvalidNameError
from .keys import Session, validate_name
from .lineage import Epoch, validate

__all__ = ["DataDir", "DataDirError", "DataDirLockedError"]

Durability = Literal["fsync", "group", "none"]


class DataDirError(ClusterStateError, OSError):
    """A data directory file that cannot be read back (damaged or written by something else)."""


class DataDirLockedError(DataDirError):
    """Another process uses this data directory (and so this node id)."""


class DataDir:
    """The data directory at `path` (created if missing), locked for this process until :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = (self.path / "LOCK").open("a+b")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise DataDirLockedError(f"data directory {self.path} is in use by another clusterstate node") from None

    def close(self) -> None:
        """Release the directory's lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def log_path(self) -> Path:
        return self.path / "log"

    def node_id(self, explicit: str | None = None, *, new: bool = False) -> str:
        """The node id: `explicit` (and kept from now on) if given, else the one kept here, else a new one; `new`
        makes a new one in any case (a cloned disk's copy takes a fresh identity this way)."""
        path = self.path / "node_id"
        if explicit is not None:
            node_id = validate_name("node id", explicit)
        elif not new and path.exists():
            node_id = self._read(path).strip()
            try:
                validate_name("node id", node_id)
            except InvalidNameError as e:
                raise DataDirError(f"{path}: {e}") from None
            return node_id
        else:
            node_id = uuid.uuid4().hex
        self._write(path, node_id.encode() + b"\n")
        return node_id

    def read_term(self) -> int:
        """The persisted term (0 when none was written)."""
        path = self.path / "term"
        if not path.exists():
            return 0
        text = self._read(path).strip()
        if not text.isascii() or not text.isdigit():
            raise DataDirError(f"{path}: expected a non-negative integer, found {text[:40]!r}")
        return int(text)

    def write_term(self, term: int) -> None:
        """Persist `term` durably; a term below the persisted one is refused (terms never go back)."""
        current = self.read_term()
        if term < current:
            raise DataDirError(f"term {term} would go back from the persisted term {current}")
        if term > current:
            self._write(self.path / "term", b"%d\n" % term)

    def read_lineage(self) -> tuple[Epoch, ...]:
        """The persisted lineage (empty when none was written)."""
        path = self.path / "lineage.json"
        if not path.exists():
            return ()
        try:
            raw = json.loads(self._read(path))
            lineage = [Epoch(Session(int(term), str(master)), int(start)) for term, master, start in raw]
            return validate(lineage)
        except (ValueError, TypeError, InvalidLineageError) as e:
            raise DataDirError(f"{path}: not a lineage ({e})") from None

    def write_lineage(self, lineage: Sequence[Epoch]) -> None:
        raw = [[e.session.term, e.session.master, e.start] for e in validate(lineage)]
        self._write(self.path / "lineage.json", json.dumps(raw, separators=(",", ":")).encode() + b"\n")

    def open_log(self, durability: Durability) -> EventLog:
        """The replica log (created empty the first time)."""
        return EventLog(self.log_path, create=True, durability=durability)

    def set_aside(self, term: int, count: int) -> Path:
        """Move the replica log aside as ``log.diverged-{term}-{count}`` (a suffix keeps earlier ones) and forget the
        lineage; the log must be closed. Returns where it went."""
        target = self.path / f"log.diverged-{term}-{count}"
        n = 1
        while target.exists():
            n += 1
            target = self.path / f"log.diverged-{term}-{count}.{n}"
        self.log_path.rename(target)
        self.write_lineage(())
        _fsync_dir(self.path)
        return target

    def _read(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataDirError(f"cannot read {path}: {e}") from None

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        _fsync_dir(self.path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
