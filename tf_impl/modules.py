"""PyTorch modules and batch processing (seed 001 §4.3-4.6), ported to Keras layers.

Idiomatic Keras is channels_last: images are N, H, W, C where torch has N, C, H, W.
Each torch module keeps its name and constructor here (``Conv2d(1, 32, kernel_size=5)``)
and returns the Keras layer that computes the same thing:

* ``Linear`` is ``Dense``; its kernel (in, out) is torch's weight (out, in) transposed.
* ``Conv1d``/``Conv2d`` are ``Conv1D``/``Conv2D`` with ``padding='valid'``; torch's integer
  padding is symmetric, so it becomes a ``ZeroPadding`` layer in front (Keras ``'same'``
  pads asymmetrically once the stride is above 1).
* ``MaxPool2d``/``AvgPool2d`` are Keras pooling where it can say the same thing, and a
  small layer otherwise: pad with -inf (max) or zeros (average), pool with ``'valid'``,
  extend the right/bottom padding for ``ceil_mode``, and correct the average's divisor.

Layers are built at construction, as torch modules hold their weights from ``__init__``:
``named_parameters`` works before the first call. ``dtype`` is the Keras dtype policy
(every layer needs it: a float32 layer silently casts float64 inputs down).

Run ``python -m tf_impl.modules``.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def _tuple(value, n, what):
    """torch's _pair/_single: an int means the same value on every spatial axis."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    value = tuple(value)
    if len(value) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in value)


# -- Linear -----------------------------------------------------------------------


def Linear(in_features, out_features, bias=True, dtype=None):
    """``nn.Linear(in, out)``: a ``Dense(out)`` built for ``in`` input features."""
    layer = keras.layers.Dense(out_features, use_bias=bias, dtype=dtype)
    layer.build((None, in_features))  # weights exist from construction, as in torch
    return layer


# -- convolutions ------------------------------------------------------------------


class PaddedConv(keras.Sequential):
    """``ZeroPadding`` then a ``'valid'`` convolution: one torch conv with integer padding."""

    def __init__(self, layers, dtype=None, name=None):
        super().__init__(layers, name=name)
        if dtype is not None:  # keras.Sequential takes no dtype; a Sequential starting here casts inputs to it
            self.dtype_policy = dtype

    @property
    def conv(self):
        return self.layers[-1]


class _Subsampled:
    """Keras refuses strides > 1 together with dilation > 1; torch does not.

    A stride-1 dilated convolution sampled every ``stride`` positions has the same
    sums at the same places: output o of the strided one is output o*stride here.
    """

    def __init__(self, *args, strides, **kwargs):
        super().__init__(*args, strides=1, **kwargs)
        self.torch_strides = strides

    def call(self, inputs):
        y = super().call(inputs)
        return y[(slice(None),) + tuple(slice(None, None, s) for s in self.torch_strides) + (slice(None),)]

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        for i, s in enumerate(self.torch_strides, start=1):
            if shape[i] is not None:
                shape[i] = -(-shape[i] // s)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "strides": self.torch_strides}


class SubsampledConv1D(_Subsampled, keras.layers.Conv1D):
    """``Conv1D`` with stride and dilation both above 1 (see ``_Subsampled``)."""


class SubsampledConv2D(_Subsampled, keras.layers.Conv2D):
    """``Conv2D`` with stride and dilation both above 1 (see ``_Subsampled``)."""


def _conv(rank, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype):
    if in_channels % groups:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups:
        raise ValueError("out_channels must be divisible by groups")
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode={padding_mode!r} has no Keras layer here; only 'zeros' (ZeroPadding) is ported")
    kernel_size = _tuple(kernel_size, rank, "kernel_size")
    stride = _tuple(stride, rank, "stride")
    dilation = _tuple(dilation, rank, "dilation")
    keras_padding = "valid"
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
        if padding == "same" and max(stride) > 1:
            raise ValueError("padding='same' is not supported for strided convolutions")
        # with stride 1 both pad d*(k-1) in total, the odd one on the right/bottom
        keras_padding, padding = padding, (0,) * rank
    padding = _tuple(padding, rank, "padding")
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if min(stride) < 1 or min(dilation) < 1 or min(kernel_size) < 1:
        raise ValueError(f"kernel_size, stride and dilation must be positive, got {kernel_size}, {stride}, {dilation}")
    cls = (keras.layers.Conv1D, keras.layers.Conv2D)[rank - 1]
    kw = dict(padding=keras_padding, dilation_rate=dilation, groups=groups, use_bias=bias, dtype=dtype)
    if max(stride) > 1 and max(dilation) > 1:
        conv = (SubsampledConv1D, SubsampledConv2D)[rank - 1](out_channels, kernel_size, strides=stride, **kw)
    else:
        conv = cls(out_channels, kernel_size, strides=stride, **kw)
    # the kernel exists from construction, as in torch; a PaddedConv itself stays unbuilt, or an
    # enclosing Sequential would take its (None, None, ..., C) input shape for its own
    conv.build((None,) + (None,) * rank + (in_channels,))
    if max(padding) > 0:
        pad = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D)[rank - 1]
        return PaddedConv([pad(padding[0] if rank == 1 else padding, dtype=dtype), conv], dtype=dtype)
    return conv


def Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
           padding_mode="zeros", dtype=None):
    """``nn.Conv1d`` on N, L, C inputs: ``Conv1D``, with ``ZeroPadding1D`` for integer padding."""
    return _conv(1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


def Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
           padding_mode="zeros", dtype=None):
    """``nn.Conv2d`` on N, H, W, C inputs: ``Conv2D``, with ``ZeroPadding2D`` for integer padding."""
    return _conv(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


# -- pooling -----------------------------------------------------------------------


def pool_geometry(size, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """torch's pooling output size on one axis, and the (left, right) padding that makes
    ``'valid'`` pooling produce exactly those windows.

    ``ceil_mode`` lets a last window start inside the input or the left padding but
    never in the right padding alone (``(out - 1) * stride >= size + padding`` drops it).
    """
    span = dilation * (kernel_size - 1) + 1  # the window's extent with dilation
    room = size + 2 * padding - span
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(f"Given input size {size}, calculated output size {out}: output size is too small")
    right = max(padding, (out - 1) * stride + span - size - padding)
    return out, (padding, right)


def _holds_input(size, kernel_size, stride, padding, dilation, out):
    """Whether each window on one axis has a tap inside the input (not all padding)."""
    taps = (np.arange(out) * stride - padding)[:, None] + dilation * np.arange(kernel_size)[None, :]
    return ((taps >= 0) & (taps < size)).any(axis=1)


def _avg_divisor(size, kernel_size, stride, padding, out, count_include_pad):
    """torch's average-pool divisor per output position on one axis (a factor of the 2-D divisor)."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel_size, size + padding)  # the window clipped to the padded input
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)  # only the input elements


class TorchPooling2D(keras.layers.Layer):
    """Max or average pooling with torch's padding, dilation, ceil_mode and divisor rules.

    The input is padded explicitly (-inf for max, so padding never wins; zeros for the
    average) and pooled with ``'valid'`` windows; the average is then rescaled where
    torch's divisor is not the window size (``count_include_pad=False``, ``ceil_mode``
    windows hanging over the padding, ``divisor_override``).
    """

    def __init__(self, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "avg"):
            raise ValueError(f"mode must be 'max' or 'avg', not {mode!r}")
        self.mode = mode
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size")
        self.stride = self.kernel_size if stride is None else _tuple(stride, 2, "stride")  # torch: None means kernel_size
        self.padding = _tuple(padding, 2, "padding")
        self.dilation = _tuple(dilation, 2, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override
        if min(self.stride) < 1:
            raise ValueError("stride should not be zero")
        if min(self.kernel_size) < 1 or min(self.dilation) < 1:
            raise ValueError(f"kernel_size and dilation must be positive, got {self.kernel_size}, {self.dilation}")
        if mode == "avg" and self.dilation != (1, 1):
            raise ValueError("average pooling has no dilation in torch")
        for k, p in zip(self.kernel_size, self.padding):
            if p < 0 or p > k // 2:  # torch's 2-D check is on the kernel size, dilation or not
                raise ValueError(f"pad should be smaller than or equal to half of kernel size, but got pad={p}, "
                                 f"kernel_size={k}")
        if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override <= 0):
            raise ValueError(f"divisor must be not zero (a positive int), got {divisor_override!r}")

    def _geometry(self, shape):
        sizes = shape[1:3]
        if any(s is None for s in sizes):
            raise ValueError(f"TorchPooling2D needs static spatial sizes, got input shape {tuple(shape)}")
        return [pool_geometry(s, k, st, p, d, self.ceil_mode)
                for s, k, st, p, d in zip(sizes, self.kernel_size, self.stride, self.padding, self.dilation)]

    def call(self, x):
        (ho, (top, bottom)), (wo, (left, right)) = self._geometry(x.shape)
        fill = -math.inf if self.mode == "max" else 0.0
        x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=fill)
        if self.mode == "max":
            if self.dilation == (1, 1):
                return ops.max_pool(x, self.kernel_size, self.stride, padding="valid")
            # TF pools with dilation only at stride 1: take every stride-th window
            y = tf.nn.pool(x, self.kernel_size, "MAX", strides=(1, 1), padding="VALID", dilations=self.dilation)
            y = y[:, ::self.stride[0], ::self.stride[1], :]
            # with dilation a window can hold padding only: torch gives -inf, TF's max starts at the
            # lowest finite value
            h, w = x.shape[1] - top - bottom, x.shape[2] - left - right
            empty = ~np.outer(*(_holds_input(n, k, st, p, d, o) for n, k, st, p, d, o in zip(
                (h, w), self.kernel_size, self.stride, self.padding, self.dilation, (ho, wo))))
            if empty.any():
                y = tf.where(empty[None, :, :, None], tf.constant(-math.inf, y.dtype), y)
            return y
        y = ops.average_pool(x, self.kernel_size, self.stride, padding="valid")  # sum / (kh * kw)
        h, w = x.shape[1] - top - bottom, x.shape[2] - left - right
        if self.divisor_override is not None:
            divisor = np.full((ho, wo), float(self.divisor_override))
        else:
            divisor = np.outer(_avg_divisor(h, self.kernel_size[0], self.stride[0], self.padding[0], ho, self.count_include_pad),
                               _avg_divisor(w, self.kernel_size[1], self.stride[1], self.padding[1], wo, self.count_include_pad))
        factor = math.prod(self.kernel_size) / divisor
        if np.all(factor == 1.0):
            return y
        return y * ops.convert_to_tensor(factor[None, :, :, None], dtype=y.dtype)

    def compute_output_shape(self, input_shape):
        (ho, _), (wo, _) = self._geometry(input_shape)
        return (input_shape[0], ho, wo, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "dilation": self.dilation, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "divisor_override": self.divisor_override}


class _SizeChecked:
    """Stock Keras pooling returns an empty tensor for an input smaller than one window,
    where torch raises ("Output size is too small"): check first, then pool as Keras does."""

    def call(self, inputs):
        for size, k, s in zip(inputs.shape[1:3], self.pool_size, self.strides):
            if size is not None:
                pool_geometry(size, k, s, 0)  # raises ValueError when no window fits
        return super().call(inputs)


class MaxPooling2D(_SizeChecked, keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` that refuses inputs smaller than a window, as torch does."""


class AveragePooling2D(_SizeChecked, keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` that refuses inputs smaller than a window, as torch does."""


def MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False, *, dtype=None):
    """``nn.MaxPool2d`` on N, H, W, C: ``MaxPooling2D`` when padding, dilation and
    ``ceil_mode`` are off, else ``TorchPooling2D`` (padding with -inf)."""
    if return_indices:
        raise ValueError("return_indices has no Keras pooling layer; use tf_impl.functional.max_pool2d")
    layer = TorchPooling2D("max", kernel_size, stride, padding, dilation, ceil_mode, dtype=dtype)
    if layer.padding == (0, 0) and layer.dilation == (1, 1) and not ceil_mode:
        return MaxPooling2D(layer.kernel_size, layer.stride, padding="valid", dtype=dtype)
    return layer


def AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None,
              *, dtype=None):
    """``nn.AvgPool2d`` on N, H, W, C: ``AveragePooling2D`` when padding, ``ceil_mode``
    and ``divisor_override`` are off, else ``TorchPooling2D``."""
    layer = TorchPooling2D("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                           dtype=dtype)
    if layer.padding == (0, 0) and not ceil_mode and divisor_override is None:
        return AveragePooling2D(layer.kernel_size, layer.stride, padding="valid", dtype=dtype)
    return layer


# -- weightless layers, loss, containers ----------------------------------------------


def ReLU(dtype=None):
    """``nn.ReLU()``."""
    return keras.layers.ReLU(dtype=dtype)


def Flatten(dtype=None):
    """``nn.Flatten()``; on channels_last maps it flattens H, W, C where torch flattens C, H, W."""
    return keras.layers.Flatten(dtype=dtype)


def MSELoss(reduction="mean", *, dtype=None):
    """``nn.MSELoss()``: the mean of the squared differences (Keras: mean over the last
    axis, then over the batch, the same mean). Keras losses take (target, prediction),
    torch's (input, target); ``dtype`` matters: a Keras loss computes in float32 by default."""
    if reduction != "mean":
        raise ValueError(f"reduction={reduction!r}: the Keras loss reduces per sample first, so only 'mean' "
                         f"matches torch; tf_impl.functional.mse_loss has every reduction")
    return keras.losses.MeanSquaredError(dtype=dtype)


def Sequential(*layers):
    """``nn.Sequential(a, b, c)``: ``keras.Sequential([a, b, c])``."""
    return keras.Sequential(list(layers))


def ModuleList(layers):
    """``nn.ModuleList``: a plain list. Keras tracks lists of layers set as attributes,
    so, unlike torch, the plain list is already enough."""
    return list(layers)


# -- torch's view of a Keras model -----------------------------------------------------


def named_children(layer):
    """(name, child) pairs the way torch names submodules: Sequential and list entries by
    index, attributes of subclassed layers by name. A ``PaddedConv`` is one module."""
    if isinstance(layer, PaddedConv) or not isinstance(layer, (keras.layers.Layer, list, tuple)):
        return []
    if isinstance(layer, (list, tuple)):
        return [(str(i), c) for i, c in enumerate(layer)]
    if isinstance(layer, keras.Sequential):
        return [(str(i), c) for i, c in enumerate(layer.layers)]
    out = []
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer):
            out.append((name, value))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, keras.layers.Layer) for v in value):
            out.append((name, value))
    return out


def named_modules(layer, prefix=""):
    """Every module with its dotted torch-style path, the root first (``""``)."""
    yield prefix, layer
    for name, child in named_children(layer):
        yield from named_modules(child, f"{prefix}.{name}" if prefix else name)


def weight_layer(layer):
    """The Dense/Conv1D/Conv2D holding a module's parameters, or None for a weightless one."""
    if isinstance(layer, PaddedConv):
        return layer.conv
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)):
        return layer
    return None


#: Keras kernel axes -> torch weight axes: Dense (in, out) -> (out, in); Conv1D (k, in, out)
#: -> (out, in, k); Conv2D (kh, kw, in, out) -> (out, in, kh, kw)
TORCH_AXES = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1)}


def named_parameters(model):
    """(name, weight) as torch's ``named_parameters()`` lists them: names ``path.weight``
    and ``path.bias``, weights transposed to torch's axis order (a copy).

    Only axes move here: the rows of a Dense that reads a flattened channels_last map
    stay in Keras's H, W, C order (``equivalence.adapter`` maps values exactly).
    """
    for path, module in named_modules(model):
        layer = weight_layer(module)
        if layer is None:
            if isinstance(module, keras.layers.Layer) and not named_children(module) and module.weights:
                raise ValueError(f"{type(module).__name__} at {path or '<root>'!r} has weights but no torch counterpart here")
            continue
        prefix = f"{path}." if path else ""
        yield prefix + "weight", ops.transpose(layer.kernel, TORCH_AXES[len(layer.kernel.shape)])
        if layer.use_bias:
            yield prefix + "bias", ops.convert_to_tensor(layer.bias)


def parameters(model):
    """The weights of ``named_parameters``, in torch's order and axis order."""
    return [p for _, p in named_parameters(model)]


# -- the seed's networks ------------------------------------------------------------


def mlp(dtype=None):
    """The seed's MLP: 10 inputs, hidden layers of 100 and 50, 2 outputs, ReLU between."""
    return Sequential(
        Linear(10, 100, dtype=dtype), ReLU(dtype=dtype),
        Linear(100, 50, dtype=dtype), ReLU(dtype=dtype),
        Linear(50, 2, dtype=dtype),
    )


class Net(keras.Model):
    """The seed's CNN on 28x28 images, channels_last: input (N, 28, 28, 1), output (N, 10)."""

    #: read by equivalence.adapter: fc1 reads the (2, 2, 64) map flattened in Keras's
    #: H, W, C order, where torch's ``view(-1, 256)`` flattens C, H, W
    flatten_layout = {"fc1": (2, 2, 64)}

    def __init__(self, dtype=None):
        super().__init__(dtype=dtype)  # the model casts its inputs to this dtype
        self.conv1 = Conv2d(1, 32, kernel_size=5, dtype=dtype)
        self.conv2 = Conv2d(32, 64, kernel_size=5, dtype=dtype)
        self.fc1 = Linear(256, 200, dtype=dtype)
        self.fc2 = Linear(200, 10, dtype=dtype)

    def call(self, x):
        x = ops.relu(ops.max_pool(self.conv1(x), pool_size=3, strides=3))
        x = ops.relu(ops.max_pool(self.conv2(x), pool_size=2, strides=2))
        x = ops.reshape(x, (-1, 256))
        x = ops.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class MLPList(keras.Model):
    """The MLP with its layers in a ``ModuleList`` (a list Keras tracks)."""

    def __init__(self, dtype=None):
        super().__init__(dtype=dtype)
        self.fcs = ModuleList([Linear(10, 100, dtype=dtype), Linear(100, 50, dtype=dtype), Linear(50, 2, dtype=dtype)])

    def call(self, x):
        for fc in self.fcs[:-1]:
            x = ops.relu(fc(x))
        return self.fcs[-1](x)


class MLPPlainList(keras.Model):
    """The same layers in a plain Python list: torch would not see them; Keras does."""

    def __init__(self, dtype=None):
        super().__init__(dtype=dtype)
        self.fcs = [Linear(10, 100, dtype=dtype), Linear(100, 50, dtype=dtype), Linear(50, 2, dtype=dtype)]

    def call(self, x):
        for fc in self.fcs[:-1]:
            x = ops.relu(fc(x))
        return self.fcs[-1](x)


def main():
    tf.random.set_seed(0)  # under op determinism (the equivalence suite turns it on) random ops need a seed
    f = Linear(in_features=10, out_features=4)
    for n, p in named_parameters(f):
        print(n, p.shape)
    x = tf.random.normal((523, 10))
    y = f(x)
    print(y.shape)

    f = MSELoss()
    x = tf.constant([[3.0]])
    y = tf.constant([[0.0]])
    print(f(y, x))  # Keras losses take (target, prediction): torch's (input, target) swapped
    x = tf.constant([[3.0, 0.0, 0.0, 0.0]])
    y = tf.constant([[0.0, 0.0, 0.0, 0.0]])
    print(f(y, x))

    x = tf.random.normal((1, 20, 30, 1))  # channels_last: torch's (1, 1, 20, 30)
    l = Conv2d(1, 1, kernel_size=3, dilation=4)
    print(l(x).shape)

    model = mlp()
    print(model(tf.random.normal((3, 10))).shape)

    model = Net()
    input1 = tf.random.normal((12, 28, 28, 1))
    output = model(input1)
    print(output.shape)

    model = Net()
    for k in parameters(model):
        print(k.shape)


if __name__ == "__main__":
    main()
