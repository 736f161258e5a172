"""The equivalence core (tolerance.py, compare.py, case.py): behaviours that surviving mutants
showed no test pinned down (docs/reliability.md). Each test states the behaviour, not the mutant."""

import math
import warnings

import numpy as np
import pytest

from equivalence import tolerance as tm
from equivalence.case import Case, CaseError, Override, Q
from equivalence.compare import compare, ulp_distance


def _case(**kw):
    base = dict(name="t.case", source="test", inputs=lambda rng: {"x": np.ones(2)},
                torch=lambda a, c: {"y": a["x"]}, tf=lambda a, c: {"y": a["x"]}, quantities=(Q("y", "forward", n=1),))
    base.update(kw)
    return Case(**base)


def _gamma(n, u):  # written out here, not taken from the module under test
    return n * u / (1 - n * u)


TINY32, TINY64 = float(np.finfo(np.float32).tiny), float(np.finfo(np.float64).tiny)


def test_pair_tolerance_is_the_sum_of_both_sides_bounds_by_default():
    # docs/tolerances.md: one side against the other is (gamma_n(u_a) + gamma_n(u_b)) * m, plus n * tiny per side
    m = np.array([2.0, 0.5])
    expected = (_gamma(10, 2.0**-24) + _gamma(10, 2.0**-53)) * m + 10 * (TINY32 + TINY64)
    np.testing.assert_allclose(tm.pair_tolerance(10, "float32", "float64", m), expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(tm.pair_tolerance(10, "float32", "float64", m, factor=3.0), 3 * expected, rtol=1e-15)
    # TF32: one reduction unless told otherwise, each charging gamma_2(u_tf32) for its rounded inputs
    tf32 = (_gamma(10, 2.0**-24) + _gamma(2, 2.0**-11)) * m + 10 * TINY32
    np.testing.assert_allclose(tm.pair_tolerance(10, "tf32", "tf32", m), 2 * tf32, rtol=1e-15)
    # reductions reach both sides: three TF32 reductions charge gamma_6(u_tf32) on whichever side runs TF32
    tf32_3 = (_gamma(10, 2.0**-24) + _gamma(6, 2.0**-11)) * m + 10 * TINY32
    f32 = _gamma(10, 2.0**-24) * m + 10 * TINY32
    np.testing.assert_allclose(tm.pair_tolerance(10, "tf32", "float32", m, reductions=3), tf32_3 + f32, rtol=1e-15)
    np.testing.assert_allclose(tm.pair_tolerance(10, "float32", "tf32", m, reductions=3), f32 + tf32_3, rtol=1e-15)


def test_magnitude_takes_the_reference_shape_and_float64():
    ref = np.zeros((2, 3))
    # an elementwise magnitude that broadcasts (a scalar, one row) is spread over the reference's shape
    assert tm.magnitude(ref, np.float64(-2.0)).tolist() == [[2.0] * 3] * 2
    assert tm.magnitude(ref, np.array([1.0, -2.0, 3.0])).tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(ValueError):  # one that does not broadcast is refused, not truncated
        tm.magnitude(ref, np.ones(4))
    # a float32 magnitude function must not round the tolerance to float32: at 1e-30 a float64
    # bound (about 1e-46) is below float32's smallest subnormal and would flush to zero
    m = tm.magnitude(np.float32([1e-30]), np.float32([1e-30]))
    assert m.dtype == np.float64
    assert tm.bound(1, "float64", m)[0] == pytest.approx(_gamma(1, 2.0**-53) * float(np.float32(1e-30)) + TINY64)


def test_magnitude_of_a_reference_without_finite_values_is_zero():
    # nothing to scale by: the tolerance is the underflow term alone, and NaN/inf must match exactly
    assert tm.magnitude(np.array([np.nan, np.inf, -np.inf])).tolist() == [0.0, 0.0, 0.0]
    assert tm.magnitude(np.array([np.inf, -3.0])).tolist() == [3.0, 3.0]


def test_a_comparison_that_fails_before_the_values_reports_an_infinite_margin():
    nan1, nan2 = np.array([np.nan, 1.0]), np.array([1.0, np.nan])
    failures = [
        (compare(np.ones((3, 1)), np.ones(3), 1.0), "shape", (3, 1), math.inf),
        (compare(nan1, nan2, 1.0), "NaN at different positions", (2,), math.nan),
        (compare(nan1, nan1, 1.0, equal_nan=False), "NaN present", (2,), math.nan),
        (compare(np.array([np.inf]), np.array([1.0]), 1.0), "infinities differ", (1,), math.inf),
    ]
    for c, problem, shape, err in failures:
        assert c.passed is False and problem in c.problem
        assert c.ratio == math.inf and c.headroom == 0.0 and c.tolerance == 0.0
        assert c.shape == shape  # the actual side's shape, as for every comparison
        # the text table formats every number with :.3g; no error is reported as a finite pass margin
        for v in (c.max_abs_err, c.max_rel_err, c.max_ulp):
            assert isinstance(v, float) and (math.isnan(v) if math.isnan(err) else v == err)
        assert all(isinstance(v, float) for v in (c.tolerance, c.ratio))


def test_comparison_as_dict_is_json_ready():
    c = compare(np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]]), 1.0)
    d = c.as_dict()
    assert d["shape"] == [1, 2] and isinstance(d["shape"], list)
    assert d["headroom"] == pytest.approx(2.0) and d["ratio"] == pytest.approx(0.5)
    assert d["max_abs_err"] == 0.5 and d["passed"] is True and d["problem"] == ""
    assert set(d) == {"max_abs_err", "max_rel_err", "max_ulp", "tolerance", "ratio", "passed", "shape", "problem",
                      "headroom"}
    assert compare(np.ones(2), np.ones(2), 0.0).as_dict()["headroom"] == math.inf  # bit-identical


def test_override_boundaries():
    assert Override("y", 1, "a factor of one widens nothing").factor == 1  # >= 1, not > 1
    assert Override("y", 1.5, "a factor between one and two").factor == 1.5
    assert Override("y", 2.0, "ten chars.").reason == "ten chars."  # ten characters is a sentence
    with pytest.raises(CaseError, match="reason"):
        Override("y", 2.0, "nine char")
    assert Override("y", 2.0, "float32 only, for a reason", dtype="float32").dtype == "float32"
    with pytest.raises(CaseError, match="dtype must be one of"):
        Override("y", 2.0, "float16 is not a run dtype", dtype="float16")


def test_override_factor_applies_only_to_its_quantities_and_dtype():
    c = _case(quantities=(Q("y", "forward", n=1), Q("z", "grad", n=1)),
              overrides=(Override("y", 2.0, "first reason, long enough", dtype="float32"),
                         Override("z", 5.0, "second reason, long enough")))
    assert c.factor("y", "float32") == (2.0, "first reason, long enough")
    assert c.factor("y", "float64") == (1.0, "")  # the dtype does not match: no widening, no reason
    assert c.factor("z", "float64") == (5.0, "second reason, long enough")
    assert _case().factor("y", "float32") == (1.0, "")
    both = _case(overrides=(Override("y", 2.0, "first reason, long enough"), Override("*", 3.0, "second reason, long")))
    assert both.factor("y", "float64") == (3.0, "first reason, long enough; second reason, long")


def test_case_quantity_lookup():
    c = _case(quantities=(Q("y", "forward", n=1), Q("z", "grad", n=2)))
    assert c.quantity("z").n == 2 and c.quantity("y").kind == "forward"
    with pytest.raises(KeyError, match="nope"):
        c.quantity("nope")


@pytest.fixture
def registry(monkeypatch):
    """An empty registry of our own (importing the real one runs torch: tens of seconds)."""
    import equivalence
    from equivalence import case as case_module

    monkeypatch.setattr(equivalence, "cases", object(), raising=False)  # all_cases() imports nothing
    saved = dict(case_module.REGISTRY)
    case_module.REGISTRY.clear()
    yield case_module
    case_module.REGISTRY.clear()
    case_module.REGISTRY.update(saved)


def test_register_and_select(registry):
    for name in ("t.b", "t.a", "t.ab", "u.a"):
        assert registry.register(_case(name=name)).name == name
    assert [c.name for c in registry.all_cases()] == ["t.a", "t.ab", "t.b", "u.a"]  # sorted by name
    assert [c.name for c in registry.select(None)] == ["t.a", "t.ab", "t.b", "u.a"]
    assert [c.name for c in registry.select("")] == ["t.a", "t.ab", "t.b", "u.a"]
    # comma-separated globs, spaces and empty items ignored, each case once
    assert [c.name for c in registry.select(" t.a* , u.?,t.ab,")] == ["t.a", "t.ab", "u.a"]
    assert [c.name for c in registry.select("t.b")] == ["t.b"]
    with pytest.raises(KeyError, match="no case matches 'T.b'"):
        registry.select("T.b")  # case-sensitive, like the names
    with pytest.raises(CaseError, match="'t.a' is registered twice"):
        registry.register(_case(name="t.a"))
    with pytest.raises(CaseError, match="takes a Case, not dict"):
        registry.register({"name": "t.c"})
    assert len(registry.REGISTRY) == 4


def test_compare_with_no_finite_element_passes_when_they_agree():
    both = np.array([np.nan, np.inf, -np.inf])
    c = compare(both, both.copy(), 0.0)
    assert c.passed and c.problem == "" and c.shape == (3,)
    assert (c.max_abs_err, c.max_rel_err, c.max_ulp, c.tolerance, c.ratio) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert c.headroom == math.inf


def test_compare_zero_expected_and_zero_tolerance_without_warnings():
    # relative error against an expected 0 and ratio against a tolerance of 0 are infinite, not warnings;
    # an exact 0 == 0 has no error at all (not 0/0 = NaN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = compare(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.0)
        off = compare(np.array([0.0, 1e-3, 2.0]), np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, 0.0]))
    assert same.passed and (same.max_abs_err, same.max_rel_err, same.ratio) == (0.0, 0.0, 0.0)
    assert not off.passed and off.max_rel_err == math.inf and off.ratio == math.inf and off.max_abs_err == 1e-3


def test_compare_against_a_subnormal_expected_value_is_infinite_without_warnings():
    # err / |e| overflows for a subnormal e (the fuzzer's example): an infinite relative error, and
    # an infinite ratio against a subnormal tolerance, both defined, neither a RuntimeWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare(np.array([1e300]), np.array([5e-324]), np.array([5e-324]))
    assert not c.passed and c.max_rel_err == math.inf and c.ratio == math.inf and c.max_abs_err == 1e300


def test_compare_fields_of_an_ordinary_comparison():
    a = np.array([[1.5, -2.0, 4.0]])
    e = np.array([[1.0, -2.0, 3.0]])
    c = compare(a, e, np.array([[1.0, 1.0, 4.0]]))
    assert c.shape == (1, 3)
    assert c.max_abs_err == 1.0 and c.max_rel_err == 0.5  # |1.5 - 1| / 1 beats |4 - 3| / 3
    assert c.ratio == 0.5 and c.tolerance == 1.0  # the element closest to its bound is the first
    # ulps are counted in the run's dtype: adjacent float32 values are 1 apart, not 2**29 float64 steps
    x = np.float32([1.0, 3.0])
    up = np.nextafter(x, np.float32(np.inf))
    assert compare(up, x, 1.0, ulp_dtype="float32").max_ulp == 1
    assert compare(up, x, 1.0).max_ulp == 2**29  # the default: float64 ulps
    assert compare(np.array([1.0, 2.0]), np.array([1.0, np.nextafter(2.0, 0.0)]), 1.0).max_ulp == 1


def test_compare_error_equal_to_the_tolerance_passes():
    assert compare(np.array([1.5]), np.array([1.0]), 0.5).passed  # err == tol: within (<=)
    assert not compare(np.array([1.5]), np.array([1.0]), 0.4).passed  # ratio 1.25


def test_case_accepts_every_declared_form():
    c = _case(reference=lambda a: {"y": a["x"]}, expect="differ", dtypes=["float32"],
              quantities=[Q("y", "forward", n=1)], overrides=[Override("y", 2.0, "a long enough reason")])
    assert callable(c.reference) and c.expect == "differ"
    # lists become tuples: a declared case cannot be changed afterwards
    assert c.dtypes == ("float32",) and c.quantities == (Q("y", "forward", n=1),)
    assert isinstance(c.overrides, tuple) and len(c.overrides) == 1
    assert _case(reference="tf").reference == "tf"


def test_quantity_boundaries():
    assert Q("y", "forward", n=0).n == 0  # n=0 demands bit equality: allowed
    assert Q("y", "forward", n=1, reductions=0).reductions == 0  # no matmul in the chain
    mag = lambda inputs, ref: np.ones(1)  # noqa: E731
    assert Q("y", "forward", n=1, magnitude=mag).magnitude is mag
    for kw, message in [(dict(name=""), "non-empty name"), (dict(name=3), "non-empty name"),
                        (dict(reductions=-1), "reductions must be an int >= 0"),
                        (dict(reductions=1.0), "reductions must be an int >= 0"),
                        (dict(magnitude=2.0), "magnitude must be callable")]:
        with pytest.raises(CaseError, match=message):
            Q(**{"name": "y", "kind": "forward", "n": 1, **kw})
    with pytest.raises(CaseError, match="seed must be an int"):
        _case(seed=1.5)


def test_ulp_distance_in_every_supported_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        x = np.array([1.0, -3.0, 1e4], dtype=dtype)
        up = np.nextafter(x, dtype(np.inf))
        assert (ulp_distance(x, up, dtype) == 1).all(), dtype  # exact, also for float64's 64-bit patterns
        assert ulp_distance(x, up, dtype).dtype == np.float64
    big = np.float64(2.0**60)
    assert ulp_distance(big, np.nextafter(np.nextafter(big, np.inf), np.inf), "float64") == 2
    # both sides are rounded to the dtype first: float64 values that round to one float32 are 0 apart
    assert ulp_distance(np.float64(1.0), np.float64(1.0 + 1e-9), "float32") == 0
    assert ulp_distance(np.float64(1.0), np.float64(1.0 + 2.0**-23), "float32") == 1
    with pytest.raises(ValueError, match="not int32"):
        ulp_distance(np.ones(1), np.ones(1), "int32")


def test_gamma_where_n_u_is_large():
    # n u / (1 - n u) departs from n u only where n u is not small: the ci tests at n u ~ 1e-6 cannot tell
    assert tm.gamma(1, 0.5) == 1.0
    assert tm.gamma(3, 0.25) == 3.0
    assert tm.gamma(1, 0.2) == pytest.approx(0.25, rel=1e-15)


def test_bound_charges_one_tf32_reduction_by_default():
    m = np.array([1.0, 4.0])
    expected = (_gamma(7, 2.0**-24) + _gamma(2, 2.0**-11)) * m + 7 * TINY32
    np.testing.assert_allclose(tm.bound(7, "tf32", m), expected, rtol=1e-15)
    np.testing.assert_allclose(tm.bound(7, "float32", m), _gamma(7, 2.0**-24) * m + 7 * TINY32, rtol=1e-15)


def test_a_nan_on_one_side_only_fails():
    # the NaN check must look at each side: a NaN where the other side has a number is a mismatch,
    # not a position to leave out of the comparison
    for a, e in [([np.nan, 1.0], [1.0, 1.0]), ([1.0, 1.0], [np.nan, 1.0])]:
        for equal_nan in (True, False):
            c = compare(np.array(a), np.array(e), 1.0, equal_nan=equal_nan)
            assert c.passed is False and "NaN" in c.problem, (a, e, equal_nan)
