"""The two-layer network ladder (seed 003): behaviours, properties and the tutorial's printed runs.

The generic suite checks that every registered ``ladder.*`` case passes; here:
MyReLU's rule at exact zeros, the negative controls are *detected*, the
optimizer ports match torch step for step over random hyperparameters, the
shared layer's gradient is the sum over its uses, the weight and state
adapters, and every ``python -m`` module trains like the tutorial.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from equivalence import frameworks

torch = frameworks.torch()
tf = frameworks.tf()
keras = frameworks.keras()

from torch_impl import dynamic_net as T_dyn  # noqa: E402
from torch_impl import ladder_nn as T_nn  # noqa: E402
from torch_impl import ladder_numpy as NP  # noqa: E402
from torch_impl import ladder_optim as T_opt  # noqa: E402
from torch_impl import my_relu as T_relu  # noqa: E402
from tf_impl import _weights  # noqa: E402
from tf_impl import dynamic_net as F_dyn  # noqa: E402
from tf_impl import ladder_nn as F_nn  # noqa: E402
from tf_impl import ladder_optim as F_opt  # noqa: E402
from tf_impl import my_relu as F_relu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
U32 = 2.0**-24


# -- MyReLU: the gradient passes at exact zeros -------------------------------------------
def _with_zeros(draw_floats):
    """Arrays where a good share of the elements are exactly +0.0 or -0.0."""
    return hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=9),
                      elements=st.one_of(st.just(0.0), st.just(-0.0), draw_floats))


FINITE = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@given(x=_with_zeros(FINITE), data=st.data())
def test_my_relu_rule_with_exact_zeros(x, data):
    """Both ports: out = max(x, 0) and the gradient is zeroed where x < 0 only, bit for bit."""
    g = data.draw(hnp.arrays(np.float64, x.shape, elements=FINITE))
    want_out, want_grad = np.maximum(x, 0), np.where(x < 0, 0.0, g)
    out, grad = T_relu.relu_and_grad(torch.tensor(x), torch.tensor(g))
    np.testing.assert_array_equal(out.numpy(), want_out, err_msg="torch MyReLU forward")
    np.testing.assert_array_equal(grad.numpy(), want_grad, err_msg="torch MyReLU backward")
    out, grad = F_relu.relu_and_grad(tf.constant(x), tf.constant(g))
    np.testing.assert_array_equal(out.numpy(), want_out, err_msg="tf my_relu forward")
    np.testing.assert_array_equal(grad.numpy(), want_grad, err_msg="tf my_relu backward")


def test_my_relu_differs_from_builtin_relu_exactly_at_zero():
    """At x = 0 MyReLU passes the gradient; torch.relu and tf.nn.relu give 0; elsewhere all agree."""
    x = np.array([-2.0, -0.0, 0.0, 0.0, 3.0])
    g = np.array([1.0, 2.0, 3.0, -4.0, 5.0])
    _, mine_t = T_relu.relu_and_grad(torch.tensor(x), torch.tensor(g))
    _, mine_f = F_relu.relu_and_grad(tf.constant(x), tf.constant(g))
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(g))
    xf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xf)
        out = tf.nn.relu(xf)
    builtin_f = tape.gradient(out, xf, output_gradients=tf.constant(g))
    np.testing.assert_array_equal(mine_t.numpy(), [0.0, 2.0, 3.0, -4.0, 5.0])
    np.testing.assert_array_equal(mine_f.numpy(), [0.0, 2.0, 3.0, -4.0, 5.0])
    np.testing.assert_array_equal(xt.grad.numpy(), [0.0, 0.0, 0.0, 0.0, 5.0])
    np.testing.assert_array_equal(builtin_f.numpy(), [0.0, 0.0, 0.0, 0.0, 5.0])


def test_my_relu_layer_in_both_frameworks():
    x = np.array([[-1.0, 0.0, 2.0]])
    assert T_relu.MyReLULayer()(torch.tensor(x)).tolist() == [[0.0, 0.0, 2.0]]
    assert F_relu.MyReLULayer(dtype="float64")(tf.constant(x)).numpy().tolist() == [[0.0, 0.0, 2.0]]


# -- the negative controls are detected ------------------------------------------------------
NEGATIVE_CONTROLS = ["ladder.my_relu_builtin_relu", "ladder.nn_keras_mse_sum", "ladder.optim_adam_keras_stock",
                     "ladder.optim_sgd_weight_decay_keras_stock", "ladder.optim_sgd_momentum_keras_float64"]


@pytest.mark.parametrize("name", NEGATIVE_CONTROLS)
def test_negative_control_is_detected(name):
    """Each known-wrong port is registered as expect='differ' and its difference exceeds the tolerance."""
    from equivalence.case import select
    from equivalence.frameworks import Context
    from equivalence.runner import run_case

    (case,) = select(name)
    assert case.expect == "differ"
    for dtype in case.dtypes:
        result = run_case(case, Context(dtype))
        assert not result.error, result.error
        assert result.detected, f"{name} ({dtype}): the wrong port was not caught"
        assert result.passed
        # the reference side itself is right: only the TF side is caught
        assert all(r.comparison.passed for r in result.rows if r.pair == "torch~reference"), name


def test_keras_mse_sum_is_torch_sum_over_d_out():
    """The pitfall behind ladder.nn_keras_mse_sum, and the port that avoids it."""
    rng = np.random.default_rng(0)
    y_pred, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    torch_sum = torch.nn.MSELoss(reduction="sum")(torch.tensor(y_pred), torch.tensor(y)).item()
    keras_sum = float(keras.losses.MeanSquaredError(reduction="sum", dtype="float64")(y, y_pred))
    port = float(F_nn.SumSquaredError(dtype="float64")(y, y_pred))
    assert port == pytest.approx(torch_sum, rel=1e-14)
    assert keras_sum == pytest.approx(torch_sum / 3, rel=1e-14)


def test_tf_cast_of_a_python_float_rounds_through_float32():
    """Why the stock Keras SGD/Adam differ in float64, and why the ports use tf.constant."""
    assert tf.cast(0.9, tf.float64).numpy() == np.float64(np.float32(0.9)) != 0.9
    assert tf.constant(0.9, tf.float64).numpy() == 0.9


# -- the optimizer ports, step for step --------------------------------------------------------
def _small_model_pair(rng, dtype):
    """A Linear(5, 3) in torch and a Dense(3) in Keras with the same weights, and a fixed loss."""
    w, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    t_model = torch.nn.Linear(5, 3).to(getattr(torch, dtype))
    t_model.load_state_dict({"weight": torch.tensor(w, dtype=getattr(torch, dtype)),
                             "bias": torch.tensor(b, dtype=getattr(torch, dtype))})
    dense = keras.layers.Dense(3, dtype=dtype)
    dense.build((None, 5))
    _weights.load({"": dense}, {".weight": w, ".bias": b})
    return t_model, dense


def _run_both(rng, dtype, t_opt, f_opt, t_model, dense, steps):
    """Feed the same random gradients to both optimizers; yield the parameters after each step."""
    t_params = list(t_model.parameters())
    f_vars = [dense.kernel, dense.bias]
    for _ in range(steps):
        gw, gb = rng.standard_normal((3, 5)) * 10.0 ** rng.integers(-4, 2), rng.standard_normal(3)
        for p, gr in zip(t_params, (gw, gb)):
            p.grad = torch.tensor(gr, dtype=p.dtype)
        t_opt.step()
        f_opt.apply_gradients(zip([tf.constant(gw.T, dtype=dtype), tf.constant(gb, dtype=dtype)], f_vars))
        yield ([p.detach().numpy().astype(np.float64) for p in t_params],
               [dense.kernel.numpy().T.astype(np.float64), dense.bias.numpy().astype(np.float64)])


def _assert_steps_match(pairs, dtype, label):
    # the ports make torch's operations in torch's order: at most a few ulps apart at every step
    ulp = {"float32": U32, "float64": 2.0**-53}[dtype]
    for t, (tp, fp) in enumerate(pairs):
        for a, b in zip(tp, fp):
            np.testing.assert_allclose(b, a, rtol=8 * ulp, atol=8 * ulp * np.abs(a).max(),
                                       err_msg=f"{label}: step {t + 1}")


@given(lr=st.floats(1e-5, 1e-1), b1=st.floats(0.0, 0.99), b2=st.floats(0.9, 0.9999), eps=st.sampled_from([1e-8, 1e-3, 0.1]),
       wd=st.sampled_from([0.0, 0.01, 0.5]), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_torch_adam_port_matches_torch_step_for_step(lr, b1, b2, eps, wd, dtype, seed):
    rng = np.random.default_rng(seed)
    t_model, dense = _small_model_pair(rng, dtype)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    with F_opt.floatx(dtype):
        f_opt = F_opt.TorchAdam(lr, b1, b2, epsilon=eps, weight_decay=wd)
    _assert_steps_match(_run_both(rng, dtype, t_opt, f_opt, t_model, dense, 4), dtype, "TorchAdam")


@given(lr=st.floats(1e-5, 1e-1), momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(),
       wd=st.sampled_from([0.0, 0.01, 0.5]), dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**16))
def test_torch_sgd_port_matches_torch_step_for_step(lr, momentum, nesterov, wd, dtype, seed):
    nesterov = nesterov and momentum > 0
    rng = np.random.default_rng(seed)
    t_model, dense = _small_model_pair(rng, dtype)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    with F_opt.floatx(dtype):
        f_opt = F_opt.TorchSGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    _assert_steps_match(_run_both(rng, dtype, t_opt, f_opt, t_model, dense, 4), dtype, "TorchSGD")


@given(eps=st.sampled_from([1e-3, 0.1, 1.0]), seed=st.integers(0, 2**16))
def test_keras_adam_is_torch_adam_with_eps_over_sqrt_bias_correction(eps, seed):
    """The epsilon placement, exactly: Keras's Adam at step t is torch's with eps / sqrt(1 - beta_2^t)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 5))
    grads = [rng.standard_normal((3, 5)) * 10.0 ** rng.integers(-3, 2) for _ in range(3)]
    var = keras.Variable(w.T, dtype="float32")
    keras_adam = keras.optimizers.Adam(1e-2, epsilon=eps)

    def torch_run(eps_at):
        p = torch.nn.Parameter(torch.tensor(w, dtype=torch.float32))
        opt = torch.optim.Adam([p], lr=1e-2)
        for t, g in enumerate(grads, start=1):
            p.grad = torch.tensor(g, dtype=torch.float32)
            opt.param_groups[0]["eps"] = eps_at(t)
            opt.step()
        return p.detach().numpy()

    for g in grads:
        keras_adam.apply_gradients([(tf.constant(g.T, dtype="float32"), var)])
    got = var.numpy().T
    np.testing.assert_allclose(got, torch_run(lambda t: eps / np.sqrt(1 - 0.999**t)), rtol=2e-5, atol=1e-6)
    assert not np.allclose(got, torch_run(lambda t: eps), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["adam", "sgd", "keras_adam", "keras_sgd"])
def test_optimizer_state_round_trips_through_torch_format(kind):
    rng = np.random.default_rng(1)
    params = NP.two_layer_params(rng)
    base = "adam" if "adam" in kind else "sgd"
    hyper = {"lr": 1e-3} if base == "adam" else {"lr": 1e-3, "momentum": 0.9}
    names = list(params)
    if base == "adam":
        state = {"step": 7, "exp_avg": {k: rng.standard_normal(v.shape) for k, v in params.items()},
                 "exp_avg_sq": {k: rng.random(v.shape) for k, v in params.items()}}
    else:
        state = {"momentum_buffer": {k: rng.standard_normal(v.shape) for k, v in params.items()}}
    model = F_nn.build_model(params, dtype="float64")
    opt = F_opt.make_optimizer(model, kind, **hyper)
    F_opt.set_state(opt, model, state)
    back = F_opt.get_state(opt, model)
    assert back.get("step") == state.get("step")
    for key in (k for k in state if k != "step"):
        for n in names:
            np.testing.assert_allclose(back[key][n], state[key][n], rtol=1e-15, err_msg=f"{kind} {key} {n}")
    # the same state loads into torch and comes back unchanged
    t_model = T_nn.build_model(params, dtype=torch.float64)
    t_opt = T_opt.make_optimizer(t_model, base, **hyper)
    T_opt.set_state(t_opt, t_model, state)
    t_back = T_opt.get_state(t_opt, t_model)
    for key in (k for k in state if k != "step"):
        for n in names:
            np.testing.assert_array_equal(t_back[key][n], state[key][n])


def test_set_state_names_what_is_missing():
    model = F_nn.build_model(NP.two_layer_params(np.random.default_rng(0)))
    opt = F_opt.make_optimizer(model, "adam")
    with pytest.raises(KeyError, match="exp_avg_sq"):
        F_opt.set_state(opt, model, {"step": 1, "exp_avg": {}})
    with pytest.raises(ValueError, match="kind must be one of"):
        F_opt.make_optimizer(model, "adamw")
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        F_opt.make_optimizer(model, "sgd", betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="Nesterov"):
        F_opt.TorchSGD(0.1, nesterov=True)


def test_weights_load_names_missing_and_misshapen_parameters():
    model = F_nn.build_model()
    params = NP.two_layer_params(np.random.default_rng(0))
    with pytest.raises(KeyError, match=r"missing \['2.bias'\]"):
        _weights.load(F_nn.torch_layers(model), {k: v for k, v in params.items() if k != "2.bias"})
    with pytest.raises(ValueError, match="0.weight"):
        _weights.load(F_nn.torch_layers(model), {**params, "0.weight": params["0.weight"].T})


def test_linear_weight_is_dense_kernel_transposed():
    params = NP.two_layer_params(np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal((2, NP.D_in))
    t_out = T_nn.build_model(params, dtype=torch.float64)(torch.tensor(x)).detach().numpy()
    f_out = F_nn.build_model(params, dtype="float64")(tf.constant(x)).numpy()
    np.testing.assert_allclose(f_out, t_out, rtol=1e-12, atol=1e-14)
    for name, value in F_nn.named_parameters(F_nn.build_model(params, dtype="float64")).items():
        np.testing.assert_array_equal(value.numpy(), params[name])


# -- weight sharing: the shared layer's gradient is the sum over its uses ----------------------
@given(depth=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_shared_layer_gradient_is_the_sum_over_its_uses(depth, seed):
    """DynamicNet's middle_linear gradient equals the sum of the gradients of depth separate copies."""
    rng = np.random.default_rng(seed)
    D, Hd, Do = 6, 5, 3
    x, y = rng.standard_normal((4, D)), rng.standard_normal((4, Do))
    params = {f"{n}.{k}": v for n, (fi, fo) in (("input_linear", (D, Hd)), ("middle_linear", (Hd, Hd)),
                                                 ("output_linear", (Hd, Do)))
              for k, v in zip(("weight", "bias"), NP.linear_init(rng, fi, fo))}
    _, grads = NP.dynamic_loss_and_grads(params, x, y, depth)  # the NumPy oracle's
    # torch
    t_model = T_dyn.DynamicNet(D, Hd, Do).double()
    t_model.load_state_dict({k: torch.tensor(v) for k, v in params.items()})
    T_nn.loss_fn(t_model(torch.tensor(x), depth), torch.tensor(y)).backward()
    # TF
    f_model = F_dyn.DynamicNet(D, Hd, Do, dtype="float64")
    f_model.build((None, D))
    _weights.load(f_model.torch_layers(), params)
    with tf.GradientTape() as tape:
        loss = F_nn.SumSquaredError(dtype="float64")(tf.constant(y), f_model(tf.constant(x), depth=depth))
    f_grads = dict(zip([v.path for v in f_model.trainable_variables], tape.gradient(loss, f_model.trainable_variables)))
    f_named = _weights.named_gradients(f_model.torch_layers(), f_grads)
    # an unrolled torch network with ``depth`` independent copies of the middle layer
    layers = [torch.nn.Linear(D, Hd)] + [torch.nn.Linear(Hd, Hd) for _ in range(depth)] + [torch.nn.Linear(Hd, Do)]
    for i, layer in enumerate(layers):
        name = "input_linear" if i == 0 else ("output_linear" if i == len(layers) - 1 else "middle_linear")
        layer.double().load_state_dict({"weight": torch.tensor(params[f"{name}.weight"]),
                                        "bias": torch.tensor(params[f"{name}.bias"])})
    h = torch.tensor(x)
    for layer in layers[:-1]:
        h = layer(h).clamp(min=0)
    torch.nn.MSELoss(reduction="sum")(layers[-1](h), torch.tensor(y)).backward()
    for part in ("weight", "bias"):
        key = f"middle_linear.{part}"
        t_grad = getattr(t_model.middle_linear, part).grad
        if depth == 0:
            assert t_grad is None and key not in f_named and key not in grads
            continue
        summed = sum(getattr(layer, part).grad for layer in layers[1:-1]).numpy()
        np.testing.assert_allclose(t_grad.numpy(), summed, rtol=1e-12, atol=1e-14, err_msg=f"torch {key}")
        np.testing.assert_allclose(f_named[key].numpy(), summed, rtol=1e-12, atol=1e-14, err_msg=f"tf {key}")
        np.testing.assert_allclose(grads[key], summed, rtol=1e-12, atol=1e-14, err_msg=f"numpy {key}")


def test_dynamic_net_draws_its_depth_from_its_rng():
    """One seeded source, one draw per forward pass, the tutorial's randint(0, 3)."""
    import random

    expected = _draws(random.Random(5), 6)
    t_model = T_dyn.DynamicNet(4, 3, 2, rng=random.Random(5)).double()
    f_model = F_dyn.DynamicNet(4, 3, 2, rng=random.Random(5), dtype="float64")
    f_model.build((None, 4))
    t_uses, f_uses = [], []
    t_model.middle_linear.register_forward_hook(lambda *a: t_uses.append(1))
    f_call = f_model.middle_linear.call
    f_model.middle_linear.call = lambda *a, **k: (f_uses.append(1), f_call(*a, **k))[1]
    for d in expected:
        before_t, before_f = len(t_uses), len(f_uses)
        t_model(torch.zeros(1, 4, dtype=torch.float64))
        f_model(tf.zeros((1, 4), dtype="float64"))
        assert len(t_uses) - before_t == d == len(f_uses) - before_f


def _draws(rng, n):
    return [rng.randint(0, 3) for _ in range(n)]


# -- the python -m modules train like the tutorial ----------------------------------------
MODULES = ["ladder_numpy", "ladder_tensors", "ladder_autograd", "my_relu", "ladder_nn", "ladder_optim",
           "two_layer_net", "dynamic_net"]
#: the seed's printed loss at t = 99 for each rung (seed 003). The tutorial draws unseeded
#: torch.randn data, so no run reproduces its digits; ours must land in the same decade.
SEED_LOSS_AT_99 = {"ladder_numpy": 572.4231396454019, "ladder_tensors": 352.47174072265625,
                   "ladder_autograd": 264.5614013671875, "my_relu": 245.68959045410156,
                   "ladder_nn": 2.7842166423797607, "ladder_optim": 47.444175720214844,
                   "two_layer_net": 45.171382904052734}
SEED_LOSS_AT_499 = {"ladder_numpy": 1.2465652749864821e-05, "ladder_tensors": 2.3665821572649293e-05,
                    "ladder_autograd": 1.6031990526244044e-05, "my_relu": 4.321546293795109e-05,
                    "ladder_nn": 1.6755162732806639e-06, "ladder_optim": 2.7777673494711053e-08,
                    "two_layer_net": 7.16484871432499e-10}


@pytest.fixture(scope="module")
def printed():
    """Every module run as ``python -m`` once per package, in one interpreter each (one TF import)."""
    out = {}
    for package in ("torch_impl", "tf_impl"):
        script = ("import runpy, sys\n"
                  f"for m in {MODULES!r}:\n"
                  "    print('=== ' + m, flush=True)\n"
                  f"    runpy.run_module('{package}.' + m, run_name='__main__', alter_sys=True)\n")
        # one thread per runtime: CI has two cores and runs tests in parallel, and oversubscribed
        # OpenMP / OpenBLAS threads slow these small matmuls down by an order of magnitude
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for block in proc.stdout.split("=== ")[1:]:
            name, *lines = block.strip().splitlines()
            out[package, name] = [(int(t), float(v)) for t, v in (ln.split() for ln in lines if re.match(r"^\d+ ", ln))]
    return out


@pytest.mark.parametrize("package", ["torch_impl", "tf_impl"])
@pytest.mark.parametrize("module", MODULES)
def test_module_trains_like_the_tutorial(printed, package, module):
    rows = printed[package, module]
    assert [t for t, _ in rows] == [99, 199, 299, 399, 499], rows
    losses = [v for _, v in rows]
    assert all(b < a for a, b in zip(losses, losses[1:])), f"{package}.{module}: losses do not decrease: {losses}"
    if module in SEED_LOSS_AT_99:
        assert 0.1 < losses[0] / SEED_LOSS_AT_99[module] < 10, (losses[0], SEED_LOSS_AT_99[module])
        # the end of training depends on the data by decades (the seed's own two Adam runs, optim and
        # two_layer_net, end 40x apart): within three decades of the seed's
        assert 1e-3 < losses[-1] / SEED_LOSS_AT_499[module] < 1e3, (losses[-1], SEED_LOSS_AT_499[module])


@pytest.mark.parametrize("module", MODULES)
def test_torch_and_tf_modules_print_the_same_run(printed, module):
    """Both mains start from the same NumPy-drawn data and weights: the first printed loss agrees."""
    (_, a), (_, b) = printed["torch_impl", module][0], printed["tf_impl", module][0]
    assert b == pytest.approx(a, rel=1e-5)
