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
from torch_impl import dynamic_graph as T_dyn  # isort: skip
from torch_impl import gradient_descent as T_gd  # isort: skip
from torch_impl import higher_order as T_ho  # isort: skip
from torch_impl import inplace as T_ip  # isort: skip
from torch_impl import mlp_tanh as T_mlp  # isort: skip
from torch_impl import perceptron as T_pc  # isort: skip
from tf_impl import autograd_basics as F  # isort: skip
from tf_impl import dag as F_dag  # isort: skip
from tf_impl import dynamic_graph as F_dyn  # isort: skip
from tf_impl import gradient_descent as F_gd  # isort: skip
from tf_impl import higher_order as F_ho  # isort: skip
from tf_impl import inplace as F_ip  # isort: skip
from tf_impl import mlp_tanh as F_mlp  # isort: skip
from tf_impl import perceptron as F_pc  # isort: skip

from ..case import Case, Q, register
from ..frameworks import tf as _tf
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
    tf = _tf()
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


# --------------------------------------------------------------------------
# 6. The tanh MLP 10 -> 20 -> 5 with the MSE loss (seed 001 §4.2)

def _mlp_ref(a, absolute=False):
    """Forward and backward in NumPy; ``absolute`` gives the magnitudes of the rounded terms.

    Magnitudes propagate to first order: a tanh output carries its own
    rounding (|h|) plus its argument's, damped by 1 - h^2; in 1 - y^2 the
    terms are 1 and y^2, and y's error enters with slope 2|y|.
    """
    w1, b1, w2, b2, x, t = (a[k] for k in ("w1", "b1", "w2", "b2", "x", "target"))
    h = np.tanh(w1 @ x + b1)
    y = np.tanh(w2 @ h + b2)
    d = y - t
    gy = 2 * d / d.size  # d mean(d^2) / dy
    gz2 = gy * (1 - y**2)
    gh = w2.T @ gz2
    gz1 = gh * (1 - h**2)
    if not absolute:
        return {"forward:y": y, "forward:loss": np.mean(d**2), "grad:w1": np.outer(gz1, x), "grad:b1": gz1,
                "grad:w2": np.outer(gz2, h), "grad:b2": gz2}
    H = np.abs(h) + (1 - h**2) * (np.abs(w1) @ np.abs(x) + np.abs(b1))
    Y = np.abs(y) + (1 - y**2) * (np.abs(w2) @ H + np.abs(b2))
    D = Y + np.abs(t)
    GZ2 = 2 * D / d.size * (1 + y**2) + np.abs(gy) * 2 * np.abs(y) * Y
    GZ1 = (np.abs(w2).T @ GZ2) * (1 + h**2) + np.abs(gh) * 2 * np.abs(h) * H
    return {"forward:y": Y, "forward:loss": np.mean(2 * np.abs(d) * D), "grad:w1": np.outer(GZ1, np.abs(x)),
            "grad:b1": GZ1, "grad:w2": np.outer(GZ2, H), "grad:b2": GZ2}


def _mlp_magnitude(name):
    return lambda a, ref: _mlp_ref(a, absolute=True)[name]


# Longest rounding chains: z1 = w1 x + b1: 10 + 1; h: + E; z2 = w2 h + b2: + 20 + 1; y: + E  -> 32 + 2E
#   loss: y - t, square, a sum of 5, a division: + 8;  gy = 2 (y - t) / 5: y's chain + 3
#   gz2 = gy (1 - y y): + 1;  gw2 = gz2 h^T: + 1;  gh = w2^T gz2: + 5;  gz1 = gh (1 - h h): + 1;  gw1: + 1
_N_Y = 32 + 2 * E
_N_GZ2 = _N_Y + 4
_N_GZ1 = _N_GZ2 + 6
_MLP_QUANTITIES = (
    Q("forward:y", "forward", n=_N_Y, magnitude=_mlp_magnitude("forward:y")),
    Q("forward:loss", "forward", n=_N_Y + 8, magnitude=_mlp_magnitude("forward:loss")),
    Q("grad:w1", "param_grad", n=_N_GZ1 + 1, magnitude=_mlp_magnitude("grad:w1")),
    Q("grad:b1", "param_grad", n=_N_GZ1, magnitude=_mlp_magnitude("grad:b1")),
    Q("grad:w2", "param_grad", n=_N_GZ2 + 1, magnitude=_mlp_magnitude("grad:w2")),
    Q("grad:b2", "param_grad", n=_N_GZ2, magnitude=_mlp_magnitude("grad:b2")),
)


def _mlp(a, ctx, impl, const):
    loss, y, (gw1, gb1, gw2, gb2) = impl.mlp_grads(*(const(a[k]) for k in ("w1", "b1", "w2", "b2", "x", "target")))
    return {"forward:y": y, "forward:loss": loss, "grad:w1": gw1, "grad:b1": gb1, "grad:w2": gw2, "grad:b2": gb2}


def _mlp_inputs_linear_init(rng):
    # nn.Linear's initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the units stay out of saturation
    def u(shape, fan_in):
        return rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
    return {"w1": u((20, 10), 10), "b1": u(20, 10), "w2": u((5, 20), 20), "b2": u(5, 20),
            "x": rng.random(10), "target": rng.random(5)}


def _mlp_inputs_seed(rng):
    # the seed's torch.rand everywhere: pre-activations of several units, y close to 1, gradients tiny
    return {"w1": rng.random((20, 10)), "b1": rng.random(20), "w2": rng.random((5, 20)), "b2": rng.random(5),
            "x": rng.random(10), "target": rng.random(5)}


for _name, _inputs, _seed, _doc in (
    ("mlp_tanh", _mlp_inputs_linear_init, 7, "weights initialised like nn.Linear"),
    ("mlp_tanh_seed_init", _mlp_inputs_seed, 8, "the seed's torch.rand weights: saturated units, where 1 - y^2 "
                                                "loses its digits and the magnitudes 1 + y^2 say so"),
):
    register(Case(
        name=f"autograd.{_name}",
        source="seed 001 §4.2 (the MLP with tanh, 10 -> 20 -> 5)",
        doc=f"loss = mean((tanh(w2 tanh(w1 x + b1) + b2) - target)^2) and its four parameter gradients; {_doc}",
        inputs=_inputs,
        torch=lambda a, ctx: _mlp(a, ctx, T_mlp, ctx.t),
        tf=lambda a, ctx: _mlp(a, ctx, F_mlp, ctx.tf_const),
        reference=_mlp_ref,
        quantities=_MLP_QUANTITIES,
        seed=_seed,
    ))


# --------------------------------------------------------------------------
# 7. The data-dependent graph blah(k, x) with shared w[i] (seed 001 §4.2)

def _blah_ref(k, x, w, absolute=False, X=None):
    """Layer inputs and outputs of blah; with ``absolute``, their magnitudes alongside."""
    xs, ys, Xs, Ys = [], [], [], []
    X = np.abs(x) if X is None else X
    for i in range(k):
        xs.append(x)
        Xs.append(X)
        x = np.tanh(w[i] @ x)
        X = np.abs(x) + (1 - x**2) * (np.abs(w[i]) @ X)  # tanh's rounding, and its argument's, damped
        ys.append(x)
        Ys.append(X)
    return xs, ys, Xs, Ys


def _dynamic_ref(a, absolute=False):
    w, k_u, k_v = a["w"], 1, 3
    ux, uy, uX, uY = _blah_ref(k_u, a["x_u"], w)
    vx, vy, vX, vY = _blah_ref(k_v, a["x_v"], w)
    u, v, U, V = uy[-1], vy[-1], uY[-1], vY[-1]
    gw, GW = np.zeros_like(w), np.zeros_like(w)
    # q = u . v: dq/du = v, dq/dv = u; then back through each chain of layers
    for xs, ys, Xs, Ys, g, G in ((ux, uy, uX, uY, v, V), (vx, vy, vX, vY, u, U)):
        for i in reversed(range(len(xs))):
            y = ys[i]
            gz = g * (1 - y**2)
            GZ = G * (1 + y**2) + np.abs(g) * 2 * np.abs(y) * Ys[i]
            gw[i] += np.outer(gz, xs[i])
            GW[i] += np.outer(GZ, Xs[i])
            g, G = w[i].T @ gz, np.abs(w[i]).T @ GZ
    if absolute:
        return {"forward:u": U, "forward:v": V, "forward:q": U @ np.abs(v) + np.abs(u) @ V, "grad:w": GW}
    return {"forward:u": u, "forward:v": v, "forward:q": u @ v, "grad:w": gw}


def _dynamic_magnitude(name):
    return lambda a, ref: _dynamic_ref(a, absolute=True)[name]


def _dynamic(a, ctx, impl, const):
    u, v, q, gw = impl.dynamic_graph(const(a["w"]), const(a["x_u"]), const(a["x_v"]))
    return {"forward:u": u, "forward:v": v, "forward:q": q, "grad:w": gw}


# Longest chains: a layer is a dot of 10 and a tanh: 10 + E. u: 1 layer; v: 3; q = u . v: + 10.
# Backward along v's 3 layers: per layer gz = g (1 - y y): + 1, then w^T gz: + 10; gw[i] = gz x^T: + 1;
# w[0] sums the contributions of u and v: + 1.  From gv = u (after v's forward, 3 (10 + E) + 2):
# 3 (10 + E) + 2 + (1 + 10) + (1 + 10) + 1 + 1 + 1.
_N_LAYER = 10 + E
_DYNAMIC_QUANTITIES = (
    Q("forward:u", "forward", n=_N_LAYER, magnitude=_dynamic_magnitude("forward:u")),
    Q("forward:v", "forward", n=3 * _N_LAYER, magnitude=_dynamic_magnitude("forward:v")),
    Q("forward:q", "forward", n=3 * _N_LAYER + 10, magnitude=_dynamic_magnitude("forward:q")),
    Q("grad:w", "param_grad", n=3 * _N_LAYER + 2 + 22 + 3, magnitude=_dynamic_magnitude("grad:w")),
)

for _name, _scale, _seed, _doc in (
    ("dynamic_graph", 1.0, 9, "the seed's torch.rand weights (v's deeper layers saturate)"),
    ("dynamic_graph_scaled", 1 / np.sqrt(10), 10, "weights U(0, 1/sqrt(10)): no saturation"),
):
    register(Case(
        name=f"autograd.{_name}",
        source="seed 001 §4.2 (blah(k, x))",
        doc=f"u = blah(1, x_u), v = blah(3, x_v), q = u . v; dq/dw: w[0] from u and v, w[1], w[2] from v; {_doc}",
        inputs=lambda rng, _scale=_scale: {"w": _scale * rng.random((3, 10, 10)), "x_u": rng.random(10),
                                           "x_v": rng.random(10)},
        torch=lambda a, ctx: _dynamic(a, ctx, T_dyn, ctx.t),
        tf=lambda a, ctx: _dynamic(a, ctx, F_dyn, ctx.tf_const),
        reference=_dynamic_ref,
        quantities=_DYNAMIC_QUANTITIES,
        seed=_seed,
    ))


# --------------------------------------------------------------------------
# 8. Gradient descent with no_grad and with detach (seed 001 In [20]/[21])

_STEPS = 100


def _descent_ref(a, eta, detach):
    x, y = float(a["a"]), float(a["b"])
    path = []
    for _ in range(_STEPS):
        ga = 2 * (x - 1) + (0 if detach else 2 * (x - y))  # a.detach() cuts the (a - b)^2 term off a
        gb = 2 * (y + 1) - 2 * (x - y)
        x, y = x - eta * ga, y - eta * gb
        path.append((x, y))
    path = np.array(path)
    return {"step:a": path[-1, 0], "step:b": path[-1, 1], "trajectory:ab": path}


def _descent(a, ctx, fn, const):
    x, y, path = fn(const(a["a"]), const(a["b"]))
    return {"step:a": x, "step:b": y, "trajectory:ab": path}


# Per step, a - eta * ga rounds once at the scale of |a|; the gradient's own roundings (a pow
# kernel and a few products and sums) enter scaled by eta |ga| / |a| < 1e-2, together less than one
# more rounding; the map is contractive (|1 - eta d ga/da| < 1), so the steps' errors only add: 2 per step.
_DESCENT_QUANTITIES = (
    Q("step:a", "step", n=2 * _STEPS),
    Q("step:b", "step", n=2 * _STEPS),
    Q("trajectory:ab", "trajectory", n=2 * _STEPS),
)

for _name, _cell, _t, _f, _eta, _detach, _doc in (
    ("descent_no_grad", "In [21]", T_gd.descend_no_grad, F_gd.descend_no_grad, 1e-3, False,
     "l = (a-1)^2 + (b+1)^2 + (a-b)^2, updates under no_grad / outside the tape: (0.4246, -0.4246)"),
    ("descent_detach", "In [20]", T_gd.descend_detach, F_gd.descend_detach, 1e-4, True,
     "(a.detach() - b)^2 / tf.stop_gradient, eta = 1e-4: (0.5099, -0.4901)"),
):
    register(Case(
        name=f"autograd.{_name}",
        source=f"seed 001 §4.2 ({_cell})",
        doc=f"{_STEPS} steps from (0.5, -0.5): {_doc}",
        inputs=lambda rng: {"a": np.array(0.5), "b": np.array(-0.5)},
        torch=lambda a, ctx, _t=_t: _descent(a, ctx, _t, ctx.t),
        tf=lambda a, ctx, _f=_f: _descent(a, ctx, _f, ctx.tf_const),
        reference=lambda a, _eta=_eta, _detach=_detach: _descent_ref(a, _eta, _detach),
        quantities=_DESCENT_QUANTITIES,
    ))


# --------------------------------------------------------------------------
# 9. retain_graph and create_graph: derivatives of order 1 to 3 against closed forms (seed 001 §4.2)

_ORDERS = ("forward:f", "grad:x", "grad2:x", "grad3:x")


def _derivatives(a, ctx, impl, const, f):
    return dict(zip(_ORDERS, impl.derivatives(getattr(impl, f), const(a["x"]), order=3)))


def _pow3_ref(a):
    x = a["x"]
    return {"forward:f": x**3, "grad:x": 3 * x**2, "grad2:x": 6 * x, "grad3:x": 6 * np.ones_like(x)}


def _tanh_ref(a, absolute=False):
    t = np.tanh(a["x"])
    if absolute:  # the closed forms with every term's sign made positive
        return {"forward:f": np.abs(t), "grad:x": 1 + t**2, "grad2:x": 2 * np.abs(t) * (1 + t**2),
                "grad3:x": 2 * (1 + t**2) * (1 + 3 * t**2)}
    return {"forward:f": t, "grad:x": 1 - t**2, "grad2:x": -2 * t * (1 - t**2),
            "grad3:x": -2 * (1 - t**2) * (1 - 3 * t**2)}


# Each differentiation pass runs the backward of the previous pass's graph, whose longest chain is
# about twice as long (a local derivative and an accumulation per operation), plus the new pass's own
# products: x^3: a pow kernel and 2 products per pass; tanh: n_k = E + 3 (2^k - 1).
register(Case(
    name="autograd.higher_order_pow3",
    source="seed 001 §4.2 (create_graph = True); seed 000 §2",
    doc="f = x^3 elementwise: f' = 3x^2, f'' = 6x, f''' = 6, each the gradient of the previous one's sum",
    inputs=lambda rng: {"x": rng.standard_normal(6)},
    torch=lambda a, ctx: _derivatives(a, ctx, T_ho, ctx.t, "cube"),
    tf=lambda a, ctx: _derivatives(a, ctx, F_ho, ctx.tf_const, "cube"),
    reference=_pow3_ref,
    quantities=(
        Q("forward:f", "forward", n=E),
        Q("grad:x", "grad", n=E + 2),
        Q("grad2:x", "higher_order", n=2 * (E + 2)),
        Q("grad3:x", "higher_order", n=3 * (E + 2)),
    ),
    seed=11,
))
register(Case(
    name="autograd.higher_order_tanh",
    source="seed 001 §4.2 (create_graph = True); seed 000 §2",
    doc="f = tanh: f' = 1 - t^2, f'' = -2t (1 - t^2), f''' = -2 (1 - t^2)(1 - 3t^2), t = tanh x",
    inputs=lambda rng: {"x": 1.5 * rng.standard_normal(8)},
    torch=lambda a, ctx: _derivatives(a, ctx, T_ho, ctx.t, "tanh"),
    tf=lambda a, ctx: _derivatives(a, ctx, F_ho, ctx.tf_const, "tanh"),
    reference=_tanh_ref,
    quantities=tuple(
        Q(name, "forward" if k == 0 else "grad" if k == 1 else "higher_order", n=E + 3 * (2**k - 1),
          magnitude=lambda a, ref, name=name: _tanh_ref(a, absolute=True)[name])
        for k, name in enumerate(_ORDERS)
    ),
    seed=12,
))


def _retain_torch(a, ctx):
    x = ctx.t(a["x"])
    return {"grad:x_twice": T_ho.backward_twice(x, retain_graph=True),
            "raises:second_backward_freed": _raises(lambda: T_ho.backward_twice(x, retain_graph=False), RuntimeError)}


def _retain_tf(a, ctx):
    x = ctx.tf_const(a["x"])
    return {"grad:x_twice": F_ho.backward_twice(x, retain_graph=True),
            "raises:second_backward_freed": _raises(lambda: F_ho.backward_twice(x, retain_graph=False), RuntimeError)}


register(Case(
    name="autograd.retain_graph",
    source="seed 001 §4.2 ('The flag retain_graph indicates to keep it')",
    doc="two backward passes through one graph (retain_graph=True / a persistent tape) accumulate 2 * 3x^2; "
        "without it the second pass raises RuntimeError on both sides",
    inputs=lambda rng: {"x": rng.standard_normal(5)},
    torch=_retain_torch,
    tf=_retain_tf,
    reference=lambda a: {"grad:x_twice": 6 * a["x"] ** 2, "raises:second_backward_freed": 1.0},
    quantities=(
        Q("grad:x_twice", "grad", n=E + 3),  # grad * 3 * pow(x, 2), and one addition of the two passes
        Q("raises:second_backward_freed", "behaviour", n=0),
    ),
    seed=13,
))


# --------------------------------------------------------------------------
# 10. In-place operations (seed 001 §4.2): what both sides allow, refuse, or leave out of the graph.
# What only torch refuses (a saved value modified; an update between two reads of a leaf) is
# tested on each side in tests/test_autograd_behaviour.py: there is no common value to compare.

def _inplace(a, ctx, impl, const):
    x, value, delta = const(a["x"]), const(a["value"]), const(a["delta"])
    _, g_unsaved = impl.modify_unsaved(x)
    _, g_index = impl.index_assign(x, value)
    _, still_leaf = impl.update_leaf_no_grad(x, delta)
    return {
        "grad:x_unsaved_inplace": g_unsaved,
        "grad:x_index_assign": g_index,
        "raises:leaf_iadd": _raises(lambda: impl.update_leaf(x, delta), RuntimeError),
        "behaviour:leaf_update_not_recorded": _flag(still_leaf),
    }


def _inplace_ref(a):
    x = a["x"]
    g_index = 8 * x
    g_index[0] = 0.0  # the overwritten entry no longer depends on x
    return {"grad:x_unsaved_inplace": 4 * (2 * x + 1), "grad:x_index_assign": g_index,
            "raises:leaf_iadd": 1.0, "behaviour:leaf_update_not_recorded": 1.0}


register(Case(
    name="autograd.inplace",
    source="seed 001 §4.2 ('In-place operations may corrupt values required to compute the gradient'; "
           "'prohibited on so-called leaf tensors')",
    doc="y = 2x; y += 1 in place (torch) or rebound (TF): 4 (2x + 1); y[0] = v in place (torch) or "
        "tensor_scatter_nd_update (TF): 8x with 0 at index 0; x += d on a leaf / variable raises on both "
        "sides; the update under no_grad / by assign_add is not recorded",
    inputs=lambda rng: {"x": rng.standard_normal(5), "value": np.array(5.0), "delta": np.array(1.0)},
    torch=lambda a, ctx: _inplace(a, ctx, T_ip, ctx.t),
    tf=lambda a, ctx: _inplace(a, ctx, F_ip, ctx.tf_const),
    reference=_inplace_ref,
    quantities=(
        # y = 2x, y + 1: 2; the pow kernel and 2 products of its gradient, times 2: E + 3
        Q("grad:x_unsaved_inplace", "grad", n=E + 5, magnitude=lambda a, ref: 4 * (2 * np.abs(a["x"]) + 1)),
        Q("grad:x_index_assign", "grad", n=E + 4),  # y = 2x: 1; the pow kernel, 2 products, times 2
        Q("raises:leaf_iadd", "behaviour", n=0),
        Q("behaviour:leaf_update_not_recorded", "behaviour", n=0),
    ),
    seed=14,
))


# --------------------------------------------------------------------------
# 11. Q = 3a^3 - b^2 with an explicit gradient= / output_gradients= (seed 004)

def _q_ref(a):
    x, y, g = a["a"], a["b"], a["external_grad"]
    return {"forward:Q": 3 * x**3 - y**2, "grad:a": 9 * x**2 * g, "grad:b": -2 * y * g}


def _q(a, ctx, impl, const):
    Q_, ga, gb = impl.q_backward(const(a["a"]), const(a["b"]), const(a["external_grad"]))
    return {"forward:Q": Q_, "grad:a": ga, "grad:b": gb}


_Q_QUANTITIES = (
    # two pow kernels, a product, a difference of the two terms
    Q("forward:Q", "forward", n=E + 2, magnitude=lambda a, ref: 3 * np.abs(a["a"]) ** 3 + a["b"] ** 2),
    Q("grad:a", "grad", n=E + 3),  # g * 3, then * 3 * pow(a, 2)
    Q("grad:b", "grad", n=E + 2),  # -g * 2 * pow(b, 1)
)

for _name, _inputs, _seed in (
    ("q_external_grad", lambda rng: {"a": np.array([2.0, 3.0]), "b": np.array([6.0, 4.0]),
                                     "external_grad": np.array([1.0, 1.0])}, 0),
    ("q_external_grad_random", lambda rng: {"a": rng.standard_normal(4), "b": rng.standard_normal(4),
                                            "external_grad": rng.standard_normal(4)}, 15),
):
    register(Case(
        name=f"autograd.{_name}",
        source="seed 004 (Q = 3a^3 - b^2, Q.backward(gradient=external_grad))",
        doc="dQ/da = 9a^2 and dQ/db = -2b, weighted by the external gradient (ones in the seed)",
        inputs=_inputs,
        torch=lambda a, ctx: _q(a, ctx, T_pc, ctx.t),
        tf=lambda a, ctx: _q(a, ctx, F_pc, ctx.tf_const),
        reference=_q_ref,
        quantities=_Q_QUANTITIES,
        seed=_seed,
    ))


# --------------------------------------------------------------------------
# 12. The tanh perceptron with retain_grad() on v and y, against the seed's hand-derived gradients (seed 004)

def _perceptron_ref(a, absolute=False):
    """The seed's hand formulas; ``absolute``: the magnitudes of their rounded terms."""
    x, w = a["x"], a["w"]
    v = x @ w
    y = np.tanh(v)
    gy = (-1 - y) * (-1)
    gv = gy * (1 - np.tanh(v) ** 2)
    if not absolute:
        return {"forward:y": y, "forward:e": 0.5 * (-1 - y) ** 2, "grad:y": gy, "grad:v": gv,
                "grad:w": gv * x, "grad:x": gv * w, "by_hand:y": gy, "by_hand:v": gv, "by_hand:w": gv * x}
    V = np.abs(x) @ np.abs(w)
    Y = 1 + V  # (e^v - e^-v) / (e^v + e^-v): numerator terms over the denominator are <= 1; v's error, damped
    GY = 1 + Y
    GV = GY * (1 + y**2) + np.abs(gy) * 2 * np.abs(y) * Y
    return {"forward:y": Y, "forward:e": np.abs(gy) * GY, "grad:y": GY, "grad:v": GV,
            "grad:w": GV * np.abs(x), "grad:x": GV * np.abs(w), "by_hand:y": GY, "by_hand:v": GV,
            "by_hand:w": GV * np.abs(x)}


def _perceptron(a, ctx, impl, const):
    x, w = const(a["x"]), const(a["w"])
    y, e, gy, gv, gw, gx = impl.perceptron(x, w)
    hy, hv, hw = impl.by_hand(x, w)
    return {"forward:y": y, "forward:e": e, "grad:y": gy, "grad:v": gv, "grad:w": gw, "grad:x": gx,
            "by_hand:y": hy, "by_hand:v": hv, "by_hand:w": hw}


def _perceptron_magnitude(name):
    return lambda a, ref: _perceptron_ref(a, absolute=True)[name]


# v = x . w: 2; y from exps: E, a difference, a sum, a division: E + 4 (tanh in by_hand: 2 + E);
# e: -1 - y, a pow kernel, * 0.5: 2E + 6; backward: the pow kernel's gradient (E + 3), then the
# quotient rule through the exps (about 6 more), then one product for w and x.
_PERCEPTRON_QUANTITIES = tuple(
    Q(name, kind, n=n, magnitude=_perceptron_magnitude(name)) for name, kind, n in (
        ("forward:y", "forward", E + 4),
        ("forward:e", "forward", 2 * E + 6),
        ("grad:y", "grad", 2 * E + 7),
        ("grad:v", "grad", 3 * E + 13),
        ("grad:w", "param_grad", 3 * E + 14),
        ("grad:x", "grad", 3 * E + 14),
        ("by_hand:y", "grad", E + 3),
        ("by_hand:v", "grad", 2 * E + 6),
        ("by_hand:w", "grad", 2 * E + 7),
    )
)

for _name, _inputs, _seed in (
    ("perceptron", lambda rng: {"x": np.array([1.0, 1.0]), "w": np.array([1.0, -0.5])}, 0),
    ("perceptron_random", lambda rng: {"x": rng.standard_normal(2), "w": rng.standard_normal(2)}, 16),
):
    register(Case(
        name=f"autograd.{_name}",
        source="seed 004 (the perceptron, by hand and with retain_grad)",
        doc="v = x . w, y = tanh v (from exps), e = (-1 - y)^2 / 2: autograd's de/dy, de/dv (retain_grad / "
            "tape on intermediates), de/dw against the seed's (-1 - y)(-1), ... (1 - tanh(v)^2), ... x",
        inputs=_inputs,
        torch=lambda a, ctx: _perceptron(a, ctx, T_pc, ctx.t),
        tf=lambda a, ctx: _perceptron(a, ctx, F_pc, ctx.tf_const),
        reference=_perceptron_ref,
        quantities=_PERCEPTRON_QUANTITIES,
        seed=_seed,
    ))


# --------------------------------------------------------------------------
# Negative controls: known-wrong ports of the pitfalls above, which the suite must catch

def _accumulation_forgotten_tf(a, ctx):
    # the naive port: tape.gradient's fresh result taken for x.grad, so a second pass does not add up
    tf = _tf()
    x = ctx.tf_var(a["x"])
    g = None
    for _ in range(2):
        with tf.GradientTape() as tape:
            u = tf.reduce_sum(tf.pow(x, 3))
        g = tape.gradient(u, x)
    return {"grad:x_twice": g}


register(Case(
    name="autograd.neg_accumulation_forgotten",
    source="seed 001 §4.2 (In [15]); pitfalls.md (backward() accumulates, GradientTape.gradient does not)",
    doc="negative control: two passes read from tape.gradient give 3x^2, not the accumulated 2 * 3x^2",
    inputs=lambda rng: {"x": np.array([-3.0, 2.0, 5.0])},
    torch=lambda a, ctx: {"grad:x_twice": T.pow3_accumulation(ctx.t(a["x"]))["twice"]},
    tf=_accumulation_forgotten_tf,
    reference=lambda a: {"grad:x_twice": 6 * a["x"] ** 2},
    quantities=(Q("grad:x_twice", "grad", n=E + 3),),
    expect="differ",
))
register(Case(
    name="autograd.neg_detach_forgotten",
    source="seed 001 §4.2 (In [20]); a port of a.detach() that leaves out tf.stop_gradient",
    doc="negative control: without stop_gradient the (a - b)^2 term also pulls a: not (0.5099, -0.4901)",
    inputs=lambda rng: {"a": np.array(0.5), "b": np.array(-0.5)},
    torch=lambda a, ctx: _descent(a, ctx, T_gd.descend_detach, ctx.t),
    tf=lambda a, ctx: _descent(a, ctx, lambda x, y: F_gd.descend(x, y, eta=1e-4, steps=_STEPS, detach=False),
                               ctx.tf_const),
    reference=lambda a: _descent_ref(a, 1e-4, True),
    quantities=_DESCENT_QUANTITIES,
    expect="differ",
))
