"""Settings: defaults < lockgate.toml < LOCKGATE_* environment < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.errors import ConfigError
from lockgate.settings import Settings


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    assert Settings.load(tmp_path, environ={}).serve_port == 8080
    (tmp_path / "lockgate.toml").write_text(
        '[serve]\nport = 9000\nhost = "0.0.0.0"\n[store]\nurl = "sqlite:///m.db"\n'
    )
    from_file = Settings.load(tmp_path, environ={})
    assert (from_file.serve_port, from_file.serve_host) == (9000, "0.0.0.0")
    assert from_file.resolved_store_url == f"sqlite:///{tmp_path.resolve() / 'm.db'}"
    from_env = Settings.load(tmp_path, environ={"LOCKGATE_SERVE_PORT": "9100"})
    assert from_env.serve_port == 9100
    from_flag = Settings.load(
        tmp_path, environ={"LOCKGATE_SERVE_PORT": "9100"}, overrides={"serve_port": 9200}
    )
    assert from_flag.serve_port == 9200


def test_unknown_keys_and_broken_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "lockgate.toml").write_text("[serve]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'prot' in \[serve\].*did you mean 'port'"):
        Settings.load(tmp_path, environ={})
    (tmp_path / "lockgate.toml").write_text("[serve\n")
    with pytest.raises(ConfigError, match="lockgate.toml: not valid TOML"):
        Settings.load(tmp_path, environ={})
    (tmp_path / "lockgate.toml").write_text("")
    with pytest.raises(ConfigError, match="serve port must be an integer; got 'eighty'"):
        Settings.load(tmp_path, environ={"LOCKGATE_SERVE_PORT": "eighty"})


def test_the_runner_layers_and_a_misspelt_name(tmp_path: Path) -> None:
    assert Settings.load(tmp_path, environ={}).runner_name == "local"
    (tmp_path / "lockgate.toml").write_text('[runner]\nname = "ray"\naddress = "127.0.0.1:6379"\n')
    from_file = Settings.load(tmp_path, environ={})
    assert (from_file.runner_name, from_file.runner_address) == ("ray", "127.0.0.1:6379")
    from_env = Settings.load(tmp_path, environ={"LOCKGATE_RUNNER_ADDRESS": "ray://h:10001"})
    assert from_env.runner_address == "ray://h:10001"
    from_flag = Settings.load(tmp_path, environ={}, overrides={"runner_name": "local"})
    assert from_flag.runner_name == "local"
    with pytest.raises(ConfigError, match=r"\[runner\] name must be one of.*did you mean 'ray'"):
        Settings.load(tmp_path, environ={"LOCKGATE_RUNNER_NAME": "rey"})
