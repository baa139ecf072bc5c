"""``lockgate serve`` with a bearer token, a body limit and a request timeout, set by flag,
environment variable or lockgate.toml, through the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import LOCKGATE, free_port, lockgate, wait_until_ready

from lockgate.errors import ConfigError
from lockgate.settings import Settings

ENV_TOKEN = "env-secret-4f1c"
FLAG_TOKEN = "flag-secret-9a2e"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project serving one imported scikit-learn classifier as 'species' (production)."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("serve") / "project"
    folder.mkdir()
    (folder / "lockgate.toml").write_text(
        '[project]\nname = "serve"\n\n[serve]\nmax_body_bytes = 4096\nlog_sample_rate = 0\n'
    )
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    X = np.column_stack([y + rng.normal(0, 0.3, 200), rng.normal(0, 1, 200)])
    model = LogisticRegression().fit(X, np.array(["no", "yes"])[y])
    skops.io.dump(model, folder / "clf.skops")
    steps = [
        ("models", "import", "clf.skops", "--name", "species", "--features", "a,b"),
        ("models", "promote", "species", "1", "--force", "--reason", "test"),
    ]
    for args in steps:
        result = lockgate(*args, cwd=folder)
        assert result.returncode == 0, result.stdout + result.stderr
    return folder


Start = Callable[..., str]


@pytest.fixture
def start(project: Path) -> Iterator[Start]:
    """``start(*flags, env={...}) -> url``: `lockgate serve` until the test ends."""
    processes: list[subprocess.Popen[str]] = []

    def run(*flags: str, env: dict[str, str] | None = None) -> str:
        port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_SERVE")}
        process = subprocess.Popen(
            [*LOCKGATE, "serve", "--port", str(port), *flags],
            cwd=project,
            env={**environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(process, url)
        return url

    yield run
    for process in processes:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        for token in (ENV_TOKEN, FLAG_TOKEN):
            assert token not in output  # the token is never printed


def _body(rows: int = 2) -> dict:
    return {
        "inputs": [
            {"name": "a", "datatype": "FP64", "shape": [rows], "data": [0.0, 1.0] * (rows // 2)},
            {"name": "b", "datatype": "FP64", "shape": [rows], "data": [0.0] * rows},
        ]
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_from_the_environment_guards_the_server(start: Start) -> None:
    url = start("--request-timeout", "5", env={"LOCKGATE_SERVE_AUTH_TOKEN": ENV_TOKEN})
    infer = f"{url}/v2/models/species/infer"
    with httpx.Client() as http:
        missing = http.post(infer, json=_body())
        assert missing.status_code == 401, missing.text
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert ENV_TOKEN not in missing.text
        assert http.post(infer, json=_body(), headers=_bearer("wrong")).status_code == 401
        assert http.get(f"{url}/metrics").status_code == 401
        assert http.get(f"{url}/v2/health/live").status_code == 200  # probes stay open
        ok = http.post(infer, json=_body(), headers=_bearer(ENV_TOKEN))
        assert ok.status_code == 200, ok.text
        predicted = next(o for o in ok.json()["outputs"] if o["name"] == "predicted")
        assert predicted["data"] == ["no", "yes"]
        # [serve] max_body_bytes = 4096 in lockgate.toml
        big = http.post(infer, json=_body(1000), headers=_bearer(ENV_TOKEN))
        assert big.status_code == 413, big.text
        assert "4096" in big.json()["error"]


def test_the_flag_wins_over_the_environment_and_batches_are_measured(start: Start) -> None:
    url = start(
        "--auth-token",
        FLAG_TOKEN,
        "--max-body-bytes",
        "100000",
        env={"LOCKGATE_SERVE_AUTH_TOKEN": ENV_TOKEN},
    )
    infer = f"{url}/v2/models/species/infer"
    requests = 16
    with httpx.Client(limits=httpx.Limits(max_connections=requests)) as http:
        assert http.post(infer, json=_body(), headers=_bearer(ENV_TOKEN)).status_code == 401
        assert http.post(infer, json=_body(1000), headers=_bearer(FLAG_TOKEN)).status_code == 200
        with ThreadPoolExecutor(requests) as pool:
            answers = list(
                pool.map(
                    lambda _: http.post(infer, json=_body(), headers=_bearer(FLAG_TOKEN)),
                    range(requests),
                )
            )
        assert [a.status_code for a in answers] == [200] * requests
        scrape = http.get(f"{url}/metrics", headers=_bearer(FLAG_TOKEN))
    assert scrape.status_code == 200
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
    }
    labels = frozenset({"model": "species", "version": "1"}.items())
    # every row reaches the model once and is counted once (by the batcher, not twice)
    assert samples[("lockgate_batch_size_sum", labels)] == 1000 + 2 * requests
    assert samples[("lockgate_batch_size_count", labels)] <= 1 + requests


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (["--max-body-bytes", "0"], {}, "max_body_bytes must be a positive integer; got 0"),
        (["--request-timeout", "-1"], {}, "request_timeout_s must be a positive number"),
        ([], {"LOCKGATE_SERVE_AUTH_TOKEN": " "}, "auth_token must be a non-empty string"),
        ([], {"LOCKGATE_SERVE_MAX_BODY_BYTES": "lots"}, "max body bytes must be an integer"),
    ],
)
def test_bad_limits_stop_the_command_with_one_line(
    project: Path, flags: list[str], env: dict[str, str], message: str
) -> None:
    result = lockgate("serve", "--port", "1", *flags, cwd=project, env={**os.environ, **env})
    assert result.returncode == 2  # the command could not run
    assert message in result.stderr and "Traceback" not in result.stderr


def test_settings_read_the_serve_limits_from_toml_env_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "lockgate.toml").write_text(
        '[serve]\nauth_token = "toml-token"\nmax_body_bytes = 1024\nrequest_timeout_s = 2.5\n'
    )
    from_toml = Settings.load(tmp_path, environ={})
    assert from_toml.serve_auth_token == "toml-token"
    assert (from_toml.serve_max_body_bytes, from_toml.serve_request_timeout_s) == (1024, 2.5)
    assert "toml-token" not in repr(from_toml)
    env = {"LOCKGATE_SERVE_AUTH_TOKEN": "env-token\n", "LOCKGATE_SERVE_REQUEST_TIMEOUT_S": "7"}
    from_env = Settings.load(tmp_path, environ=env)
    assert (from_env.serve_auth_token, from_env.serve_request_timeout_s) == ("env-token", 7.0)
    flag = Settings.load(tmp_path, environ=env, overrides={"serve_auth_token": "flag-token"})
    assert flag.serve_auth_token == "flag-token"
    defaults = Settings.load(tmp_path / "nowhere", environ={})
    assert defaults.serve_auth_token is None
    assert (defaults.serve_max_body_bytes, defaults.serve_request_timeout_s) == (32 << 20, 30.0)
    (tmp_path / "lockgate.toml").write_text("[serve]\nauth_token = 1234\n")
    with pytest.raises(
        ConfigError, match=r"auth_token must be a non-empty string; got a value of type int"
    ):
        Settings.load(tmp_path, environ={})
