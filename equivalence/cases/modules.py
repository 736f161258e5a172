"""Modules of seed 001 §4.3-4.6: torch ``nn`` modules against their channels_last Keras ports.

Every model case has the same shape: seeded weights in torch layout (uniform in
±1/sqrt(fan_in), torch's default init range) are inputs like ``x``, so the runner rounds
them once and both frameworks get the same values, Keras through ``equivalence.adapter``.
Quantities: the output, and the gradients of ``sum(out * v)`` (``v`` a seeded cotangent)
with respect to the input and every parameter. Keras images are N, H, W, C: inputs go in
and results come back through exact transposes, and Keras parameter gradients come back
to torch layout through the adapter, so every quantity compares element for element.

Tolerances. ``n`` sums the reduction lengths along the longest chain (Higham's bound for
a product of matrices: gamma_{n1+n2} |A||B||x|); each is derived in a comment. The
magnitudes are elementwise, from the float64 torch model run on |x| with |weights|,
|bias| and cotangent |v|: all activations are then >= 0, so ReLU passes everything (it is
replaced by the identity to make that explicit at exact zeros), and max-pooling keeps
the largest magnitude in each window. Its backward would route to that element only,
which need not be the element the real network routes to, so in the magnitude run
max-pooling sends the gradient to every element of the window (the sum of the
magnitudes that could arrive there). Average pooling has nonnegative coefficients
and needs no change.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from unittest import mock

import numpy as np

from tf_impl import modules as K
from torch_impl import modules as T

from .. import adapter
from ..case import Case, Q, register
from ..frameworks import keras as _keras
from ..frameworks import tf as _tf
from ..frameworks import to_numpy
from ..frameworks import torch as _torch


def _channels_last(a):
    return np.moveaxis(np.asarray(a), 1, -1) if np.ndim(a) >= 3 else np.asarray(a)


def _channels_first(a):
    return np.moveaxis(np.asarray(a), -1, 1) if np.ndim(a) >= 3 else np.asarray(a)


def _param_shapes(torch_model) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in torch_model(_torch().float64).named_parameters()}


def _inputs(torch_model, x_shape):
    """x, the cotangent v, and every parameter in torch layout, seeded."""

    def inputs(rng):
        torch = _torch()
        template = torch_model(torch.float64)
        a = {"x": rng.standard_normal(x_shape)}
        with torch.no_grad():
            out_shape = tuple(template(torch.zeros(x_shape, dtype=torch.float64)).shape)
        a["v"] = rng.standard_normal(out_shape)
        shapes = {n: tuple(p.shape) for n, p in template.named_parameters()}
        for name, shape in shapes.items():
            weight = shapes[name.rsplit(".", 1)[0] + ".weight" if "." in name else "weight"]
            bound = 1 / math.sqrt(math.prod(weight[1:]))  # torch's default init range
            a[name] = rng.uniform(-bound, bound, shape)
        return a

    return inputs


def _run_torch(torch_model, a, dtype):
    """Output and gradients of sum(out * v) through the torch model, parameters from ``a``."""
    torch = _torch()
    model = torch_model(dtype)
    names = [n for n, _ in model.named_parameters()]
    model.load_state_dict({n: torch.as_tensor(a[n], dtype=dtype) for n in names}, strict=True)
    x = torch.as_tensor(a["x"], dtype=dtype).requires_grad_()
    out = model(x)
    (out * torch.as_tensor(a["v"], dtype=dtype)).sum().backward()
    return {"out": out, "grad:x": x.grad, **{f"grad:{n}": p.grad for n, p in model.named_parameters()}}


def _spread_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max-pooling whose backward sends the gradient to every element of the window
    (for magnitudes only: it bounds whatever element the real network routes to)."""
    torch = _torch()
    F = torch.nn.functional

    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    k, d, p = pair(kernel_size), pair(dilation), pair(padding)
    s = pair(stride) if stride is not None and stride != [] else k  # torch: None (or []) means kernel_size
    ref = _ORIGINAL_MAX_POOL2D(input, k, s, p, d, ceil_mode=ceil_mode)  # torch's own output size
    ho, wo = ref.shape[-2:]
    h, w = input.shape[-2:]
    extra = [max(0, (o - 1) * st + dd * (kk - 1) + 1 - (n + 2 * pp)) for o, st, dd, kk, n, pp in
             ((ho, s[0], d[0], k[0], h, p[0]), (wo, s[1], d[1], k[1], w, p[1]))]
    # magnitudes are >= 0 and every torch window holds an input element: zero padding is as good as -inf
    xp = F.pad(input, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]))
    patches = F.unfold(xp, k, dilation=d, stride=s).unflatten(1, (input.shape[1], k[0] * k[1]))
    total = patches.sum(2)
    y = total + (patches.amax(2) - total).detach()  # the value of the max, the gradient of the sum
    y = y.unflatten(-1, (ho, wo))
    return (y, None) if return_indices else y


_ORIGINAL_MAX_POOL2D = None


@contextmanager
def _magnitude_mode():
    global _ORIGINAL_MAX_POOL2D
    F = _torch().nn.functional
    _ORIGINAL_MAX_POOL2D = F.max_pool2d
    with mock.patch.object(F, "max_pool2d", _spread_max_pool2d), \
            mock.patch.object(F, "relu", lambda input, inplace=False: input):
        yield


_MAGNITUDES: dict = {}


def _magnitudes(name, torch_model, wide):
    """Elementwise magnitudes of every quantity: the torch model in float64 on |inputs|."""
    key = (name, id(wide))
    if _MAGNITUDES.get("key") != key or _MAGNITUDES.get("wide") is not wide:
        torch = _torch()
        with _magnitude_mode():
            out = _run_torch(torch_model, {k: np.abs(v) for k, v in wide.items()}, torch.float64)
        _MAGNITUDES.update(key=key, wide=wide, value={k: to_numpy(v) for k, v in out.items()})
    return _MAGNITUDES["value"]


def _run_keras(model, x, v):
    """The Keras model's output at channels_last ``x``, and the gradients of ``sum(out * v)``
    for ``x`` and for ``model.weights``: output and input gradient back in channels_first."""
    tf = _tf()
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x)
        loss = tf.reduce_sum(out * v)
    gx, *gw = tape.gradient(loss, [x] + list(model.weights))
    return _channels_first(to_numpy(out)), _channels_first(to_numpy(gx)), gw


def _kind(q):
    """A model case's quantity kind by its name: ``out``, ``grad:x``, else a parameter gradient."""
    return "forward" if q == "out" else "grad" if q == "grad:x" else "param_grad"


def _model_case(name, source, doc, torch_model, keras_model, x_shape, n, *, seed=0, expect="equal", keras_hook=None):
    """Register a case comparing ``torch_model(dtype)`` and ``keras_model(dtype)``.

    ``n``: quantity name -> operation count; names are ``out``, ``grad:x`` and
    ``grad:<torch parameter name>``.
    """

    def tf_side(a, ctx):
        model = keras_model(ctx.dtype)
        if keras_hook is not None:
            keras_hook(model)
        x = ctx.tf_const(_channels_last(a["x"]))
        model(x)  # builds it: a Sequential learns the shapes feeding its Flatten
        template = torch_model(ctx.torch_dtype)
        names = [n for n, _ in template.named_parameters()]
        adapter.torch_to_keras(template, model, state={n: a[n] for n in names})
        out, gx, gw = _run_keras(model, x, ctx.tf_const(_channels_last(a["v"])))
        grads = adapter.torch_values(model, template, gw)
        return {"out": out, "grad:x": gx, **{f"grad:{k}": g for k, g in grads.items()}}

    return register(Case(
        name=f"modules.{name}",
        source=source,
        doc=doc,
        inputs=_inputs(torch_model, x_shape),
        torch=lambda a, ctx: _run_torch(torch_model, a, ctx.torch_dtype),
        tf=tf_side,
        reference="torch",
        quantities=tuple(Q(q, _kind(q), n=count, magnitude=lambda wide, ref, q=q: _magnitudes(name, torch_model, wide)[q])
                         for q, count in n.items()),
        seed=seed,
        expect=expect,
    ))


# -- nn.Linear (In [23]-[24]): Linear(10, 4) on the seed's batch of 523 ---------------------

_model_case(
    "linear", "seed 001 §4.3 (In [23]-[24])", "nn.Linear(10, 4) on a (523, 10) batch, as Dense(4)",
    lambda dtype: T.Linear(10, 4, dtype=dtype), lambda dtype: K.Linear(10, 4, dtype=dtype), (523, 10),
    {
        "out": 10 + 1,  # a dot product of 10, then the bias
        "grad:x": 4,  # v @ W sums over the 4 outputs
        "grad:weight": 523,  # v^T x sums over the batch
        "grad:bias": 523,  # the batch sum of v
    },
)

_model_case(
    "linear_no_bias", "seed 001 §4.3 (In [23])", "nn.Linear(10, 4, bias=False), as Dense(4, use_bias=False)",
    lambda dtype: T.Linear(10, 4, bias=False, dtype=dtype), lambda dtype: K.Linear(10, 4, bias=False, dtype=dtype),
    (7, 10),
    {"out": 10, "grad:x": 4, "grad:weight": 7},  # a dot of 10; a sum over 4 outputs; over the batch of 7
    seed=1,
)

# -- convolutions (In [28] and §4.4's padding / stride / dilation / groups) -----------------

_model_case(
    "conv2d_dilation", "seed 001 §4.4 (In [28])",
    "nn.Conv2d(1, 1, kernel_size=3, dilation=4) on (1, 1, 20, 30): output (1, 1, 12, 22)",
    lambda dtype: T.Conv2d(1, 1, kernel_size=3, dilation=4, dtype=dtype),
    lambda dtype: K.Conv2d(1, 1, kernel_size=3, dilation=4, dtype=dtype), (1, 1, 20, 30),
    {
        "out": 9 + 1,  # 1 channel x 3x3 taps, then the bias
        "grad:x": 9,  # an input element feeds at most 9 taps of the 1 output channel
        "grad:weight": 12 * 22,  # a sum over the output positions (batch 1)
        "grad:bias": 12 * 22,
    },
)

_model_case(
    "conv2d_grouped", "seed 001 §4.4 (padding, stride, dilation, groups)",
    "Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2): ZeroPadding2D, and "
    "a stride-1 Conv2D sampled every stride (Keras refuses stride and dilation together)",
    lambda dtype: T.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, dtype=dtype),
    lambda dtype: K.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, dtype=dtype),
    (3, 4, 9, 8),
    {
        "out": 2 * 3 * 2 + 1,  # 2 input channels per group x 3x2 taps, then the bias
        "grad:x": 3 * 3 * 2,  # an input element feeds 3 output channels of its group x at most 6 taps
        "grad:weight": 3 * 5 * 10,  # a sum over batch 3 x the 5x10 output positions
        "grad:bias": 3 * 5 * 10,
    },
    seed=2,
)

_model_case(
    "conv2d_strided_dilated", "seed 001 §4.4 (padding, stride, dilation)",
    "Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, bias=False): stride and dilation on the same axes",
    lambda dtype: T.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, bias=False, dtype=dtype),
    lambda dtype: K.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, bias=False, dtype=dtype),
    (2, 3, 11, 12),
    {
        "out": 3 * 9,  # 3 input channels x 3x3 taps, no bias
        "grad:x": 4 * 9,  # 4 output channels x at most 9 taps
        "grad:weight": 2 * 5 * 5,  # batch 2 x the 5x5 output positions
    },
    seed=3,
)

_model_case(
    "conv2d_same", "seed 001 §4.4 (padding)",
    "Conv2d(2, 3, (3, 4), padding='same', dilation=(2, 1)): Keras padding='same' at stride 1 pads as torch does, "
    "the odd row/column at the bottom/right",
    lambda dtype: T.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), dtype=dtype),
    lambda dtype: K.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), dtype=dtype),
    (2, 2, 7, 9),
    {
        "out": 2 * 12 + 1,  # 2 input channels x 3x4 taps, then the bias
        "grad:x": 3 * 12,  # 3 output channels x at most 12 taps
        "grad:weight": 2 * 7 * 9,  # batch 2 x the 7x9 output positions
        "grad:bias": 2 * 7 * 9,
    },
    seed=4,
)

_model_case(
    "conv1d", "seed 001 §4.4 (the 1-D definition, with padding, stride, dilation, groups)",
    "Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2) on N, L, C as ZeroPadding1D + Conv1D",
    lambda dtype: T.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, dtype=dtype),
    lambda dtype: K.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, dtype=dtype),
    (3, 4, 17),
    {
        "out": 2 * 3 + 1,  # 2 input channels per group x 3 taps, then the bias
        "grad:x": 3 * 3,  # 3 output channels of the group x at most 3 taps
        "grad:weight": 3 * 9,  # batch 3 x 9 output positions
        "grad:bias": 3 * 9,
    },
    seed=5,
)

# -- pooling (§4.5): torch's -inf padding, ceil_mode, divisors --------------------------------

_model_case(
    "max_pool2d", "seed 001 §4.5 (nn.MaxPool2d)",
    "MaxPool2d(3, stride=2, padding=1, ceil_mode=True): -inf padding, and ceil_mode adds a last window",
    lambda dtype: T.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    lambda dtype: K.MaxPool2d(3, stride=2, padding=1, ceil_mode=True, dtype=dtype), (2, 3, 10, 11),
    {
        "out": 0,  # the max is one of the inputs: bit-exact
        "grad:x": 2 * 2,  # an element lies in at most ceil(3/2)^2 windows; their gradients add
    },
    seed=6,
)

_model_case(
    "max_pool2d_ceil_drop", "seed 001 §4.5 (nn.MaxPool2d); pytorch #57178",
    "MaxPool2d(2, stride=2, padding=1, ceil_mode=True) on 5x7: the ceil window that would start in the right "
    "padding alone is dropped",
    lambda dtype: T.MaxPool2d(2, stride=2, padding=1, ceil_mode=True),
    lambda dtype: K.MaxPool2d(2, stride=2, padding=1, ceil_mode=True, dtype=dtype), (2, 2, 5, 7),
    {"out": 0, "grad:x": 1},  # exact; windows do not overlap (stride = kernel), a gradient is passed on
    seed=7,
)

_model_case(
    "max_pool2d_dilated", "seed 001 §4.5 (nn.MaxPool2d dilation)",
    "MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(2, 3), ceil_mode=True)",
    lambda dtype: T.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(2, 3), ceil_mode=True),
    lambda dtype: K.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(2, 3), ceil_mode=True, dtype=dtype),
    (2, 2, 9, 10),
    {"out": 0, "grad:x": 3 * 2},  # exact; an element lies in at most one window per kernel offset (6)
    seed=8,
)

_model_case(
    "avg_pool2d", "seed 001 §4.5 (average pooling)",
    "AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False): the divisor counts input "
    "elements only",
    lambda dtype: T.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda dtype: K.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False, dtype=dtype),
    (2, 3, 10, 11),
    {
        # Keras: a sum of 9, / 9, then x (9 / divisor), the factor itself rounded: 9 + 3 (torch: 9 + 1)
        "out": 9 + 3,
        # per window g * factor (2 with the factor's rounding) / 9 (1); at most 2x2 windows add
        "grad:x": 3 + 4,
    },
    seed=9,
)

_model_case(
    "avg_pool2d_divisor", "seed 001 §4.5 (average pooling)",
    "AvgPool2d((2, 3), stride=(1, 2), padding=1, divisor_override=5)",
    lambda dtype: T.AvgPool2d((2, 3), stride=(1, 2), padding=1, divisor_override=5),
    lambda dtype: K.AvgPool2d((2, 3), stride=(1, 2), padding=1, divisor_override=5, dtype=dtype), (2, 2, 6, 7),
    {
        "out": 6 + 3,  # a sum of 6, / 6, x (6 / 5) rounded
        "grad:x": 3 + 2 * 2,  # 3 roundings per window; at most 2 (rows) x 2 (columns) windows add
    },
    seed=10,
)

# -- nn.Sequential (In [31]), ModuleList, and the Net (In [32]-[34]) ---------------------------

_MLP_N = {
    "out": (10 + 1) + (100 + 1) + (50 + 1),  # three Linear layers: dots of 10, 100, 50, each + bias
    "grad:x": 2 + 50 + 100,  # back through them: sums over 2, 50, 100 outputs
    "grad:{0}.weight": 8 + 2 + 50,  # batch 8, after the backward through layers 4 and 2
    "grad:{0}.bias": 8 + 2 + 50,
    "grad:{1}.weight": 8 + 2 + 11,  # batch 8 of (backward through layer 4) x (forward of layer 0)
    "grad:{1}.bias": 8 + 2,
    "grad:{2}.weight": 8 + 11 + 101,  # batch 8 of v x (forward through layers 0 and 2)
    "grad:{2}.bias": 8,
}

_model_case(
    "mlp", "seed 001 §4.6 (In [31])", "the seed's MLP 10 -> 100 -> 50 -> 2 with ReLU, nn.Sequential as keras.Sequential",
    lambda dtype: T.mlp(dtype), lambda dtype: K.mlp(dtype), (8, 10),
    {k.format("0", "2", "4"): v for k, v in _MLP_N.items()},
    seed=11,
)

_model_case(
    "module_list", "seed 001 §4.6 (ModuleList)",
    "the MLP with its layers in nn.ModuleList / a Keras-tracked list, paired by attribute name",
    lambda dtype: T.MLPList(dtype), lambda dtype: K.MLPList(dtype), (8, 10),
    {k.format("fcs.0", "fcs.1", "fcs.2"): v for k, v in _MLP_N.items()},
    seed=12,
)

_NET_N = {
    # conv1: 1x5x5 taps + bias; conv2: 32x5x5 + bias; fc1: 256 + bias; fc2: 200 + bias
    "out": 26 + 801 + 257 + 201,
    # back through fc2 (10 outputs), fc1 (200), conv2 (64 channels x 25 taps), conv1 (32 x 25)
    "grad:x": 10 + 200 + 1600 + 800,
    "grad:conv1.weight": 12 * 24 * 24 + 10 + 200 + 1600,  # batch x 24x24 positions, after the backward to conv1
    "grad:conv1.bias": 12 * 24 * 24 + 10 + 200 + 1600,
    "grad:conv2.weight": 12 * 4 * 4 + 10 + 200 + 26,  # batch x 4x4 positions; backward to conv2; forward of conv1
    "grad:conv2.bias": 12 * 4 * 4 + 10 + 200,
    "grad:fc1.weight": 12 + 10 + 26 + 801,  # batch; backward through fc2; forward through the convolutions
    "grad:fc1.bias": 12 + 10,
    "grad:fc2.weight": 12 + 26 + 801 + 257,  # batch; forward up to fc1's output
    "grad:fc2.bias": 12,
}

_model_case(
    "net", "seed 001 §4.6 (In [32]-[34])",
    "the seed's Net (conv 1->32 k5, max-pool 3, conv 32->64 k5, max-pool 2, fc 256->200->10) on 12 28x28 images; "
    "Keras flattens H, W, C and declares it, so the adapter permutes fc1's rows",
    lambda dtype: T.Net(dtype), lambda dtype: K.Net(dtype), (12, 1, 28, 28), _NET_N, seed=13,
)


# The bounds above are worst-case through the whole chain: |W| products grow about
# sqrt(fan_in) per layer where the signed values cancel, so for the Net they sit ~1e6
# above the observed errors. The same Net layer by layer: each layer gets the float64
# reference's input and output cotangent (rounded to the run's dtype), so each bound is
# one layer deep and tight, and fc1 still reads the (N, 64, 2, 2) map the Keras way.
_NET_LAYERS = ("conv1", "conv2", "fc1", "fc2")


def _net_layerwise_inputs(rng):
    torch = _torch()
    a = _inputs(lambda dtype: T.Net(dtype), (12, 1, 28, 28))(rng)
    net = T.Net(torch.float64)
    net.load_state_dict({n: torch.as_tensor(a[n]) for n, _ in net.named_parameters()})
    seen = {}

    def keep(name):
        def hook(module, args, out):
            out.retain_grad()
            seen[name] = (args[0].detach(), out)
        return hook

    for name in _NET_LAYERS:
        getattr(net, name).register_forward_hook(keep(name))
    (net(torch.as_tensor(a["x"])) * torch.as_tensor(a["v"])).sum().backward()
    for name in _NET_LAYERS:
        h, out = seen[name]
        a[f"in:{name}"] = h.reshape(-1, 64, 2, 2).numpy() if name == "fc1" else h.numpy()  # fc1 reads the map
        a[f"dy:{name}"] = out.grad.numpy()
    del a["v"]
    return a


def _net_layerwise_torch(a, dtype):
    torch = _torch()
    net = T.Net(dtype)
    net.load_state_dict({n: torch.as_tensor(a[n], dtype=dtype) for n, _ in net.named_parameters()}, strict=True)
    out = {}
    for name in _NET_LAYERS:
        layer = getattr(net, name)
        h = torch.as_tensor(a[f"in:{name}"], dtype=dtype).requires_grad_()
        y = layer(h.view(-1, 256) if name == "fc1" else h)  # as in Net.forward
        (y * torch.as_tensor(a[f"dy:{name}"], dtype=dtype)).sum().backward()
        out.update({f"{name}:out": y, f"{name}:grad_in": h.grad, f"{name}:grad:weight": layer.weight.grad,
                    f"{name}:grad:bias": layer.bias.grad})
    return out


def _net_layerwise_tf(a, ctx):
    tf = _tf()
    model = K.Net(ctx.dtype)
    model(ctx.tf_const(_channels_last(a["in:conv1"])))
    template = T.Net(ctx.torch_dtype)
    adapter.torch_to_keras(template, model, state={n: a[n] for n, _ in template.named_parameters()})
    weights = list(model.weights)
    out = {}
    for name in _NET_LAYERS:
        layer = getattr(model, name)
        h = ctx.tf_const(_channels_last(a[f"in:{name}"]))
        with tf.GradientTape() as tape:
            tape.watch(h)
            y = layer(tf.reshape(h, (-1, 256)) if name == "fc1" else h)  # as in Net.call
            loss = tf.reduce_sum(y * ctx.tf_const(_channels_last(a[f"dy:{name}"])))
        gh, *gw = tape.gradient(loss, [h] + layer.weights)
        mine = dict(zip(map(id, layer.weights), gw))
        gw = [mine.get(id(w), np.zeros(w.shape, ctx.dtype)) for w in weights]  # the other layers: no gradient
        grads = adapter.torch_values(model, template, gw)  # fc1's rows go back through the adapter
        out.update({f"{name}:out": _channels_first(to_numpy(y)), f"{name}:grad_in": _channels_first(to_numpy(gh)),
                    f"{name}:grad:weight": grads[f"{name}.weight"], f"{name}:grad:bias": grads[f"{name}.bias"]})
    return out


_NET_LAYERWISE_N = {  # per layer: out, grad_in, weight grad, bias grad
    "conv1": (25 + 1, 32 * 25, 12 * 24 * 24, 12 * 24 * 24),  # 1x5x5 taps; 32 channels x 25 taps; batch x 24x24
    "conv2": (800 + 1, 64 * 25, 12 * 4 * 4, 12 * 4 * 4),  # 32x5x5 taps; 64 channels x 25 taps; batch x 4x4
    "fc1": (256 + 1, 200, 12, 12),  # a dot of 256; a sum over 200 outputs; over the batch of 12
    "fc2": (200 + 1, 10, 12, 12),
}


def _net_layerwise_magnitude(q):
    def magnitude(wide, ref):
        key = ("net_layerwise", id(wide))
        if _MAGNITUDES.get("key") != key or _MAGNITUDES.get("wide") is not wide:
            out = _net_layerwise_torch({k: np.abs(v) for k, v in wide.items()}, _torch().float64)
            _MAGNITUDES.update(key=key, wide=wide, value={k: to_numpy(v) for k, v in out.items()})
        return _MAGNITUDES["value"][q]
    return magnitude


register(Case(
    name="modules.net_layerwise",
    source="seed 001 §4.6 (In [32])",
    doc="each layer of the Net on the float64 reference's own input and output cotangent: one-layer-deep bounds",
    inputs=_net_layerwise_inputs,
    torch=lambda a, ctx: _net_layerwise_torch(a, ctx.torch_dtype),
    tf=_net_layerwise_tf,
    reference="torch",
    quantities=tuple(
        Q(f"{name}:{q}", kind, n=count, magnitude=_net_layerwise_magnitude(f"{name}:{q}"))
        for name, counts in _NET_LAYERWISE_N.items()
        for q, kind, count in zip(("out", "grad_in", "grad:weight", "grad:bias"),
                                  ("forward", "grad", "param_grad", "param_grad"), counts)
    ),
    seed=13,
))

# the flatten-order trap inside a Sequential: the adapter reads the layers
_CNN_N = {
    "out": (2 * 9 + 1) + (36 + 1),  # conv 2 channels x 3x3 + bias; Linear over 36 + bias
    "grad:x": 5 + 4 * 9,  # back through the Linear (5 outputs) and the conv (4 channels x 9 taps)
    "grad:0.weight": 3 * 6 * 6 + 5,  # batch 3 x 6x6 positions, after the backward through the Linear
    "grad:0.bias": 3 * 6 * 6 + 5,
    "grad:4.weight": 3 + 19,  # batch 3 x (forward of the conv)
    "grad:4.bias": 3,
}


def _torch_cnn(dtype):
    return T.Sequential(T.Conv2d(2, 4, 3, padding=1, dtype=dtype), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                        T.Linear(36, 5, dtype=dtype))


def _keras_cnn(dtype, permute=False):
    keras = _keras()
    layers = [K.Conv2d(2, 4, 3, padding=1, dtype=dtype), K.ReLU(dtype=dtype), K.MaxPool2d(2, dtype=dtype)]
    if permute:  # to channels-first, so Flatten reads C, H, W as torch does
        layers.append(keras.layers.Permute((3, 1, 2), dtype=dtype))
    return K.Sequential(*layers, K.Flatten(dtype=dtype), K.Linear(36, 5, dtype=dtype))


_model_case(
    "cnn_sequential", "seed 001 §4.6 (explicit reshaping before the fully connected layer)",
    "Sequential(conv, ReLU, max-pool, Flatten, Linear): Keras flattens H, W, C; the adapter finds the Flatten "
    "after a channels_last conv and permutes the Linear's rows",
    _torch_cnn, _keras_cnn, (3, 2, 6, 6), _CNN_N, seed=14,
)

_model_case(
    "cnn_sequential_permute", "seed 001 §4.6 (explicit reshaping before the fully connected layer)",
    "the same with Permute((3, 1, 2)) before Flatten: Keras flattens C, H, W itself; no row permutation",
    _torch_cnn, lambda dtype: _keras_cnn(dtype, permute=True), (3, 2, 6, 6), _CNN_N, seed=14,
)

# -- negative controls: known-wrong ports the suite must catch -----------------------------------


def _claim_channels_first(model):
    model.flatten_layout = {"fc1": None}  # wrong: this model flattens H, W, C


_model_case(
    "net_flatten_unpermuted", "pitfalls: flatten after a conv (nn-transfer #16, keras #13830)",
    "negative control: the Net's weights copied with transposes only, fc1's rows left in torch's C, H, W order",
    lambda dtype: T.Net(dtype), lambda dtype: K.Net(dtype), (12, 1, 28, 28), _NET_N,
    seed=13, expect="differ", keras_hook=_claim_channels_first,
)


def _zero_padded_max_pool(dtype):
    keras = _keras()
    return keras.Sequential([keras.layers.ZeroPadding2D(1, dtype=dtype),
                             keras.layers.MaxPooling2D(3, strides=2, padding="valid", dtype=dtype)])


_model_case(
    "max_pool2d_zero_padding", "pitfalls: torch max-pool pads with -inf",
    "negative control: MaxPool2d(3, stride=2, padding=1) ported as ZeroPadding2D + MaxPooling2D, wrong wherever "
    "a border window holds only negative values",
    lambda dtype: T.MaxPool2d(3, stride=2, padding=1), _zero_padded_max_pool, (2, 3, 10, 11),
    {"out": 0, "grad:x": 2 * 2},
    seed=6, expect="differ",
)

# -- nn.MSELoss (In [25]-[26]) --------------------------------------------------------------------


def _mse_torch(a, ctx):
    x = ctx.t(a["x"], requires_grad=True)
    y = ctx.t(a["y"], requires_grad=True)
    loss = T.MSELoss()(x, y)
    loss.backward()
    return {"loss": loss, "grad:x": x.grad, "grad:y": y.grad}


def _mse_tf(a, ctx):
    tf = _tf()
    x, y = ctx.tf_const(a["x"]), ctx.tf_const(a["y"])
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        loss = K.MSELoss(dtype=ctx.dtype)(y, x)  # Keras: (target, prediction)
    gx, gy = tape.gradient(loss, [x, y])
    return {"loss": loss, "grad:x": gx, "grad:y": gy}


def _mse_ref(a):
    d = a["x"] - a["y"]
    return {"loss": np.mean(d * d), "grad:x": 2 * d / d.size, "grad:y": -2 * d / d.size}


def _mse_quantities(size):
    elementwise = {f"grad:{s}": (lambda wide, ref, s=s: np.abs(ref[f"grad:{s}"])) for s in "xy"}
    return (
        Q("loss", "forward", n=size + 3),  # a difference, a square, a sum of `size`, a division
        # x - y is one rounding relative to |x - y|; then the factors 2, 1/size (Keras: 1/rows and 1/columns,
        # one at a time) and the product: 5 roundings relative to the element itself
        Q("grad:x", "grad", n=5, magnitude=elementwise["grad:x"]),
        Q("grad:y", "grad", n=5, magnitude=elementwise["grad:y"]),
    )


for _name, _x, _y in (("mse_loss_seed_9", [[3.0]], [[0.0]]), ("mse_loss_seed_2_25", [[3.0, 0.0, 0.0, 0.0]], [[0.0] * 4])):
    register(Case(
        name=f"modules.{_name}",
        source="seed 001 §4.3 (In [25]-[26])",
        doc=f"nn.MSELoss()({_x}, {_y}) as keras.losses.MeanSquaredError",
        inputs=lambda rng, _x=_x, _y=_y: {"x": np.array(_x), "y": np.array(_y)},
        torch=_mse_torch,
        tf=_mse_tf,
        reference=_mse_ref,
        quantities=_mse_quantities(len(_x[0])),
    ))

register(Case(
    name="modules.mse_loss",
    source="seed 001 §4.3 (In [25]-[26])",
    doc="nn.MSELoss on a (6, 5) batch: the mean over all 30 elements (Keras: per row, then over the rows)",
    inputs=lambda rng: {"x": rng.standard_normal((6, 5)), "y": rng.standard_normal((6, 5))},
    torch=_mse_torch,
    tf=_mse_tf,
    reference=_mse_ref,
    quantities=_mse_quantities(30),
    seed=15,
))

# -- the sizes the seed prints (In [23], [24], [28], [33], [34]), against the seed's literals ---------

_SEED_SIZES = {
    "linear.parameter_sizes": [4, 10, 4],  # In [23]: weight torch.Size([4, 10]), bias torch.Size([4])
    "linear.output_size": [523, 4],  # In [24]
    "conv2d_dilation.output_size": [1, 1, 12, 22],  # In [28]
    "net.output_size": [12, 10],  # In [33]
    "net.parameter_sizes": [32, 1, 5, 5, 32, 64, 32, 5, 5, 64, 200, 256, 200, 10, 200, 10],  # In [34]
}


def _sizes(shapes):
    return np.array([d for s in shapes for d in s])


def _seed_sizes_torch(a, ctx):
    dtype = ctx.torch_dtype
    f = T.Linear(in_features=10, out_features=4, dtype=dtype)
    l = T.Conv2d(1, 1, kernel_size=3, dilation=4, dtype=dtype)
    model = T.Net(dtype)
    return {
        "linear.parameter_sizes": _sizes(p.size() for _, p in T.named_parameters(f)),
        "linear.output_size": np.array(f(ctx.t(a["x_linear"])).size()),
        "conv2d_dilation.output_size": np.array(l(ctx.t(a["x_conv"])).size()),
        "net.output_size": np.array(model(ctx.t(a["input1"])).size()),
        "net.parameter_sizes": _sizes(k.size() for k in T.parameters(model)),
    }


def _seed_sizes_tf(a, ctx):
    f = K.Linear(in_features=10, out_features=4, dtype=ctx.dtype)
    l = K.Conv2d(1, 1, kernel_size=3, dilation=4, dtype=ctx.dtype)
    model = K.Net(ctx.dtype)
    return {
        "linear.parameter_sizes": _sizes(p.shape for _, p in K.named_parameters(f)),
        "linear.output_size": np.array(f(ctx.tf_const(a["x_linear"])).shape),
        # channels_last in and out: the sizes in torch's N, C, H, W order
        "conv2d_dilation.output_size": np.array(_channels_first(l(ctx.tf_const(_channels_last(a["x_conv"])))).shape),
        "net.output_size": np.array(model(ctx.tf_const(_channels_last(a["input1"]))).shape),
        "net.parameter_sizes": _sizes(k.shape for k in K.parameters(model)),
    }


register(Case(
    name="modules.seed_sizes",
    source="seed 001 §4.3-4.6 (In [23], [24], [28], [33], [34])",
    doc="the sizes the seed prints, each framework against the seed's literals (the reference)",
    inputs=lambda rng: {"x_linear": rng.standard_normal((523, 10)), "x_conv": rng.standard_normal((1, 1, 20, 30)),
                        "input1": rng.standard_normal((12, 1, 28, 28))},
    torch=_seed_sizes_torch,
    tf=_seed_sizes_tf,
    reference=lambda a: {k: np.array(v) for k, v in _SEED_SIZES.items()},
    quantities=tuple(Q(name, "behaviour", n=0) for name in _SEED_SIZES),  # sizes: exactly equal
))
