"""The tolerance model (docs/tolerances.md says why each piece is there).

A quantity computed in a precision with unit roundoff ``u`` by ``n`` dependent
floating-point operations (a reduction of length ``L`` counts ``L``; an
elementary function counts ``ELEMENTARY``) differs from the exact value by at
most ``gamma_n(u) * m`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., Lemma 3.1 and section 3.1), where ``m`` is the magnitude
of the terms involved: ``sum |x_i||y_i|`` for a dot product, not ``|sum x_i y_i|``.

From that bound:

* a side against the float64 reference:  ``(gamma_n(u) + gamma_n(u_ref)) * m``
* one side against the other:           ``2 * gamma_n(u) * m``

``m`` is elementwise when the case gives a magnitude function, and normwise
(``max |reference|`` over the tensor) otherwise. Each operation may also add
``tiny`` (the smallest normal number) below the normal range, where TensorFlow's
CPU kernels flush subnormal results to zero.
"""

from __future__ import annotations

import math

import numpy as np

#: unit roundoff u = 2**-p for p significand bits (round to nearest)
UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,  # TF32 keeps float32's exponent and a 10-bit fraction
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

#: the operation count charged for one elementary function (exp, log, tanh,
#: sqrt, pow with a non-integer exponent): vectorised libm / Eigen kernels are
#: accurate to a few ulp, not to the 0.5 ulp of a correctly rounded operation.
ELEMENTARY = 4


def unit_roundoff(precision: str) -> float:
    try:
        return UNIT_ROUNDOFF[precision]
    except KeyError:
        raise ValueError(f"no unit roundoff for {precision!r}; known: {sorted(UNIT_ROUNDOFF)}") from None


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u); valid while n u < 1."""
    if n < 0:
        raise ValueError(f"operation count must be >= 0, got {n}")
    nu = n * u
    if nu >= 1:
        raise ValueError(f"gamma_n is undefined for n*u = {nu:.3g} >= 1 (n={n}, u={u:.3g})")
    return nu / (1 - nu)


def magnitude(reference: np.ndarray, elementwise: np.ndarray | None = None) -> np.ndarray:
    """The ``m`` of the bound: the case's elementwise magnitudes, else ``max |reference|``."""
    reference = np.asarray(reference, dtype=np.float64)
    if elementwise is not None:
        m = np.abs(np.asarray(elementwise, dtype=np.float64))
        if m.shape != reference.shape:
            m = np.broadcast_to(m, reference.shape)
        return m
    finite = np.abs(reference[np.isfinite(reference)])
    scale = float(finite.max()) if finite.size else 0.0
    return np.full(reference.shape, scale)


def bound(n: int, precision: str, m: np.ndarray, reductions: int = 1) -> np.ndarray:
    """gamma_n(u) * m for one side computed in ``precision``.

    ``"tf32"`` is float32 arithmetic whose matmul/conv products are formed from
    inputs rounded to TF32: each of the ``reductions`` TF32 reductions in the
    chain adds a relative 2 u_tf32 to its products, so the bound is
    (gamma_n(u_float32) + gamma_{2r}(u_tf32)) * m.
    """
    if precision == "tf32":
        rel = gamma(n, unit_roundoff("float32")) + gamma(2 * reductions, unit_roundoff("tf32"))
    else:
        rel = gamma(n, unit_roundoff(precision))
    return rel * m + n * underflow(precision)


def underflow(precision: str) -> float:
    """The absolute error one operation may add below the normal range.

    With gradual underflow it is at most u * tiny; with flush-to-zero (TensorFlow's
    CPU kernels, many GPU kernels) a subnormal result becomes 0, an error up to
    ``tiny``, the smallest normal number. The model charges the latter.
    """
    return _TINY[precision]


#: the smallest normal number; TF32 and bfloat16 keep float32's exponent range
_TINY = {"float64": float(np.finfo(np.float64).tiny), "float32": float(np.finfo(np.float32).tiny),
         "tf32": float(np.finfo(np.float32).tiny), "float16": float(np.finfo(np.float16).tiny),
         "bfloat16": float(np.finfo(np.float32).tiny)}


def pair_tolerance(n: int, precision_a: str, precision_b: str, m: np.ndarray, factor: float = 1.0,
                   reductions: int = 1) -> np.ndarray:
    """The bound on |a - b| when a and b each carry their own rounding error."""
    if not math.isfinite(factor) or factor < 1:
        raise ValueError(f"a tolerance factor must be a finite number >= 1, got {factor}")
    return factor * (bound(n, precision_a, m, reductions) + bound(n, precision_b, m, reductions))
