"""Components: typed Python functions that take artifacts in and give artifacts out.

    @component
    def train(examples: Input[Examples], model: Output[Model], *, n_trees: Param[int] = 100):
        ...

Calling a component does not run it: it returns a :class:`Step`, a node of a pipeline,
with its inputs wired to other steps' outputs. The runner calls the function later with
artifact objects whose ``uri`` folders hold the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from lockgate.core.artifacts import Artifact
from lockgate.errors import ComponentError, GateClosedError, PipelineDefinitionError, did_you_mean

A = TypeVar("A", bound=Artifact)
T = TypeVar("T")


@dataclass(frozen=True)
class _Direction:
    """The metadata that ``Input[...]`` and ``Output[...]`` attach to an artifact type."""

    direction: str  # "input" | "output"


_INPUT = _Direction("input")
_OUTPUT = _Direction("output")

# ``Input[Examples]`` is ``Annotated[Examples, _INPUT]``: type checkers see an Examples (with
# ``.uri`` and ``.properties``), and the component decorator sees which way it flows.
Input = Annotated[A, _INPUT]
Output = Annotated[A, _OUTPUT]
Param = Annotated[T, "lockgate.param"]
"""Annotation for a parameter: ``n_trees: Param[int] = 100``. Plain annotations work too."""


@dataclass(frozen=True)
class _ChannelMarker:
    """An artifact input or output of a component, read from its annotation."""

    direction: str  # "input" | "output"
    artifact_type: type[Artifact]
    optional: bool = False


def _channel(hint: Any, component_name: str, parameter: str) -> _ChannelMarker | None:
    """The channel an annotation declares (``Input[X]``, ``Output[X]``, ``Input[X] | None``)."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1 or typing.get_origin(args[0]) is not Annotated:
            return None
        hint, optional = args[0], True
    if typing.get_origin(hint) is not Annotated:
        return None
    direction = next((m for m in hint.__metadata__ if isinstance(m, _Direction)), None)
    if direction is None:
        return None
    artifact_type = typing.get_args(hint)[0]
    if not (isinstance(artifact_type, type) and issubclass(artifact_type, Artifact)):
        raise ComponentError(
            f"component '{component_name}': parameter '{parameter}' is "
            f"{direction.direction.capitalize()}[{artifact_type!r}]; Input[...] and Output[...] "
            "take an artifact type such as Examples"
        )
    if optional and direction is _OUTPUT:
        raise ComponentError(
            f"component '{component_name}': output '{parameter}' cannot be optional"
        )
    return _ChannelMarker(direction.direction, artifact_type, optional)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class OutputRef:
    """A reference to one output of one step: what a downstream step's input is wired to."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"{self.step}.{self.output}"


@dataclass(frozen=True)
class Resolver:
    """An input resolved from the metadata store when the step is about to run.

    ``resolve(store, step_inputs)`` returns an artifact or None. Resolvers stand where TFX
    puts resolver nodes (latest blessed model and the like), without a node of their own.
    """

    artifact_type: type[Artifact]
    description: str
    resolve: Callable[..., Artifact | None] = field(compare=False)

    def __str__(self) -> str:
        return self.description


class OutputsView:
    """``step.outputs.model`` or ``step.outputs["model"]``, with a did-you-mean on typos."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def __getitem__(self, name: str) -> OutputRef:
        outputs = self._step.component.outputs
        if name not in outputs:
            raise PipelineDefinitionError(
                f"step '{self._step.name}' has no output '{name}'; outputs are "
                f"{sorted(outputs)}{did_you_mean(name, outputs)}",
                step=self._step.name,
            )
        return OutputRef(self._step.name, name)

    def __getattr__(self, name: str) -> OutputRef:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


@dataclass
class Step:
    """One invocation of a component in a pipeline: its inputs wired, its params bound."""

    component: Component
    name: str
    inputs: dict[str, OutputRef | Resolver | None]
    params: dict[str, Any]
    upstream: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> OutputsView:
        return OutputsView(self)

    def named(self, name: str) -> Step:
        """This step under another name, to use one component twice in a pipeline."""
        return dataclasses.replace(self, name=name)

    def after(self, *steps: Step | str) -> Step:
        """Run this step only after ``steps`` succeeded, e.g. only after a gate passed."""
        names = [s.name if isinstance(s, Step) else s for s in steps]
        return dataclasses.replace(self, upstream=[*self.upstream, *names])

    def dependencies(self) -> set[str]:
        refs = {ref.step for ref in self.inputs.values() if isinstance(ref, OutputRef)}
        return refs | set(self.upstream)


@dataclass
class Component:
    """A typed function made into a pipeline building block."""

    fn: Callable[..., Any]
    name: str
    inputs: dict[str, _ChannelMarker]
    outputs: dict[str, _ChannelMarker]
    params: dict[str, ParamSpec]
    code_fingerprint: str
    path_params: tuple[str, ...] = ()
    on_publish: Callable[..., None] | None = None
    external_inputs: Callable[[dict[str, Any]], dict[str, str] | None] | None = None
    libraries: tuple[str, ...] = ()
    prepare: Callable[[], None] | None = None
    #: what one run of the step needs where it runs (``{"num_cpus": 2, "num_gpus": 1}``, or a
    #: cluster's own resource such as ``{"worker_node": 1}``); the Ray runner asks Ray for it.
    resources: dict[str, float] = field(default_factory=dict)
    #: how many times a runner may run the step again when its worker dies under it (a
    #: killed process, a lost node); an exception raised by the step itself is never retried.
    retries: int = 0

    def __call__(self, **kwargs: Any) -> Step:
        """Bind inputs and params; returns the step (nothing runs yet)."""
        known = {*self.inputs, *self.params}
        for key in kwargs:
            if key in self.outputs:
                raise PipelineDefinitionError(
                    f"'{key}' is an output of component '{self.name}'; outputs are not passed in",
                    step=self.name,
                )
            if key not in known:
                raise PipelineDefinitionError(
                    f"component '{self.name}' has no input or parameter '{key}'; it takes "
                    f"{sorted(known)}{did_you_mean(key, known)}",
                    step=self.name,
                )
        inputs: dict[str, OutputRef | Resolver | None] = {}
        for name, marker in self.inputs.items():
            value = kwargs.get(name)
            if value is None and not marker.optional:
                raise PipelineDefinitionError(
                    f"component '{self.name}' needs input '{name}' "
                    f"({marker.artifact_type.TYPE_NAME}); pass {name}=<step>.outputs.<name>",
                    step=self.name,
                )
            inputs[name] = _as_input_ref(value, self.name, name)
        params: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in kwargs:
                params[name] = kwargs[name]
            elif spec.required:
                raise PipelineDefinitionError(
                    f"component '{self.name}' needs parameter '{name}'", step=self.name
                )
            else:
                params[name] = spec.default
        return Step(component=self, name=self.name, inputs=inputs, params=params)

    def __repr__(self) -> str:
        return f"<component {self.name}>"


def _as_input_ref(value: Any, component: str, name: str) -> OutputRef | Resolver | None:
    if value is None or isinstance(value, OutputRef | Resolver):
        return value
    if isinstance(value, str) and value.count(".") == 1:
        step, output = value.split(".")
        return OutputRef(step, output)
    raise PipelineDefinitionError(
        f"input '{name}' of component '{component}' must be another step's output "
        f"(step.outputs.name or 'step.output'); got {value!r}",
        step=component,
    )


def component(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    path_params: tuple[str, ...] = (),
    on_publish: Callable[..., None] | None = None,
    external_inputs: Callable[[dict[str, Any]], dict[str, str] | None] | None = None,
    libraries: tuple[str, ...] = (),
    prepare: Callable[[], None] | None = None,
    resources: dict[str, float] | None = None,
    retries: int = 0,
) -> Any:
    """Make a typed function a component. Inputs and outputs are found from annotations.

    ``path_params`` name parameters that point at files outside the artifact store (the
    data an ingest reads): their content fingerprint joins the cache key.
    ``on_publish(context, outputs, params, transaction)`` runs on the driver inside the
    transaction that registers the outputs, for steps with an effect on the store itself
    (push registers a model version): the effect and the step's completion are stored
    together or not at all. ``external_inputs(params)``, when
    given, replaces the ``path_params`` fingerprints: it returns {name: path} of the outside
    files the step will read (e.g. the span a ``{SPAN}`` pattern resolves to), or None when
    it reads something that cannot be fingerprinted (a database), and then the step is never
    served from the cache. ``libraries`` names distributions (``"catboost"``) whose
    version joins the cache key besides lockgate's, NumPy's, scikit-learn's and the others
    in ``lockgate.core.project_code.LIBRARIES``. ``prepare()`` is called on the driver,
    in the background of the run, once the run has done work that makes this step likely
    to run (a step before it ran rather than came from the cache): for slow set-up that
    needs no input (infra-validation starts its warm server parent). It must be quick,
    idempotent, and never fail the run. ``resources`` is what one run of the step needs
    (``{"num_cpus": 2, "num_gpus": 1}``, a cluster's custom resource); the local runner
    ignores it, the Ray runner schedules the step's task with it. ``retries`` is how often
    a lost worker (a killed process, a lost node) may be replaced by a new attempt; the
    step's own exceptions are never retried.
    """

    def wrap(f: Callable[..., Any]) -> Component:
        built = _build_component(f, name or f.__name__)
        unknown = [p for p in path_params if p not in built.params]
        if unknown:
            raise ComponentError(
                f"component '{built.name}': path_params {unknown} are not parameters"
            )
        built.path_params = path_params
        built.on_publish = on_publish
        built.external_inputs = external_inputs
        built.libraries = tuple(libraries)
        built.prepare = prepare
        built.resources = _checked_resources(built.name, resources or {})
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ComponentError(
                f"component '{built.name}': retries must be an integer >= 0; got {retries!r}"
            )
        built.retries = retries
        return built

    return wrap(fn) if fn is not None else wrap


def _checked_resources(name: str, resources: dict[str, Any]) -> dict[str, float]:
    """Resource amounts are non-negative numbers, named by strings."""
    for key, amount in resources.items():
        if (
            not isinstance(key, str)
            or isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or amount < 0
        ):
            raise ComponentError(
                f"component '{name}': resources must map names to amounts >= 0, such as "
                f'{{"num_cpus": 2, "num_gpus": 1}}; got {key!r}: {amount!r}'
            )
    return {key: float(amount) for key, amount in resources.items()}


def _build_component(fn: Callable[..., Any], name: str) -> Component:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolvable annotations are the author's error
        raise ComponentError(f"component '{name}': cannot read its annotations: {exc}") from exc
    inputs: dict[str, _ChannelMarker] = {}
    outputs: dict[str, _ChannelMarker] = {}
    params: dict[str, ParamSpec] = {}
    for pname, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ComponentError(f"component '{name}': *args and **kwargs are not supported")
        if pname not in hints:
            raise ComponentError(
                f"component '{name}': parameter '{pname}' has no type annotation; annotate it "
                "with Input[...], Output[...] or a parameter type such as int"
            )
        channel = _channel(hints[pname], name, pname)
        if channel is not None:
            (inputs if channel.direction == "input" else outputs)[pname] = channel
        else:
            params[pname] = ParamSpec(pname, hints[pname], parameter.default)
    return Component(
        fn=fn,
        name=name,
        inputs=inputs,
        outputs=outputs,
        params=params,
        code_fingerprint=code_fingerprint(fn),
    )


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """sha256 of the function's source (with the functions, classes and constants of its own
    module that it uses); lockgate's own components add the package version.

    The version covers helpers that a built-in component calls but whose source is not in
    the function body. The project modules a function reaches are fingerprinted apart
    (``ProjectCode``), by file, so that a cache miss can name the file that changed.
    """
    from lockgate.core.project_code import source_fingerprint

    fingerprint = source_fingerprint(fn)
    if fn.__module__.startswith("lockgate."):
        from lockgate import __version__

        fingerprint += f"\nlockgate=={__version__}"
    return hashlib.sha256(fingerprint.encode()).hexdigest()


def callables_in(value: Any) -> list[Callable[..., Any]]:
    """The functions in a parameter value (a custom trainer, a callback in a dict)."""
    if isinstance(value, dict):
        return [fn for item in value.values() for fn in callables_in(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [fn for item in value for fn in callables_in(item)]
    return [value] if callable(value) and not isinstance(value, type) else []


def canonical_params(params: dict[str, Any]) -> str:
    """Params as canonical JSON; callables stand for their source code's fingerprint, a
    dataclass (a ``Threshold``) for its type and fields."""

    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return {"dataclass": type(value).__qualname__, **fields}
        if callable(value):
            return f"callable:{value.__module__}.{value.__qualname__}:{code_fingerprint(value)}"
        if isinstance(value, set | frozenset):
            return sorted(value)
        if hasattr(value, "__fspath__"):
            return str(value)
        raise TypeError(f"parameter value {value!r} is not JSON-serialisable")

    return json.dumps(params, sort_keys=True, default=default)


def execute_component(
    comp: Component,
    inputs: dict[str, Artifact | None],
    outputs: dict[str, Artifact],
    params: dict[str, Any],
    *,
    project_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Call the function; returns each output's properties.

    ``core.step_task.run_step`` calls it wherever a runner sends the step (a thread, a Ray
    task), between making the inputs' working copies and publishing the outputs: it needs
    no metadata store, and what it returns is plain data. ``project_dir`` is made importable
    first, for a step body that imports a module of the project in another process. A gate
    that closes but keeps its findings (``GateClosedError(publish_outputs=True)``) carries
    the outputs' properties back on the error.
    """
    if project_dir is not None:
        from lockgate.core.project_code import make_importable

        make_importable(project_dir)
    try:
        comp.fn(**inputs, **outputs, **params)
    except GateClosedError as exc:
        if exc.publish_outputs:
            exc.output_properties = {name: a.properties for name, a in outputs.items()}
        raise
    return {name: artifact.properties for name, artifact in outputs.items()}
