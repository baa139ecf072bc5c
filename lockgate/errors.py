"""Every error a lockgate user can meet.

The tree::

    LockgateError
    ├── ConfigError                  lockgate.toml, settings, CLI arguments       (ValueError)
    ├── PipelineDefinitionError      cycles, unknown inputs, type mismatches     (ValueError)
    ├── ComponentError               a component's signature is not usable        (TypeError)
    ├── StepFailedError              a step raised while running; wraps the cause
    ├── GateClosedError              a gate refused data or a model
    │   ├── DataValidationError      validate_examples found blocking anomalies
    │   └── NotBlessedError          push got a model without a positive Blessing
    ├── DataError                    input data that cannot be used               (ValueError)
    │   ├── DataFileError            unreadable / malformed file (path, row)
    │   └── ColumnNotFoundError      a column is missing (column, columns)       (KeyError)
    ├── SchemaError                  a schema file that does not parse or fit     (ValueError)
    ├── ModelError                   training, saving or loading a model
    │   ├── ModelIntegrityError      a model file whose sha256 does not match
    │   └── UntrustedModelError      a model file naming types nobody trusted (types)
    ├── ArtifactStoreError           artifact files: unpublished, corrupt, unreachable (uri)
    ├── MetadataError                the metadata store (connection, migration)
    │   ├── NotFoundError            an artifact, run, model or alias that is not there (KeyError)
    │   └── AliasConflictError       an alias moved by someone else since it was read
    └── ServingError                 the model server
        ├── InferenceRequestError    a malformed or invalid request -> HTTP 400
        ├── ModelNotFoundError       unknown model or version -> HTTP 404
        ├── ModelNotReadyError       nothing loaded yet -> HTTP 503
        ├── UnauthorizedError        no or a wrong bearer token -> HTTP 401
        ├── RequestTimeoutError      the body did not arrive in time -> HTTP 408
        ├── RequestTooLargeError     the body (inflated) is over the limit -> HTTP 413
        └── InferenceTimeoutError    the model did not answer in time -> HTTP 504

Every error carries its pieces as attributes (``path``, ``column``, ``step``, ``hint``)
so that the CLI, the UI and the HTTP layer can render them, and its message says what,
where, expected against got, and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    import difflib  # only when a name is mistyped: keeps the CLI's start light

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


class LockgateError(Exception):
    """Root of every lockgate error. ``hint`` says what to do about it."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(LockgateError, ValueError):
    """A setting, a lockgate.toml entry or a CLI argument is wrong."""


class PipelineDefinitionError(LockgateError, ValueError):
    """The pipeline graph is invalid; raised when it is defined, before anything runs."""

    def __init__(self, message: str, *, step: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.step = step


class ComponentError(LockgateError, TypeError):
    """A function cannot be a component (untyped parameter, bad annotation)."""


class StepFailedError(LockgateError):
    """A step raised while running. ``__cause__`` is the original error."""

    def __init__(self, message: str, *, step: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.step = step


class GateClosedError(LockgateError):
    """A gate refused to let data or a model through. Stops the run loudly.

    ``publish_outputs=True``: the step's outputs (its findings, an anomalies report) are
    published all the same, as outputs of the blocked execution; the gate's decision is
    separate from the finding. A blocked execution is never a cache hit.
    """

    publish_outputs: bool = False

    def __init__(
        self, message: str, *, hint: str | None = None, publish_outputs: bool = False
    ) -> None:
        super().__init__(message, hint=hint)
        if publish_outputs:
            self.publish_outputs = True
        self.output_properties: dict[str, dict] | None = None


class DataValidationError(GateClosedError):
    """validate_examples found anomalies that the policy says must stop the run."""

    def __init__(
        self, message: str, *, anomalies: list[dict] | None = None, hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.anomalies = anomalies or []


class NotBlessedError(GateClosedError):
    """push was given a model that the evaluator did not bless."""


class DataError(LockgateError, ValueError):
    """Input data that cannot be used as it is."""


class DataFileError(DataError):
    """A data file that cannot be read: missing, empty, malformed, wrong encoding."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, hint=hint)
        self.path = path
        self.row = row
        self.column = column


class ColumnNotFoundError(DataError, KeyError):
    """A column that should be there is not. The message lists the columns that are."""

    def __init__(
        self,
        column: str,
        columns: Iterable[str],
        *,
        where: str = "",
        hint: str | None = None,
    ):
        columns = list(columns)
        place = f" in {where}" if where else ""
        message = (
            f"column '{column}' not found{place}; columns are {columns}"
            f"{did_you_mean(column, columns)}"
        )
        super().__init__(message, hint=hint)
        self.column = column
        self.columns = columns
        self.where = where

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class SchemaError(LockgateError, ValueError):
    """A schema file that does not parse, or does not fit the data it describes."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class ModelError(LockgateError):
    """Training, saving or loading a model failed."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class ModelIntegrityError(ModelError):
    """A model file's sha256 does not match the one recorded when it was saved."""


class UntrustedModelError(ModelError):
    """A model file names types (classes, functions) that are not trusted; rebuilding them
    would run their code. ``types`` lists them."""

    def __init__(
        self,
        message: str,
        *,
        types: Iterable[str],
        path: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, path=path, hint=hint)
        self.types = sorted(types)


class ArtifactStoreError(LockgateError):
    """An artifact's files cannot be used: not published (no marker), not matching their
    fingerprint, or their store cannot be reached. ``uri`` names the artifact."""

    def __init__(self, message: str, *, uri: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.uri = uri


class MetadataError(LockgateError):
    """The metadata store cannot be reached, migrated or written."""


class NotFoundError(MetadataError, KeyError):
    """An artifact, run, model, version or alias that the store does not hold."""


class AliasConflictError(MetadataError):
    """An alias move that expected the alias on one version found it on another: someone
    moved it meanwhile (compare-and-set). Nothing changed; ``current`` is where it is."""

    def __init__(
        self, model: str, alias: str, *, expected: int | None, current: int | None
    ) -> None:
        where = "not set" if current is None else f"on version {current}"
        wanted = "not set" if expected is None else f"on version {expected}"
        super().__init__(
            f"alias '{alias}' of model '{model}' is {where}, but this move expected it {wanted}:"
            " another process moved it meanwhile; nothing changed",
            hint=f"see who moved it with: lockgate models history {model} --alias {alias};"
            " then move it again if you still mean to",
        )
        self.model, self.alias, self.expected, self.current = model, alias, expected, current

    def __str__(self) -> str:
        return self.message


class ServingError(LockgateError):
    """The model server could not answer."""

    status_code = 500


class InferenceRequestError(ServingError):
    """The request is malformed or does not match the model's inputs."""

    status_code = 400


class ModelNotFoundError(ServingError):
    """The request names a model or version that is not served."""

    status_code = 404


class ModelNotReadyError(ServingError):
    """The model is known but not loaded (yet)."""

    status_code = 503


class UnauthorizedError(ServingError):
    """No or a wrong bearer token on a server that requires one."""

    status_code = 401
    headers = {"WWW-Authenticate": 'Bearer realm="lockgate"'}


class RequestTimeoutError(ServingError):
    """The client did not send its body within the request timeout."""

    status_code = 408


class RequestTooLargeError(ServingError):
    """The request body (or what it inflates to) is larger than the server accepts."""

    status_code = 413


class InferenceTimeoutError(ServingError):
    """The model did not answer within the request timeout."""

    status_code = 504
