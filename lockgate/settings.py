"""One typed Settings object: defaults < lockgate.toml < LOCKGATE_* environment < CLI flags.

The environment is passed in (``environ=``) so that tests need no monkeypatching.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lockgate.errors import ConfigError, did_you_mean

CONFIG_FILE = "lockgate.toml"

# (section, key) in lockgate.toml -> Settings field; the env var is LOCKGATE_<FIELD>.
_TOML_KEYS = {
    ("project", "name"): "project_name",
    ("project", "pipeline"): "pipeline_file",
    ("store", "url"): "store_url",
    ("store", "artifact_root"): "artifact_root",
    ("runner", "name"): "runner_name",
    ("runner", "address"): "runner_address",
    ("serve", "host"): "serve_host",
    ("serve", "port"): "serve_port",
    ("serve", "models"): "serve_models",
    ("serve", "poll_interval_s"): "serve_poll_interval_s",
    ("serve", "batch_max_size"): "serve_batch_max_size",
    ("serve", "batch_max_wait_ms"): "serve_batch_max_wait_ms",
    ("serve", "canary_percent"): "serve_canary_percent",
    ("serve", "canary_shadow"): "serve_canary_shadow",
    ("serve", "log_sample_rate"): "serve_log_sample_rate",
    ("serve", "log_flush_rows"): "serve_log_flush_rows",
    ("serve", "log_flush_interval_s"): "serve_log_flush_interval_s",
    ("serve", "auth_token"): "serve_auth_token",
    ("serve", "max_body_bytes"): "serve_max_body_bytes",
    ("serve", "request_timeout_s"): "serve_request_timeout_s",
}

# Numbers and flags that may arrive as strings (environment variables, CLI text).
_INTS = ("serve_port", "serve_batch_max_size", "serve_log_flush_rows", "serve_max_body_bytes")
_FLOATS = (
    "serve_poll_interval_s",
    "serve_batch_max_wait_ms",
    "serve_canary_percent",
    "serve_log_sample_rate",
    "serve_log_flush_interval_s",
    "serve_request_timeout_s",
)
_BOOLS = ("serve_canary_shadow",)


@dataclass(frozen=True)
class Settings:
    project_dir: Path = field(default_factory=Path.cwd)
    project_name: str = "lockgate"
    pipeline_file: str = "pipeline.py"
    store_url: str = "sqlite:///.lockgate/metadata.db"
    artifact_root: str = ".lockgate/artifacts"
    #: where steps run: "local" (threads of this process) or "ray" (Ray tasks; the extra
    #: ``lockgate[ray]``). ``runner_address`` joins a running Ray cluster ("host:6379",
    #: "ray://host:10001"); None starts a local Ray bound to 127.0.0.1.
    runner_name: str = "local"
    runner_address: str | None = None
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    #: ``name`` (its production alias), ``name@latest`` (newest blessed version),
    #: ``name@3`` (pinned) or ``name@alias``; empty: every registered model's production.
    serve_models: tuple[str, ...] = ()
    serve_poll_interval_s: float = 5.0
    #: Adaptive batching: rows per merged call; 1 turns batching off. A wait of 0 merges only
    #: the requests queued while the model was busy, so batches form under load without
    #: adding latency. 1024 rows lets ten 100-row requests share a call (tabular models answer
    #: 1,000 rows in little more time than 100).
    serve_batch_max_size: int = 1024
    serve_batch_max_wait_ms: float = 0.0
    #: Share of requests for the ``canary`` alias's version, unless the registry sets one.
    serve_canary_percent: float = 10.0
    serve_canary_shadow: bool = False
    #: Share of requests written to the request log (InferenceLog artifacts); 0 turns it off.
    serve_log_sample_rate: float = 0.1
    #: Rows per InferenceLog artifact (or every flush interval): each is a Parquet file and a
    #: store transaction, so small batches under load cost the server CPU and fill the store.
    serve_log_flush_rows: int = 10_000
    serve_log_flush_interval_s: float = 60.0
    #: A bearer token every request but the health checks must send (401 otherwise); None:
    #: no auth. Prefer LOCKGATE_SERVE_AUTH_TOKEN to a file or a flag; never shown in a repr.
    serve_auth_token: str | None = field(default=None, repr=False)
    #: Largest request body, before and after decompression (413 above it).
    serve_max_body_bytes: int = 32 * 1024 * 1024
    #: Seconds for a request body to arrive (408) and for the model to answer (504).
    serve_request_timeout_s: float = 30.0

    @classmethod
    def load(
        cls,
        project_dir: str | Path = ".",
        *,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        project_dir = Path(project_dir).resolve()
        values: dict[str, Any] = {"project_dir": project_dir}
        values.update(_read_toml(project_dir / CONFIG_FILE))
        environ = os.environ if environ is None else environ
        for f in fields(cls):
            env_name = f"LOCKGATE_{f.name.upper()}"
            if f.name != "project_dir" and env_name in environ:
                values[f.name] = environ[env_name]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return replace(cls(), **_coerce(values))

    @property
    def resolved_store_url(self) -> str:
        """The store URL with a relative SQLite path made absolute against the project."""
        prefix = "sqlite:///"
        if self.store_url.startswith(prefix) and not self.store_url.startswith(prefix + "/"):
            relative = self.store_url[len(prefix) :]
            if relative != ":memory:":
                return prefix + str(self.project_dir / relative)
        return self.store_url

    @property
    def resolved_artifact_root(self) -> Path | str:
        """The artifact root: a folder (a relative one made absolute against the project),
        or a URL as given (``s3://bucket/prefix``: artifacts go through fsspec)."""
        if "://" in self.artifact_root and not self.artifact_root.startswith("file://"):
            return self.artifact_root
        return self.project_dir / self.artifact_root.removeprefix("file://")

    @property
    def pipeline_path(self) -> Path:
        return self.project_dir / self.pipeline_file


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import tomllib  # here, not at the top: `lockgate --help` reads no settings

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    known_sections = {section for section, _ in _TOML_KEYS}
    for section, table in data.items():
        if section not in known_sections or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; sections are {sorted(known_sections)}"
                f"{did_you_mean(section, known_sections)}"
            )
        keys = {key for sec, key in _TOML_KEYS if sec == section}
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(
                    f"{path}: unknown key '{key}' in [{section}]; keys are {sorted(keys)}"
                    f"{did_you_mean(key, keys)}"
                )
            values[_TOML_KEYS[(section, key)]] = value
    return values


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in (*_INTS, *_FLOATS):
        if name in out:
            kind = int if name in _INTS else float
            try:
                if isinstance(out[name], bool):
                    raise TypeError
                out[name] = kind(out[name])
            except (TypeError, ValueError) as exc:
                what = name.removeprefix("serve_").replace("_", " ")
                noun = "an integer" if kind is int else "a number"
                raise ConfigError(f"serve {what} must be {noun}; got {out[name]!r}") from exc
    for name in _BOOLS:
        if name in out and not isinstance(out[name], bool):
            text = str(out[name]).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ConfigError(f"{name} must be true or false; got {out[name]!r}")
            out[name] = text in ("1", "true", "yes", "on")
    _check_serve_limits(out)
    if "runner_name" in out:
        from lockgate.core.runners import RUNNERS

        out["runner_name"] = str(out["runner_name"]).strip().lower()
        if out["runner_name"] not in RUNNERS:
            raise ConfigError(
                f"[runner] name must be one of {sorted(RUNNERS)}; got {out['runner_name']!r}"
                f"{did_you_mean(out['runner_name'], RUNNERS)}"
            )
    if out.get("runner_address") == "":
        out["runner_address"] = None
    if "serve_models" in out:
        models = out["serve_models"]
        if isinstance(models, str):
            models = [m for m in models.split(",") if m]
        out["serve_models"] = tuple(models)
    if "project_dir" in out:
        out["project_dir"] = Path(out["project_dir"])
    return out


def _check_serve_limits(out: dict[str, Any]) -> None:
    """The server's limits must be usable; the token's value never appears in a message."""
    token = out.get("serve_auth_token")
    if token is not None:
        if not isinstance(token, str) or not token.strip():
            got = (
                "an empty string"
                if isinstance(token, str)
                else f"a value of type {type(token).__name__}"
            )
            raise ConfigError(
                f"[serve] auth_token must be a non-empty string; got {got}",
                hint="set LOCKGATE_SERVE_AUTH_TOKEN to a secret, or leave it unset for no auth",
            )
        out["serve_auth_token"] = token.strip()
    if out.get("serve_max_body_bytes", 1) <= 0:
        raise ConfigError(
            f"[serve] max_body_bytes must be a positive integer; got {out['serve_max_body_bytes']}"
        )
    if not out.get("serve_request_timeout_s", 1.0) > 0:
        raise ConfigError(
            "[serve] request_timeout_s must be a positive number of seconds; got"
            f" {out['serve_request_timeout_s']}"
        )
