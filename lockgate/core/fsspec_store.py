"""Artifacts under any URL fsspec knows: ``s3://``, ``gs://``, ``az://``, a shared
``file://`` mount, ``memory://``: what a team or a cluster shares.

Components still read and write local folders. Staging is a local session (the same
flock'd ``StagingSessions`` as the local store, under the cache folder); ``publish``
uploads the finished folder's files under the final key and writes the marker
``_lockgate_published.json`` *last*, so an artifact without its marker is half an upload
and no reader takes it; the metadata store registers the artifact after the marker::

    s3://bucket/prefix/<pipeline>/<step>/<output>/<execution id>/
        ...the component's files...
        _lockgate_published.json   {"format": 1, "fingerprint": sha256, "files": {name: size}}

    <cache>/                       LOCKGATE_ARTIFACT_CACHE, else ~/.cache/lockgate/artifacts
        objects/<fingerprint>/     working copies: downloaded once, verified, then reused
        .tmp/<root hash>/          staging sessions, as the local store's .tmp/

A crash mid-upload leaves an unmarked prefix that the crashed session's notes name; the
next ``sweep`` on this machine removes it unless the metadata store registered it. A
published output moves from staging into ``objects/`` (a rename), so the next step reads
it without a download. fsspec and its backends (s3fs, gcsfs, adlfs) are imported only
here, when a URL root is used; storage options come from ``LOCKGATE_ARTIFACT_STORAGE_OPTIONS``
(JSON, e.g. ``{"client_kwargs": {"endpoint_url": ...}}``) or the backend's own environment
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lockgate.core.artifact_store import STAGING, ArtifactStoreAddress, StagingSessions
from lockgate.core.fingerprint import path_fingerprint
from lockgate.errors import ArtifactStoreError, ConfigError

MARKER = "_lockgate_published.json"
OPTIONS_ENV = "LOCKGATE_ARTIFACT_STORAGE_OPTIONS"
CACHE_ENV = "LOCKGATE_ARTIFACT_CACHE"
#: the extra that installs each protocol's fsspec backend
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}


class FsspecArtifactStore(StagingSessions):
    """Artifacts under a URL; working copies cached locally by fingerprint."""

    def __init__(
        self,
        root: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        explicit = storage_options is not None or environ is not None
        environ = os.environ if environ is None else environ
        options = dict(
            storage_options_from(environ) if storage_options is None else storage_options
        )
        self.root = root.rstrip("/")
        self._explicit_options = json.dumps(options, sort_keys=True) if explicit else None
        self.fs = filesystem_for(self.root, options)
        self.cache_dir = Path(cache_dir or default_cache_dir(environ)).resolve()
        tag = hashlib.sha256(self.root.encode()).hexdigest()[:12]
        super().__init__(self.cache_dir / STAGING / tag)

    def address(self) -> ArtifactStoreAddress:
        """The root, and the storage options only when given explicitly (otherwise each
        node takes its own from its environment)."""
        return ArtifactStoreAddress(self.root, self._explicit_options)

    def uri_for(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def publish(self, staging: Path, uri: str, *, fingerprint: str) -> str:
        """Upload the files, then the marker; the staging folder becomes the working copy."""
        path = self._path(uri)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        names = [p.relative_to(staging).as_posix() for p in files]
        if MARKER in names:
            raise ArtifactStoreError(
                f"an output may not hold a file named {MARKER} (staged for {uri})", uri=uri
            )
        # No check that the key is free (two requests per artifact on S3): execution ids
        # are unique, and a reader takes only the files the marker lists, verified.
        self._note_published(uri)
        if files:
            self.fs.put([str(f) for f in files], [f"{path}/{n}" for n in names])
        manifest = {
            "format": 1,
            "fingerprint": fingerprint,
            "files": {n: f.stat().st_size for n, f in zip(names, files, strict=True)},
        }
        self.fs.pipe_file(f"{path}/{MARKER}", json.dumps(manifest, indent=1).encode())
        self._keep(staging, fingerprint)
        return uri

    def exists(self, uri: str) -> bool:
        path = self._path(uri)
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(f"{path}/{MARKER}"))

    def local_copy(self, uri: str, fingerprint: str | None = None) -> Path:
        """The cached working copy, else a download checked against the marker's (and the
        registered) fingerprint. An artifact without its marker is refused."""
        if fingerprint is not None and (hit := self._cached(fingerprint)) is not None:
            return hit
        path = self._path(uri)
        manifest = self._manifest(uri, path)
        published = str(manifest["fingerprint"])
        if fingerprint is not None and published != fingerprint:
            raise ArtifactStoreError(
                f"artifact {uri} was published with fingerprint {published[:12]}, but the"
                f" metadata store registered {fingerprint[:12]}",
                uri=uri,
                hint="its files were replaced after publication; run the pipeline again",
            )
        if (hit := self._cached(published)) is not None:
            return hit
        return self._download(uri, path, list(manifest["files"]), published)

    def discard(self, target: Path | str) -> None:
        """A staging folder (a local path) or a published, unregistered artifact (a URI)."""
        if isinstance(target, str) and "://" in target:
            self._remove_published(target)
        else:
            shutil.rmtree(target, ignore_errors=True)

    def _remove_published(self, uri: str) -> bool:
        path = self._path(uri)
        self.fs.invalidate_cache(path)
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            return False
        return True

    def _path(self, uri: str) -> str:
        return str(self.fs._strip_protocol(uri)).rstrip("/")

    def _manifest(self, uri: str, path: str) -> dict[str, Any]:
        self.fs.invalidate_cache(path)
        try:
            manifest = json.loads(self.fs.cat_file(f"{path}/{MARKER}"))
        except FileNotFoundError:
            raise ArtifactStoreError(
                f"artifact {uri} is not published: it has no {MARKER} (an upload that did not"
                " finish, or a folder that is no artifact)",
                uri=uri,
                hint="run the pipeline again; each run sweeps what crashed uploads left",
            ) from None
        except ValueError as exc:
            raise ArtifactStoreError(f"artifact {uri}: unreadable {MARKER}: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ArtifactStoreError(f"artifact {uri}: {MARKER} is not a lockgate marker", uri=uri)
        for name in manifest["files"]:
            _check_file_name(uri, name)
        return manifest

    def _cached(self, fingerprint: str) -> Path | None:
        folder = self.cache_dir / "objects" / fingerprint
        return folder if folder.is_dir() else None

    def _keep(self, folder: Path, fingerprint: str) -> Path:
        """Move a complete, verified folder into the cache (or drop it: already there)."""
        target = self.cache_dir / "objects" / fingerprint
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(folder, target)
        except OSError:  # the same content is cached already (another writer, a race)
            shutil.rmtree(folder, ignore_errors=True)
        return target

    def _download(self, uri: str, path: str, names: list[str], fingerprint: str) -> Path:
        partial = self.cache_dir / "objects" / f".partial-{uuid.uuid4().hex[:12]}"
        partial.mkdir(parents=True)
        try:
            for parent in {(partial / n).parent for n in names}:
                parent.mkdir(parents=True, exist_ok=True)
            if names:
                self.fs.get([f"{path}/{n}" for n in names], [str(partial / n) for n in names])
            got = path_fingerprint(partial)
            if got != fingerprint:
                raise ArtifactStoreError(
                    f"artifact {uri}: downloaded files have fingerprint {got[:12]}, its marker"
                    f" says {fingerprint[:12]}",
                    uri=uri,
                    hint="its files were changed after publication; run the pipeline again",
                )
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return self._keep(partial, fingerprint)


def _check_file_name(uri: str, name: object) -> None:
    """A marker names files inside its artifact: a relative path without ``..``. Anything
    else (``../../.bashrc``, ``/etc/cron.d/x``) would make the download write outside the
    working copy, so the artifact is refused before a byte is fetched."""
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if not parts or PurePosixPath(str(name)).is_absolute() or ".." in parts or "\\" in str(name):
        raise ArtifactStoreError(
            f"artifact {uri}: its {MARKER} names the file {name!r}, which is not a path inside"
            " the artifact; refused",
            uri=uri,
            hint="someone wrote this marker by hand or tampered with the bucket; re-run the"
            " pipeline to publish the artifact again",
        )


def storage_options_from(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LOCKGATE_ARTIFACT_STORAGE_OPTIONS`` as a dict (empty when unset)."""
    text = environ.get(OPTIONS_ENV)
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{OPTIONS_ENV} is not JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ConfigError(f"{OPTIONS_ENV} must be a JSON object; got {text[:40]!r}")
    return options


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where working copies and staging live: ``LOCKGATE_ARTIFACT_CACHE``, else the user's
    cache folder."""
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lockgate" / "artifacts"


def filesystem_for(url: str, options: dict[str, Any]) -> Any:
    """The fsspec file system for ``url``; a ConfigError naming the extra when its backend
    (s3fs, gcsfs, adlfs) is not installed."""
    protocol = url.split("://", 1)[0]
    extra = EXTRAS.get(protocol, "s3")
    try:
        import fsspec
    except ImportError as exc:
        raise ConfigError(
            f"artifact root {url} needs fsspec, which is not installed",
            hint=f'pip install "lockgate[{extra}]"',
        ) from exc
    if protocol == "file":
        options.setdefault("auto_mkdir", True)
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        raise ConfigError(
            f"artifact root {url}: the {protocol}:// file system is not installed ({exc})",
            hint=f'pip install "lockgate[{extra}]"',
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"artifact root {url}: fsspec knows no {protocol}:// file system ({exc})",
            hint="use a folder, or an s3://, gs://, az:// or file:// URL",
        ) from exc


_readers: dict[str, FsspecArtifactStore] = {}
_readers_guard = threading.Lock()


def reader_for(uri: str) -> FsspecArtifactStore:
    """A store (one per scheme and bucket, for this process) that makes working copies of
    URIs outside any run: the server loading a pushed model, the CLI showing an artifact."""
    scheme, _, rest = uri.partition("://")
    root = f"{scheme}://{rest.split('/', 1)[0]}"
    key = "\0".join([root, os.environ.get(OPTIONS_ENV, ""), os.environ.get(CACHE_ENV, "")])
    with _readers_guard:
        if key not in _readers:
            _readers[key] = FsspecArtifactStore(root)
        return _readers[key]
