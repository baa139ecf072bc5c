"""Reading a PushedModel folder (``transform/`` and ``model/`` side by side) the one safe
way: the folder's fingerprint checked against the store's before anything in it is
deserialised, then the model file's sha256, then its framework's reader. The server, the
evaluator's baseline and warm start all load a pushed model through here."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from lockgate.errors import ModelError, ModelIntegrityError

HINT = "push the model again, or restore the folder from the artifact store"


def load_pushed_folder(
    folder: str | Path,
    *,
    model_sha256: str,
    fingerprint: str | None = None,
    trusted_types: Collection[str] | None = None,
) -> tuple[Any, Any]:
    """(transform graph, loaded model) of a pushed folder.

    With ``fingerprint`` (the PushedModel's, from the store) the whole folder is checked
    first, so an edited transform, or a model.json edited to trust more types, is refused
    as an edited model file is. ``trusted_types`` are the skops types trusted beyond the
    allowlist as the store recorded them; without them, model.json's, and only when the
    fingerprint vouched for it."""
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.training.model_import import load_any_model
    from lockgate.training.transform import TransformGraph

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"pushed model folder {folder} not found", path=str(folder))
    if fingerprint is not None:
        got = path_fingerprint(folder)
        if got != fingerprint:
            _model_file_changed(folder / "model", model_sha256)  # names the file if so
            raise ModelIntegrityError(
                f"pushed model {folder} has fingerprint {got}, the store recorded"
                f" {fingerprint}; its files changed after they were pushed, so it is not"
                " loaded",
                path=str(folder),
                hint=HINT,
            )
    if trusted_types is None and fingerprint is None:
        trusted_types = ()  # an unverified model.json grants nothing
    model = load_any_model(folder / "model", sha256=model_sha256, trusted=trusted_types)
    return TransformGraph.load(folder / "transform"), model


def _model_file_changed(folder: Path, expected: str) -> None:
    """Raise the model file's own sha256 error when it is the file that changed; reads only
    model.json (JSON) and hashes the file, deserialising nothing."""
    from lockgate.training.model_files import META_FILE, verify_file

    try:
        name = json.loads((folder / META_FILE).read_text(encoding="utf-8"))["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if isinstance(name, str) and Path(name).name == name and (folder / name).is_file():
        verify_file(folder / name, expected, since="pushed", hint=HINT)
