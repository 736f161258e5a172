"""Autograd constructs of seeds 000, 001 (§4.1-4.2) and 004.

Operation counts ``n`` (docs/tolerances.md): a reduction or dot product of
length L counts L, an elementary function (exp, log, tanh, sqrt, a ``pow``
kernel) counts ELEMENTARY, every other rounding 1; forward and backward chains
add. Where a value is a difference of larger terms, its ``magnitude`` is the
same computation carried out on absolute values (Higham's sum |x_i||y_i|),
so the tolerance scales with the terms that were rounded, not with their
(possibly cancelled) result.

Behaviours (a flag, an error raised where the tutorial says it must be) are
``kind="behaviour"`` quantities with ``n=0``: 1.0 when the behaviour was seen.
"""

import numpy as np

# torch before TensorFlow: both bundle an OpenMP runtime, and this is the tested order
from torch_impl import autograd_basics as T  # isort: skip
from torch_impl import dag as T_dag  # isort: skip
from tf_impl import autograd_basics as F  # isort: skip
from tf_impl import dag as F_dag  # isort: skip

from ..case import Case, Q, register
from ..tolerance import ELEMENTARY

E = ELEMENTARY


def _flag(value) -> float:
    return 1.0 if bool(value) else 0.0


def _raises(fn, *errors) -> float:
    """1.0 if ``fn()`` raised one of ``errors``, 0.0 if it returned; anything else propagates."""
    try:
        fn()
    except errors:
        return 1.0
    return 0.0


def _abs_terms(*terms):
    """Elementwise magnitude of a sum of terms: sum |term_i|."""
    return lambda a, ref: sum(np.abs(t(a)) for t in terms)


# --------------------------------------------------------------------------
# 1. ||x|| and its gradient (seed 000 In [140]/[141]; seed 001 §4.2)

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


# --------------------------------------------------------------------------
# 2. requires_grad propagation, and gradients for floating point tensors only (seed 001 In [1]-[7])

_TABLE = ("x", "x + y", "z", "x + z")

register(Case(
    name="autograd.requires_grad",
    source="seed 001 §4.2 (In [1]-[7])",
    doc="x, y plain; z.requires_grad = True: x and x+y do not require grad, z and x+z do",
    inputs=lambda rng: {"x": np.array([1.0, 2.0]), "y": np.array([4.0, 5.0]), "z": np.array([7.0, 3.0])},
    torch=lambda a, ctx: {f"requires_grad:{k}": _flag(v) for k, v in
                          T.requires_grad_table(ctx.t(a["x"]), ctx.t(a["y"]), ctx.t(a["z"])).items()},
    tf=lambda a, ctx: {f"requires_grad:{k}": _flag(v) for k, v in
                       F.requires_grad_table(ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), ctx.tf_const(a["z"])).items()},
    # the rule: a leaf requires grad when set, a result when one of its operands does
    reference=lambda a: {"requires_grad:x": 0.0, "requires_grad:x + y": 0.0, "requires_grad:z": 1.0, "requires_grad:x + z": 1.0},
    quantities=tuple(Q(f"requires_grad:{k}", "behaviour", n=0) for k in _TABLE),
))


def _float_only_torch(a, ctx):
    x, k = ctx.t(a["x"], requires_grad=True), ctx.t(a["k"])
    unused = ctx.t(a["x"], requires_grad=True)
    target = (x * x).sum()
    return {
        "raises:int_requires_grad": _raises(lambda: T.requires_grad_(ctx.t(a["k"])), RuntimeError),
        "raises:int_grad": _raises(lambda: T.grad(target, (x, k)), RuntimeError),
        "raises:unused_source": _raises(lambda: T.grad((x * x).sum(), (x, unused)), RuntimeError),
        "none:unused_allowed": _flag(T.grad((x * x).sum(), (x, unused), allow_unused=True)[1] is None),
        "tuple:single_source": _flag(isinstance(T.grad((x * x).sum(), x), tuple)),
    }


def _float_only_tf(a, ctx):
    tf = F.tf
    x, k = ctx.tf_const(a["x"]), ctx.tf_const(a["k"])
    unused = ctx.tf_const(a["x"])

    def tape_on(*watched):
        tape = tf.GradientTape(persistent=True)
        with tape:
            for w in watched:
                tape.watch(w)
            target = tf.reduce_sum(x * x)
        return tape, target

    def int_requires_grad():
        with tf.GradientTape() as tape:
            F.requires_grad_(tape, k)

    tape, target = tape_on(x, unused)
    return {
        "raises:int_requires_grad": _raises(int_requires_grad, TypeError),
        "raises:int_grad": _raises(lambda: F.grad(tape, target, (x, k)), TypeError),
        "raises:unused_source": _raises(lambda: F.grad(tape, target, (x, unused)), ValueError),
        "none:unused_allowed": _flag(F.grad(tape, target, (x, unused), allow_unused=True)[1] is None),
        "tuple:single_source": _flag(isinstance(F.grad(tape, target, x), tuple)),
    }


register(Case(
    name="autograd.float_only",
    source="seed 001 §4.2 ('Only floating point type tensors can have their gradient computed'; "
           "'inputs can be a single tensor, but the result is still a one element tuple')",
    doc="an integer tensor asked for gradients raises on both sides (TF's tape alone would return None); "
        "an unused source raises unless allow_unused=True; one source still gives a tuple",
    inputs=lambda rng: {"x": np.array([1.0, 2.0, 3.0]), "k": np.array([1, 2, 3])},
    torch=_float_only_torch,
    tf=_float_only_tf,
    reference="torch",
    quantities=tuple(Q(name, "behaviour", n=0) for name in (
        "raises:int_requires_grad", "raises:int_grad", "raises:unused_source", "none:unused_allowed",
        "tuple:single_source")),
))


# --------------------------------------------------------------------------
# 3. Several inputs at once, and a tuple of outputs (seed 001 In [8])

def _pow_log_ref(a):
    t, u = a["t"], a["u"]
    return {"forward:a": np.sum(t**2) + np.sum(np.log(u)), "grad:t": 2 * t, "grad:u": 1 / u}


def _pow_log_quantities(lt, lu):
    return (
        # log (E) then a sum of lu, or a square then a sum of lt; one final add
        Q("forward:a", "forward", n=max(E + lu, 1 + lt) + 1,
          magnitude=lambda a, ref: np.sum(a["t"] ** 2) + np.sum(np.abs(np.log(a["u"])))),
        # grad * 2 * pow(t, 1): TF's Pow gradient calls the pow kernel (E), then two products
        Q("grad:t", "grad", n=E + 2),
        Q("grad:u", "grad", n=2),  # grad * reciprocal(u)
    )


def _pow_log(a, ctx, impl, const):
    value, (gt, gu) = impl.pow_log_grad(const(a["t"]), const(a["u"]))
    return {"forward:a": value, "grad:t": gt, "grad:u": gu}


register(Case(
    name="autograd.pow_log_grad",
    source="seed 001 §4.2 (In [8])",
    doc="a = t.pow(2).sum() + u.log().sum() at t = (1, 2, 4), u = (10, 20): grads (2, 4, 8), (0.1, 0.05)",
    inputs=lambda rng: {"t": np.array([1.0, 2.0, 4.0]), "u": np.array([10.0, 20.0])},
    torch=lambda a, ctx: _pow_log(a, ctx, T, ctx.t),
    tf=lambda a, ctx: _pow_log(a, ctx, F, ctx.tf_const),
    reference=_pow_log_ref,
    quantities=_pow_log_quantities(3, 2),
))
register(Case(
    name="autograd.pow_log_grad_random",
    source="seed 001 §4.2 (In [8])",
    inputs=lambda rng: {"t": rng.standard_normal(6), "u": rng.uniform(0.1, 5.0, 4)},
    torch=lambda a, ctx: _pow_log(a, ctx, T, ctx.t),
    tf=lambda a, ctx: _pow_log(a, ctx, F, ctx.tf_const),
    reference=_pow_log_ref,
    quantities=_pow_log_quantities(6, 4),
    seed=2,
))


def _tuple_outputs(a, ctx, impl, const):
    gt, gu = impl.tuple_outputs_grad(const(a["t"]), const(a["u"]))
    return {"grad:t": gt, "grad:u": gu}


register(Case(
    name="autograd.tuple_outputs",
    source="seed 001 §4.2 ('if outputs is a tuple, the result is the sum of the gradients of its elements')",
    doc="grad((sum t^2, sum t^3 + sum log u), (t, u)) = (2t + 3t^2, 1/u)",
    inputs=lambda rng: {"t": rng.standard_normal(5), "u": rng.uniform(0.1, 5.0, 3)},
    torch=lambda a, ctx: _tuple_outputs(a, ctx, T, ctx.t),
    tf=lambda a, ctx: _tuple_outputs(a, ctx, F, ctx.tf_const),
    reference=lambda a: {"grad:t": 2 * a["t"] + 3 * a["t"] ** 2, "grad:u": 1 / a["u"]},
    quantities=(
        # each term: a pow kernel (E) and two products; the two terms are added (1)
        Q("grad:t", "grad", n=E + 3, magnitude=_abs_terms(lambda a: 2 * a["t"], lambda a: 3 * a["t"] ** 2)),
        Q("grad:u", "grad", n=2),
    ),
    seed=3,
))


# --------------------------------------------------------------------------
# 4. Accumulation in .grad (seed 001 In [15])

_STAGES = ("once", "twice", "zeroed", "after_zero")


def _accumulation(a, ctx, impl, const):
    stages = impl.pow3_accumulation(const(a["x"]))
    out = {f"grad:x_{s}": stages[s] for s in _STAGES}
    out["behaviour:none_before_backward"] = _flag(stages["before"] is None)
    return out


def _accumulation_ref(a):
    g = 3 * a["x"] ** 2
    return {"grad:x_once": g, "grad:x_twice": 2 * g, "grad:x_zeroed": 0 * g, "grad:x_after_zero": g,
            "behaviour:none_before_backward": 1.0}


_ACCUMULATION_QUANTITIES = (
    Q("grad:x_once", "grad", n=E + 2),  # grad * 3 * pow(x, 2)
    Q("grad:x_twice", "grad", n=E + 3),  # and one addition into the stored gradient
    Q("grad:x_zeroed", "grad", n=0),  # zero_() writes exact zeros
    Q("grad:x_after_zero", "grad", n=E + 3),  # 0 + the fresh gradient
    Q("behaviour:none_before_backward", "behaviour", n=0),
)

for _name, _inputs, _seed in (
    ("accumulation", lambda rng: {"x": np.array([-3.0, 2.0, 5.0])}, 0),
    ("accumulation_random", lambda rng: {"x": rng.standard_normal(8)}, 4),
):
    register(Case(
        name=f"autograd.{_name}",
        source="seed 001 §4.2 (In [15])",
        doc="u = x.pow(3).sum(): x.grad is None, then 3x^2 = (27, 12, 75), doubled by a second backward, "
            "zeros after zero_(), 3x^2 again after one more backward",
        inputs=_inputs,
        torch=lambda a, ctx: _accumulation(a, ctx, T, ctx.t),
        tf=lambda a, ctx: _accumulation(a, ctx, F, ctx.tf_const),
        reference=_accumulation_ref,
        quantities=_ACCUMULATION_QUANTITIES,
        seed=_seed,
    ))


# --------------------------------------------------------------------------
# 5. The w1/w2 DAG with weight sharing (seed 000 In [142]; seed 001 §4.1 and In [16])

def _dag_ref(a, absolute=False):
    """The forward and backward pass in NumPy; ``absolute`` carries magnitudes instead.

    With ``absolute=True`` every matrix and vector is replaced by its absolute
    value and differences by sums, which gives the magnitudes of the terms
    behind each rounded value (the ``m`` of the tolerance model).
    """
    w1, w2, x0 = a["w1"], a["w2"], a["x"]
    if absolute:
        v = _dag_ref(a)  # signed values, where the magnitude needs them
        w1, w2, x0 = np.abs(w1), np.abs(w2), np.abs(x0)
    x1 = w1 @ x0
    x2 = x0 + w2 @ x1
    s = x1 + x2
    x3 = w1 @ s
    if absolute:
        ax3, q = np.abs(v["forward:x3"]), v["forward:q"]
        mq = ax3 @ x3 / q  # dq = x3 . dx3 / q
        g3 = x3 / q + ax3 * mq / q**2  # d(x3/q) = dx3/q - x3 dq/q^2
    else:
        q = np.sqrt(x3 @ x3)
        mq = q
        g3 = x3 / q
    gs = w1.T @ g3  # x3 = w1 s
    gx2 = gs
    gx1 = gs + w2.T @ gx2  # x1 feeds s directly and x2 through w2
    gx0 = gx2 + w1.T @ gx1  # x0 feeds x2 directly and x1 through w1
    gw1 = np.outer(g3, s) + np.outer(gx1, x0)  # shared: phi3's share plus phi1's
    gw2 = np.outer(gx2, x1)
    return {"forward:x3": x3, "forward:q": mq, "grad:x3": g3, "grad:w1": gw1, "grad:w2": gw2, "grad:x": gx0}


def _dag_magnitude(name):
    return lambda a, ref: _dag_ref(a, absolute=True)[name]


def _dag_inputs(rng):
    return {"w1": rng.standard_normal((5, 5)), "w2": rng.standard_normal((5, 5)), "x": rng.standard_normal(5)}


# Longest rounding chains, dot products of length 5:
#   x1 = w1 x0: 5; x2 = x0 + w2 x1: 5 + 5 + 1 = 11; x3 = w1 (x1 + x2): 11 + 1 + 5 = 17
#   q = ||x3||: 17 + 5 + E;  g3 = x3 / q: + 1
#   gs = w1^T g3: + 5;  gx1 = gs + w2^T gs: + 5 + 1;  gx = gx2 + w1^T gx1: + 5 + 1
#   gw1 = g3 s^T + gx1 x0^T: gx1's chain + 2;  gw2 = gx2 x1^T: gs's chain + 1
_N_X3 = 17
_N_Q = _N_X3 + 5 + E
_N_G3 = _N_Q + 1
_N_GS = _N_G3 + 5
_N_GX1 = _N_GS + 6
_DAG_QUANTITIES = {
    "forward:x3": Q("forward:x3", "forward", n=_N_X3, magnitude=_dag_magnitude("forward:x3")),
    "forward:q": Q("forward:q", "forward", n=_N_Q, magnitude=_dag_magnitude("forward:q")),
    "grad:x3": Q("grad:x3", "grad", n=_N_G3, magnitude=_dag_magnitude("grad:x3")),
    "grad:w1": Q("grad:w1", "param_grad", n=_N_GX1 + 2, magnitude=_dag_magnitude("grad:w1")),
    "grad:w2": Q("grad:w2", "param_grad", n=_N_GS + 1, magnitude=_dag_magnitude("grad:w2")),
    "grad:x": Q("grad:x", "grad", n=_N_GX1 + 6, magnitude=_dag_magnitude("grad:x")),
}


def _dag_backward(a, ctx, impl, const):
    q, x3, gx3, gw1, gw2, gx = impl.dag_backward(const(a["w1"]), const(a["w2"]), const(a["x"]))
    return {"forward:x3": x3, "forward:q": q, "grad:x3": gx3, "grad:w1": gw1, "grad:w2": gw2, "grad:x": gx}


def _dag_grad(a, ctx, impl, const):
    q, gw1, gw2, gx = impl.dag_grad(const(a["w1"]), const(a["w2"]), const(a["x"]))
    return {"forward:q": q, "grad:w1": gw1, "grad:w2": gw2, "grad:x": gx}


register(Case(
    name="autograd.dag_backward",
    source="seed 000 §2 (In [142]); seed 001 §4.2 (In [16])",
    doc="q = ||x3|| over the w1/w2 DAG, w1 shared by phi1 and phi3; q.backward() with x3.retain_grad() "
        "against one GradientTape",
    inputs=_dag_inputs,
    torch=lambda a, ctx: _dag_backward(a, ctx, T_dag, ctx.t),
    tf=lambda a, ctx: _dag_backward(a, ctx, F_dag, ctx.tf_const),
    reference=_dag_ref,
    quantities=tuple(_DAG_QUANTITIES[k] for k in ("forward:x3", "forward:q", "grad:x3", "grad:w1", "grad:w2", "grad:x")),
    seed=5,
))
register(Case(
    name="autograd.dag_grad",
    source="seed 001 §4.1 (the TF1 tf.gradients / tf.Session code)",
    doc="gw1, gw2 = tf.gradients(q, [w1, w2]) in a tf.function against torch.autograd.grad(q, (w1, w2))",
    inputs=_dag_inputs,
    torch=lambda a, ctx: _dag_grad(a, ctx, T_dag, ctx.t),
    tf=lambda a, ctx: _dag_grad(a, ctx, F_dag, ctx.tf_const),
    reference=lambda a: {k: v for k, v in _dag_ref(a).items() if k in ("forward:q", "grad:w1", "grad:w2", "grad:x")},
    quantities=tuple(_DAG_QUANTITIES[k] for k in ("forward:q", "grad:w1", "grad:w2", "grad:x")),
    seed=6,
))
