"""The model registry: named models, numbered versions, and aliases such as ``production``.

A version points at a ``PushedModel`` artifact (transform and model side by side). An alias
moves only to a blessed version unless forced, and a forced move must say why; every move
is kept in ``alias_history`` so that rollbacks and audits can read it.

Concurrency (several runs and people on one store): a version's number is taken under a
lock on the model's row, so numbers are never shared and are in commit order; a push moves
``production`` in the transaction that registers its version, so pushes at once leave it on
the highest version. A person's move names the version it expects the alias on
(``expected=``, compare-and-set): of several moves at once, the first wins and the others get
``AliasConflictError`` instead of silently undoing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import EllipsisType
from typing import Any

import sqlalchemy as sa

from lockgate.core.artifacts import Artifact
from lockgate.errors import (
    AliasConflictError,
    ConfigError,
    NotBlessedError,
    NotFoundError,
    did_you_mean,
)
from lockgate.metadata import tables as t
from lockgate.metadata.store import (
    SqlMetadataStore,
    artifact_columns,
    artifact_from_row,
    insert_or_ignore,
    inserted_id,
    now,
    upsert,
)

PRODUCTION = "production"
#: ``expected=ANY``: move the alias wherever it is (no compare-and-set).
ANY = ...
#: The alias whose version a canary serves next to production (see serving/canary.py).
CANARY = "canary"


@dataclass
class ModelVersion:
    model_name: str
    version: int
    artifact: Artifact
    blessed: bool
    created_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    id: int = 0


class Registry:
    """Model versions and aliases, stored in the metadata store's tables."""

    def __init__(
        self, store: SqlMetadataStore, *, verify: Callable[[ModelVersion], None] | None = None
    ) -> None:
        """``verify`` runs on a version before any alias moves to it and raises to refuse
        the move (the serving layer's check that it loads: serving/promotion.py)."""
        self.store = store
        self.verify = verify

    def models(self) -> list[str]:
        with self.store.reading() as conn:
            return list(
                conn.execute(
                    sa.select(t.registered_models.c.name).order_by(t.registered_models.c.name)
                ).scalars()
            )

    def register(
        self,
        model_name: str,
        pushed: Artifact,
        *,
        blessed: bool,
        properties: dict[str, Any] | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Add a new version (numbered 1, 2, ...) pointing at a registered artifact, and
        point ``alias`` at it in the same transaction when one is given."""
        with self.store.transaction() as conn:
            number = self.register_within(
                conn,
                model_name,
                pushed,
                blessed=blessed,
                properties=properties,
                alias=alias,
                reason=reason,
            )
        return self.get(model_name, number)

    def register_within(
        self,
        conn: sa.Connection,
        model_name: str,
        pushed: Artifact,
        *,
        blessed: bool,
        properties: dict[str, Any] | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> int:
        """``register`` inside the caller's write transaction (the push step registers as
        it publishes, so a crash leaves both or neither); returns the version number.

        Numbers are taken under a lock on the model's row, so two runs pushing at once get
        two numbers, never the same one."""
        if pushed.id is None:
            raise ValueError("register() needs an artifact that is in the store (it has no id)")
        insert_or_ignore(conn, t.registered_models, name=model_name, created_at=now())
        model_id = self._lock_model(conn, model_name)
        latest = conn.execute(
            sa.select(sa.func.max(t.model_versions.c.version)).where(
                t.model_versions.c.model_id == model_id
            )
        ).scalar()
        number = (latest or 0) + 1
        version_id = inserted_id(
            conn.execute(
                t.model_versions.insert().values(
                    model_id=model_id,
                    version=number,
                    artifact_id=pushed.id,
                    blessed=blessed,
                    properties=properties or {},
                    created_at=now(),
                )
            )
        )
        if alias is not None:
            self._move_alias(conn, model_id, alias, int(version_id), reason=reason, forced=False)
        return number

    def version_of(self, artifact: Artifact) -> ModelVersion | None:
        """The version registered for a PushedModel artifact (None: not registered)."""
        if artifact.id is None:
            return None
        with self.store.reading() as conn:
            found = self._load(
                conn,
                _VERSIONS.add_columns(t.registered_models.c.name.label("model_name"))
                .join(t.registered_models, t.registered_models.c.id == t.model_versions.c.model_id)
                .where(t.model_versions.c.artifact_id == artifact.id)
                .order_by(t.model_versions.c.id)
                .limit(1),
            )
            return found[0] if found else None

    def set_alias(
        self,
        model_name: str,
        alias: str,
        version: int,
        *,
        force: bool = False,
        reason: str | None = None,
        expected: int | None | EllipsisType = ANY,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``. Unblessed versions need ``force`` and a reason.
        With ``expected`` (a version, or None: not set), the move happens only if the alias
        is still there when the lock is held; ``AliasConflictError`` otherwise."""
        target = self._checked_target(model_name, alias, version, force=force, reason=reason)
        with self.store.transaction() as conn:
            model_id = self._lock_model(conn, model_name)
            self._check_expected(conn, model_name, model_id, alias, expected)
            self._move_alias(
                conn, model_id, alias, target.id, reason=reason, forced=force and not target.blessed
            )
        return self.get(model_name, version)

    def _checked_target(
        self, model_name: str, alias: str, version: int, *, force: bool, reason: str | None
    ) -> ModelVersion:
        """The version an alias may move to: blessed (or forced with a reason), then
        ``verify`` (the costly check, a model load) passed."""
        target = self.get(model_name, version)
        if not target.blessed:
            if not force:
                raise NotBlessedError(
                    f"model '{model_name}' version {version} is not blessed; "
                    f"alias '{alias}' moves only to a blessed version",
                    hint="evaluate it first, or force the move and record a reason",
                )
            if not reason:
                raise NotBlessedError(
                    f"forcing alias '{alias}' of model '{model_name}' onto unblessed version "
                    f"{version} needs a reason"
                )
        if self.verify is not None:
            self.verify(target)
        return target

    def remove_alias(self, model_name: str, alias: str, *, reason: str | None = None) -> None:
        """Take an alias off its version (a canary ends); the removal is kept in history."""
        with self.store.transaction() as conn:
            model_id = self._lock_model(conn, model_name)
            deleted = conn.execute(
                t.model_aliases.delete().where(
                    t.model_aliases.c.model_id == model_id, t.model_aliases.c.alias == alias
                )
            ).rowcount
            if not deleted:
                raise NotFoundError(f"model '{model_name}' has no alias '{alias}'")
            conn.execute(
                t.alias_history.insert().values(
                    model_id=model_id,
                    alias=alias,
                    version_id=None,
                    reason=reason,
                    forced=False,
                    set_at=now(),
                )
            )

    def aliases(self, model_name: str) -> dict[str, int]:
        """Every alias of a model and its version number, in one query (the server polls it)."""
        with self.store.reading() as conn:
            model_id = self._model_id(conn, model_name)
            rows = conn.execute(
                sa.select(t.model_aliases.c.alias, t.model_versions.c.version)
                .join(t.model_versions, t.model_versions.c.id == t.model_aliases.c.version_id)
                .where(t.model_aliases.c.model_id == model_id)
            ).all()
        return {row.alias: int(row.version) for row in rows}

    def latest(self, model_name: str, *, blessed: bool = True) -> ModelVersion:
        """The newest version (the newest blessed one unless ``blessed=False``)."""
        with self.store.reading() as conn:
            model_id = self._model_id(conn, model_name)
            query = sa.select(sa.func.max(t.model_versions.c.version)).where(
                t.model_versions.c.model_id == model_id
            )
            if blessed:
                query = query.where(t.model_versions.c.blessed.is_(True))
            number = conn.execute(query).scalar()
        if number is None:
            raise NotFoundError(
                f"model '{model_name}' has no {'blessed ' if blessed else ''}version",
                hint="evaluate a version, or import one with --bless and a reason",
            )
        return self.get(model_name, int(number))

    def rollback(
        self,
        model_name: str,
        alias: str = PRODUCTION,
        *,
        reason: str,
        to: int | None = None,
        expected: int | None | EllipsisType = ANY,
    ) -> ModelVersion:
        """Move ``alias`` back to the version it pointed at before (or to ``to``).

        The earlier version already served under this alias, so the move is allowed even if it
        is unblessed; the reason is recorded and the move is marked forced in that case.
        """
        if not reason:
            raise NotBlessedError(f"rolling back alias '{alias}' of '{model_name}' needs a reason")
        current = self.aliases(model_name).get(alias)
        if to is None:
            earlier = [
                h["version"]
                for h in self.alias_history(model_name, alias)
                if h["version"] is not None and h["version"] != current
            ]
            if not earlier:
                raise NotFoundError(
                    f"alias '{alias}' of model '{model_name}' has no earlier version to roll"
                    " back to",
                    hint=f"promote a version instead: lockgate models promote {model_name} N",
                )
            to = int(earlier[0])
        return self.set_alias(model_name, alias, to, force=True, reason=reason, expected=expected)

    def update_properties(self, model_name: str, version: int, **properties: Any) -> ModelVersion:
        """Merge ``properties`` into a version's (a ``None`` value removes the key); read and
        written in one transaction, so two updates at once both land."""
        target = self.get(model_name, version)
        with self.store.transaction() as conn:
            self._merge_properties(conn, target.id, **properties)
        return self.get(model_name, version)

    @staticmethod
    def _merge_properties(conn: sa.Connection, version_id: int, **properties: Any) -> None:
        current = conn.execute(
            sa.select(t.model_versions.c.properties).where(t.model_versions.c.id == version_id)
        ).scalar()
        merged = {**(current or {}), **properties}
        conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.id == version_id)
            .values(properties={k: v for k, v in merged.items() if v is not None})
        )

    def start_canary(
        self,
        model_name: str,
        version: int,
        *,
        percent: float | None = None,
        shadow: bool = False,
        force: bool = False,
        reason: str | None = None,
        expected: int | None | EllipsisType = ANY,
    ) -> ModelVersion:
        """Point the ``canary`` alias at ``version`` with its traffic share (kept on the
        version as ``canary_percent`` / ``canary_shadow``; no percent: the server's default)."""
        if percent is not None and not 0 <= percent <= 100:
            raise ConfigError(f"canary percent must be between 0 and 100; got {percent}")
        target = self._checked_target(model_name, CANARY, version, force=force, reason=reason)
        with self.store.transaction() as conn:  # its share and the alias move land together
            model_id = self._lock_model(conn, model_name)
            self._check_expected(conn, model_name, model_id, CANARY, expected)
            self._merge_properties(
                conn, target.id, canary_percent=percent, canary_shadow=shadow or None
            )
            self._move_alias(
                conn,
                model_id,
                CANARY,
                target.id,
                reason=reason,
                forced=force and not target.blessed,
            )
        return self.get(model_name, version)

    def get(self, model_name: str, ref: int | str | None = None) -> ModelVersion:
        """A version by number, by alias, or (``None``) the ``production`` alias."""
        ref = PRODUCTION if ref is None else ref
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
        with self.store.reading() as conn:
            model_id = self._model_id(conn, model_name)
            query = _VERSIONS.where(t.model_versions.c.model_id == model_id)
            if isinstance(ref, int):
                query = query.where(t.model_versions.c.version == ref)
            else:
                query = query.join(
                    t.model_aliases, t.model_aliases.c.version_id == t.model_versions.c.id
                ).where(t.model_aliases.c.alias == ref)
            found = self._load(conn, query.limit(1), model_name)
            if not found:
                what = f"version {ref}" if isinstance(ref, int) else f"alias '{ref}'"
                raise NotFoundError(
                    f"model '{model_name}' has no {what}",
                    hint=f"list its versions with: lockgate lineage {model_name}",
                )
            return found[0]

    def versions(self, model_name: str) -> list[ModelVersion]:
        with self.store.reading() as conn:
            model_id = self._model_id(conn, model_name)
            query = _VERSIONS.where(t.model_versions.c.model_id == model_id)
            return self._load(conn, query.order_by(t.model_versions.c.version), model_name)

    def alias_history(self, model_name: str, alias: str = PRODUCTION) -> list[dict[str, Any]]:
        """Moves of an alias, newest first: version (None when removed), when, why, forced."""
        with self.store.reading() as conn:
            model_id = self._model_id(conn, model_name)
            rows = conn.execute(
                sa.select(t.alias_history, t.model_versions.c.version)
                .outerjoin(t.model_versions, t.model_versions.c.id == t.alias_history.c.version_id)
                .where(t.alias_history.c.model_id == model_id, t.alias_history.c.alias == alias)
                .order_by(t.alias_history.c.id.desc())
            ).all()
        return [
            {"version": r.version, "set_at": r.set_at, "reason": r.reason, "forced": r.forced}
            for r in rows
        ]

    def baseline_for(
        self, model_name: str, candidate_fingerprint: str | None
    ) -> ModelVersion | None:
        """The version a candidate is compared against: production, unless production *is*
        the candidate; then the production version before it. Re-running an unchanged
        pipeline thus compares against the same baseline as the first run did."""
        try:
            history = self.alias_history(model_name, PRODUCTION)
        except NotFoundError:
            return None
        for entry in history:
            if entry["version"] is None:
                return None
            version = self.get(model_name, entry["version"])
            if version.properties.get("model_fingerprint") != candidate_fingerprint:
                return version
        return None

    def _lock_model(self, conn: sa.Connection, model_name: str) -> int:
        """The model's id, its row locked until the transaction ends (PostgreSQL; SQLite's
        write transaction holds the whole database already)."""
        model_id = conn.execute(
            sa.select(t.registered_models.c.id)
            .where(t.registered_models.c.name == model_name)
            .with_for_update()
        ).scalar()
        return int(model_id) if model_id is not None else self._model_id(conn, model_name)

    @staticmethod
    def _check_expected(
        conn: sa.Connection,
        model_name: str,
        model_id: int,
        alias: str,
        expected: int | None | EllipsisType,
    ) -> None:
        """Compare-and-set: the alias must be where the mover saw it (read under the lock)."""
        if expected is ANY:
            return
        current = conn.execute(
            sa.select(t.model_versions.c.version)
            .join(t.model_aliases, t.model_aliases.c.version_id == t.model_versions.c.id)
            .where(t.model_aliases.c.model_id == model_id, t.model_aliases.c.alias == alias)
        ).scalar()
        if current != expected:
            raise AliasConflictError(model_name, alias, expected=expected, current=current)

    @staticmethod
    def _move_alias(
        conn: sa.Connection,
        model_id: int,
        alias: str,
        version_id: int,
        *,
        reason: str | None,
        forced: bool,
    ) -> None:
        upsert(
            conn,
            t.model_aliases,
            ["model_id", "alias"],
            model_id=model_id,
            alias=alias,
            version_id=version_id,
            updated_at=now(),
        )
        conn.execute(
            t.alias_history.insert().values(
                model_id=model_id,
                alias=alias,
                version_id=version_id,
                reason=reason,
                forced=forced,
                set_at=now(),
            )
        )

    def _model_id(self, conn: sa.Connection, model_name: str) -> int:
        model_id = conn.execute(
            sa.select(t.registered_models.c.id).where(t.registered_models.c.name == model_name)
        ).scalar()
        if model_id is None:
            names = list(conn.execute(sa.select(t.registered_models.c.name)).scalars())
            raise NotFoundError(
                f"no model named '{model_name}' in the registry; models are {sorted(names)}"
                f"{did_you_mean(model_name, names)}",
                hint="a model is registered when a pipeline's push step succeeds",
            )
        return int(model_id)

    @staticmethod
    def _load(
        conn: sa.Connection, query: sa.Select[Any], model_name: str | None = None
    ) -> list[ModelVersion]:
        """The versions a ``_VERSIONS`` query selects, with their artifacts and aliases: two
        queries however many versions there are."""
        rows = conn.execute(query).all()
        aliases: dict[int, list[str]] = {row.id: [] for row in rows}
        if rows:
            for alias, version_id in conn.execute(
                sa.select(t.model_aliases.c.alias, t.model_aliases.c.version_id).where(
                    t.model_aliases.c.version_id.in_(list(aliases))
                )
            ):
                aliases[version_id].append(alias)
        return [
            ModelVersion(
                model_name=model_name if model_name is not None else row.model_name,
                version=row.version,
                artifact=artifact_from_row(row, "pushed_"),
                blessed=row.blessed,
                created_at=row.created_at,
                properties=row.properties or {},
                aliases=sorted(aliases[row.id]),
                id=row.id,
            )
            for row in rows
        ]


#: Versions with the PushedModel each points at (its columns labelled ``pushed_*``).
_VERSIONS = sa.select(t.model_versions, *artifact_columns(t.artifacts, "pushed_")).join(
    t.artifacts, t.artifacts.c.id == t.model_versions.c.artifact_id
)
