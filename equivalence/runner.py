"""Run a case: inputs once, both frameworks, the float64 reference, every comparison."""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import refcache
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
        """A JSON-ready record; non-finite numbers become None (strict JSON has no inf/nan)."""
        c = self.comparison
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in {
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
        }.items()}


@dataclass
class CaseResult:
    case: Case
    ctx: Context
    rows: list[Row] = field(default_factory=list)
    error: str = ""  # a builder raised, or returned the wrong quantities
    #: where its float64 reference came from: "computed", "reused" (the case's run in another
    #: dtype, same inputs) or "cache" (an on-disk refcache); "" if the run failed before it
    reference: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and all(r.passed for r in self.rows)

    @property
    def detected(self) -> bool:
        """For a negative control: some comparison of the TF side exceeded its tolerance."""
        return any(not r.comparison.passed for r in self.rows if "tf" in r.pair.split("~"))

    @property
    def margin(self) -> float:
        """Largest observed error over tolerance among the rows that compare the TF side
        (torch~tf, tf~reference): those that count for detection (> 1 means a mismatch)."""
        ratios = [r.comparison.ratio for r in self.rows if "tf" in r.pair.split("~")]
        return max(ratios) if ratios else math.nan


def device_label(ctx: Context) -> str:
    return f"torch:{ctx.torch_device},tf:{ctx.tf_device}"


def make_inputs(case: Case, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The case's inputs rounded to ``dtype`` (first to its ``input_precision``, if it has one),
    and the same values widened to float64."""
    raw = case.inputs(np.random.default_rng(case.seed))
    if not isinstance(raw, Mapping) or not raw:
        raise TypeError(f"case {case.name}: inputs() must return a non-empty dict of arrays, got {type(raw).__name__}")
    rounded, wide = {}, {}
    for k, v in raw.items():
        a = np.asarray(v)
        if a.dtype.kind == "f":
            if case.input_precision is not None:
                a = a.astype(case.input_precision)
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

    A quantity declared with ``magnitude_uses_dtype=True`` gets the run's dtype too: where a
    computation branches (a ReLU input within rounding reach of 0) or normalises (Adam's
    division by sqrt(v)), how far a rounding error can move the result is not proportional
    to u. Such a function returns an m for which ``(gamma_n(u_a) + gamma_n(u_b)) * m`` bounds
    both pairs a run of that dtype compares (dtype with dtype, dtype with float64), e.g.
    ``max(B(dtype) / gamma_n(dtype), B(float64) / gamma_n(float64))`` for absolute bounds B
    (docs/tolerances-trajectories.md).
    """
    if q.magnitude is None:
        return None
    return q.magnitude(wide, ref, dtype) if q.magnitude_uses_dtype else q.magnitude(wide, ref)


#: the float64 reference is a function of the case and its float64 inputs alone: when runs of one
#: case in several dtypes get the same inputs (floats exactly representable in each dtype, e.g.
#: drawn in float32), the second run reuses the first's reference. One entry: runs of a case are
#: consecutive (the CLI orders them so), and a reference can be large.
_last_reference: list = [None, None, None]
#: where the last reference :func:`compute` returned came from: "computed", "reused" (the entry
#: above) or "cache" (an on-disk :mod:`equivalence.refcache`, when one is active)
reference_source: list = [""]


def _inputs_digest(inputs: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(inputs):
        a = np.ascontiguousarray(inputs[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def compute(case: Case, side: str, inputs: dict[str, np.ndarray], ctx: Context) -> dict[str, np.ndarray]:
    """One side's values: "torch" or "tf" on ``inputs`` in ``ctx``, or the float64 "reference"
    (``inputs`` then already widened to float64; it always runs on the CPU)."""
    if side == "reference":
        key = _inputs_digest(inputs)
        if _last_reference[0] is case and _last_reference[1] == key:
            reference_source[0] = "reused"
            return dict(_last_reference[2])
        cache = refcache.active() if refcache.cacheable(case) else None
        out = cache.load(case, key) if cache is not None else None
        computed = out is None
        reference_source[0] = "computed" if computed else "cache"
        if computed:
            start = time.thread_time()  # CPU time: other processes' load does not count
            if callable(case.reference):
                out = _call(lambda a, *_: case.reference(a), inputs)
            else:
                out = compute(case, case.reference, inputs, Context(dtype="float64"))
        _check_names(case, side, out)
        if computed and cache is not None and time.thread_time() - start >= refcache.MIN_SECONDS:
            cache.store(case, key, out)
        for v in out.values():
            v.flags.writeable = False  # shared by the runs that reuse it
        _last_reference[:] = [case, key, out]
        return dict(out)
    elif side == "torch":
        out = _call(case.torch, inputs, ctx)
    elif side == "tf":
        with tf().device(ctx.tf_device_name):
            out = _call(case.tf, inputs, ctx)
    else:
        raise ValueError(f"side must be 'torch', 'tf' or 'reference', not {side!r}")
    _check_names(case, side, out)
    return out


def evaluate(case: Case, ctx: Context) -> tuple[dict, dict, dict, dict]:
    """Inputs (widened to float64) and the three sets of values: torch, tf and the float64 reference."""
    inputs, wide = make_inputs(case, ctx.dtype)
    return wide, compute(case, "torch", inputs, ctx), compute(case, "tf", inputs, ctx), compute(case, "reference", wide, ctx)


def compare_values(case: Case, ctx: Context, wide, outs: Mapping[str, Mapping[str, np.ndarray]],
                   pairs: list[tuple[str, str, str, str]]) -> list[Row]:
    """Rows for every quantity and every (a, b, precision_a, precision_b) pair of ``outs``.

    The magnitudes of the tolerance model come from ``outs["reference"]``.
    """
    rows = []
    ref = outs["reference"]
    for q in case.quantities:
        expected = np.asarray(ref[q.name], dtype=np.float64)
        elementwise = _magnitude(q, wide, ref, ctx.dtype)
        m = tm.magnitude(expected, elementwise)
        factor, reason = case.factor(q.name, ctx.dtype)
        for a, b, prec_a, prec_b in pairs:
            tol = tm.pair_tolerance(q.n, prec_a, prec_b, m, factor, q.reductions)
            c = compare(outs[a][q.name], outs[b][q.name], tol, ulp_dtype=ctx.dtype)
            rows.append(Row(case.name, q.name, q.kind, ctx.dtype, device_label(ctx), f"{a}~{b}", c,
                            case.expect, c.passed, reason))
    return rows


def run_case(case: Case, ctx: Context) -> CaseResult:
    result = CaseResult(case, ctx)
    try:
        reference_source[0] = ""
        wide, torch_out, tf_out, ref = evaluate(case, ctx)
        result.reference = reference_source[0]
        outs = {"torch": torch_out, "tf": tf_out, "reference": ref}
        # In float64 on the CPU, a framework reference is that framework's own output: nothing
        # to learn from comparing it with itself, so only the independent pairs are kept.
        pairs = [("torch", "tf", ctx.precision("torch"), ctx.precision("tf"))]
        for side in SIDES:
            on_cpu = (ctx.torch_device if side == "torch" else ctx.tf_device) == "cpu"
            if not (ctx.dtype == "float64" and on_cpu and case.reference == side):
                pairs.append((side, "reference", ctx.precision(side), "float64"))
        result.rows = compare_values(case, ctx, wide, outs, pairs)
    except Exception as exc:  # a builder or magnitude failing is a result to report, not a crash of the run
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
        return result
    if case.expect == "differ":
        detected = result.detected
        result.rows = [
            Row(r.case, r.quantity, r.kind, r.dtype, r.device, r.pair, r.comparison, r.expect,
                r.comparison.passed if r.pair == "torch~reference" else detected, r.note)
            for r in result.rows
        ]
    return result
