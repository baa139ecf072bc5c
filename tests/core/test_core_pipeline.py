"""The DAG is checked when it is defined: every mistake names the step."""

from __future__ import annotations

import pytest

from lockgate import Examples, Input, Model, Output, Pipeline, Statistics, component
from lockgate.errors import ComponentError, PipelineDefinitionError


@component
def produce(examples: Output[Examples], *, n: int = 1) -> None:
    pass


@component
def summarise(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    pass


@component
def fit(statistics: Input[Statistics], model: Output[Model]) -> None:
    pass


@component
def loop(statistics: Input[Statistics], examples: Output[Examples]) -> None:
    pass


def test_a_valid_pipeline_is_ordered_topologically() -> None:
    a = produce()
    b = summarise(examples=a.outputs.examples)
    c = fit(statistics=b.outputs.statistics)
    pipeline = Pipeline("ok", [c, b, a])
    assert pipeline.order == ["produce", "summarise", "fit"]
    assert pipeline.downstream_of("produce") == {"summarise", "fit"}


def test_an_input_that_no_step_produces_names_the_step_and_suggests() -> None:
    with pytest.raises(
        PipelineDefinitionError,
        match=r"step 'summarise' input 'examples' refers to step 'prodcue'.*did you mean 'produce'",
    ) as info:
        Pipeline("p", [produce(), summarise(examples="prodcue.examples")])
    assert info.value.step == "summarise"


def test_a_missing_producer_step_is_caught() -> None:
    a = produce()
    with pytest.raises(
        PipelineDefinitionError, match="refers to step 'produce', which is not in pipeline"
    ):
        Pipeline("p", [summarise(examples=a.outputs.examples)])


def test_an_unknown_output_name_suggests_the_right_one() -> None:
    a = produce()
    with pytest.raises(
        PipelineDefinitionError, match="has no output 'exmples'.*did you mean 'examples'"
    ):
        _ = a.outputs.exmples
    with pytest.raises(
        PipelineDefinitionError, match="has no output 'exampels'.*did you mean 'examples'"
    ):
        Pipeline("p", [a, summarise(examples="produce.exampels")])


def test_a_type_mismatch_names_both_types_and_suggests_an_output_of_the_right_type() -> None:
    a = produce()
    b = summarise(examples=a.outputs.examples)
    with pytest.raises(
        PipelineDefinitionError,
        match=r"step 'fit' input 'statistics' expects Statistics but 'produce.examples' is Examples; did you mean 'summarise.statistics'",
    ):
        Pipeline("p", [a, b, fit(statistics="produce.examples")])


def test_a_cycle_is_an_error_naming_the_steps() -> None:
    first = summarise(examples="loop.examples")
    second = loop(statistics="summarise.statistics")
    with pytest.raises(
        PipelineDefinitionError, match=r"has a cycle: .*(summarise|loop).*(summarise|loop)"
    ):
        Pipeline("p", [first, second])


def test_duplicate_step_names_and_unknown_arguments() -> None:
    with pytest.raises(PipelineDefinitionError, match="two steps named 'produce'"):
        Pipeline("p", [produce(), produce(n=2)])
    Pipeline("p", [produce(), produce(n=2).named("produce_again")])
    with pytest.raises(
        PipelineDefinitionError, match="no input or parameter 'nn'.*did you mean 'n'"
    ):
        produce(nn=3)
    with pytest.raises(PipelineDefinitionError, match="needs input 'examples'"):
        summarise()
    with pytest.raises(PipelineDefinitionError, match="runs after 'nothere'"):
        Pipeline("p", [produce().after("nothere")])


def test_untyped_component_parameters_are_refused() -> None:
    def untyped(examples, *, n: int = 1) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(ComponentError, match="parameter 'examples' has no type annotation"):
        component(untyped)
