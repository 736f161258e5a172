"""``torch.nn.functional`` against ``tf_impl.functional`` (seed 001 §4.3-4.5, seed 000 §4-5).

First the values the seed prints (the relu example, the 1-D convolution
definition, the conv2d and dilation shapes, the max-pool example, the two
MSE losses), then a grid over each op's arguments: stride, padding (int,
tuple, 'valid', 'same'), dilation, groups, ceil_mode, count_include_pad,
divisor_override, return_indices, unbatched inputs, bias or none. Every case
compares the output and the gradients of ``sum(out * cotangent)`` with respect
to each tensor argument; ``equivalence.calls.quantities`` derives each ``n``
and the elementwise magnitudes (the same call on |x|, |w| and |cotangent|).
tests/test_functional_properties.py draws many more configurations.
"""

from types import SimpleNamespace

import numpy as np

from tf_impl import functional as tf_F

from ..calls import Call, as_case
from ..case import register
from ..frameworks import tf

S001 = "seed 001 §4.3 (In [22], [25], [26])"
S_CONV = "seed 001 §4.4 (In [27], [28]); seed 000 §4"
S_POOL = "seed 001 §4.5 (In [29], [30]); seed 000 §5"

# -- the seed's printed examples ------------------------------------------------------------------------

#: In [22]: F.relu(x)
RELU_X = np.array([0.8008, -0.2586, 0.5019, -0.2002, -0.7416])
register(as_case("functional.relu_seed", S001, Call("relu", {"input": RELU_X}),
                 doc="F.relu(tensor([0.8008, -0.2586, 0.5019, -0.2002, -0.7416])) = [0.8008, 0, 0.5019, 0, 0]"))


def _definition(a):
    """The seed's definition, (x (+) u)_i = sum_j x_{i-1+j} u_j, and its gradients, written out."""
    x, u, g = a["input"][0, 0], a["weight"][0, 0], a["cotangent"][0, 0]
    out = np.array([sum(x[i + j] * u[j] for j in range(len(u))) for i in range(len(x) - len(u) + 1)])
    gx, gu = np.zeros_like(x), np.zeros_like(u)
    for i in range(len(out)):
        for j in range(len(u)):
            gx[i + j] += g[i] * u[j]
            gu[j] += g[i] * x[i + j]
    return {"out": out[None, None], "grad:input": gx[None, None], "grad:weight": gu[None, None]}


register(as_case(
    "functional.conv1d_definition", "seed 001 §4.4 (mathematical definition)",
    Call("conv1d", {"input": np.array([[[1.0, 2.0, 3.0, 4.0]]]), "weight": np.array([[[3.0, 2.0]]])}, positional=2),
    reference=_definition, doc="(1,2,3,4) (+) (3,2) = (3+4, 6+9, 9+8) = (7, 12, 17), via F.conv1d",
))

_rng = np.random.default_rng(27)
#: In [27]: F.conv2d(input1, weight, bias) with input1 (117, 4, 10, 13), weight (5, 4, 2, 3) -> (117, 5, 9, 11)
register(as_case("functional.conv2d_seed", S_CONV, Call("conv2d", {
    "input": _rng.standard_normal((117, 4, 10, 13)), "weight": _rng.standard_normal((5, 4, 2, 3)),
    "bias": _rng.standard_normal(5)}, positional=3), doc="F.conv2d(input1, weight, bias): [117, 5, 9, 11]"))

_rng = np.random.default_rng(28)
#: In [28]: kernel 3, dilation 4 on 1x1x20x30: the map shrinks by 1+(3-1)4-1 = 8 -> (1, 1, 12, 22)
register(as_case("functional.conv2d_dilation_seed", S_CONV, Call("conv2d", {
    "input": _rng.standard_normal((1, 1, 20, 30)), "weight": _rng.standard_normal((1, 1, 3, 3)),
    "bias": _rng.standard_normal(1), "dilation": 4}, positional=3),
    doc="Conv2d(1, 1, kernel_size=3, dilation=4) on (1, 1, 20, 30): [1, 1, 12, 22]"))

#: In [29]: x = torch.empty(1,2,2,6).random_(3), as printed
POOL_X = np.array([[[[1.0, 1.0, 0.0, 2.0, 1.0, 1.0], [2.0, 2.0, 2.0, 0.0, 2.0, 1.0]],
                    [[1.0, 1.0, 0.0, 0.0, 2.0, 1.0], [0.0, 2.0, 0.0, 2.0, 1.0, 0.0]]]])


def _pool_1x2(a):
    """max over (1, 2) blocks; the gradient goes to the first maximum of each block (ties: 1 1, 2 2, ...)."""
    x, g = a["input"], a["cotangent"]
    blocks = x.reshape(1, 2, 2, 3, 2)
    first = blocks.argmax(-1)  # NumPy's argmax returns the first maximum, as torch's scan does
    grad = np.zeros_like(blocks)
    np.put_along_axis(grad, first[..., None], g[..., None], axis=-1)
    return {"out": blocks.max(-1), "grad:input": grad.reshape(x.shape)}


register(as_case("functional.max_pool2d_seed", S_POOL, Call("max_pool2d", {"input": POOL_X, "kernel_size": (1, 2)},
                                                            positional=2),
                 reference=_pool_1x2, doc="F.max_pool2d(x, (1, 2)) on the seed's x, ties included"))


def _mse(a):
    d = a["input"] - a["target"]
    return {"out": np.mean(d * d), "grad:input": 2 * d / d.size * a["cotangent"],
            "grad:target": -2 * d / d.size * a["cotangent"]}


#: In [25] / [26]: nn.MSELoss()(x, y) = 9 and 2.25 (the functional form of the same loss)
for _name, _x in (("one", [[3.0]]), ("four", [[3.0, 0.0, 0.0, 0.0]])):
    register(as_case(f"functional.mse_loss_seed_{_name}", S001,
                     Call("mse_loss", {"input": np.array(_x), "target": np.zeros((1, len(_x[0])))}, positional=2),
                     reference=_mse, doc=f"MSELoss()({_x}, zeros) = {9.0 / len(_x[0])}"))


# -- a grid over each op's arguments --------------------------------------------------------------------

def _grid(op, name, seed, shapes, doc="", transform=None, positional=1, **options):
    """A case for ``op`` with standard-normal tensors of the given shapes (``transform`` may reshape the draw)."""
    rng = np.random.default_rng(seed)
    arrays = {k: rng.standard_normal(s) for k, s in shapes.items()}
    if transform is not None:
        arrays = transform(arrays, rng)
    register(as_case(f"functional.{op}.{name}", S_CONV if op.startswith("conv") else
                     S_POOL if "pool" in op else S001, Call(op, {**arrays, **options}, positional=positional),
                     seed=seed, doc=doc))


X2, X1 = (2, 3, 7, 8), (2, 3, 9)
W2, W1 = (4, 3, 3, 3), (4, 3, 3)

_grid("conv2d", "basic", 1, {"input": X2, "weight": W2, "bias": (4,)})
_grid("conv2d", "stride_padding", 2, {"input": X2, "weight": W2, "bias": (4,)}, stride=2, padding=1)
_grid("conv2d", "tuple_arguments", 3, {"input": X2, "weight": W2, "bias": (4,)},
      stride=(1, 2), padding=(2, 0), dilation=(2, 1))
_grid("conv2d", "same_even_kernel", 4, {"input": X2, "weight": (4, 3, 2, 4), "bias": (4,)},
      padding="same", dilation=(1, 2), doc="'same' with an even kernel: torch pads the extra column on the right")
_grid("conv2d", "valid_no_bias", 5, {"input": X2, "weight": W2}, padding="valid")
_grid("conv2d", "dilation_with_stride", 6, {"input": (2, 3, 9, 10), "weight": W2, "bias": (4,)},
      stride=2, padding=1, dilation=2, doc="TF's convolution refuses stride and dilation together")
_grid("conv2d", "groups", 7, {"input": (2, 4, 6, 7), "weight": (6, 2, 3, 3), "bias": (6,)}, groups=2,
      doc="TF has no CPU gradient for grouped convolutions")
_grid("conv2d", "depthwise", 8, {"input": (2, 3, 6, 6), "weight": (6, 1, 3, 2)}, groups=3, stride=(2, 1))
_grid("conv2d", "unbatched", 9, {"input": (3, 7, 8), "weight": W2, "bias": (4,)}, padding=(1, 2))
_grid("conv2d", "positional", 10, {"input": X2, "weight": W2}, positional=7, bias=None, stride=2, padding=1,
      dilation=1, groups=1, doc="conv2d(x, w, None, 2, 1, 1, 1)")

_grid("conv1d", "basic", 11, {"input": X1, "weight": W1, "bias": (4,)})
_grid("conv1d", "stride_padding_dilation", 12, {"input": (2, 3, 12), "weight": W1, "bias": (4,)},
      stride=3, padding=2, dilation=2)
_grid("conv1d", "same", 13, {"input": X1, "weight": (4, 3, 4)}, padding="same", dilation=3)
_grid("conv1d", "groups", 14, {"input": (2, 6, 9), "weight": (3, 2, 3), "bias": (3,)}, groups=3)
_grid("conv1d", "unbatched", 15, {"input": (3, 9), "weight": W1, "bias": (4,)}, stride=2)


def _negative(a, rng):
    return {"input": -np.abs(a["input"]) - 1.0}  # every value below the zero a wrong padding would insert


def _ties(a, rng):
    return {"input": rng.integers(0, 3, a["input"].shape).astype(float)}  # like the seed's random_(3)


def _special(a, rng):
    x = a["input"].copy()
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 6, replace=False)] = [np.nan, np.nan, np.inf, -np.inf, np.inf, -np.inf]
    return {"input": x}


_grid("max_pool2d", "seed_with_indices", 0, {}, transform=lambda a, rng: {"input": POOL_X}, kernel_size=(1, 2),
      return_indices=True, doc="the seed's example, with torch's flat indices (ties: the first maximum)")
_grid("max_pool2d", "basic", 21, {"input": (2, 3, 6, 7)}, kernel_size=2)
_grid("max_pool2d", "padding_negative_inputs", 22, {"input": (2, 3, 7, 7)}, transform=_negative, kernel_size=3,
      stride=2, padding=1, return_indices=True, doc="torch pads with -inf: zero padding would win here")
_grid("max_pool2d", "ceil_mode", 23, {"input": (1, 2, 5, 5)}, kernel_size=2, stride=2, padding=1, ceil_mode=True,
      return_indices=True, doc="ceil_mode would start a 4th window in the right padding; torch drops it (#57178)")
_grid("max_pool2d", "dilation", 24, {"input": (2, 2, 8, 9)}, kernel_size=3, stride=(1, 2), padding=1, dilation=2,
      return_indices=True)
_grid("max_pool2d", "overlapping_ties", 25, {"input": (2, 2, 6, 6)}, transform=_ties, kernel_size=3, stride=1,
      return_indices=True, doc="ties everywhere: the first maximum of a window takes the gradient")
_grid("max_pool2d", "nan_and_inf", 26, {"input": (1, 2, 6, 6)}, transform=_special, kernel_size=2, stride=1,
      return_indices=True, doc="NaN propagates (the last NaN of a window is its index); infinities are values")
_grid("max_pool2d", "unbatched", 27, {"input": (3, 5, 6)}, kernel_size=(2, 3), stride=(1, 2), padding=(1, 0),
      ceil_mode=True, return_indices=True)
_grid("max_pool2d", "positional", 28, {"input": (2, 3, 6, 7)}, positional=7, kernel_size=3, stride=2, padding=1,
      dilation=1, ceil_mode=True, return_indices=False)

_grid("max_pool1d", "basic", 31, {"input": X1}, kernel_size=2)
_grid("max_pool1d", "padding_ceil_dilation", 32, {"input": (2, 3, 10)}, transform=_negative, kernel_size=3, stride=2,
      padding=1, dilation=2, ceil_mode=True, return_indices=True)
_grid("max_pool1d", "unbatched", 33, {"input": (3, 9)}, kernel_size=(3,), stride=[], return_indices=True,
      doc="stride=[] means stride = kernel_size, as in torch")

_grid("avg_pool2d", "basic", 41, {"input": (2, 3, 6, 7)}, kernel_size=2)
_grid("avg_pool2d", "padding_exclude", 42, {"input": (2, 3, 7, 7)}, kernel_size=3, stride=2, padding=1,
      count_include_pad=False)
_grid("avg_pool2d", "ceil_include_pad", 43, {"input": (1, 2, 4, 4)}, kernel_size=3, stride=2, padding=1,
      ceil_mode=True, doc="the last window is clipped to the padded input: its divisor is 2x2, not 3x3")
_grid("avg_pool2d", "ceil_exclude_pad", 44, {"input": (2, 2, 6, 5)}, kernel_size=(3, 2), stride=2, padding=1,
      ceil_mode=True, count_include_pad=False)
_grid("avg_pool2d", "divisor_override", 45, {"input": (2, 3, 6, 7)}, kernel_size=(2, 3), padding=(1, 1),
      divisor_override=5)
_grid("avg_pool2d", "negative_divisor_unbatched", 46, {"input": (3, 6, 7)}, kernel_size=2, stride=1,
      divisor_override=-3)

_grid("avg_pool1d", "basic", 51, {"input": X1}, kernel_size=3)
_grid("avg_pool1d", "padding_ceil_exclude", 52, {"input": (2, 3, 10)}, kernel_size=4, stride=3, padding=2,
      ceil_mode=True, count_include_pad=False)
_grid("avg_pool1d", "unbatched", 53, {"input": (3, 9)}, kernel_size=2, stride=1, padding=1, positional=6,
      ceil_mode=False, count_include_pad=True)

_grid("linear", "batch", 61, {"input": (5, 10), "weight": (4, 10), "bias": (4,)}, positional=3)
_grid("linear", "leading_dims_no_bias", 62, {"input": (2, 3, 6), "weight": (5, 6)})
_grid("linear", "vector_input", 63, {"input": (7,), "weight": (3, 7), "bias": (3,)})
_grid("linear", "vector_weight", 64, {"input": (4, 6), "weight": (6,)}, doc="a 1-D weight: one output, dropped")


def _with_zeros(a, rng):
    x = a["input"].copy()
    x.reshape(-1)[::4] = 0.0  # exact zeros: relu's gradient there is 0 in both frameworks
    return {"input": x}


_grid("relu", "with_zeros", 71, {"input": (4, 5)}, transform=_with_zeros)

_grid("mse_loss", "mean", 81, {"input": (6, 5), "target": (6, 5)})
_grid("mse_loss", "sum", 82, {"input": (6, 5), "target": (6, 5)}, reduction="sum")
_grid("mse_loss", "none", 83, {"input": (6, 5), "target": (6, 5)}, reduction="none")
_grid("mse_loss", "weighted_mean", 84, {"input": (6, 5), "target": (6, 5), "weight": (6, 5)},
      transform=lambda a, rng: {**a, "weight": np.abs(a["weight"]) + 0.1})


# -- negative controls: plausible wrong ports the comparison must catch ---------------------------------

def _zero_padded_max_pool2d(input, kernel_size, stride=None, padding=0, **options):
    """Keras-style ZeroPadding2D + MaxPool2D: the zeros beat negative activations at the border."""
    x = tf().pad(input, [[0, 0], [0, 0], [padding, padding], [padding, padding]])
    return tf_F.max_pool2d(x, kernel_size, stride, 0, **options)


def _reduce_max_pool2d(input, kernel_size, **options):
    """Non-overlapping blocks through tf.reduce_max, whose gradient splits evenly among tied maxima."""
    n, c, h, w = input.shape
    kh, kw = kernel_size
    return tf().reduce_max(tf().reshape(input, [n, c, h // kh, kh, w // kw, kw]), axis=[3, 5])


def _argmax_max_pool2d(input, kernel_size, return_indices=False, **options):
    """tf.nn.max_pool_with_argmax: its flat indices count NHWC positions ((y*W + x)*C + c), not y*W + x."""
    y, i = tf().nn.max_pool_with_argmax(tf().transpose(input, [0, 2, 3, 1]), kernel_size, kernel_size, "VALID")
    return tf().transpose(y, [0, 3, 1, 2]), tf().transpose(i, [0, 3, 1, 2])


def _keras_same_conv2d(input, weight, bias=None, stride=1, padding=0, **options):
    """Keras Conv2D(padding='same') for torch's padding=1 at stride 2: TF pads (0, 1), torch (1, 1)."""
    y = tf().nn.conv2d(tf().transpose(input, [0, 2, 3, 1]), tf().transpose(weight, [2, 3, 1, 0]), stride, "SAME")
    return tf().transpose(y + bias, [0, 3, 1, 2])


_NEGATIVE = (
    ("max_pool2d", "zero_padding", _zero_padded_max_pool2d, {"input": (2, 3, 7, 7)}, _negative,
     dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", "tie_gradient_split", _reduce_max_pool2d, {}, lambda a, rng: {"input": POOL_X},
     dict(kernel_size=(1, 2))),
    ("max_pool2d", "nhwc_argmax_indices", _argmax_max_pool2d, {"input": (1, 3, 4, 4)}, None,
     dict(kernel_size=(2, 2), return_indices=True)),
    ("conv2d", "keras_same_padding", _keras_same_conv2d, {"input": (2, 3, 8, 8), "weight": W2, "bias": (4,)}, None,
     dict(stride=2, padding=1)),
)
for _i, (_op, _name, _wrong, _shapes, _transform, _options) in enumerate(_NEGATIVE):
    _rng = np.random.default_rng(90 + _i)
    _arrays = {k: _rng.standard_normal(s) for k, s in _shapes.items()}
    _arrays = _transform(_arrays, _rng) if _transform else _arrays
    register(as_case(f"functional.negative.{_op}_{_name}", "docs/pitfalls.md (padding and pooling)",
                     Call(_op, {**_arrays, **_options}), seed=90 + _i, expect="differ",
                     tf_module=SimpleNamespace(**{_op: _wrong}), doc=_wrong.__doc__))
