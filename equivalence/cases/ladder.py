"""The two-layer network ladder and its optimizers (seed 003, "Learning PyTorch with examples").

Every rung is compared one step at a time (both frameworks start the step from
the same weights and optimizer state: loss, gradients, updated weights and
state) and over a training trajectory. The reference is the NumPy oracle in
float64 (torch_impl.ladder_numpy and _ladder_model), which also carries the
error bounds: every magnitude here is ``_ladder_model.magnitude`` of a bound
the reference computed beside the value (docs/tolerances-trajectories.md).

Negative controls (``expect="differ"``): the straightforward Keras translations
that are wrong, which the suite must catch: Keras's MeanSquaredError with
reduction="sum", tf.nn.relu for MyReLU, the stock Keras Adam (epsilon placement)
and the stock Keras SGD weight decay with momentum (decoupled).
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from torch_impl import ladder_numpy as NP

from .. import frameworks
from ..case import Case, Q, register
from ..tolerance import ELEMENTARY
from . import _ladder_model as BM

SOURCE = "seed 003 (Learning PyTorch with examples)"
N, D_in, H, D_out = NP.N, NP.D_in, NP.H, NP.D_out
TUTORIAL_LR = 1e-6  # the NumPy / tensors / autograd / MyReLU rungs
NN_LR = 1e-4  # nn, optim, custom Module, dynamic net
WARMUP = 5  # optimizer steps (NumPy, float64) before a per-step optimizer case: a state with history
#: trajectory lengths in the registered cases. The modules train 500 steps; the suite runs the whole
#: 500 for three rungs (tensors, Adam, the dynamic net) and 100 for the rungs whose arithmetic one of
#: those already covers (autograd, MyReLU: the tensors' step; nn: SGD; TwoLayerNet: Adam), to keep
#: the suite's time down (docs/tolerances-trajectories.md lists the costs and the full-length runs)
STEPS_FULL = 500
STEPS_SHORT = 100
#: a trajectory's data and initial weights are drawn as float32 values (as the tutorial's torch.randn
#: and nn.Linear draw them), the same in the float32 and the float64 run: the two runs share one
#: float64 reference, whose running error bounds are most of a trajectory case's cost
TRAJECTORY_INPUTS = "float32"


def _torch(mod):
    frameworks.torch()
    return importlib.import_module(f"torch_impl.{mod}")


def _tf(mod):
    frameworks.keras()  # configures TF (determinism, no TF32) before a tf_impl module imports it
    return importlib.import_module(f"tf_impl.{mod}")


# -- bounds -> magnitudes ------------------------------------------------------------
def _bounds(out, name, by_precision):
    for p in BM.PRECISIONS:
        out[f"_B:{name}:{p}"] = np.asarray(by_precision[p], dtype=np.float64)


def _q(name, kind, n):
    """A quantity whose magnitude is the reference's bound for it (see _ladder_model.magnitude)."""
    return Q(name, kind, n=n, magnitude_uses_dtype=True,
             magnitude=lambda wide, ref, dtype: BM.magnitude({p: ref[f"_B:{name}:{p}"] for p in BM.PRECISIONS},
                                                             n, dtype))


@functools.cache
def _chain_n(kind, depth=0):
    """The chain lengths n the bounds use (loss, and each parameter's gradient), from a zero pass."""
    if kind == "plain":
        params = {"w1.weight": np.zeros((H, D_in)), "w2.weight": np.zeros((D_out, H))}
        uses = [("w1", True), ("w2", False)]
    elif kind == "dynamic":
        params = {k: np.zeros_like(v) for k, v in NP.dynamic_params(np.random.default_rng(0)).items()}
        uses = BM.uses_dynamic(depth)
    else:
        params = {k: np.zeros_like(v) for k, v in NP.two_layer_params(np.random.default_rng(0)).items()}
        uses = BM.uses_two_layer()
    fb = BM.forward_backward(params, np.zeros((N, D_in)), np.zeros((N, D_out)), uses)
    n_r = fb["record"][-1][3].n + 1
    ns = {"loss": n_r + N * D_out + 1}
    ns.update({f"grad:{k}": v.n for k, v in fb["grads"].items()})
    ns["grad"] = max(v.n for v in fb["grads"].values())
    return ns


SGD_OPS = 2 + 7 + 4  # weight decay (2), momentum buffer (Keras's velocity conversions: 5) and Nesterov (2), update (4)
ADAM_OPS = 2 + 3 + 4 + 3 + 3 + 3 + 1 + ELEMENTARY  # wd, m, v, /sqrt(bc2) + eps, quotient and product, update, sqrt


# -- the plain ladder: NumPy, tensors, autograd, MyReLU -------------------------------------
PLAIN_USES = [("w1", True), ("w2", False)]


def _plain_inputs(rng):
    x, y, w1, w2 = NP.tutorial_data(rng)
    return {"x": x, "y": y, "w1": w1, "w2": w2}


def _plain_params(a):
    # the tutorial's w (in, out) is the transpose of a Linear weight
    return {"w1.weight": a["w1"].T, "w2.weight": a["w2"].T}


def _plain_step_reference(a):
    params = _plain_params(a)
    # clamp(min=0) and tf.maximum pass the gradient at 0, as MyReLU and the NumPy rung do
    fb = BM.forward_backward(params, a["x"], a["y"], PLAIN_USES, pass_at_zero=True)
    new, err = BM.SGDModel(TUTORIAL_LR).step(params, fb["grads"])
    out = {"loss": fb["loss"]}
    _bounds(out, "loss", {p: fb["loss_bound"](p) for p in BM.PRECISIONS})
    for w in ("w1", "w2"):
        gb = fb["grads"][f"{w}.weight"]
        out[f"grad:{w}"] = gb.value.T
        _bounds(out, f"grad:{w}", {p: gb.bound(p).T for p in BM.PRECISIONS})
        out[w] = new[f"{w}.weight"].T
        _bounds(out, w, {p: err[p][f"{w}.weight"].T for p in BM.PRECISIONS})
    return out


def _plain_step_quantities():
    ns = _chain_n("plain")
    return (_q("loss", "forward", ns["loss"]),
            _q("grad:w1", "param_grad", ns["grad:w1.weight"]), _q("grad:w2", "param_grad", ns["grad:w2.weight"]),
            _q("w1", "step", ns["grad"] + SGD_OPS), _q("w2", "step", ns["grad"] + SGD_OPS))


def _plain_out(out):
    return {"loss": out["loss"], "grad:w1": out["grad_w1"], "grad:w2": out["grad_w2"], "w1": out["w1"], "w2": out["w2"]}


def _plain_trajectory_reference(a, steps):
    params = _plain_params(a)
    res = _trajectory(params, a["x"], a["y"], lambda t: PLAIN_USES, BM.SGDModel(TUTORIAL_LR), steps, True)
    out = {"losses": np.array(res["losses"]), "w1": res["params"]["w1.weight"].T, "w2": res["params"]["w2.weight"].T,
           "_growth": res["growth"]}
    _bounds(out, "losses", res["loss_bounds"])
    for w in ("w1", "w2"):
        _bounds(out, w, res["param_bound"])
    return out


def _trajectory_quantities(ns, names, step_ops):
    return (_q("losses", "trajectory", ns["loss"]),) + tuple(
        _q(name, "trajectory", ns["grad"] + step_ops) for name in names)


for _rung, _doc, _steps in (
        ("ladder_tensors", "raw tensors, the hand-written backward pass (TF: no tape)", STEPS_FULL),
        ("ladder_autograd", "autograd: backward() / GradientTape, manual update under no_grad / assign_sub", STEPS_SHORT),
        ("my_relu", "MyReLU: torch.autograd.Function / tf.custom_gradient", STEPS_SHORT)):
    _name = _rung.removeprefix("ladder_")
    register(Case(
        name=f"ladder.{_name}_step",
        source=f"{SOURCE} §{_name}",
        doc=f"one step of the tutorial's loop from the same w1, w2: {_doc}",
        inputs=_plain_inputs,
        torch=lambda a, ctx, _r=_rung: _plain_out(_torch(_r).step(*(ctx.t(a[k]) for k in ("x", "y", "w1", "w2")))),
        tf=lambda a, ctx, _r=_rung: _plain_out(_tf(_r).step(*(ctx.tf_const(a[k]) for k in ("x", "y", "w1", "w2")))),
        reference=_plain_step_reference,
        quantities=_plain_step_quantities(),
    ))
    register(Case(
        name=f"ladder.{_name}_trajectory",
        source=f"{SOURCE} §{_name}",
        doc=f"the tutorial's training, {_steps} steps ({_doc}): every loss, and the final weights",
        inputs=_plain_inputs,
        torch=lambda a, ctx, _r=_rung, _n=_steps: _traj_out(
            _torch(_r).train(*(ctx.t(a[k]) for k in ("x", "y", "w1", "w2")), steps=_n), ("w1", "w2")),
        tf=lambda a, ctx, _r=_rung, _n=_steps: _traj_out(
            _tf(_r).train(*(ctx.tf_const(a[k]) for k in ("x", "y", "w1", "w2")), steps=_n), ("w1", "w2")),
        reference=lambda a, _n=_steps: _plain_trajectory_reference(a, _n),
        quantities=_trajectory_quantities(_chain_n("plain"), ("w1", "w2"), SGD_OPS),
        input_precision=TRAJECTORY_INPUTS,
        tags=("slow",),
    ))


def _traj_out(out, names):
    res = {"losses": out["losses"]}
    params = out.get("params", out)
    res.update({k: params[k] for k in names})
    return res


# -- MyReLU at exact zeros --------------------------------------------------------------
def _zeros_inputs(rng):
    x = rng.standard_normal(64)
    x[::4] = 0.0  # exact zeros: MyReLU passes the gradient there, relu does not
    x[1::8] = -0.0
    return {"x": x, "grad_output": rng.standard_normal(64)}


def _zeros_reference(a):
    return {"out": np.maximum(a["x"], 0), "grad:x": np.where(a["x"] < 0, 0.0, a["grad_output"])}


def _relu_out(pair):
    return {"out": pair[0], "grad:x": pair[1]}


register(Case(
    name="ladder.my_relu_zeros",
    source=f"{SOURCE} §Defining new autograd functions",
    doc="MyReLU and its gradient at inputs with exact zeros (+0 and -0): the gradient passes at 0",
    inputs=_zeros_inputs,
    torch=lambda a, ctx: _relu_out(_torch("my_relu").relu_and_grad(ctx.t(a["x"]), ctx.t(a["grad_output"]))),
    tf=lambda a, ctx: _relu_out(_tf("my_relu").relu_and_grad(ctx.tf_const(a["x"]), ctx.tf_const(a["grad_output"]))),
    reference=_zeros_reference,
    # max(x, 0) and copying or zeroing the incoming gradient round nothing: bit equality
    quantities=(Q("out", "forward", n=0), Q("grad:x", "grad", n=0)),
))


def _builtin_relu(a, ctx):
    tf = frameworks.tf()
    x = ctx.tf_const(a["x"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.nn.relu(x)
    return {"out": out, "grad:x": tape.gradient(out, x, output_gradients=ctx.tf_const(a["grad_output"]))}


register(Case(
    name="ladder.my_relu_builtin_relu",
    source=f"{SOURCE} §Defining new autograd functions",
    doc="negative control: tf.nn.relu as a port of MyReLU zeroes the gradient at 0; the suite must see it",
    inputs=_zeros_inputs,
    torch=lambda a, ctx: _relu_out(_torch("my_relu").relu_and_grad(ctx.t(a["x"]), ctx.t(a["grad_output"]))),
    tf=_builtin_relu,
    reference=_zeros_reference,
    quantities=(Q("out", "forward", n=0), Q("grad:x", "grad", n=0)),
    expect="differ",
))


# -- nn.Sequential, TwoLayerNet, DynamicNet: parameters by state_dict name -----------------
def _params(a):
    return {k[2:]: v for k, v in a.items() if k.startswith("p:")}


def _state(a):
    state = {}
    for k, v in a.items():
        if k.startswith("s:"):
            _, key, name = k.split(":", 2)
            state.setdefault(key, {})[name] = v
    if "step" in a:
        state["step"] = int(a["step"])
    return state


def _flat(out, state=None):
    res = {"loss": out["loss"]}
    res.update({f"grad:{k}": v for k, v in out["grad"].items()})
    res.update(out["params"])
    for key, arrays in (state or {}).items():
        if key != "step":
            res.update({f"state:{key}:{k}": v for k, v in arrays.items()})
    return res


def _step_reference(a, uses, pass_at_zero, opt):
    params = _params(a)
    fb = BM.forward_backward(params, a["x"], a["y"], uses, pass_at_zero)
    new, err = opt.step(params, fb["grads"])
    out = {"loss": fb["loss"]}
    _bounds(out, "loss", {p: fb["loss_bound"](p) for p in BM.PRECISIONS})
    for k, gb in fb["grads"].items():
        out[f"grad:{k}"] = gb.value
        _bounds(out, f"grad:{k}", {p: gb.bound(p) for p in BM.PRECISIONS})
    for k, v in new.items():
        out[k] = v
        _bounds(out, k, {p: err[p][k] for p in BM.PRECISIONS})
    if isinstance(opt, BM.AdamModel):
        for key, vals, errs in (("exp_avg", opt.m, opt.m_err), ("exp_avg_sq", opt.v, opt.v_err)):
            for k, v in vals.items():
                out[f"state:{key}:{k}"] = v
                _bounds(out, f"state:{key}:{k}", {p: errs[p][k] for p in BM.PRECISIONS})
    elif opt.momentum:
        for k, v in opt.buf.items():
            out[f"state:momentum_buffer:{k}"] = v
            _bounds(out, f"state:momentum_buffer:{k}", {p: opt.buf_err[p][k] for p in BM.PRECISIONS})
    return out


def _step_quantities(ns, names, step_ops, state_keys=()):
    qs = [_q("loss", "forward", ns["loss"])]
    qs += [_q(f"grad:{k}", "param_grad", ns[f"grad:{k}"]) for k in names]
    qs += [_q(k, "step", ns["grad"] + step_ops) for k in names]
    qs += [_q(f"state:{key}:{k}", "step", ns["grad"] + step_ops) for key in state_keys for k in names]
    return tuple(qs)


TWO_LAYER = tuple(NP.two_layer_params(np.random.default_rng(0)))  # "0.weight", "0.bias", "2.weight", "2.bias"


def _nn_inputs(rng, names=("0", "2")):
    x, y, _, _ = NP.tutorial_data(rng)
    return {"x": x, "y": y, **{f"p:{k}": v for k, v in NP.two_layer_params(rng, names).items()}}


def _nn_torch(a, ctx):
    T = _torch("ladder_nn")
    return _flat(T.step(T.build_model(_params(a), dtype=ctx.torch_dtype), ctx.t(a["x"]), ctx.t(a["y"]), NN_LR))


def _nn_tf(a, ctx):
    F = _tf("ladder_nn")
    return _flat(F.step(F.build_model(_params(a), dtype=ctx.dtype), ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), NN_LR))


register(Case(
    name="ladder.nn_step",
    source=f"{SOURCE} §PyTorch: nn",
    doc="Sequential(Linear, ReLU, Linear) + MSELoss(sum) vs keras.Sequential + SumSquaredError, manual update",
    inputs=_nn_inputs,
    torch=_nn_torch,
    tf=_nn_tf,
    # nn.ReLU and keras ReLU block the gradient at 0
    reference=lambda a: _step_reference(a, BM.uses_two_layer(), False, BM.SGDModel(NN_LR)),
    quantities=_step_quantities(_chain_n("two_layer"), TWO_LAYER, SGD_OPS),
))


def _nn_keras_mse(a, ctx):
    F, keras, tf = _tf("ladder_nn"), frameworks.keras(), frameworks.tf()
    model = F.build_model(_params(a), dtype=ctx.dtype)
    loss_fn = keras.losses.MeanSquaredError(reduction="sum", dtype=ctx.dtype)  # the literal translation
    with tf.GradientTape() as tape:
        loss = loss_fn(ctx.tf_const(a["y"]), model(ctx.tf_const(a["x"])))
    grads = tape.gradient(loss, model.trainable_variables)
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    from tf_impl import _weights
    return {"loss": loss, **{f"grad:{k}": v for k, v in _weights.named_gradients(F.torch_layers(model), by_path).items()}}


def _nn_loss_reference(a):
    out = _step_reference(a, BM.uses_two_layer(), False, BM.SGDModel(NN_LR))
    return {k: v for k, v in out.items() if k == "loss" or k.startswith(("grad:", "_B:loss:", "_B:grad:"))}


register(Case(
    name="ladder.nn_keras_mse_sum",
    source=f"{SOURCE} §PyTorch: nn",
    doc="negative control: keras MeanSquaredError(reduction='sum') sums per-sample means (torch's sum / D_out)",
    inputs=_nn_inputs,
    torch=lambda a, ctx: {k: v for k, v in _nn_torch(a, ctx).items() if k == "loss" or k.startswith("grad:")},
    tf=_nn_keras_mse,
    reference=_nn_loss_reference,
    quantities=_step_quantities(_chain_n("two_layer"), TWO_LAYER, 0)[:1 + len(TWO_LAYER)],
    expect="differ",
))


# -- optimizers: one step from a state with history ----------------------------------------
def _optim_inputs(kind, hyper, warmup=WARMUP):
    """Data, parameters and optimizer state after ``warmup`` NumPy steps of torch's update."""

    def inputs(rng):
        a = _nn_inputs(rng)
        params = _params(a)
        if kind == "adam":
            opt = NP.Adam(**hyper)
        else:
            opt = NP.SGD(**hyper)
        for _ in range(warmup):
            _, grads = NP.two_layer_loss_and_grads(params, a["x"], a["y"])
            params = opt.step(params, grads)
        a.update({f"p:{k}": v for k, v in params.items()})
        if kind == "adam":
            a.update({f"s:exp_avg:{k}": v for k, v in opt.m.items()})
            a.update({f"s:exp_avg_sq:{k}": v for k, v in opt.v.items()})
            a["step"] = np.array(opt.t)
        elif hyper.get("momentum"):
            a.update({f"s:momentum_buffer:{k}": v for k, v in opt.buf.items()})
        return a

    return inputs


def _optim_torch(kind, hyper):
    def build(a, ctx):
        T = _torch("ladder_optim")
        model = T.build_model(_params(a), dtype=ctx.torch_dtype)
        opt = T.make_optimizer(model, kind, **hyper)
        if _state(a):
            T.set_state(opt, model, _state(a))
        out = T.step(model, ctx.t(a["x"]), ctx.t(a["y"]), opt)
        return _flat(out, T.get_state(opt, model))

    return build


def _optim_tf(kind, hyper):
    def build(a, ctx):
        F = _tf("ladder_optim")
        model = F.build_model(_params(a), dtype=ctx.dtype)
        opt = F.make_optimizer(model, kind, **hyper)
        if _state(a):
            F.set_state(opt, model, _state(a))
        out = F.step(model, ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), opt)
        return _flat(out, F.get_state(opt, model))

    return build


def _optim_model(kind, hyper, a):
    state = _state(a)
    if kind == "adam":
        return BM.AdamModel(hyper["lr"], hyper.get("betas", (0.9, 0.999)), hyper.get("eps", 1e-8),
                            hyper.get("weight_decay", 0.0), state=state)
    return BM.SGDModel(hyper["lr"], hyper.get("momentum", 0.0), hyper.get("nesterov", False),
                       hyper.get("weight_decay", 0.0), buffers=state.get("momentum_buffer"))


def _register_optim(name, kind, hyper, doc, tf_kind=None, expect="equal", dtypes=("float32", "float64")):
    state_keys = ("exp_avg", "exp_avg_sq") if kind == "adam" else (("momentum_buffer",) if hyper.get("momentum") else ())
    register(Case(
        name=f"ladder.optim_{name}",
        source=f"{SOURCE} §PyTorch: optim",
        doc=doc,
        inputs=_optim_inputs(kind, hyper),
        torch=_optim_torch(kind, hyper),
        tf=_optim_tf(tf_kind or kind, hyper),
        reference=lambda a: _step_reference(a, BM.uses_two_layer(), False, _optim_model(kind, hyper, a)),
        quantities=_step_quantities(_chain_n("two_layer"), TWO_LAYER, ADAM_OPS if kind == "adam" else SGD_OPS,
                                    state_keys),
        expect=expect,
        dtypes=dtypes,
    ))


_register_optim("adam_step", "adam", {"lr": NN_LR},
                "torch.optim.Adam vs TorchAdam (tf_impl): one step from a state after 5 steps, the tutorial's lr")
_register_optim("adam_eps_step", "adam", {"lr": NN_LR, "eps": 0.1},
                "Adam with eps=0.1 (where eps matters; a value Keras documents for Inception): TorchAdam still agrees")
_register_optim("adam_weight_decay_step", "adam", {"lr": NN_LR, "weight_decay": 0.1},
                "Adam with torch's coupled weight decay (grad + wd p), reproduced by TorchAdam")
_register_optim("adam_keras_stock", "adam", {"lr": NN_LR, "eps": 0.1},
                "negative control: keras.optimizers.Adam given torch's lr, betas and eps adds eps before the bias "
                "correction (eps / sqrt(1 - beta_2^t) in torch's terms)", tf_kind="keras_adam", expect="differ")
_register_optim("sgd_momentum_step", "sgd", {"lr": NN_LR, "momentum": 0.9},
                "SGD with momentum 0.9 (the dynamic net's optimizer): torch.optim.SGD vs TorchSGD")
_register_optim("sgd_nesterov_step", "sgd", {"lr": NN_LR, "momentum": 0.9, "nesterov": True},
                "SGD with Nesterov momentum: torch.optim.SGD vs TorchSGD")
_register_optim("sgd_momentum_keras_step", "sgd", {"lr": NN_LR, "momentum": 0.9},
                "keras.optimizers.SGD(momentum=0.9) is torch's algorithm (it keeps the velocity -lr * buf); "
                "float32 only: in float64 Keras rounds the momentum to float32 (the next case)",
                tf_kind="keras_sgd", dtypes=("float32",))
_register_optim("sgd_nesterov_keras_step", "sgd", {"lr": NN_LR, "momentum": 0.9, "nesterov": True},
                "keras.optimizers.SGD(nesterov=True) is torch's Nesterov; float32 only, as above",
                tf_kind="keras_sgd", dtypes=("float32",))
_register_optim("sgd_momentum_keras_float64", "sgd", {"lr": NN_LR, "momentum": 0.9},
                "negative control: in float64, keras SGD's ops.cast(momentum) rounds 0.9 through float32 "
                "(0.8999999761581421): the new momentum buffer is off by 2.4e-8 relative",
                tf_kind="keras_sgd", expect="differ", dtypes=("float64",))
_register_optim("sgd_weight_decay_step", "sgd", {"lr": NN_LR, "momentum": 0.9, "weight_decay": 0.1},
                "SGD with momentum and torch's coupled weight decay (into the buffer), reproduced by TorchSGD")
_register_optim("sgd_weight_decay_keras_stock", "sgd", {"lr": NN_LR, "momentum": 0.9, "weight_decay": 0.1},
                "negative control: keras SGD's weight_decay is decoupled, so the momentum buffer misses wd * p; "
                "float64 only: in float32 wd * p (1e-3 of the buffer) is below this network's gradient bound",
                tf_kind="keras_sgd", expect="differ", dtypes=("float64",))
_register_optim("sgd_weight_decay_plain_step", "sgd", {"lr": NN_LR, "weight_decay": 0.1},
                "without momentum, Keras's decoupled decay p - lr wd p - lr g is torch's coupled p - lr (g + wd p); "
                "float32 only: in float64 Keras rounds weight_decay through float32",
                tf_kind="keras_sgd", dtypes=("float32",))


# -- trajectories of the module rungs -------------------------------------------------------
def _trajectory(params, x, y, uses_at, opt, steps, pass_at_zero):
    """The float64 run with its running bounds: per step the loss and its bound, then the final parameters.

    The parameters' bound E_t (a Euclidean norm over all of them) grows as
    E_{t+1} = max(1, g_t) E_t + rho_t: rho_t the step's own rounding bound, g_t the
    growth of a perturbation over the step, measured on a float64 twin run
    (_ladder_model.Twin; docs/tolerances-trajectories.md).
    """
    E = {p: 0.0 for p in BM.PRECISIONS}
    twin = BM.Twin(params, _plain_optimizer(opt))
    losses, loss_bounds, growth = [], {p: [] for p in BM.PRECISIONS}, []
    for t in range(steps):
        uses = uses_at(t)
        # the carried error E widens the ReLUs' reach and the loss bound (forward_backward's E)
        fb = BM.forward_backward(params, x, y, uses, pass_at_zero, E=dict(E))
        losses.append(fb["loss"])
        for p in BM.PRECISIONS:
            loss_bounds[p].append(fb["loss_bound"](p))
        masks = [(z.value >= 0 if pass_at_zero else z.value > 0) for _, relu, _, z in fb["record"] if relu]
        params, err = opt.step(params, fb["grads"])
        g_t = twin.step(x, y, uses, pass_at_zero, _expand(masks, uses), params, opt)
        growth.append(g_t)
        for p in BM.PRECISIONS:
            E[p] = max(1.0, g_t) * E[p] + float(np.sqrt(sum(np.sum(np.square(e)) for e in err[p].values())))
    return {"losses": losses, "loss_bounds": {p: np.array(v) for p, v in loss_bounds.items()},
            "params": params, "param_bound": E, "growth": np.array(growth)}


def _plain_optimizer(opt):
    """The bound-free NumPy optimizer (torch_impl.ladder_numpy) with the same hyperparameters and state."""
    if isinstance(opt, BM.AdamModel):
        twin = NP.Adam(opt.lr, (opt.b1, opt.b2), opt.eps, opt.weight_decay)
        twin.m, twin.v, twin.t = dict(opt.m), dict(opt.v), opt.t
        return twin
    twin = NP.SGD(opt.lr, opt.momentum, opt.nesterov, opt.weight_decay)
    twin.buf = dict(opt.buf)
    return twin


def _expand(masks, uses):
    """Masks per ReLU use -> per layer use (None where no ReLU follows)."""
    it = iter(masks)
    return [next(it) if relu else None for _, relu in uses]


def _module_trajectory_reference(a, uses_at, pass_at_zero, opt, steps, names):
    res = _trajectory(_params(a), a["x"], a["y"], uses_at, opt, steps, pass_at_zero)
    out = {"losses": np.array(res["losses"]), "_growth": res["growth"]}
    _bounds(out, "losses", res["loss_bounds"])
    for k in names:
        out[k] = res["params"][k]
        _bounds(out, k, res["param_bound"])
    return out


def _register_trajectory(name, section, module, names, uses_at, pass_at_zero, make_opt, steps, doc,
                         inputs=_nn_inputs, depths=False):
    def torch_build(a, ctx):
        T = _torch(module)
        model = T.build_model(_params(a), dtype=ctx.torch_dtype)
        opt = make_opt["torch"](T, model)
        kw = {"depths": a["depths"]} if depths else {}
        return _traj_out(T.train(model, ctx.t(a["x"]), ctx.t(a["y"]), opt, steps=steps, **kw), names)

    def tf_build(a, ctx):
        F = _tf(module)
        model = F.build_model(_params(a), dtype=ctx.dtype)
        opt = make_opt["tf"](F, model)
        kw = {"depths": a["depths"]} if depths else {}
        return _traj_out(F.train(model, ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), opt, steps=steps, **kw), names)

    register(Case(
        name=f"ladder.{name}",
        source=f"{SOURCE} §{section}",
        doc=doc,
        inputs=inputs,
        torch=torch_build,
        tf=tf_build,
        reference=lambda a: _module_trajectory_reference(a, uses_at(a), pass_at_zero, make_opt["ref"](), steps, names),
        quantities=_trajectory_quantities(_chain_n("dynamic", 3) if depths else _chain_n("two_layer"), names,
                                          SGD_OPS if "sgd" in make_opt["kind"] else ADAM_OPS),
        input_precision=TRAJECTORY_INPUTS,
        tags=("slow",),
    ))




_register_trajectory(
    "nn_trajectory", "PyTorch: nn", "ladder_nn", TWO_LAYER, lambda a: (lambda t: BM.uses_two_layer()), False,
    {"kind": "sgd", "torch": lambda T, m: NN_LR, "tf": lambda F, m: NN_LR, "ref": lambda: BM.SGDModel(NN_LR)},
    STEPS_SHORT, f"the tutorial's nn training with the manual update, {STEPS_SHORT} steps: every loss, the final weights")
_register_trajectory(
    "optim_adam_trajectory", "PyTorch: optim", "ladder_optim", TWO_LAYER, lambda a: (lambda t: BM.uses_two_layer()),
    False,
    {"kind": "adam", "torch": lambda T, m: T.make_optimizer(m, "adam", lr=NN_LR),
     "tf": lambda F, m: F.make_optimizer(m, "adam", lr=NN_LR), "ref": lambda: BM.AdamModel(NN_LR)},
    STEPS_FULL, f"the tutorial's {STEPS_FULL}-step Adam training: torch.optim.Adam vs TorchAdam")
TWO_LAYER_NET = ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias")
_register_trajectory(
    "two_layer_net_trajectory", "Custom nn Modules", "two_layer_net", TWO_LAYER_NET,
    lambda a: (lambda t: BM.uses_two_layer(("linear1", "linear2"))), True,
    {"kind": "adam", "torch": lambda T, m: _torch("ladder_optim").make_optimizer(m, "adam", lr=NN_LR),
     "tf": lambda F, m: _tf("ladder_optim").make_optimizer(m, "adam", lr=NN_LR), "ref": lambda: BM.AdamModel(NN_LR)},
    STEPS_SHORT, f"TwoLayerNet (Module / keras.Model subclass) trained {STEPS_SHORT} steps with Adam",
    inputs=lambda rng: _nn_inputs(rng, ("linear1", "linear2")))
DYNAMIC = tuple(NP.dynamic_params(np.random.default_rng(0)))


def _dynamic_inputs(rng, steps=STEPS_FULL):
    x, y, _, _ = NP.tutorial_data(rng)
    a = {"x": x, "y": y, **{f"p:{k}": v for k, v in NP.dynamic_params(rng).items()}}
    a["depths"] = rng.integers(0, 4, size=steps)  # the one seeded source of the random depths, shared
    return a


_register_trajectory(
    "dynamic_net_trajectory", "Control Flow + Weight Sharing", "dynamic_net", DYNAMIC,
    lambda a: (lambda t: BM.uses_dynamic(int(a["depths"][t]))), True,
    {"kind": "sgd", "torch": lambda T, m: T.make_optimizer(m), "tf": lambda F, m: F.make_optimizer(m),
     "ref": lambda: BM.SGDModel(NN_LR, momentum=0.9)},
    STEPS_FULL, f"DynamicNet trained {STEPS_FULL} steps (SGD, momentum 0.9), the random depths from one shared "
    "seeded source", inputs=_dynamic_inputs, depths=True)


# -- TwoLayerNet and DynamicNet, one step -----------------------------------------------------
def _used(state, out):
    """The momentum buffers of the parameters that got a gradient (torch keeps none for the others)."""
    return {key: {k: v for k, v in arrays.items() if k in out["grad"]} for key, arrays in state.items()}


def _module_step(module, kind, hyper):
    def torch_build(a, ctx):
        T = _torch(module)
        model = T.build_model(_params(a), dtype=ctx.torch_dtype)
        if module == "dynamic_net":
            opt = T.make_optimizer(model)
            out = T.step(model, ctx.t(a["x"]), ctx.t(a["y"]), opt, int(a["depth"]))
            return _flat(out, _used(_torch("ladder_optim").get_state(opt, model), out))
        O = _torch("ladder_optim")
        opt = O.make_optimizer(model, kind, **hyper)
        return _flat(T.step(model, ctx.t(a["x"]), ctx.t(a["y"]), opt), O.get_state(opt, model))

    def tf_build(a, ctx):
        F = _tf(module)
        model = F.build_model(_params(a), dtype=ctx.dtype)
        if module == "dynamic_net":
            opt = F.make_optimizer(model)
            out = F.step(model, ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), opt, int(a["depth"]))
            return _flat(out, _used(_tf("ladder_optim").get_state(opt, model), out))
        O = _tf("ladder_optim")
        opt = O.make_optimizer(model, kind, **hyper)
        return _flat(F.step(model, ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), opt), O.get_state(opt, model))

    return torch_build, tf_build


_t, _f = _module_step("two_layer_net", "adam", {"lr": NN_LR})
register(Case(
    name="ladder.two_layer_net_step",
    source=f"{SOURCE} §Custom nn Modules",
    doc="TwoLayerNet (nn.Module / keras.Model subclass, attributes linear1, linear2): the first Adam step",
    inputs=lambda rng: _nn_inputs(rng, ("linear1", "linear2")),
    torch=_t,
    tf=_f,
    reference=lambda a: _step_reference(a, BM.uses_two_layer(("linear1", "linear2")), True, BM.AdamModel(NN_LR)),
    quantities=_step_quantities(
        {**_chain_n("two_layer"), **{k.replace("0.", "linear1.").replace("2.", "linear2."): v
                                     for k, v in _chain_n("two_layer").items()}}, TWO_LAYER_NET, ADAM_OPS,
        ("exp_avg", "exp_avg_sq")),
))

for _depth in range(4):
    _t, _f = _module_step("dynamic_net", "sgd", {})

    def _dyn_inputs(rng, _d=_depth):
        a = _dynamic_inputs(rng, steps=1)
        del a["depths"]
        a["depth"] = np.array(_d)
        return a

    _names = DYNAMIC if _depth else tuple(k for k in DYNAMIC if not k.startswith("middle"))
    register(Case(
        name=f"ladder.dynamic_net_step_depth{_depth}",
        source=f"{SOURCE} §Control Flow + Weight Sharing",
        doc=f"DynamicNet with the middle layer used {_depth} times: its gradient sums over the uses"
            + (" (unused: no gradient, and SGD leaves it alone)" if not _depth else ""),
        inputs=_dyn_inputs,
        torch=_t,
        tf=_f,
        reference=lambda a: _step_reference(a, BM.uses_dynamic(int(a["depth"])), True,
                                            BM.SGDModel(NN_LR, momentum=0.9)),
        quantities=_step_quantities(_chain_n("dynamic", _depth), _names, SGD_OPS, ("momentum_buffer",))
        + ((_q("middle_linear.weight", "step", _chain_n("dynamic", 0)["grad"] + SGD_OPS),
            _q("middle_linear.bias", "step", _chain_n("dynamic", 0)["grad"] + SGD_OPS)) if not _depth else ()),
        seed=_depth,
    ))
