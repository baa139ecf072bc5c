"""The server's errors live in the one error tree (``lockgate.errors``), each with its HTTP
status, and the old import path from ``lockgate.serving.security`` still works."""

from __future__ import annotations

import pytest

import lockgate.errors as errors
from lockgate.serving import security


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("InferenceRequestError", 400),
        ("UnauthorizedError", 401),
        ("ModelNotFoundError", 404),
        ("RequestTimeoutError", 408),
        ("RequestTooLargeError", 413),
        ("ModelNotReadyError", 503),
        ("InferenceTimeoutError", 504),
    ],
)
def test_every_serving_error_is_in_the_tree_with_its_status(name: str, status: int) -> None:
    error = getattr(errors, name)
    assert issubclass(error, errors.ServingError) and issubclass(error, errors.LockgateError)
    assert error.status_code == status
    assert f"{name} " in errors.__doc__  # drawn in the tree
    with pytest.raises(errors.ServingError, match="what went wrong"):
        raise error("what went wrong", hint="what to do")


def test_the_security_module_re_exports_the_same_classes() -> None:
    for name in (
        "UnauthorizedError",
        "RequestTooLargeError",
        "RequestTimeoutError",
        "InferenceTimeoutError",
    ):
        assert getattr(security, name) is getattr(errors, name)
        assert getattr(errors, name).__module__ == "lockgate.errors"
    assert errors.UnauthorizedError.headers["WWW-Authenticate"].startswith("Bearer")
