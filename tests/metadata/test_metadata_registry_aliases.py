"""Registry additions for serving: all aliases in one query, latest blessed, rollback,
removing an alias, and the canary alias with its traffic share."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import publish_pushed_model

from lockgate import PushedModel
from lockgate.errors import ConfigError, NotBlessedError, NotFoundError
from lockgate.metadata.registry import CANARY, PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore


def pushed_artifact(store: SqlMetadataStore, tmp_path: Path, name: str, fp: str) -> PushedModel:
    (tmp_path / name).mkdir()
    artifact = PushedModel(uri=str(tmp_path / name), properties={"model_fingerprint": fp})
    return publish_pushed_model(store, artifact)


def three_versions(store: SqlMetadataStore, tmp_path: Path) -> Registry:
    registry = Registry(store)
    for index, blessed in enumerate([True, True, False], start=1):
        registry.register(
            "m", pushed_artifact(store, tmp_path, f"v{index}", f"f{index}"), blessed=blessed
        )
    return registry


def test_aliases_latest_and_rollback(store: SqlMetadataStore, tmp_path: Path) -> None:
    registry = three_versions(store, tmp_path)
    assert registry.aliases("m") == {}
    assert registry.latest("m").version == 2 and registry.latest("m", blessed=False).version == 3
    with pytest.raises(NotFoundError, match="has no earlier version to roll back to"):
        registry.rollback("m", reason="nothing yet")
    registry.set_alias("m", PRODUCTION, 1, reason="first")
    registry.set_alias("m", PRODUCTION, 2, reason="second")
    registry.set_alias("m", "staging", 2)
    assert registry.aliases("m") == {PRODUCTION: 2, "staging": 2}
    with pytest.raises(NotBlessedError, match="needs a reason"):
        registry.rollback("m", reason="")
    assert registry.rollback("m", reason="v2 misbehaves").version == 1
    assert registry.alias_history("m")[0] == {
        **registry.alias_history("m")[0],
        "version": 1,
        "reason": "v2 misbehaves",
        "forced": False,
    }
    # rolling back "to" an unblessed version is a forced, recorded move
    assert registry.rollback("m", reason="needs 3", to=3).version == 3
    assert registry.alias_history("m")[0]["forced"] is True


def test_remove_alias_is_recorded(store: SqlMetadataStore, tmp_path: Path) -> None:
    registry = three_versions(store, tmp_path)
    registry.set_alias("m", CANARY, 2)
    registry.remove_alias("m", CANARY, reason="canary done")
    assert CANARY not in registry.aliases("m")
    assert registry.alias_history("m", CANARY)[0]["version"] is None
    with pytest.raises(NotFoundError, match="has no alias 'canary'"):
        registry.remove_alias("m", CANARY)


def test_canary_keeps_its_share_on_the_version(store: SqlMetadataStore, tmp_path: Path) -> None:
    registry = three_versions(store, tmp_path)
    version = registry.start_canary("m", 2, percent=25)
    assert version.aliases == [CANARY] and version.properties["canary_percent"] == 25
    version = registry.start_canary("m", 2, shadow=True)
    assert "canary_percent" not in version.properties and version.properties["canary_shadow"]
    with pytest.raises(NotBlessedError, match="not blessed"):
        registry.start_canary("m", 3, percent=5)
    with pytest.raises(ConfigError, match="between 0 and 100"):
        registry.start_canary("m", 2, percent=101)
    assert registry.update_properties("m", 1, note="x").properties["note"] == "x"


def test_the_verify_check_runs_after_the_blessing_check_and_a_refused_canary_changes_nothing(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    three_versions(store, tmp_path)
    checked: list[int] = []

    def refuse(version: object) -> None:
        checked.append(version.version)  # type: ignore[attr-defined]
        raise ConfigError(f"version {version.version} does not load")  # type: ignore[attr-defined]

    registry = Registry(store, verify=refuse)
    with pytest.raises(NotBlessedError, match="not blessed"):
        registry.set_alias("m", PRODUCTION, 3)
    assert checked == []  # refused for its blessing before any costly load
    before = registry.get("m", 2).properties
    with pytest.raises(ConfigError, match="version 2 does not load"):
        registry.start_canary("m", 2, percent=25)
    assert checked == [2]
    assert registry.get("m", 2).properties == before  # no share left behind
    assert registry.aliases("m") == {}
    assert registry.alias_history("m", CANARY) == []
