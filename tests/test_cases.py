"""The registry, run by pytest: one generic test per property, parametrized over the cases.

Each (case, dtype) runs once (cached); the tests then look at the rows of one
kind. No test body knows about a particular case: exceptions are data on the case.
"""

import functools

import pytest

from equivalence.case import KINDS, REGISTRY, all_cases
from equivalence.frameworks import Context
from equivalence.runner import run_case

CASES = all_cases()


@functools.cache
def result(name: str, dtype: str):
    return run_case(REGISTRY[name], Context(dtype=dtype))


def cases_with(kind: str):
    return [pytest.param(c.name, d, id=f"{c.name}-{d}") for c in CASES for d in c.dtypes if kind in c.kinds]


def describe(rows) -> str:
    return "\n".join(
        f"  {r.case} [{r.dtype}, {r.device}] {r.quantity} {r.pair}: max abs err {r.comparison.max_abs_err:.3g}, "
        f"max rel err {r.comparison.max_rel_err:.3g}, {r.comparison.max_ulp:.0f} ulp, tolerance "
        f"{r.comparison.tolerance:.3g} {r.comparison.problem}"
        for r in rows
    )


def check(name: str, dtype: str, kind: str) -> None:
    res = result(name, dtype)
    assert not res.error, f"{name} [{dtype}] raised:\n{res.error}"
    rows = [r for r in res.rows if r.kind == kind]
    assert rows, f"{name} declares {kind} quantities but produced no {kind} rows"
    bad = [r for r in rows if not r.passed]
    what = "negative control not detected" if res.case.expect == "differ" else "outside the tolerance model"
    assert not bad, f"{name} [{dtype}] {kind}: {what}\n{describe(bad)}"


@pytest.mark.parametrize(("name", "dtype"), cases_with("forward"))
def test_forward(name, dtype):
    check(name, dtype, "forward")


@pytest.mark.parametrize(("name", "dtype"), cases_with("grad"))
def test_input_gradients(name, dtype):
    check(name, dtype, "grad")


@pytest.mark.parametrize(("name", "dtype"), cases_with("param_grad"))
def test_parameter_gradients(name, dtype):
    check(name, dtype, "param_grad")


@pytest.mark.parametrize(("name", "dtype"), cases_with("higher_order"))
def test_higher_order(name, dtype):
    check(name, dtype, "higher_order")


@pytest.mark.parametrize(("name", "dtype"), cases_with("step"))
def test_optimizer_step(name, dtype):
    check(name, dtype, "step")


@pytest.mark.parametrize(("name", "dtype"), cases_with("trajectory"))
def test_trajectory(name, dtype):
    check(name, dtype, "trajectory")


@pytest.mark.parametrize(("name", "dtype"), cases_with("behaviour"))
def test_behaviour(name, dtype):
    check(name, dtype, "behaviour")


@pytest.mark.parametrize(
    ("name", "dtype"),
    [pytest.param(c.name, d, id=f"{c.name}-{d}") for c in CASES if c.expect == "differ" for d in c.dtypes],
)
def test_negative_control_is_detected(name, dtype):
    res = result(name, dtype)
    assert not res.error, res.error
    assert res.detected, f"{name} [{dtype}]: the known-wrong TF side agreed with torch; margin {res.margin:.3g}"


def test_every_kind_is_tested():
    # a new kind in equivalence.case.KINDS needs its generic test here
    tested = {"forward", "grad", "param_grad", "higher_order", "step", "trajectory", "behaviour"}
    assert tested == set(KINDS)


def test_every_case_has_rows_for_every_pair():
    for case in CASES:
        res = result(case.name, case.dtypes[0])
        if res.error:
            continue  # reported by the kind tests
        pairs = {(r.quantity, r.pair) for r in res.rows}
        for q in case.quantities:
            assert (q.name, "torch~tf") in pairs, f"{case.name}: {q.name} never compared torch~tf"
