"""The ``MetadataStore`` protocol is the contract: the SQL store implements every member with
the same parameters, every store call in the package is a protocol member, and nothing
outside the store reaches into its engine or its private write transaction."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from lockgate.core.protocols import MetadataStore
from lockgate.core.records import ExecutionRecord
from lockgate.core.status import Status
from lockgate.metadata.store import SqlMetadataStore

PACKAGE = Path(__file__).resolve().parents[2] / "lockgate"
#: The modules that implement the store (they may use its engine and private helpers).
STORE_MODULES = {"metadata/store.py", "metadata/database.py"}
#: SqlMetadataStore's read connection for the registry and serving status tables (SQL only).
SQL_ONLY = {"reading"}


def protocol_members() -> set[str]:
    names = {n for n in vars(MetadataStore) if not n.startswith("_")}
    return names | set(MetadataStore.__annotations__)


def test_the_sql_store_implements_every_member_with_the_same_parameters() -> None:
    for name in protocol_members() - {"url"}:
        stated = inspect.signature(getattr(MetadataStore, name))
        implemented = inspect.signature(getattr(SqlMetadataStore, name))
        assert list(implemented.parameters) == list(stated.parameters), name
        for parameter in stated.parameters.values():
            assert implemented.parameters[parameter.name].kind == parameter.kind, name
            assert implemented.parameters[parameter.name].default == parameter.default, name


def _store_calls() -> dict[str, set[str]]:
    """Attribute names read off anything called ``store`` (``store.x``, ``self.store.x``,
    ``context.store.x``) in each module of the package."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            named = (isinstance(owner, ast.Name) and owner.id == "store") or (
                isinstance(owner, ast.Attribute) and owner.attr == "store"
            )
            if named:
                found.setdefault(module, set()).add(node.attr)
    return found


def test_every_store_call_in_the_package_is_a_protocol_member() -> None:
    allowed = protocol_members() | SQL_ONLY
    unknown = {
        module: sorted(attrs - allowed)
        for module, attrs in _store_calls().items()
        if module not in STORE_MODULES and attrs - allowed
    }
    assert unknown == {}


def test_nothing_outside_the_store_reaches_into_its_engine_or_private_writes() -> None:
    private = {"_write", "_write_lock", "_engine", "engine"}
    offenders = {
        module: sorted(attrs & private)
        for module, attrs in _store_calls().items()
        if module not in STORE_MODULES and attrs & private
    }
    assert offenders == {}


def test_statuses_are_an_enum_that_still_compares_as_the_stored_strings(
    store: SqlMetadataStore,
) -> None:
    run_id = store.start_run("p")
    execution_id = store.start_execution(
        run_id,
        step="s",
        component="c",
        cache_key=None,
        code_fingerprint=None,
        params={"n": 3, "path": Path("data.csv"), "callback": len},
        inputs={},
    )
    store.fail_execution(execution_id, "boom")
    store.finish_run(run_id, "failed", "boom")
    record = store.get_execution(execution_id)
    assert isinstance(record, ExecutionRecord)
    assert record.status is Status.FAILED and record.status == "failed"
    assert store.get_run(run_id).status is Status.FAILED
    # params go in as a dict and come back as one: their canonical JSON inside the store
    assert record.params["n"] == 3 and record.params["path"] == "data.csv"
    assert record.params["callback"].startswith("callable:builtins.len:")
    assert [Status(s) for s in ("running", "skipped", "abandoned")] == [
        Status.RUNNING,
        Status.SKIPPED,
        Status.ABANDONED,
    ]
    with pytest.raises(ValueError, match="'finished' is not a valid Status"):
        store.finish_run(run_id, "finished")
