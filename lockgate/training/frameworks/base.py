"""The ``Framework`` protocol: what lockgate needs from a model library to save, check,
load, describe and run its models. Everything around it (the sha256, the pickle refusal,
``model.json``, the width check, class alignment) stays in ``model_files`` so that every
framework gets it unchanged.

A framework's ``load`` only ever sees bytes whose sha256 was checked and whose header
``is_own_format`` accepted; it must not resolve other files.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Framework(Protocol):
    """One model library. ``name`` is what ``model.json`` records; ``suffixes`` are the
    file suffixes ``models import`` recognises as this framework's."""

    name: str
    description: str
    suffixes: tuple[str, ...]
    #: whether its files name types that a person may trust beyond the allowlist (skops)
    takes_trust: bool
    #: whether ``predict`` answers class labels itself (else they come from the probabilities)
    predicts_labels: bool

    def claims(self, estimator: Any) -> str | None:
        """The task ("classification" / "regression") of a fitted estimator this framework
        saves, or None when it is not one of its own."""

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        """Write the estimator into ``folder`` in a format that loads without running code;
        return (file name, the trusted types it needed)."""

    def file_name(self, source: Path) -> str:
        """The name an imported ``source`` file gets inside ``model/``."""

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        """Refuse an imported file's bytes before they are copied (naming the user's file)."""

    def is_own_format(self, data: bytes) -> bool:
        """Whether the bytes start as this framework's format does."""

    format_name: str

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        """The model read from checked ``data`` (``path`` is for messages)."""

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Values for regression; labels when ``predicts_labels``."""

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        """n x n_classes float64 probabilities, or None when the model has none."""

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        """(task, n_features, classes) read from a loaded model itself."""


#: Called by a framework's ``fit`` after each boosting round or epoch with the round
#: (0-based) and the loss on the eval split (lower is better: the framework's default eval
#: metric). It may raise to stop the fit (the tuner prunes a trial that way).
Report = Callable[[int, float], None]


@runtime_checkable
class Trains(Protocol):
    """A framework that also builds the estimators ``train`` fits (optional: a framework
    that only loads files, ONNX say, leaves it out). ``trainers`` maps each short name it
    answers to (``trainer="lightgbm"``) to the tasks it does; ``estimator`` builds one,
    unfitted, for a short name or the text after ``"<framework>:"``; ``library`` is the
    distribution whose version is recorded with the models it trains; ``devices`` the
    devices it can fit on (``("cpu",)`` or ``("cpu", "cuda")``)."""

    trainers: dict[str, tuple[str, ...]]
    library: str
    devices: tuple[str, ...]

    def estimator(
        self, spec: str, task: str, params: dict[str, Any], seed: int, *, device: str = "cpu"
    ) -> Any:
        """A seeded, deterministic, unfitted estimator for ``device`` (one of ``devices``);
        a bad spec or parameter is a ConfigError naming it."""

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None = None,
        base_model: Any = None,
        report: Report | None = None,
    ) -> Any:
        """Fit ``estimator`` and return the fitted model that ``save`` writes.

        ``eval_set`` is given when ``early_stopping_rounds`` was asked for or ``report``
        is set (a framework stops early only on ``early_stopping_rounds``, and one that
        cannot stop early refuses it); ``sample_weight`` is one weight per row, or None;
        ``base_model`` is a model this framework's ``load`` returned, to continue from
        (warm start), or None; ``report`` is called per round/epoch with the eval loss."""
