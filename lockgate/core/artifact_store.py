"""Where artifact files live, and how they are published atomically.

Outputs are written under ``<root>/.tmp/`` and moved into place with one ``os.replace``
(atomic on one file system) only after the component returned; the metadata store row
comes after the move. A crash at any point leaves either nothing or an unregistered
folder, never a registered half artifact — and ``sweep`` removes what a crash left::

    <root>/
      .tmp/
        <session>.lock        held (flock) by the live process that writes the session
        <session>/            its staging folders: <step>-<output>-<id>/
          published.txt       every folder it moved into place, one path a line
      <pipeline>/<step>/<output>/<execution id>/   published artifacts

A session's lock is released by the kernel when its process dies, however it dies
(``kill -9`` included), so the next run can tell a dead writer's session from a live
one's without trusting process ids, which the system reuses. What a dead session moved
into place and the store never registered is an orphan, and goes with the session.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: staging folders are never swept
    fcntl = None  # type: ignore[assignment]

STAGING = ".tmp"
PUBLISHED = "published.txt"
#: Staging folders of earlier lockgate versions carry no lock; they go once this old.
UNLOCKED_STAGING_MAX_AGE_S = 24 * 3600.0


class LocalArtifactStore:
    """Artifacts as folders under a local root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._session: Path | None = None
        self._session_lock: IO[bytes] | None = None
        self._guard = threading.Lock()

    def staging_dir(self, step: str, output: str) -> Path:
        """A fresh, empty folder to write one output into."""
        path = self._session_dir() / f"{step}-{output}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def final_dir(self, pipeline: str, step: str, output: str, execution_id: int) -> Path:
        return self.root / pipeline / step / output / str(execution_id)

    def publish(self, staging: Path, final: Path) -> Path:
        """Move a finished output into its final place in one atomic rename."""
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # left by a crash between the move and the store commit
            shutil.rmtree(final)
        with self._guard, (self._session_dir_locked() / PUBLISHED).open("a") as notes:
            notes.write(f"{final}\n")  # before the move: a crash after it leaves the note
        os.replace(staging, final)
        return final

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        """End this process's session: its (empty) folder goes and its lock is released."""
        with self._guard:
            if self._session is not None:
                shutil.rmtree(self._session, ignore_errors=True)
                self._session.with_suffix(".lock").unlink(missing_ok=True)
            if self._session_lock is not None:
                self._session_lock.close()
            self._session = self._session_lock = None

    def sweep(self, store: Any) -> list[Path]:
        """Remove what crashed writers left: the staging sessions whose process is gone,
        and the folders those sessions moved into place that ``store`` never registered.
        Returns what was removed."""
        staging = self.root / STAGING
        if fcntl is None or not staging.is_dir():
            return []
        removed: list[Path] = []
        for entry in staging.iterdir():
            if entry.suffix == ".lock" or entry == self._session:
                continue
            lock = entry.with_suffix(".lock")
            if lock.exists():
                if not _owner_gone(lock):
                    continue
                removed += _remove_unregistered(entry / PUBLISHED, store)
            elif time.time() - entry.stat().st_mtime < UNLOCKED_STAGING_MAX_AGE_S:
                continue  # written by an older lockgate that took no lock: maybe still live
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
            removed.append(entry)
        return removed

    def _session_dir(self) -> Path:
        with self._guard:
            return self._session_dir_locked()

    def _session_dir_locked(self) -> Path:
        if self._session is None:
            staging = self.root / STAGING
            staging.mkdir(parents=True, exist_ok=True)
            session = staging / f"{uuid.uuid4().hex[:12]}"
            handle = session.with_suffix(".lock").open("wb")
            if fcntl is not None:  # held before the folder exists: a sweep never sees it free
                fcntl.flock(handle, fcntl.LOCK_EX)
            session.mkdir()
            self._session, self._session_lock = session, handle
        return self._session


def _remove_unregistered(notes: Path, store: Any) -> list[Path]:
    """The folders a dead session moved into place whose store row never came."""
    if not notes.exists():
        return []
    removed = []
    for line in notes.read_text(encoding="utf-8").splitlines():
        folder = Path(line)
        if line and folder.is_dir() and not store.is_registered(str(folder)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_gone(lock: Path) -> bool:
    """Whether no live process holds ``lock`` (we can take it without waiting)."""
    assert fcntl is not None
    try:
        with lock.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except FileNotFoundError:  # its owner just closed it
        return False
