"""Elementwise comparison of two arrays against an elementwise tolerance."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .frameworks import to_numpy

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


def _numbers(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array of real numbers (bool, int or float), or a TypeError / ValueError
    naming the argument. Torch tensors (also those requiring grad) and TF tensors are read."""
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be an array (or a number, a nested list, a tensor) of real numbers, "
                        f"got {type(x).__name__}")
    try:
        a = np.asarray(to_numpy(x))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not an array of numbers: {exc}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype {a.dtype}")
    return a


def compare(actual, expected, tolerance, *, ulp_dtype="float64", equal_nan: bool = True) -> Comparison:
    """Compare two arrays elementwise against an elementwise (or scalar) tolerance.

    ``actual``, ``expected``: arrays of real numbers (NumPy arrays, numbers, nested lists, torch
    or TF tensors). ``tolerance``: >= 0, a scalar or an array that broadcasts to their shape
    (``inf`` accepts any finite difference). ``ulp_dtype``: the precision the ULP column counts
    in (float16, float32 or float64).

    Shapes must match exactly (nothing is broadcast): a mismatch is a failed comparison whose
    ``problem`` names both shapes. NaN: with ``equal_nan=True`` (the default) NaN must sit at the
    same positions in both; with ``equal_nan=False`` any NaN fails. Infinities must be equal,
    sign included (``inf`` matches only ``inf``). Integer arrays are compared exactly (no
    rounding to float64 hides a difference). Zero-size arrays compare equal. Wrong arguments
    raise ``TypeError`` (a type) or ``ValueError`` (a value), naming the argument.
    """
    if not isinstance(equal_nan, (bool, np.bool_)):
        raise TypeError(f"equal_nan must be True or False, got {type(equal_nan).__name__} {equal_nan!r}")
    try:
        udt = np.dtype(ulp_dtype) if isinstance(ulp_dtype, (str, type, np.dtype)) else None
    except (TypeError, ValueError):
        udt = None
    if udt not in _INT_VIEW:
        raise ValueError(f"ulp_dtype must be float16, float32 or float64, got {ulp_dtype!r}")
    a_in = _numbers(actual, "actual")
    e_in = _numbers(expected, "expected")
    t_in = _numbers(tolerance, "tolerance")
    if a_in.shape != e_in.shape:
        return Comparison(math.inf, math.inf, math.inf, 0.0, math.inf, False, a_in.shape,
                          f"shape {a_in.shape} != expected shape {e_in.shape}")
    try:
        tol = np.broadcast_to(t_in.astype(np.float64), a_in.shape)
    except ValueError:
        raise ValueError(f"tolerance of shape {t_in.shape} does not broadcast to the compared shape {a_in.shape}") \
            from None
    if (tol < 0).any():
        raise ValueError(f"tolerance must be >= 0 everywhere, got a minimum of {float(np.nanmin(tol))}")
    a = a_in.astype(np.float64)
    e = e_in.astype(np.float64)
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
    if np.isnan(tol[ok]).any():
        raise ValueError("tolerance is NaN at compared (finite) elements; give a number >= 0 there")
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.abs(a - e)
    if a_in.dtype.kind in "biu" and e_in.dtype.kind in "biu":
        # float64 holds integers exactly only up to 2**53: a difference it rounds away is still >= 1
        err = np.where((a_in != e_in) & (err == 0), 1.0, err)
    a, e, tol, err = a[ok], e[ok], tol[ok], err[ok]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # x / 0 and x / subnormal: inf, defined
        rel = np.where(err == 0, 0.0, err / np.abs(e))
        ratio = np.where(err == 0, 0.0, err / tol)
    worst = int(np.argmax(ratio))
    ulps = ulp_distance(a, e, udt)
    return Comparison(
        max_abs_err=float(err.max()),
        max_rel_err=float(rel.max()),
        max_ulp=float(ulps.max()),
        tolerance=float(tol[worst]),
        ratio=float(ratio[worst]),
        passed=bool(ratio[worst] <= 1.0),
        shape=tuple(a_in.shape),
    )
