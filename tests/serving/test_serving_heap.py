"""The server freezes what it loaded out of the collector's full passes, and lets a
released model version go again."""

from __future__ import annotations

import gc
import weakref

from lockgate.serving.heap import freeze_loaded, refreeze


class _Version:
    """Stands for a loaded model: it holds a reference cycle, as real models do."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_objects_survive_collections_until_refrozen() -> None:
    version = _Version()
    alive = weakref.ref(version)
    try:
        freeze_loaded()
        assert gc.get_freeze_count() > 0
        del version  # released, but only the cyclic collector can free it
        gc.collect()
        assert alive() is not None  # frozen: full collections skip it
        refreeze()
        assert alive() is None  # the refreeze collected it first
    finally:
        gc.unfreeze()
