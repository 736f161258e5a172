"""The runner (runner.py): behaviours that surviving mutants showed no test pinned down
(docs/reliability.md). Small synthetic cases, run with run_case on the CPU."""

import numpy as np
import pytest

from equivalence.case import Case, Q
from equivalence.frameworks import Context
from equivalence.runner import run_case


def _case(name="t.runner", tf_factor=2.0, **kw):
    base = dict(name=name, source="tests/test_mutation_runner.py", inputs=lambda rng: {"x": rng.standard_normal(4)},
                torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2},
                tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * tf_factor},
                reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1),))
    base.update(kw)
    return Case(**base)


@pytest.mark.parametrize(
    ("reference", "dtype", "pairs"),
    [
        # a NumPy reference is independent of both frameworks: every pair, in every dtype
        ("numpy", "float32", {"torch~tf", "torch~reference", "tf~reference"}),
        ("numpy", "float64", {"torch~tf", "torch~reference", "tf~reference"}),
        # a framework reference in float64 on the CPU is that framework's own output: its pair is left out
        ("torch", "float32", {"torch~tf", "torch~reference", "tf~reference"}),
        ("torch", "float64", {"torch~tf", "tf~reference"}),
        ("tf", "float64", {"torch~tf", "torch~reference"}),
    ],
)
def test_the_pairs_a_run_compares(reference, dtype, pairs):
    case = _case(reference=(lambda a: {"y": a["x"] * 2}) if reference == "numpy" else reference)
    ctx = Context(dtype)
    result = run_case(case, ctx)
    assert result.ctx is ctx and not result.error and result.passed
    assert {r.pair for r in result.rows} == pairs
    assert {(r.case, r.quantity, r.kind, r.dtype, r.expect) for r in result.rows} == {("t.runner", "y", "forward", dtype,
                                                                                       "equal")}


def test_a_builder_that_raises_is_a_failed_result_naming_the_exception():
    def broken(a, ctx):
        raise ArithmeticError("the port is broken")

    result = run_case(_case(tf=broken), Context("float32"))
    assert not result.passed and result.rows == []
    assert result.error.startswith("ArithmeticError: the port is broken")


def test_magnitude_functions_get_the_inputs_in_float64():
    seen = []

    def magnitude(inputs, ref):
        seen.append(inputs["x"].dtype)
        return np.abs(inputs["x"]) * 2

    result = run_case(_case(quantities=(Q("y", "forward", n=1, magnitude=magnitude),)), Context("float32"))
    assert not result.error and result.passed
    assert set(seen) == {np.dtype(np.float64)}


def test_a_negative_control_passes_when_caught_and_fails_when_not():
    # expect="differ": the case passes when a comparison of its TF side exceeds the tolerance
    caught = run_case(_case(tf_factor=2.5, expect="differ"), Context("float32"))
    assert caught.detected and caught.passed
    rows = {r.pair: r for r in caught.rows}
    assert rows["torch~reference"].passed and rows["torch~reference"].comparison.passed
    assert rows["torch~tf"].passed and not rows["torch~tf"].comparison.passed  # the row meets the expectation
    assert all(r.expect == "differ" and r.case == "t.runner" and r.dtype == "float32" for r in caught.rows)
    assert {r.pair: r.comparison for r in caught.rows} == {r.pair: r.comparison
                                                          for r in run_case(_case(tf_factor=2.5), Context("float32")).rows}
    missed = run_case(_case(expect="differ"), Context("float32"))  # a "wrong" port that is right
    assert not missed.detected and not missed.passed
    assert {r.pair for r in missed.rows if not r.passed} == {"torch~tf", "tf~reference"}


def test_a_row_keeps_the_override_reason_as_its_note():
    from equivalence.case import Override

    case = _case(tf_factor=2.5, expect="differ",
                 overrides=(Override("y", 2.0, "a documented widening for this test"),))
    result = run_case(case, Context("float32"))
    assert {r.note for r in result.rows} == {"a documented widening for this test"}
