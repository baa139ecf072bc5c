"""Where artifact files live, and how they are published atomically.

Outputs are written under ``<root>/.tmp/`` and moved into place with one ``os.replace``
(atomic on one file system) only after the component returned; the metadata store row
comes after the move. A crash at any point leaves either nothing or an unregistered
folder, never a registered half artifact.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


class LocalArtifactStore:
    """Artifacts as folders under a local root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def staging_dir(self, step: str, output: str) -> Path:
        """A fresh, empty folder to write one output into."""
        path = self.root / ".tmp" / f"{step}-{output}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def final_dir(self, pipeline: str, step: str, output: str, execution_id: int) -> Path:
        return self.root / pipeline / step / output / str(execution_id)

    def publish(self, staging: Path, final: Path) -> Path:
        """Move a finished output into its final place in one atomic rename."""
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # left by a crash between the move and the store commit
            shutil.rmtree(final)
        os.replace(staging, final)
        return final

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
