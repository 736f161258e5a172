"""The equivalence core: tolerance model, comparison, case validation."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from equivalence import tolerance as tm
from equivalence.case import Case, CaseError, Override, Q
from equivalence.compare import compare, ulp_distance


# -- tolerance model -----------------------------------------------------------

def test_unit_roundoffs_are_the_standard_values():
    assert tm.unit_roundoff("float64") == pytest.approx(1.11e-16, rel=1e-2)
    assert tm.unit_roundoff("float32") == pytest.approx(5.96e-8, rel=1e-2)
    assert tm.unit_roundoff("tf32") == pytest.approx(4.88e-4, rel=1e-2)
    assert tm.unit_roundoff("bfloat16") == pytest.approx(3.91e-3, rel=1e-2)
    # u is half the machine epsilon of the format
    for name in ("float64", "float32", "float16"):
        assert tm.unit_roundoff(name) == np.finfo(name).eps / 2
    with pytest.raises(ValueError, match="int8"):
        tm.unit_roundoff("int8")


def test_gamma_is_higham_gamma_and_refuses_meaningless_n():
    assert tm.gamma(0, 1e-8) == 0
    assert tm.gamma(10, 2.0**-24) == pytest.approx(10 * 2.0**-24 / (1 - 10 * 2.0**-24))
    with pytest.raises(ValueError, match="n\\*u"):
        tm.gamma(2**24, 2.0**-24)
    with pytest.raises(ValueError, match=">= 0"):
        tm.gamma(-1, 1e-8)


@given(
    hnp.arrays(np.float32, st.integers(1, 300), elements=st.floats(-1e3, 1e3, width=32)),
    st.randoms(use_true_random=False),
)
def test_dot_product_error_stays_inside_gamma_n_times_abs_dot(x, rnd):
    # the model's founding claim, checked on float32 dot products against exact sums
    y = np.array([rnd.uniform(-1e3, 1e3) for _ in x], dtype=np.float32)
    exact = math.fsum(float(a) * float(b) for a, b in zip(x, y))  # a*b of two floats is exact in float64
    computed = float(np.dot(x, y))
    m = float(np.abs(x).astype(np.float64) @ np.abs(y).astype(np.float64))
    assert abs(computed - exact) <= tm.bound(len(x), "float32", np.float64(m))


def test_magnitude_is_normwise_by_default_and_elementwise_when_given():
    ref = np.array([1.0, -4.0, np.nan])
    assert tm.magnitude(ref).tolist() == [4.0, 4.0, 4.0]
    assert tm.magnitude(ref, np.array([2.0, -3.0, 1.0])).tolist() == [2.0, 3.0, 1.0]


def test_pair_tolerance_refuses_narrowing_factors():
    with pytest.raises(ValueError, match=">= 1"):
        tm.pair_tolerance(3, "float32", "float64", np.ones(2), factor=0.5)


# -- comparison ----------------------------------------------------------------

@given(hnp.arrays(np.float32, st.integers(1, 20), elements=st.floats(-2.0**100, 2.0**100, width=32)))
def test_ulp_distance_counts_representable_steps(x):
    up = np.nextafter(x, np.float32(np.inf))
    assert (ulp_distance(x, up, "float32") == 1).all()
    assert (ulp_distance(up, x, "float32") == 1).all()
    assert (ulp_distance(x, x, "float32") == 0).all()


def test_ulp_distance_across_zero():
    tiny = np.nextafter(np.float32(0), np.float32(1))
    assert ulp_distance(np.float32(-0.0), np.float32(0.0), "float32") == 0
    assert ulp_distance(-tiny, tiny, "float32") == 2


def test_compare_sees_negative_deviations():
    # a signed max(a - b) would call this a match (pitfalls.md, "Comparing numbers")
    c = compare(np.array([1.0, 0.0]), np.array([1.0, 1.0]), 1e-3)
    assert not c.passed and c.max_abs_err == 1.0


def test_compare_reports_headroom_and_the_binding_tolerance():
    c = compare(np.array([1.0, 2.0 + 1e-6]), np.array([1.0, 2.0]), np.array([1e-9, 4e-6]))
    assert c.passed
    assert c.tolerance == 4e-6
    assert c.headroom == pytest.approx(4.0, rel=1e-6)


def test_compare_shape_mismatch_is_a_failure_not_a_broadcast():
    c = compare(np.ones((3, 1)), np.ones((3,)), 1.0)
    assert not c.passed and "shape" in c.problem


def test_compare_nan_positions_must_match():
    a = np.array([np.nan, 1.0])
    assert compare(a, np.array([np.nan, 1.0]), 0.0).passed
    assert not compare(a, np.array([1.0, np.nan]), 0.0).passed
    assert not compare(a, np.array([np.nan, 1.0]), 0.0, equal_nan=False).passed
    assert not compare(np.array([np.inf]), np.array([-np.inf]), 1.0).passed


# -- case declarations are checked when made -----------------------------------

def _case(**kw):
    base = dict(name="t.case", source="test", inputs=lambda rng: {"x": np.ones(2)},
                torch=lambda a, c: {"y": a["x"]}, tf=lambda a, c: {"y": a["x"]}, quantities=(Q("y", "forward", n=1),))
    base.update(kw)
    return Case(**base)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(name="NoDots"), "dotted"),
        (dict(source=""), "source"),
        (dict(quantities=()), "no quantities"),
        (dict(quantities=(Q("y", "forward", n=1), Q("y", "grad", n=1))), "repeated"),
        (dict(reference="jax"), "reference"),
        (dict(dtypes=("float16",)), "dtypes"),
        (dict(expect="maybe"), "expect"),
        (dict(overrides=(Override("z*", 2.0, "because reasons are long enough"),)), "matches no quantity"),
        (dict(torch=None), "callable"),
    ],
)
def test_bad_declarations_are_refused(kw, message):
    with pytest.raises(CaseError, match=message):
        _case(**kw)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Q("y", "speed", n=1), "kind"),
        (lambda: Q("y", "forward", n=-1), "n must be"),
        (lambda: Q("y", "forward", n=1.5), "n must be"),
        (lambda: Override("y", 0.5, "a reason long enough"), "only widen"),
        (lambda: Override("y", 2.0, "short"), "reason"),
    ],
)
def test_bad_quantities_and_overrides_are_refused(make, message):
    with pytest.raises(CaseError, match=message):
        make()


def test_override_factor_takes_the_largest_and_keeps_reasons():
    c = _case(overrides=(Override("y", 2.0, "first reason, long enough"), Override("*", 3.0, "second reason, long enough")))
    factor, reason = c.factor("y", "float32")
    assert factor == 3.0 and "first" in reason and "second" in reason


def test_tf32_bound_charges_input_rounding_per_reduction():
    m = np.ones(1)
    strict = tm.bound(100, "float32", m)
    assert tm.bound(100, "tf32", m, reductions=1) == pytest.approx(strict + tm.gamma(2, 2.0**-11))
    assert tm.bound(100, "tf32", m, reductions=3) > tm.bound(100, "tf32", m, reductions=1)


def test_flush_to_zero_of_a_subnormal_is_within_the_underflow_term():
    # TensorFlow's CPU kernels flush subnormal results to zero; torch keeps them
    sub = np.float64(2.2e-313)
    tol = tm.pair_tolerance(1, "float64", "float64", tm.magnitude(np.array([sub])))
    assert compare(np.array([0.0]), np.array([sub]), tol).passed
    assert not compare(np.array([1e-300]), np.array([sub]), tol).passed
