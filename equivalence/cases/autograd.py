"""Autograd constructs of seeds 000, 001 (§4.1-4.2) and 004."""

import numpy as np

from torch_impl import autograd_basics as T
from tf_impl import autograd_basics as F

from ..case import Case, Q, register
from ..tolerance import ELEMENTARY

# ||x|| for 3 elements: 3 products, a sum of 3, one sqrt; the gradient adds a division.
_NORM_N = 3 + ELEMENTARY
_NORM_GRAD_N = _NORM_N + 1


def _norm_ref(a):
    x = a["x"]
    l = np.sqrt(np.sum(x * x))
    return {"l": l, "grad:x": x / l}


for _via, _t, _f in (("grad", T.norm_with_grad, F.norm_with_grad), ("backward", T.norm_with_backward, F.norm_with_backward)):
    register(Case(
        name=f"autograd.norm_{_via}",
        source="seed 000 §2 (In [140]/[141]); seed 001 §4.2",
        doc=f"l = ||x|| at x = (1, 2, 2): l = 3, dl/dx = x/||x|| = (1/3, 2/3, 2/3), via {_via}",
        inputs=lambda rng: {"x": np.array([1.0, 2.0, 2.0])},
        torch=lambda a, ctx, _t=_t: dict(zip(("l", "grad:x"), _t(ctx.t(a["x"])))),
        tf=lambda a, ctx, _f=_f: dict(zip(("l", "grad:x"), _f(ctx.tf_const(a["x"])))),
        reference=_norm_ref,
        quantities=(Q("l", "forward", n=_NORM_N), Q("grad:x", "grad", n=_NORM_GRAD_N)),
    ))
    # the same construct at seeded random points, where the gradient is not a round number
    register(Case(
        name=f"autograd.norm_{_via}_random",
        source="seed 000 §2 (In [140]/[141])",
        inputs=lambda rng: {"x": rng.standard_normal(7)},
        torch=lambda a, ctx, _t=_t: dict(zip(("l", "grad:x"), _t(ctx.t(a["x"])))),
        tf=lambda a, ctx, _f=_f: dict(zip(("l", "grad:x"), _f(ctx.tf_const(a["x"])))),
        reference=_norm_ref,
        quantities=(Q("l", "forward", n=7 + ELEMENTARY), Q("grad:x", "grad", n=7 + ELEMENTARY + 1)),
        seed=1,
    ))
