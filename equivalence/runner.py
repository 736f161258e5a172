"""Run a case: inputs once, both frameworks, the float64 reference, every comparison."""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import tolerance as tm
from .case import Case
from .compare import Comparison, compare
from .frameworks import Context, tf, to_numpy

SIDES = ("torch", "tf")


@dataclass(frozen=True)
class Row:
    case: str
    quantity: str
    kind: str
    dtype: str
    device: str
    pair: str  # "torch~reference", "tf~reference" or "torch~tf"
    comparison: Comparison
    expect: str = "equal"
    passed: bool = True  # the row meets the case's expectation
    note: str = ""

    def as_dict(self) -> dict:
        c = self.comparison
        return {
            "case": self.case,
            "quantity": self.quantity,
            "kind": self.kind,
            "dtype": self.dtype,
            "device": self.device,
            "pair": self.pair,
            "max_abs_err": c.max_abs_err,
            "max_rel_err": c.max_rel_err,
            "max_ulp": c.max_ulp,
            "tolerance": c.tolerance,
            "headroom": c.headroom,
            "within_tolerance": c.passed,
            "expect": self.expect,
            "passed": self.passed,
            "note": self.note or c.problem,
        }


@dataclass
class CaseResult:
    case: Case
    ctx: Context
    rows: list[Row] = field(default_factory=list)
    error: str = ""  # a builder raised, or returned the wrong quantities

    @property
    def passed(self) -> bool:
        return not self.error and all(r.passed for r in self.rows)

    @property
    def detected(self) -> bool:
        """For a negative control: some comparison of the TF side exceeded its tolerance."""
        return any(not r.comparison.passed for r in self.rows if "tf" in r.pair.split("~"))

    @property
    def margin(self) -> float:
        """Largest observed error over tolerance among the rows (> 1 means a mismatch)."""
        ratios = [r.comparison.ratio for r in self.rows]
        return max(ratios) if ratios else math.nan


def device_label(ctx: Context) -> str:
    return f"torch:{ctx.torch_device},tf:{ctx.tf_device}"


def make_inputs(case: Case, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The case's inputs rounded to ``dtype``, and the same values widened to float64."""
    raw = case.inputs(np.random.default_rng(case.seed))
    if not isinstance(raw, Mapping) or not raw:
        raise TypeError(f"case {case.name}: inputs() must return a non-empty dict of arrays, got {type(raw).__name__}")
    rounded, wide = {}, {}
    for k, v in raw.items():
        a = np.asarray(v)
        if a.dtype.kind == "f":
            rounded[k] = a.astype(dtype)
            wide[k] = rounded[k].astype(np.float64)
        elif a.dtype.kind in "iub":
            rounded[k] = wide[k] = a
        else:
            raise TypeError(f"case {case.name}: input {k!r} has dtype {a.dtype}; give floats, ints or bools")
    return rounded, wide


def _call(fn, inputs: dict[str, np.ndarray], *args) -> dict[str, np.ndarray]:
    fresh = {k: v.copy() for k, v in inputs.items()}  # builders may not share (or mutate) arrays
    out = fn(fresh, *args)
    if not isinstance(out, Mapping):
        raise TypeError(f"a builder must return a dict of quantities, got {type(out).__name__}")
    return {k: to_numpy(v) for k, v in out.items()}


def _check_names(case: Case, side: str, out: Mapping[str, Any]) -> None:
    declared = {q.name for q in case.quantities}
    given = set(out)
    if side == "reference":  # a NumPy reference may add auxiliary entries ("_name") for magnitude functions
        given = {k for k in given if not k.startswith("_")}
    missing, extra = sorted(declared - given), sorted(given - declared)
    if missing or extra:
        raise KeyError(f"{side} returned quantities that do not match the declaration: missing {missing}, undeclared {extra}")


def _magnitude(q, wide, ref, dtype: str):
    """The quantity's elementwise magnitudes, or None for the default ``max |reference|``.

    A magnitude function with a third parameter also receives the run's dtype: where a
    computation branches (a ReLU input within rounding reach of 0) or normalises (Adam's
    division by sqrt(v)), how far a rounding error can move the result is not proportional
    to u. Such a function returns an m for which ``(gamma_n(u_a) + gamma_n(u_b)) * m`` bounds
    both pairs a run of that dtype compares (dtype with dtype, dtype with float64), e.g.
    ``max(B(dtype) / gamma_n(dtype), B(float64) / gamma_n(float64))`` for absolute bounds B
    (docs/tolerances-trajectories.md).
    """
    if q.magnitude is None:
        return None
    params = [p for p in inspect.signature(q.magnitude).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return q.magnitude(wide, ref, dtype) if len(params) >= 3 else q.magnitude(wide, ref)


def _run_tf(case: Case, inputs, ctx: Context):
    with tf().device(ctx.tf_device_name):
        return _call(case.tf, inputs, ctx)


def evaluate(case: Case, ctx: Context) -> tuple[dict, dict, dict, dict]:
    """Inputs and the three sets of values: torch, tf and the float64 reference."""
    inputs, wide = make_inputs(case, ctx.dtype)
    outs = {"torch": _call(case.torch, inputs, ctx), "tf": _run_tf(case, inputs, ctx)}
    for side, out in outs.items():
        _check_names(case, side, out)
    ref_ctx = Context(dtype="float64")  # the reference always runs on the CPU
    if callable(case.reference):
        ref = _call(lambda a, *_: case.reference(a), wide)
    elif case.reference == "torch":
        ref = _call(case.torch, wide, ref_ctx)
    else:
        ref = _run_tf(case, wide, ref_ctx)
    _check_names(case, "reference", ref)
    return wide, outs["torch"], outs["tf"], ref


def run_case(case: Case, ctx: Context) -> CaseResult:
    result = CaseResult(case, ctx)
    try:
        wide, torch_out, tf_out, ref = evaluate(case, ctx)
    except Exception as exc:  # a builder failing is a result to report, not a crash of the run
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
        return result
    outs = {"torch": torch_out, "tf": tf_out, "reference": ref}
    # In float64 a framework reference is that framework's own output: nothing to learn
    # from comparing it with itself, so only the independent pairs are kept.
    same = ctx.dtype == "float64" and ctx.torch_device == "cpu" and not callable(case.reference)
    pairs = [("torch", "tf")]
    for side in SIDES:
        if not (same and case.reference == side):
            pairs.append((side, "reference"))
    for q in case.quantities:
        expected = np.asarray(ref[q.name], dtype=np.float64)
        elementwise = _magnitude(q, wide, ref, ctx.dtype)
        m = tm.magnitude(expected, elementwise)
        factor, reason = case.factor(q.name, ctx.dtype)
        for a, b in pairs:
            prec_b = "float64" if b == "reference" else ctx.dtype
            tol = tm.pair_tolerance(q.n, ctx.dtype, prec_b, m, factor)
            c = compare(outs[a][q.name], outs[b][q.name], tol, ulp_dtype=ctx.dtype)
            result.rows.append(Row(case.name, q.name, q.kind, ctx.dtype, device_label(ctx), f"{a}~{b}", c,
                                   case.expect, c.passed, reason))
    if case.expect == "differ":
        detected = result.detected
        result.rows = [
            Row(r.case, r.quantity, r.kind, r.dtype, r.device, r.pair, r.comparison, r.expect,
                r.comparison.passed if r.pair == "torch~reference" else detected, r.note)
            for r in result.rows
        ]
    return result
