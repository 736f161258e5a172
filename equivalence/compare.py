"""Elementwise comparison of two arrays against an elementwise tolerance."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

_INT_VIEW = {np.dtype(np.float64): np.int64, np.dtype(np.float32): np.int32, np.dtype(np.float16): np.int16}


def ulp_distance(a: np.ndarray, b: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """Number of representable ``dtype`` values between a and b, elementwise.

    Both arrays are rounded to ``dtype`` first, so a float64 reference measured
    in float32 ulps counts the float32 steps between the two values.
    """
    dtype = np.dtype(dtype)
    if dtype not in _INT_VIEW:
        raise ValueError(f"ULP distance is defined here for float16/32/64, not {dtype}")
    itype = _INT_VIEW[dtype]
    ia = np.asarray(a, dtype=dtype).view(itype).astype(np.int64)
    ib = np.asarray(b, dtype=dtype).view(itype).astype(np.int64)
    # map sign-magnitude bit patterns onto a monotone integer line
    top = np.int64(np.iinfo(itype).min)
    ia = np.where(ia < 0, top - ia, ia)
    ib = np.where(ib < 0, top - ib, ib)
    return np.abs(ia - ib).astype(np.float64)


@dataclass(frozen=True)
class Comparison:
    """One compared tensor: ``actual`` against ``expected``.

    ``ratio`` is the largest observed error over its tolerance (the margin);
    ``headroom`` is its inverse. ``passed`` means every element is within its
    tolerance, NaNs sit at the same positions, and infinities agree exactly.
    """

    max_abs_err: float
    max_rel_err: float
    max_ulp: float
    tolerance: float  # the tolerance of the element that comes closest to its bound
    ratio: float
    passed: bool
    shape: tuple[int, ...]
    problem: str = ""  # why it failed before values were compared (shape, NaN positions)

    @property
    def headroom(self) -> float:
        return math.inf if self.ratio == 0 else 1.0 / self.ratio

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["headroom"] = self.headroom
        return d


def compare(actual, expected, tolerance, *, ulp_dtype="float64", equal_nan: bool = True) -> Comparison:
    """Compare two arrays elementwise against an elementwise (or scalar) tolerance.

    Shapes must match exactly (no broadcasting); NaN must sit at the same
    positions when ``equal_nan`` (else any NaN fails); infinities must be equal.
    """
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape:
        return Comparison(math.inf, math.inf, math.inf, 0.0, math.inf, False, a.shape,
                          f"shape {a.shape} != expected shape {e.shape}")
    a = a.astype(np.float64)
    e = e.astype(np.float64)
    tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), a.shape)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if nan_a.any() or nan_e.any():
        if not equal_nan:
            return Comparison(math.nan, math.nan, math.nan, 0.0, math.inf, False, a.shape, "NaN present (equal_nan=False)")
        if not np.array_equal(nan_a, nan_e):
            return Comparison(math.nan, math.nan, math.nan, 0.0, math.inf, False, a.shape,
                              f"NaN at different positions ({int(nan_a.sum())} vs {int(nan_e.sum())} NaNs)")
    inf_a, inf_e = np.isinf(a), np.isinf(e)
    if not np.array_equal(a[inf_a | inf_e], e[inf_a | inf_e]):
        return Comparison(math.inf, math.inf, math.inf, 0.0, math.inf, False, a.shape, "infinities differ")
    ok = np.isfinite(a) & np.isfinite(e)
    if not ok.any():
        return Comparison(0.0, 0.0, 0.0, 0.0, 0.0, True, a.shape)
    a, e, tol = a[ok], e[ok], tol[ok]
    err = np.abs(a - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(e))
        ratio = np.where(err == 0, 0.0, err / tol)
    worst = int(np.argmax(ratio))
    ulps = ulp_distance(a, e, ulp_dtype)
    return Comparison(
        max_abs_err=float(err.max()),
        max_rel_err=float(rel.max()),
        max_ulp=float(ulps.max()),
        tolerance=float(tol[worst]),
        ratio=float(ratio[worst]),
        passed=bool(ratio[worst] <= 1.0),
        shape=tuple(np.shape(actual)),
    )
