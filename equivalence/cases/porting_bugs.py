"""Negative controls for the porting bugs of ``equivalence.controls`` that no topic module had,
and the correct ports they are checked against (issue 8).

Each control is the wrong port a person would write for one construct, run on the same
inputs and compared with the same tolerance model as the correct port of that construct:
nothing here widens a tolerance. The correct port is registered beside it (or already in
its topic module; the catalogue names it) and must pass where the control must be caught.

* ``modules.neg_linear_kernel_transposed``: Linear(16, 16)'s weight assigned to the Dense
  kernel as is; square, so no shape check objects (correct: ``modules.linear_square``).
* ``modules.neg_conv2d_kernel_oihw_reshaped``: Conv2d(4, 6, 3)'s (6, 4, 3, 3) weight
  ``np.reshape``d to the (3, 3, 4, 6) kernel (correct: ``modules.conv2d_basic``).
* ``modules.neg_{max,avg}_pool2d_ceil_mode_ignored``: ceil_mode=True pooling ported as Keras
  'valid' pooling, before a global average (as in GoogLeNet-style heads), so the shapes agree
  and only the values show the missing last window (correct: ``*_ceil_global_average``).
* ``modules.neg_batchnorm2d_*``: Keras BatchNormalization with its defaults at inference
  (epsilon 1e-3: the output moves), with epsilon fixed but momentum left at 0.99 for a
  training step (the running statistics move), and with both right, where the moving variance
  is still the biased batch variance (correct: ``modules.batchnorm2d_eval``, ``_train``).
* ``modules.neg_{linear,net}_tf32``: the correct ports run with TF32 left on, emulated on the
  CPU (see :func:`tf32_emulation`), float32 only (TF32 does not touch float64).
* ``modules.neg_linear_bias_missing``: ``Dense(use_bias=False)`` for a Linear with a bias.
* ``modules.neg_mlp_weight_dropped``: the MLP copied layer by layer, one kernel left out.
* ``ladder.neg_nn_keras_mse_mean``: ``MSELoss(reduction='sum')`` as Keras's default
  ``MeanSquaredError()`` (correct: ``ladder.nn_step``).
* ``modules.max_pool2d_padding``: the correct port of ``modules.max_pool2d_zero_padding``
  (same seed, shape and pooling), which had none of its own.

The strict weight adapter refuses the last two ports outright (tests/test_controls.py); the
controls copy by hand, as the person who wrote them did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from unittest import mock

import numpy as np

from tf_impl import modules as K
from torch_impl import modules as T

from .. import adapter
from ..case import REGISTRY, Case, Q, register
from ..frameworks import keras as _keras
from ..frameworks import tf as _tf
from ..frameworks import to_numpy
from ..frameworks import torch as _torch
from ..tolerance import ELEMENTARY
from . import ladder as _ladder
from . import modules as _modules
from .modules import _channels_first, _channels_last, _inputs, _kind, _magnitudes, _model_case, _run_keras, _run_torch

PITFALLS = "docs/pitfalls.md"


def _wrong_port_case(name, source, doc, torch_model, keras_model, x_shape, n, port, *, seed=0):
    """A negative control on a model: like ``modules._model_case``, but the weights reach Keras
    through ``port(template, model, a)``, the wrong copy, which returns ``back(grads)``: the
    same person's mapping of the Keras gradients (one per ``model.weights``) to torch names.

    ``n`` lists the compared quantities; a torch gradient the port cannot have (a bias it
    left out) is simply not declared. Magnitudes come from the torch model, as for the
    correct port.
    """

    def torch_side(a, ctx):
        out = _run_torch(torch_model, a, ctx.torch_dtype)
        return {k: v for k, v in out.items() if k in n}

    def tf_side(a, ctx):
        model = keras_model(ctx.dtype)
        x = ctx.tf_const(_channels_last(a["x"]))
        model(x)
        back = port(torch_model(ctx.torch_dtype), model, a)
        out, gx, gw = _run_keras(model, x, ctx.tf_const(_channels_last(a["v"])))
        grads = back([to_numpy(g) for g in gw])
        return {"out": out, "grad:x": gx, **{f"grad:{k}": g for k, g in grads.items() if f"grad:{k}" in n}}

    return register(Case(
        name=f"modules.{name}", source=source, doc=doc, inputs=_inputs(torch_model, x_shape), torch=torch_side,
        tf=tf_side, reference="torch",
        quantities=tuple(Q(q, _kind(q), n=count, magnitude=lambda wide, ref, q=q: _magnitudes(name, torch_model, wide)[q])
                         for q, count in n.items()),
        seed=seed, expect="differ",
    ))


# -- a torch Linear weight copied into a square Dense kernel without the transpose ------------------

_LINEAR_SQUARE_N = {
    "out": 16 + 1,  # a dot product of 16, then the bias
    "grad:x": 16,  # v @ W sums over the 16 outputs
    "grad:weight": 32,  # v^T x sums over the batch of 32
    "grad:bias": 32,
}


def _linear_square(dtype):
    return T.Linear(16, 16, dtype=dtype)


_model_case(
    "linear_square", "pitfalls.md (layouts and weights)",
    "nn.Linear(16, 16) as Dense(16): a square layer, where only the adapter's transpose tells (in, out) from "
    "(out, in); the correct port of modules.neg_linear_kernel_transposed",
    _linear_square, lambda dtype: K.Linear(16, 16, dtype=dtype), (32, 16), _LINEAR_SQUARE_N, seed=20,
)


def _untransposed(template, dense, a):
    dense.kernel.assign(a["weight"])  # (out, in) where (in, out) belongs: square, so it fits
    dense.bias.assign(a["bias"])
    return lambda grads: {"weight": grads[0], "bias": grads[1]}  # read back the same way


_wrong_port_case(
    "neg_linear_kernel_transposed", f"{PITFALLS} (layouts and weights: Linear (out, in), Dense (in, out))",
    "negative control: Linear(16, 16)'s weight assigned to Dense.kernel without .T (square: the shapes agree); "
    "correct port: modules.linear_square",
    _linear_square, lambda dtype: K.Linear(16, 16, dtype=dtype), (32, 16), _LINEAR_SQUARE_N, _untransposed, seed=20,
)

# -- a conv weight reshaped (not transposed) from OIHW to HWIO -------------------------------------

_CONV_N = {
    "out": 4 * 9 + 1,  # 4 input channels x 3x3 taps, then the bias
    "grad:x": 6 * 9,  # 6 output channels x at most 9 taps
    "grad:weight": 2 * 6 * 6,  # batch 2 x the 6x6 output positions
    "grad:bias": 2 * 6 * 6,
}


def _conv_basic(dtype):
    return T.Conv2d(4, 6, 3, dtype=dtype)


_model_case(
    "conv2d_basic", "pitfalls.md (layouts and weights)",
    "nn.Conv2d(4, 6, 3) as Conv2D(6, 3): the adapter transposes OIHW (6, 4, 3, 3) to HWIO (3, 3, 4, 6); the "
    "correct port of modules.neg_conv2d_kernel_oihw_reshaped",
    _conv_basic, lambda dtype: K.Conv2d(4, 6, 3, dtype=dtype), (2, 4, 8, 8), _CONV_N, seed=21,
)


def _reshaped(template, conv, a):
    conv.kernel.assign(np.reshape(a["weight"], conv.kernel.shape))  # the shape error "fixed" by a reshape
    conv.bias.assign(a["bias"])
    return lambda grads: {"weight": np.reshape(grads[0], a["weight"].shape), "bias": grads[1]}


_wrong_port_case(
    "neg_conv2d_kernel_oihw_reshaped", f"{PITFALLS} (layouts and weights: conv weights OIHW vs HWIO)",
    "negative control: Conv2d(4, 6, 3)'s OIHW weight np.reshape'd to the HWIO kernel shape instead of "
    "transposed (2, 3, 1, 0); correct port: modules.conv2d_basic",
    _conv_basic, lambda dtype: K.Conv2d(4, 6, 3, dtype=dtype), (2, 4, 8, 8), _CONV_N, _reshaped, seed=21,
)

# -- ceil_mode ignored, before a global average pool (shapes agree, values do not) -----------------


def _global_average_head(pool):
    def torch_model(dtype):
        nn = _torch().nn
        return nn.Sequential(pool(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return torch_model


def _keras_head(pool):
    def keras_model(dtype):
        keras = _keras()
        return keras.Sequential([pool(dtype), keras.layers.GlobalAveragePooling2D(dtype=dtype)])
    return keras_model


# MaxPool2d(3, stride=2, ceil_mode=True) on 10x10: 5x5 windows (the 5th starts at 8 and hangs over the edge),
# where 'valid' pooling has 4x4
_MAX_CEIL_N = {
    "out": 25 + 1,  # the max is exact; the mean of the 5x5 map: a sum of 25, a division
    # the mean's backward g / 25 (Keras: times 1/25, rounded: 2), then an element lies in at most 2x2 windows: 3 additions
    "grad:x": 2 + 3,
}
_max_ceil_torch = _global_average_head(lambda: T.MaxPool2d(3, stride=2, ceil_mode=True))

_model_case(
    "max_pool2d_ceil_global_average", "seed 001 §4.5 (nn.MaxPool2d ceil_mode)",
    "MaxPool2d(3, stride=2, ceil_mode=True) then a global average: TorchPooling2D keeps the 5th window; the "
    "correct port of modules.neg_max_pool2d_ceil_mode_ignored",
    _max_ceil_torch, _keras_head(lambda dtype: K.MaxPool2d(3, stride=2, ceil_mode=True, dtype=dtype)),
    (2, 3, 10, 10), _MAX_CEIL_N, seed=22,
)
_model_case(
    "neg_max_pool2d_ceil_mode_ignored", f"{PITFALLS} (padding and pooling: ceil_mode)",
    "negative control: MaxPool2d(3, stride=2, ceil_mode=True) ported as MaxPooling2D(3, 2, 'valid') before a global "
    "average: 4x4 windows instead of 5x5, the same output shape; correct port: modules.max_pool2d_ceil_global_average",
    _max_ceil_torch,
    _keras_head(lambda dtype: _keras().layers.MaxPooling2D(3, strides=2, padding="valid", dtype=dtype)),
    (2, 3, 10, 10), _MAX_CEIL_N, seed=22, expect="differ",
)

# AvgPool2d(2, stride=2, ceil_mode=True) on 7x9: 4x5 windows, the last row and column clipped to the input
_AVG_CEIL_N = {
    # per window a sum of 4, / 4, x (4 / divisor) with the factor rounded (7); the mean of 20: 20 + 1
    "out": 7 + 21,
    # g / 20 (2), then per window g * factor (2) / 4 (1); windows do not overlap (stride = kernel)
    "grad:x": 2 + 3,
}
_avg_ceil_torch = _global_average_head(lambda: T.AvgPool2d(2, stride=2, ceil_mode=True))

_model_case(
    "avg_pool2d_ceil_global_average", "seed 001 §4.5 (nn.AvgPool2d ceil_mode)",
    "AvgPool2d(2, stride=2, ceil_mode=True) then a global average: TorchPooling2D keeps the clipped last "
    "row and column of windows, with torch's divisors; the correct port of modules.neg_avg_pool2d_ceil_mode_ignored",
    _avg_ceil_torch, _keras_head(lambda dtype: K.AvgPool2d(2, stride=2, ceil_mode=True, dtype=dtype)),
    (2, 3, 7, 9), _AVG_CEIL_N, seed=23,
)
_model_case(
    "neg_avg_pool2d_ceil_mode_ignored", f"{PITFALLS} (padding and pooling: ceil_mode)",
    "negative control: AvgPool2d(2, stride=2, ceil_mode=True) ported as AveragePooling2D(2, 2, 'valid') before a "
    "global average: 3x4 windows instead of 4x5; correct port: modules.avg_pool2d_ceil_global_average",
    _avg_ceil_torch,
    _keras_head(lambda dtype: _keras().layers.AveragePooling2D(2, strides=2, padding="valid", dtype=dtype)),
    (2, 3, 7, 9), _AVG_CEIL_N, seed=23, expect="differ",
)

# the correct port of modules.max_pool2d_zero_padding (same seed, shape and pooling)
_model_case(
    "max_pool2d_padding", "seed 001 §4.5 (nn.MaxPool2d)",
    "MaxPool2d(3, stride=2, padding=1): TorchPooling2D pads with -inf; the correct port of "
    "modules.max_pool2d_zero_padding",
    lambda dtype: T.MaxPool2d(3, stride=2, padding=1),
    lambda dtype: K.MaxPool2d(3, stride=2, padding=1, dtype=dtype), (2, 3, 10, 11),
    {"out": 0, "grad:x": 2 * 2},
    seed=6,
)

# -- a missing bias, a dropped weight ---------------------------------------------------------------


def _kernel_only(template, dense, a):
    dense.kernel.assign(a["weight"].T)  # transposed correctly; the bias has nowhere to go
    return lambda grads: {"weight": grads[0].T}


_wrong_port_case(
    "neg_linear_bias_missing", f"{PITFALLS} (layouts and weights)",
    "negative control: nn.Linear(10, 4) (with a bias) ported as Dense(4, use_bias=False), the kernel copied; "
    "compared: the output and the gradients the port has (x, weight); correct port: modules.linear",
    lambda dtype: T.Linear(10, 4, dtype=dtype), lambda dtype: K.Linear(10, 4, bias=False, dtype=dtype), (523, 10),
    {"out": 10 + 1, "grad:x": 4, "grad:weight": 523}, _kernel_only,  # as modules.linear, less the bias
)

DROPPED = "2.weight"


def _all_but_one(template, model, a):
    """A copy loop over the layers that misses one kernel: it keeps Keras's glorot_uniform initial
    value (seeded here, so runs are reproducible)."""
    for link in adapter.plan(template, model):
        for slot in link.slots():
            if slot.torch_names == (DROPPED,):
                slot.var.assign(_keras().initializers.GlorotUniform(seed=11)(slot.var.shape, dtype=slot.var.dtype))
            else:
                slot.var.assign(slot.to_keras([a[n] for n in slot.torch_names]))
    return lambda grads: adapter.torch_values(model, template, grads)


_wrong_port_case(
    "neg_mlp_weight_dropped", "a hand-written weight copy",
    f"negative control: the seed's MLP copied layer by layer with {DROPPED} (the 100 -> 50 kernel) left at its "
    "Keras initialisation; correct port: modules.mlp",
    lambda dtype: T.mlp(dtype), lambda dtype: K.mlp(dtype), (8, 10),
    {k.format("0", "2", "4"): v for k, v in _modules._MLP_N.items()}, _all_but_one, seed=11,
)

# -- BatchNorm2d: eps and momentum conventions, and the running variance ----------------------------

_BN_X = (4, 3, 6, 6)
_BN_COUNT = 4 * 6 * 6  # elements per channel: the batch statistics' reductions
TORCH_EPS, TORCH_MOMENTUM = 1e-5, 0.1


def _bn_inputs(rng):
    c = _BN_X[1]
    scale, shift = rng.uniform(0.5, 2.0, c), rng.uniform(-1.0, 1.0, c)  # activations off zero mean and unit variance
    return {
        "x": rng.standard_normal(_BN_X) * scale[:, None, None] + shift[:, None, None],
        "v": rng.standard_normal(_BN_X),
        "weight": rng.uniform(0.5, 1.5, c), "bias": rng.uniform(-0.5, 0.5, c),
        "running_mean": rng.uniform(-1.0, 1.0, c), "running_var": rng.uniform(0.5, 2.0, c),  # a trained model's
    }


def _bn_torch(training):
    def build(a, ctx):
        torch = _torch()
        bn = torch.nn.BatchNorm2d(_BN_X[1], dtype=ctx.torch_dtype, device=ctx.torch_device)  # eps=1e-5, momentum=0.1
        with torch.no_grad():
            for k in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, k).copy_(ctx.t(a[k]))
        bn.train(training)
        x = ctx.t(a["x"], requires_grad=not training)
        out = bn(x)
        if training:
            return {"out": out, "running_mean": bn.running_mean, "running_var": bn.running_var}
        (out * ctx.t(a["v"])).sum().backward()
        return {"out": out, "grad:x": x.grad, "grad:weight": bn.weight.grad, "grad:bias": bn.bias.grad}
    return build


def _bn_tf(make_layer, training, strict):
    """The Keras layer from ``make_layer(dtype)``, its weights and moving statistics copied by the
    adapter: strict for a correct port, ``strict=False`` (copy anyway, as by hand) for a control."""
    def build(a, ctx):
        tf = _tf()
        layer = make_layer(ctx.dtype)
        layer.build((None,) + _BN_X[2:] + _BN_X[1:2])
        template = _torch().nn.BatchNorm2d(_BN_X[1], dtype=ctx.torch_dtype)
        adapter.torch_to_keras(template, layer, state={k: a[k] for k in ("weight", "bias", "running_mean",
                                                                         "running_var")}, strict=strict)
        x = ctx.tf_const(_channels_last(a["x"]))
        if training:
            out = layer(x, training=True)
            return {"out": _channels_first(to_numpy(out)), "running_mean": layer.moving_mean,
                    "running_var": layer.moving_variance}
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=False)
            loss = tf.reduce_sum(out * ctx.tf_const(_channels_last(a["v"])))
        gx, gg, gb = tape.gradient(loss, [x, layer.gamma, layer.beta])
        return {"out": _channels_first(to_numpy(out)), "grad:x": _channels_first(to_numpy(gx)), "grad:weight": gg,
                "grad:bias": gb}
    return build


def _per_channel(a):
    return a[None, :, None, None]


def _bn_eval_magnitude(q):
    """Elementwise magnitudes at inference: y = x * s + (b - mean * s), s = gamma / sqrt(var + eps)."""
    def magnitude(wide, ref):
        inv = 1 / np.sqrt(wide["running_var"] + TORCH_EPS)
        s = _per_channel(np.abs(wide["weight"]) * inv)
        terms = np.abs(wide["x"]) + _per_channel(np.abs(wide["running_mean"]))  # |x| + |mean|: x - mean cancels
        v = np.abs(wide["v"])
        return {"out": terms * s + _per_channel(np.abs(wide["bias"])), "grad:x": v * s,
                "grad:weight": (v * terms).sum(axis=(0, 2, 3)) * inv, "grad:bias": v.sum(axis=(0, 2, 3))}[q]
    return magnitude


_BN_EVAL_N = {
    # eps added, sqrt (elementary), the quotient, x gamma; mean * s, b - that; x * s, + that
    "out": 7 + ELEMENTARY,
    "grad:x": 4 + ELEMENTARY,  # v * (gamma / sqrt(var + eps))
    "grad:weight": _BN_COUNT + 4 + ELEMENTARY,  # a sum over N, H, W of v (x - mean), times 1 / sqrt(var + eps)
    "grad:bias": _BN_COUNT,  # a sum over N, H, W
}


def _bn_eval_case(name, doc, make_layer, expect="equal"):
    register(Case(
        name=f"modules.{name}", source="pitfalls.md (optimizers and normalisation: BatchNorm)", doc=doc,
        inputs=_bn_inputs, torch=_bn_torch(False), tf=_bn_tf(make_layer, False, strict=expect == "equal"),
        reference="torch",
        quantities=tuple(Q(q, _kind(q), n=n, magnitude=_bn_eval_magnitude(q)) for q, n in _BN_EVAL_N.items()),
        seed=24, expect=expect,
    ))


def _batch_norm(**kwargs):
    return lambda dtype: _keras().layers.BatchNormalization(dtype=dtype, **kwargs)


_bn_eval_case("batchnorm2d_eval", "nn.BatchNorm2d(3) in eval() as BatchNormalization(epsilon=1e-5, momentum=0.9) "
              "at inference (the strict adapter accepts it); the correct port of "
              "modules.neg_batchnorm2d_keras_defaults_eval", _batch_norm(epsilon=TORCH_EPS, momentum=1 - TORCH_MOMENTUM))
_bn_eval_case("neg_batchnorm2d_keras_defaults_eval", "negative control: nn.BatchNorm2d(3) in eval() as "
              "BatchNormalization() with Keras's defaults, statistics copied: epsilon 1e-3 for 1e-5 moves the output "
              "(about 5e-4 relative at unit variance); correct port: modules.batchnorm2d_eval",
              _batch_norm(), expect="differ")


def _bn_train_magnitude(q):
    """Elementwise magnitudes of a training step: the output through the batch statistics, and
    the new running statistics (1 - m) r + m stat."""
    def magnitude(wide, ref):
        x, m = wide["x"], TORCH_MOMENTUM
        mu = x.mean(axis=(0, 2, 3))
        var_b = x.var(axis=(0, 2, 3))
        mean_abs = np.abs(x).mean(axis=(0, 2, 3))
        s = _per_channel(np.abs(wide["weight"]) / np.sqrt(var_b + TORCH_EPS))
        # x - mu with mu's own error (mean |x|), and the relative error of 1 / sqrt(var) times |x - mu|
        out = (np.abs(x) + _per_channel(np.abs(mu) + mean_abs) + np.abs(x - _per_channel(mu))) * s
        return {"out": out + _per_channel(np.abs(wide["bias"])),
                "running_mean": (1 - m) * np.abs(wide["running_mean"]) + m * mean_abs,
                "running_var": (1 - m) * wide["running_var"] + m * var_b * _BN_COUNT / (_BN_COUNT - 1)}[q]
    return magnitude


_BN_TRAIN_N = {
    # mu: a sum of N, / N; var: x - mu, a square, a sum of N, / N; then + eps, sqrt, the quotient,
    # x gamma, mu * s, b - that, x * s, + that: N + 1 (mu's error) + N + 3 + 8 + E, counted as one chain of N
    # (the two reductions do not compound: var's error enters the output relative to |x - mu|)
    "out": _BN_COUNT + 12 + ELEMENTARY,
    "running_mean": _BN_COUNT + 1 + 3,  # the batch mean, then (1 - m) r + m mu
    # the unbiased variance (N + 3, and Keras's n / (n - 1) factor: 2 more), then (1 - m) r + m var
    "running_var": _BN_COUNT + 5 + 3,
}


@functools.cache
def _torch_batch_norm_class():
    keras = _keras()
    ops = keras.ops

    class TorchBatchNormalization(keras.layers.BatchNormalization):
        """Keras BatchNormalization whose moving variance takes torch's unbiased batch variance
        (Keras takes the biased one, which also normalises the output in both frameworks)."""

        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable):
                return super().call(inputs, training=training, mask=mask)
            old = ops.copy(self.moving_variance)
            out = super().call(inputs, training=training, mask=mask)
            _, variance = self._moments(ops.cast(inputs, self.moving_variance.dtype), mask)
            n = math.prod(inputs.shape[:-1])
            self.moving_variance.assign(old * self.momentum + variance * (n / (n - 1)) * (1.0 - self.momentum))
            return out

    return TorchBatchNormalization


def _bn_train_case(name, doc, make_layer, expect="equal", strict=True):
    register(Case(
        name=f"modules.{name}", source="pitfalls.md (optimizers and normalisation: BatchNorm)", doc=doc,
        inputs=_bn_inputs, torch=_bn_torch(True), tf=_bn_tf(make_layer, True, strict=strict),
        reference="torch",
        quantities=(Q("out", "forward", n=_BN_TRAIN_N["out"], magnitude=_bn_train_magnitude("out")),) + tuple(
            Q(q, "step", n=_BN_TRAIN_N[q], magnitude=_bn_train_magnitude(q)) for q in ("running_mean", "running_var")),
        seed=25, expect=expect,
    ))


_bn_train_case("batchnorm2d_train", "one training-mode step of nn.BatchNorm2d(3): the output from the batch "
               "statistics and the new running mean and (unbiased) variance, against a BatchNormalization(epsilon=1e-5, "
               "momentum=0.9) whose moving variance is made unbiased; the correct port of the two training controls",
               lambda dtype: _torch_batch_norm_class()(epsilon=TORCH_EPS, momentum=1 - TORCH_MOMENTUM, dtype=dtype))
_bn_train_case("neg_batchnorm2d_keras_momentum_train", "negative control: a training step of nn.BatchNorm2d(3) as "
               "BatchNormalization(epsilon=1e-5): eps fixed, momentum left at Keras's 0.99 where torch's 0.1 means 0.9; "
               "the output agrees, the running statistics do not; correct port: modules.batchnorm2d_train",
               _batch_norm(epsilon=TORCH_EPS), expect="differ", strict=False)
_bn_train_case("neg_batchnorm2d_keras_biased_running_var", "negative control: a training step of nn.BatchNorm2d(3) "
               "as BatchNormalization(epsilon=1e-5, momentum=0.9), which the strict adapter accepts: Keras's moving "
               "variance takes the biased batch variance (a factor (n - 1) / n on the new term); correct port: "
               "modules.batchnorm2d_train", _batch_norm(epsilon=TORCH_EPS, momentum=1 - TORCH_MOMENTUM),
               expect="differ")


# -- TF32 left on: emulated on the CPU --------------------------------------------------------------


def round_to_tf32(x):
    """``x`` with its float32 significand rounded to TF32's 10 fraction bits, to nearest with
    ties away from zero (the conversion tensor cores apply to matmul/conv inputs; cvt.rna.tf32.f32).
    Other dtypes pass unchanged: TF32 applies to float32 only."""
    tf = _tf()
    if x.dtype != tf.float32:
        return x
    bits = tf.bitcast(x, tf.int32)  # sign and magnitude: adding to the magnitude rounds it away from zero
    return tf.bitcast(tf.bitwise.bitwise_and(bits + 0x1000, -0x2000), tf.float32)


def _tf32_op(op):
    """``op(a, b, ...)`` (a matmul or convolution) whose two operands, forward, and whose operands
    in both backward products (the incoming gradient and the other operand) are rounded to TF32,
    accumulating in float32: what a TF32 GEMM or convolution does on the GPU."""
    tf = _tf()

    def call(a, b, *args, **kwargs):
        a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        if a.dtype != tf.float32:
            return op(a, b, *args, **kwargs)

        @tf.custom_gradient
        def emulated(a, b):
            ar, br = round_to_tf32(a), round_to_tf32(b)

            def grad(dy):
                with tf.GradientTape() as tape:  # the op's own backward products, on TF32 operands
                    tape.watch([ar, br])
                    y = op(ar, br, *args, **kwargs)
                return tape.gradient(y, [ar, br], output_gradients=round_to_tf32(dy))

            return op(ar, br, *args, **kwargs), grad

        return emulated(a, b)

    return call


@contextlib.contextmanager
def tf32_emulation():
    """TensorFlow's float32 matmuls and convolutions as TF32 tensor cores compute them (inputs
    rounded to a 10-bit fraction, float32 accumulation), on any device, while the block runs.
    A CPU stand-in for ``tf.config.experimental.enable_tensor_float_32_execution(True)`` on an
    Ampere or newer GPU, which this machine does not have."""
    tf = _tf()
    matmul, convolution = tf.matmul, tf.nn.convolution
    with mock.patch.object(tf, "matmul", _tf32_op(matmul)), \
            mock.patch.object(tf.linalg, "matmul", _tf32_op(matmul)), \
            mock.patch.object(tf.nn, "convolution", _tf32_op(convolution)):
        yield


def _with_tf32(name, correct, doc):
    base = REGISTRY[correct]

    def tf_side(a, ctx):
        with tf32_emulation():
            return base.tf(a, ctx)

    register(dataclasses.replace(
        base, name=name, source=f"{PITFALLS} (GPUs: TensorFlow runs float32 matmul and conv in TF32 by default)",
        doc=doc, tf=tf_side, expect="differ", dtypes=("float32",),
    ))


_with_tf32("modules.neg_linear_tf32", "modules.linear",
           "negative control: modules.linear (nn.Linear(10, 4) on 523 rows) with TF32 left on in TensorFlow, emulated "
           "on the CPU (inputs of every matmul rounded to TF32), against strict float32; float32 only; correct port: "
           "modules.linear")
_with_tf32("modules.neg_net_tf32", "modules.net",
           "negative control: the seed's Net (modules.net) with TF32 left on in TensorFlow, emulated on the CPU "
           "(convolutions and matmuls); the long reductions' worst-case bounds cover TF32's error, the short ones "
           "(fc1's bias gradient) do not; float32 only; correct port: modules.net")

# -- MSELoss(reduction='sum') as Keras's default MeanSquaredError ------------------------------------


def _nn_keras_mse_mean(a, ctx):
    L, keras, tf = _ladder._tf("ladder_nn"), _keras(), _tf()
    model = L.build_model(_ladder._params(a), dtype=ctx.dtype)
    loss_fn = keras.losses.MeanSquaredError(dtype=ctx.dtype)  # the default reduction: a mean over everything
    with tf.GradientTape() as tape:
        loss = loss_fn(ctx.tf_const(a["y"]), model(ctx.tf_const(a["x"])))
    grads = tape.gradient(loss, model.trainable_variables)
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    from tf_impl import _weights
    return {"loss": loss, **{f"grad:{k}": v for k, v in _weights.named_gradients(L.torch_layers(model), by_path).items()}}


register(Case(
    name="ladder.neg_nn_keras_mse_mean",
    source=f"{_ladder.SOURCE} §PyTorch: nn",
    doc="negative control: MSELoss(reduction='sum') ported as keras.losses.MeanSquaredError() (a mean over the N x "
        "D_out elements): loss and gradients 1/640 of torch's; correct port: ladder.nn_step",
    inputs=_ladder._nn_inputs,
    torch=lambda a, ctx: {k: v for k, v in _ladder._nn_torch(a, ctx).items() if k == "loss" or k.startswith("grad:")},
    tf=_nn_keras_mse_mean,
    reference=_ladder._nn_loss_reference,
    quantities=_ladder._step_quantities(_ladder._chain_n("two_layer"), _ladder.TWO_LAYER, 0)[:1 + len(_ladder.TWO_LAYER)],
    expect="differ",
))
