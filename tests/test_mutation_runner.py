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


def test_magnitude_functions_get_float64_inputs_the_reference_and_the_dtype_when_declared():
    seen = []

    def magnitude(inputs, ref):
        seen.append((inputs["x"].dtype, sorted(ref)))
        return np.abs(inputs["x"]) * 2

    def magnitude_dtype(inputs, ref, dtype):
        seen.append((inputs["x"].dtype, sorted(ref), dtype))
        return np.abs(ref["_aux"])  # an auxiliary entry of the NumPy reference

    case = _case(reference=lambda a: {"y": a["x"] * 2, "z": a["x"] * 2, "_aux": a["x"] * 2},
                 tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2, "z": ctx.tf_const(a["x"]) * 2},
                 torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2, "z": ctx.t(a["x"]) * 2},
                 quantities=(Q("y", "forward", n=1, magnitude=magnitude),
                             Q("z", "forward", n=1, magnitude=magnitude_dtype, magnitude_uses_dtype=True)))
    result = run_case(case, Context("float32"))
    assert not result.error and result.passed
    assert seen == [(np.dtype(np.float64), ["_aux", "y", "z"]), (np.dtype(np.float64), ["_aux", "y", "z"], "float32")]


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


def test_a_negative_control_whose_torch_side_is_wrong_too_fails():
    # the torch~reference row keeps its own verdict: a control cannot pass on a broken torch side
    result = run_case(_case(torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2.5}, tf_factor=2.5, expect="differ"),
                      Context("float32"))
    assert result.detected and not result.passed
    assert [r.pair for r in result.rows if not r.passed] == ["torch~reference"]


def test_an_override_widens_the_tolerance_and_is_the_rows_note():
    from equivalence.case import Override

    plain = run_case(_case(), Context("float32"))
    widened = run_case(_case(overrides=(Override("y", 3.0, "a documented widening for this test"),)), Context("float32"))
    for p, w in zip(plain.rows, widened.rows):
        assert w.comparison.tolerance == 3 * p.comparison.tolerance
        assert (p.note, w.note) == ("", "a documented widening for this test")
    caught = run_case(_case(tf_factor=2.5, expect="differ",
                            overrides=(Override("y", 2.0, "a documented widening for this test"),)), Context("float32"))
    assert {r.note for r in caught.rows} == {"a documented widening for this test"}


def test_ulps_are_counted_in_the_run_dtype():
    # TF one float32 step above torch: 1 ulp in a float32 run (2**29 in float64 ulps)
    up = lambda a, ctx: {"y": ctx.tf_const(np.nextafter(a["x"] * 2, np.float32(np.inf)))}  # noqa: E731
    rows = {r.pair: r for r in run_case(_case(tf=up), Context("float32")).rows}
    assert rows["torch~tf"].comparison.max_ulp == 1


def test_inputs_must_be_a_dict_of_numbers():
    from equivalence.runner import make_inputs

    with pytest.raises(TypeError, match="non-empty dict of arrays, got list"):
        make_inputs(_case(inputs=lambda rng: [np.ones(2)]), "float32")
    with pytest.raises(TypeError, match="input 's' has dtype <U1"):
        make_inputs(_case(inputs=lambda rng: {"s": np.array(["a"])}), "float32")
    rounded, wide = make_inputs(_case(inputs=lambda rng: {"x": np.array([0.1]), "i": np.arange(3),
                                                          "b": np.array([True])}), "float32")
    assert rounded["x"].dtype == np.float32 and wide["x"].dtype == np.float64 and wide["x"][0] == np.float32(0.1)
    assert rounded["i"] is wide["i"] and rounded["b"].dtype == bool  # integers and bools are left alone


@pytest.mark.parametrize(
    ("tf", "message"),
    [
        (lambda a, ctx: [ctx.tf_const(a["x"])], "TypeError: a builder must return a dict of quantities, got list"),
        (lambda a, ctx: {}, r"tf returned quantities that do not match the declaration: missing \['y'\], undeclared \[\]"),
        (lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2, "w": ctx.tf_const(a["x"])},
         r"missing \[\], undeclared \['w'\]"),
    ],
)
def test_a_builder_returning_the_wrong_quantities_is_an_error_naming_them(tf, message):
    import re

    result = run_case(_case(tf=tf), Context("float32"))
    assert not result.passed and re.search(message, result.error), result.error
