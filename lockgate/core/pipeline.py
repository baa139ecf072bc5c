"""A pipeline: a DAG of steps, checked when it is defined so that mistakes show before a run."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

from lockgate.core.component import OutputRef, Resolver, Step
from lockgate.errors import PipelineDefinitionError, did_you_mean


class Pipeline:
    """Steps wired into a graph. Raises :class:`PipelineDefinitionError` naming the step for:
    a duplicate step name, an input that no step produces, an output a step does not have,
    an input whose artifact type differs from the output wired to it, and a cycle.
    """

    def __init__(self, name: str, steps: Iterable[Step], *, description: str = "") -> None:
        self.name = name
        self.description = description
        self.steps: dict[str, Step] = {}
        for step in steps:
            if step.name in self.steps:
                raise PipelineDefinitionError(
                    f"pipeline '{name}' has two steps named '{step.name}'",
                    step=step.name,
                    hint=f"give one of them another name: {step.component.name}(...).named('...')",
                )
            self.steps[step.name] = step
        for step in self.steps.values():
            self._check_inputs(step)
        self.order: list[str] = self._topological_order()

    def _check_inputs(self, step: Step) -> None:
        for input_name, ref in step.inputs.items():
            expected = step.component.inputs[input_name].artifact_type
            if isinstance(ref, Resolver):
                if not issubclass(ref.artifact_type, expected):
                    raise PipelineDefinitionError(
                        f"step '{step.name}' input '{input_name}' expects "
                        f"{expected.TYPE_NAME} but {ref} gives {ref.artifact_type.TYPE_NAME}",
                        step=step.name,
                    )
                continue
            if ref is None:
                continue
            producer = self.steps.get(ref.step)
            if producer is None:
                raise PipelineDefinitionError(
                    f"step '{step.name}' input '{input_name}' refers to step '{ref.step}', "
                    f"which is not in pipeline '{self.name}'; steps are {sorted(self.steps)}"
                    f"{did_you_mean(ref.step, self.steps)}",
                    step=step.name,
                )
            outputs = producer.component.outputs
            if ref.output not in outputs:
                raise PipelineDefinitionError(
                    f"step '{step.name}' input '{input_name}' refers to '{ref}', but step "
                    f"'{producer.name}' has no output '{ref.output}'; its outputs are "
                    f"{sorted(outputs)}{did_you_mean(ref.output, outputs)}",
                    step=step.name,
                )
            produced = outputs[ref.output].artifact_type
            if not issubclass(produced, expected):
                raise PipelineDefinitionError(
                    f"step '{step.name}' input '{input_name}' expects {expected.TYPE_NAME} but "
                    f"'{ref}' is {produced.TYPE_NAME}{self._suggest_output(expected)}",
                    step=step.name,
                )
        for name in step.upstream:
            if name not in self.steps:
                raise PipelineDefinitionError(
                    f"step '{step.name}' runs after '{name}', which is not in pipeline "
                    f"'{self.name}'{did_you_mean(name, self.steps)}",
                    step=step.name,
                )

    def _suggest_output(self, expected: type) -> str:
        candidates = [
            str(OutputRef(s.name, out))
            for s in self.steps.values()
            for out, marker in s.component.outputs.items()
            if issubclass(marker.artifact_type, expected)
        ]
        return f"; did you mean '{candidates[0]}'?" if candidates else ""

    def _topological_order(self) -> list[str]:
        sorter = graphlib.TopologicalSorter(
            {name: step.dependencies() for name, step in self.steps.items()}
        )
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' has a cycle: {' -> '.join(cycle)}; "
                f"a step cannot depend on its own output",
                step=cycle[0],
            ) from None

    def downstream_of(self, name: str) -> set[str]:
        """Steps that (transitively) consume ``name``'s outputs."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for step in self.steps.values():
                if current in step.dependencies() and step.name not in found:
                    found.add(step.name)
                    frontier.append(step.name)
        return found

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}: {' -> '.join(self.order)}>"
