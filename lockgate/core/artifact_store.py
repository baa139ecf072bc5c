"""Where artifact files live, and how they are published atomically: the local folder.

Outputs are written under ``<root>/.tmp/`` and moved into place with one ``os.replace``
(atomic on one file system) only after the component returned; the metadata store row
comes after the move. A crash at any point leaves either nothing or an unregistered
folder, never a registered half artifact — and ``sweep`` removes what a crash left::

    <root>/
      .tmp/
        <session>.lock        held (flock) by the live process that writes the session
        <session>/            its staging folders: <step>-<output>-<id>/
          published.txt       every folder it moved into place, one URI a line
      <pipeline>/<step>/<output>/<execution id>/   published artifacts

A session's lock is released by the kernel when its process dies, however it dies
(``kill -9`` included), so the next run can tell a dead writer's session from a live
one's without trusting process ids, which the system reuses. What a dead session moved
into place and the store never registered is an orphan, and goes with the session.

The session machinery (``StagingSessions``) is shared with ``FsspecArtifactStore``, whose
staging is local too and whose notes name the remote URIs it uploads to. A local artifact's
URI is its folder's path, so its working copy is the folder itself: no copy, no cost.
``artifact_store_for`` picks the store for a root; ``local_copy`` finds any URI's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lockgate.errors import ArtifactStoreError

if TYPE_CHECKING:
    from lockgate.core.protocols import ArtifactStore

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: staging folders are never swept
    fcntl = None  # type: ignore[assignment]

STAGING = ".tmp"
PUBLISHED = "published.txt"
#: Staging folders of earlier lockgate versions carry no lock; they go once this old.
UNLOCKED_STAGING_MAX_AGE_S = 24 * 3600.0


class StagingSessions:
    """This process's flock'd staging session under ``staging_root``, and the sweep of
    dead sessions: what every store that stages on local disk shares."""

    def __init__(self, staging_root: Path) -> None:
        self._staging_root = staging_root
        self._session: Path | None = None
        self._session_lock: IO[bytes] | None = None
        self._guard = threading.Lock()

    def staging_dir(self, step: str, output: str) -> Path:
        """A fresh, empty folder to write one output into."""
        path = self._session_dir() / f"{step}-{output}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        """End this process's session: its (empty) folder goes and its lock is released."""
        with self._guard:
            if self._session is not None:
                shutil.rmtree(self._session, ignore_errors=True)
                self._session.with_suffix(".lock").unlink(missing_ok=True)
            if self._session_lock is not None:
                self._session_lock.close()
            self._session = self._session_lock = None

    def sweep(self, store: Any) -> list[str]:
        """Remove what crashed writers left: the staging sessions whose process is gone,
        and what those sessions published that ``store`` never registered. Returns what
        was removed (staging folders' paths and URIs)."""
        staging = self._staging_root
        if fcntl is None or not staging.is_dir():
            return []
        removed: list[str] = []
        for entry in staging.iterdir():
            if entry.suffix == ".lock" or entry == self._session:
                continue
            lock = entry.with_suffix(".lock")
            if lock.exists():
                if not _owner_gone(lock):
                    continue
                removed += self._remove_unregistered(entry / PUBLISHED, store)
            elif time.time() - entry.stat().st_mtime < UNLOCKED_STAGING_MAX_AGE_S:
                continue  # written by an older lockgate that took no lock: maybe still live
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
            removed.append(str(entry))
        return removed

    def _note_published(self, uri: str) -> None:
        """Record ``uri`` in the session's notes *before* publishing there: a crash after
        it leaves the note, and the sweep of the dead session finds the orphan."""
        with self._guard, (self._session_dir_locked() / PUBLISHED).open("a") as notes:
            notes.write(f"{uri}\n")

    def _remove_unregistered(self, notes: Path, store: Any) -> list[str]:
        """The URIs a dead session published whose store row never came."""
        if not notes.exists():
            return []
        removed = []
        for uri in notes.read_text(encoding="utf-8").splitlines():
            if uri and not store.is_registered(uri) and self._remove_published(uri):
                removed.append(uri)
        return removed

    def _remove_published(self, uri: str) -> bool:
        """Remove what is at ``uri``; False when nothing was there."""
        raise NotImplementedError

    def _session_dir(self) -> Path:
        with self._guard:
            return self._session_dir_locked()

    def _session_dir_locked(self) -> Path:
        if self._session is None:
            staging = self._staging_root
            staging.mkdir(parents=True, exist_ok=True)
            session = staging / f"{uuid.uuid4().hex[:12]}"
            handle = session.with_suffix(".lock").open("wb")
            if fcntl is not None:  # held before the folder exists: a sweep never sees it free
                fcntl.flock(handle, fcntl.LOCK_EX)
            session.mkdir()
            self._session, self._session_lock = session, handle
        return self._session


@dataclass(frozen=True)
class ArtifactStoreAddress:
    """An artifact store as it travels to another process or node: its root, and its
    storage options only when they were given explicitly (as JSON, so it is hashable);
    otherwise each node reads its own environment (``LOCKGATE_ARTIFACT_STORAGE_OPTIONS``),
    so credentials need not ride along with every task."""

    root: str
    storage_options: str | None = None

    def open(self) -> ArtifactStore:
        """This process's store for the address: the driver's own when a step runs in the
        driver's thread (``in_this_thread``: the local runner, at no cost), else one
        opened once per process (a worker)."""
        here = _in_this_thread.get()
        if here is not None and here.address() == self:
            return here
        key = self._key()
        with _opened_guard:
            if key not in _opened:
                options = None if self.storage_options is None else json.loads(self.storage_options)
                _opened[key] = _open(self.root, options)
            return _opened[key]

    def _key(self) -> tuple[str, ...]:
        from lockgate.core.fsspec_store import CACHE_ENV, OPTIONS_ENV

        own = self.storage_options or ""
        return (self.root, own, os.environ.get(OPTIONS_ENV, ""), os.environ.get(CACHE_ENV, ""))


_opened: dict[tuple[str, ...], ArtifactStore] = {}
_opened_guard = threading.Lock()
_in_this_thread: ContextVar[ArtifactStore | None] = ContextVar("artifact_store", default=None)


@contextmanager
def in_this_thread(store: ArtifactStore) -> Iterator[None]:
    """Make ``store`` what its address opens in this thread meanwhile: a step the local
    runner executes here stages in the driver's own session and publishes by its rename.
    Per thread, so that concurrent runs in one process each keep their own store."""
    token = _in_this_thread.set(store)
    try:
        yield
    finally:
        _in_this_thread.reset(token)


def _open(root: str, options: dict[str, Any] | None) -> ArtifactStore:
    local = local_path_of(root)
    if local is not None:
        return LocalArtifactStore(local)
    from lockgate.core.fsspec_store import FsspecArtifactStore

    return FsspecArtifactStore(root, storage_options=options)


class LocalArtifactStore(StagingSessions):
    """Artifacts as folders under a local root; an artifact's URI is its folder's path."""

    def __init__(self, root: str | Path) -> None:
        resolved = Path(root).resolve()
        super().__init__(resolved / STAGING)
        self.root = str(resolved)

    def uri_for(self, *parts: str) -> str:
        return str(Path(self.root, *parts))

    def address(self) -> ArtifactStoreAddress:
        return ArtifactStoreAddress(self.root)

    def final_dir(self, pipeline: str, step: str, output: str, execution_id: int) -> Path:
        return Path(self.uri_for(pipeline, step, output, str(execution_id)))

    def publish(self, staging: Path, uri: str | Path, *, fingerprint: str | None = None) -> str:
        """Move a finished output into its final place in one atomic rename."""
        final = Path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # left by a crash between the move and the store commit
            shutil.rmtree(final)
        self._note_published(str(final))
        os.replace(staging, final)
        return str(final)

    def exists(self, uri: str) -> bool:
        return Path(uri).exists()

    def local_copy(self, uri: str, fingerprint: str | None = None) -> Path:
        """The folder itself: a local artifact needs no copy."""
        return Path(uri)

    def discard(self, target: Path | str) -> None:
        shutil.rmtree(target, ignore_errors=True)

    def _remove_published(self, uri: str) -> bool:
        folder = Path(uri)
        if not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL with a scheme (``s3://``, ``file://``), not a path."""
    return isinstance(location, str) and "://" in location


def local_path_of(location: str | Path) -> Path | None:
    """The local path of a plain path or a ``file://`` URL; None for any other URL."""
    if not is_url(location):
        return Path(location)
    text = str(location)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return None


def artifact_store_for(
    location: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    cache_dir: str | Path | None = None,
) -> ArtifactStore:
    """The store for an artifact root: a folder path or ``file://`` URL is the local store
    (atomic renames, no copies); any other URL goes through fsspec (``s3://``, ``gs://``...),
    its storage options from ``LOCKGATE_ARTIFACT_STORAGE_OPTIONS`` (JSON) in ``environ``."""
    local = local_path_of(location)
    if local is not None:
        return LocalArtifactStore(local)
    from lockgate.core.fsspec_store import FsspecArtifactStore

    return FsspecArtifactStore(str(location), environ=environ, cache_dir=cache_dir)


def local_copy(uri: str, fingerprint: str | None = None) -> Path:
    """A local, read-only folder holding the published artifact at ``uri``: the folder
    itself for a local artifact; for a remote one, a verified download cached by fingerprint
    (storage options and cache folder from this process's environment). For code outside
    the launcher: the CLI, the server loading a pushed model."""
    local = local_path_of(uri)
    if local is not None:
        return local
    from lockgate.core.fsspec_store import reader_for

    return reader_for(uri).local_copy(uri, fingerprint)


def _owner_gone(lock: Path) -> bool:
    """Whether no live process holds ``lock`` (we can take it without waiting)."""
    if fcntl is None:  # pragma: no cover - sweep returns before this on Windows
        raise ArtifactStoreError("staging locks need fcntl", uri=str(lock))
    try:
        with lock.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except FileNotFoundError:  # its owner just closed it
        return False
