"""``torch.nn.functional`` in TensorFlow: convolution, pooling, linear, relu, mse_loss (seed 001 §4.3-4.5).

Each function has torch's name, signature (argument names, positional order,
defaults) and semantics, and takes and returns tensors in torch's layout:
(N, C, H, W) or unbatched (C, H, W) for the 2-D ops, (N, C, L) or (C, L) for
the 1-D ones, conv weights (out_channels, in_channels/groups, kh, kw). A torch
call therefore replays verbatim::

    y = F.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    y, i = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)

They are tested in float32 and float64 and are differentiable under
``tf.GradientTape``. TensorFlow's own CPU kernels refuse several of these
cases, so the functions go around them (each workaround is commented where it
happens):

* NCHW: TF's CPU ``Conv2D`` runs only NHWC, so conv transposes in and out;
  pooling needs no layout at all (it slices windows out of the input).
* dilation together with stride (``tf.nn.convolution`` refuses it): a dense
  dilated convolution, then every stride-th output.
* gradients of grouped convolutions (no CPU kernel): one convolution per group.
* ``ceil_mode``, -inf padding, pooling dilation, torch's tie rule (the first
  maximum of a window gets the gradient), NaN propagation and torch's flat
  indices: TF's pooling ops have none of them, so pooling is written from
  strided slices.
* ``tf.nn.relu``'s gradient is 0 at NaN, torch's passes: relu is a ``where``.

Errors. Where torch raises, these raise too, with a message that names the
argument and the offending value: ``ValueError`` for bad values and shapes
(torch raises ``RuntimeError``, ``ValueError`` or ``IndexError``) and
``TypeError`` for bad types (a float or bool where torch wants an int, an
integer tensor where only floats are supported, mismatched dtypes).

Deliberate differences, each raising a clear error rather than guessing:

* integer tensors: torch runs ``conv*``, ``avg_pool*`` and ``linear`` on
  integers on the CPU; here they need floating-point tensors (``TypeError``).
  ``max_pool*`` and ``relu`` accept integers, like torch.
* ``relu(x, inplace=True)``: a ``tf.Tensor`` is immutable, so in-place needs a
  ``tf.Variable`` (it is assigned and returned); a tensor raises ``TypeError``.
* ``conv*`` with zero input channels (torch returns a surprising shape) raises.
* ``linear`` with a 1-D weight and a bias: torch refuses it for a 2-D input
  only (its ``addmm`` path; 1-D and 3-D inputs pass); here every input passes.
* the channel and spatial dimensions must be known statically (the batch
  dimension may be ``None`` inside ``tf.function``).

Run ``python -m tf_impl.functional`` to print the seed's examples.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

__all__ = [
    "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "linear", "relu", "mse_loss",
]


# -- argument handling shared by the ops ----------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _ints(value, n: int, name: str, op: str) -> tuple[int, ...]:
    """torch's int-or-tuple argument as n Python ints: an int, or a sequence of 1 or n ints."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) == n:
            return tuple(int(v) for v in value)
        if len(value) == 1:  # torch expands a 1-element list
            return (int(value[0]),) * n
        raise ValueError(f"{op}: {name} must be a single int or a tuple of {n} int(s), got {value!r}")
    raise TypeError(f"{op}: {name} must be an int or a tuple of ints, not {type(value).__name__} {value!r}")


def _flag(value, name: str, op: str) -> bool:
    """A bool argument that torch type-checks (ceil_mode, count_include_pad)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, not {type(value).__name__} {value!r}")
    return bool(value)


def _positive(values, name: str, op: str) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be greater than zero, got {values if len(values) > 1 else values[0]}")


def _tensor(x, name: str, op: str) -> tf.Tensor:
    try:
        return tf.convert_to_tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: {name} must be a tensor, not {type(x).__name__}") from e


def _floating(x: tf.Tensor, name: str, op: str) -> None:
    if not x.dtype.is_floating:
        raise TypeError(f"{op}: {name} must be a floating-point tensor (float16, bfloat16, float32, float64), "
                        f"got {x.dtype.name}")


def _same_dtype(x: tf.Tensor, other: tf.Tensor, name: str, op: str) -> None:
    if other.dtype != x.dtype:  # torch does not promote conv/linear operands either
        raise TypeError(f"{op}: input is {x.dtype.name} but {name} is {other.dtype.name}; cast one of them")


def _static(shape: tf.TensorShape, dims, op: str) -> list[int]:
    sizes = [shape[d] for d in dims]
    if any(s is None for s in sizes):
        raise ValueError(f"{op}: the channel and spatial sizes must be known statically, got shape {shape}")
    return sizes


def _shape(x: tf.Tensor) -> list:
    return x.shape.as_list()


# -- convolution ----------------------------------------------------------------------------------------

def _conv_padding(padding, kernel, dilation, stride, nd, op):
    """torch's padding argument as (left, right) per spatial dimension."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride}); torch refuses it too: pad with integers instead")
            # total d*(k-1); torch puts the odd extra element on the right
            return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
        raise ValueError(f"{op}: invalid padding string {padding!r}; use 'valid', 'same', an int or a tuple of ints")
    pads = _ints(padding, nd, "padding", op)
    if any(p < 0 for p in pads):
        raise ValueError(f"{op}: negative padding is not supported, got padding={padding!r}")
    return [(p, p) for p in pads]


def _conv2d_nhwc(x, w, stride, dilation):
    """A VALID NHWC convolution for any stride and dilation, and any batch size.

    TensorFlow's oneDNN Conv2D (float32 on the x86 CPUs where TensorFlow turns oneDNN on,
    e.g. with AVX-512; tf 2.21) returns its input unchanged for an empty batch: (0, 6, 6, 3)
    for a 3x3 kernel to 4 channels, where the Eigen kernel and torch give (0, 4, 4, 4). An
    empty batch is convolved with one zero sample added, and none of the output kept: the
    shape is TensorFlow's own, and the gradients are the empty ones.
    """
    batch = x.shape[0]
    if batch is not None and batch > 0:
        return _conv2d_nhwc_op(x, w, stride, dilation)

    def padded():
        one = tf.zeros(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)
        return _conv2d_nhwc_op(tf.concat([x, one], 0), w, stride, dilation)[: tf.shape(x)[0]]

    if batch == 0:
        return padded()
    # a batch size known only at run time (a tf.function traced for any batch)
    return tf.cond(tf.shape(x)[0] > 0, lambda: _conv2d_nhwc_op(x, w, stride, dilation), padded)


def _conv2d_nhwc_op(x, w, stride, dilation):
    if max(stride) > 1 and max(dilation) > 1:
        # tf.nn.convolution refuses stride with dilation: convolve densely, keep every stride-th output
        y = tf.nn.convolution(x, w, strides=1, padding="VALID", dilations=list(dilation))
        return y[:, :: stride[0], :: stride[1], :]
    return tf.nn.convolution(x, w, strides=list(stride), padding="VALID", dilations=list(dilation))


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups):
    x, w = _tensor(input, "input", op), _tensor(weight, "weight", op)
    _floating(x, "input", op)
    _same_dtype(x, w, "weight", op)
    if x.shape.rank not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {_shape(x)}")
    if w.shape.rank != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D (out_channels, in_channels/groups, "
                         f"{'kh, kw' if nd == 2 else 'kw'}), got weight of shape {_shape(w)}")
    stride, dilation = _ints(stride, nd, "stride", op), _ints(dilation, nd, "dilation", op)
    _positive(stride, "stride", op)
    _positive(dilation, "dilation", op)
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, not {type(groups).__name__} {groups!r}")
    _positive((groups,), "groups", op)
    out_channels, in_per_group, *kernel = _static(w.shape, range(nd + 2), op)
    channels, *size = _static(x.shape, range(-nd - 1, 0), op)
    if out_channels == 0 or in_per_group == 0:
        raise ValueError(f"{op}: weight of shape {_shape(w)} has no channels")
    if out_channels % groups:
        raise ValueError(f"{op}: out_channels (weight.shape[0] = {out_channels}) must be divisible by groups={groups}")
    if channels != in_per_group * groups:
        raise ValueError(f"{op}: with groups={groups} and weight of shape {_shape(w)} the input must have "
                         f"{in_per_group * groups} channels, but input of shape {_shape(x)} has {channels}")
    pads = _conv_padding(padding, kernel, dilation, stride, nd, op)
    if bias is not None:
        b = _tensor(bias, "bias", op)
        _same_dtype(x, b, "bias", op)
        if _shape(b) != [out_channels]:
            raise ValueError(f"{op}: bias must be 1-D with {out_channels} elements (one per output channel), "
                             f"got bias of shape {_shape(b)}")
    padded = [n + lo + hi for n, (lo, hi) in zip(size, pads)]
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(f"{op}: the padded input size per channel {tuple(padded)} is smaller than the "
                         f"(dilated) kernel size {tuple(span)}")

    unbatched = x.shape.rank == nd + 1
    if unbatched:
        x = x[None]
    if nd == 1:  # a 1-D convolution is a 2-D one over a height of 1
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, dilation, pads = (1, *stride), (1, *dilation), [(0, 0), *pads]
    x = tf.pad(x, [[0, 0], [0, 0], *pads])  # zeros, symmetric unless 'same' needs one more on the right
    x = tf.transpose(x, [0, 2, 3, 1])  # NCHW -> NHWC: the only layout TF's CPU Conv2D runs
    w = tf.transpose(w, [2, 3, 1, 0])  # OIHW -> HWIO
    if groups == 1:
        y = _conv2d_nhwc(x, w, stride, dilation)
    else:  # TF has no CPU gradient for grouped Conv2D: one convolution per group
        y = tf.concat([_conv2d_nhwc(xg, wg, stride, dilation)
                       for xg, wg in zip(tf.split(x, groups, axis=3), tf.split(w, groups, axis=3))], axis=3)
    if bias is not None:
        y = y + b  # broadcasts over the channel axis, last in NHWC
    y = tf.transpose(y, [0, 3, 1, 2])  # back to NCHW
    if nd == 1:
        y = y[:, :, 0, :]
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of (N, C_in, L) or (C_in, L) with weight (C_out, C_in/groups, kw)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of (N, C_in, H, W) or (C_in, H, W) with weight (C_out, C_in/groups, kh, kw)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


# -- pooling: geometry ----------------------------------------------------------------------------------

def _pool_args(op, nd, kernel_size, stride, padding, dilation):
    kernel = _ints(kernel_size, nd, "kernel_size", op)
    # stride=None (or an empty list) means stride = kernel_size
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _ints(stride, nd, "stride", op)
    pad = _ints(padding, nd, "padding", op)
    dilation = _ints(dilation, nd, "dilation", op)
    _positive(kernel, "kernel_size", op)
    _positive(stride, "stride", op)
    _positive(dilation, "dilation", op)
    if any(p < 0 for p in pad):
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding should be at most half of kernel_size, got padding={padding!r} "
                         f"and kernel_size={kernel_size!r}")
    return kernel, stride, pad, dilation


def _pool_input(op, nd, input, integers_ok):
    x = _tensor(input, "input", op)
    if not integers_ok:
        _floating(x, "input", op)
    elif not (x.dtype.is_floating or x.dtype.is_integer):
        raise TypeError(f"{op}: input must be a real-valued tensor, got {x.dtype.name}")
    if x.shape.rank not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {_shape(x)}")
    sizes = _static(x.shape, range(-nd - 1, 0), op)
    if 0 in sizes:
        raise ValueError(f"{op}: the channel and spatial sizes must be non-zero, got input of shape {_shape(x)}")
    unbatched = x.shape.rank == nd + 1
    if unbatched:
        x = x[None]
    if nd == 1:  # a 1-D pooling is a 2-D one over a height of 1
        x = x[:, :, None, :]
    return x, unbatched


def _out_size(length, k, s, p, d, ceil_mode):
    out = (length + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1  # the last window may start in the left padding or the input, never in the right one (pytorch #57178)
    return out


def _geometry(op, x, kernel, stride, pad, dilation, ceil_mode):
    size = x.shape.as_list()[2:]
    out = [_out_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip(size, kernel, stride, pad, dilation)]
    if min(out) < 1:
        raise ValueError(f"{op}: given input size {tuple(size)}, the calculated output size {tuple(out)} is too small "
                         f"(kernel_size={kernel}, stride={stride}, padding={pad}, dilation={dilation})")
    return size, out


def _windows(x, kernel, stride, pad, dilation, out, fill):
    """Every kernel tap's view of the (N, C, H, W) input, stacked last: (N, C, Ho, Wo, kh*kw), row-major taps."""
    size = x.shape.as_list()[2:]
    # pad p on the left and as much as the last window needs on the right (ceil_mode may need more than p)
    right = [max(0, (o - 1) * s + d * (k - 1) + 1 - n - p)
             for n, k, s, p, d, o in zip(size, kernel, stride, pad, dilation, out)]
    xp = tf.pad(x, [[0, 0], [0, 0], [pad[0], right[0]], [pad[1], right[1]]], constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    taps = [xp[:, :, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
            for i in range(kh) for j in range(kw)]
    return tf.stack(taps, axis=-1)


def _positions(n, k, s, p, d, o):
    """Input position of tap i of output o along one axis, (o, k); outside [0, n) is padding."""
    return np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d


def _squeeze(y, nd, unbatched):
    if nd == 1:
        y = y[:, :, 0, :]
    return y[0] if unbatched else y


# -- max pooling ----------------------------------------------------------------------------------------

def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    kernel, stride, pad, dilation = _pool_args(op, nd, kernel_size, stride, padding, dilation)
    ceil_mode = _flag(ceil_mode, "ceil_mode", op)
    x, unbatched = _pool_input(op, nd, input, integers_ok=True)
    if nd == 1:
        kernel, stride, pad, dilation = (1, *kernel), (1, *stride), (0, *pad), (1, *dilation)
    (h, w), out = _geometry(op, x, kernel, stride, pad, dilation, ceil_mode)
    floating = x.dtype.is_floating
    # torch pads with -inf: a zero padding would win over negative activations
    fill = -np.inf if floating else x.dtype.min
    taps = _windows(x, kernel, stride, pad, dilation, out, fill)
    k = kernel[0] * kernel[1]
    rows = _positions(h, kernel[0], stride[0], pad[0], dilation[0], out[0])  # (Ho, kh)
    cols = _positions(w, kernel[1], stride[1], pad[1], dilation[1], out[1])  # (Wo, kw)
    valid = (((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[None, :, None, :])
    valid = tf.constant(valid.reshape(out[0], out[1], k))  # (Ho, Wo, K): which taps are real input
    tap_ids = tf.range(k)
    nan = tf.math.is_nan(taps) if floating else None
    best = tf.reduce_max(tf.where(nan, tf.constant(-np.inf, x.dtype), taps) if floating else taps,
                         axis=-1, keepdims=True)
    # torch scans a window row by row and keeps the first maximum: it alone gets the gradient
    tap = tf.reduce_min(tf.where(valid & (taps == best), tap_ids, k), axis=-1)
    # a dilated window can lie entirely in the padding (pytorch #114216): torch returns -inf there, with the
    # index of its first tap at or after position 0 in each axis (outside the input; no gradient flows)
    first = (np.argmax(rows >= 0, axis=1)[:, None] * kernel[1] + np.argmax(cols >= 0, axis=1)[None, :])
    tap = tf.where(tap == k, tf.constant(first, tap.dtype), tap)
    if floating:  # ...unless there is a NaN: torch's `val > maxval || isnan(val)` keeps the last NaN
        last_nan = tf.reduce_max(tf.where(nan, tap_ids, -1), axis=-1)
        tap = tf.where(last_nan >= 0, last_nan, tap)
    y = tf.gather(taps, tap[..., None], batch_dims=4)[..., 0]
    if not return_indices:
        return _squeeze(y, nd, unbatched)
    # torch's indices: flat positions in each (H*W) input plane, from the chosen tap's row and column
    tap = tf.cast(tap, tf.int64)
    oh = tf.range(out[0], dtype=tf.int64)[:, None]
    ow = tf.range(out[1], dtype=tf.int64)[None, :]
    row = oh * stride[0] - pad[0] + (tap // kernel[1]) * dilation[0]
    col = ow * stride[1] - pad[1] + (tap % kernel[1]) * dilation[1]
    return _squeeze(y, nd, unbatched), _squeeze(row * w + col, nd, unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling of (N, C, L) or (C, L); with ``return_indices`` also the flat argmax positions in L."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling of (N, C, H, W) or (C, H, W); with ``return_indices`` also the argmax positions in H*W."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# -- average pooling ------------------------------------------------------------------------------------

def _divisors(n, k, s, p, o):
    """Per output along one axis: the window size within the padded input, and within the input alone."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)  # ceil_mode windows are clipped to the padded input
    return end - start, np.minimum(end, n) - np.maximum(start, 0)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    kernel, stride, pad, _ = _pool_args(op, nd, kernel_size, stride, padding, 1)
    ceil_mode = _flag(ceil_mode, "ceil_mode", op)
    count_include_pad = _flag(count_include_pad, "count_include_pad", op)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"{op}: divisor_override must be an int, not {type(divisor_override).__name__} "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be zero")
    x, unbatched = _pool_input(op, nd, input, integers_ok=False)
    if nd == 1:
        kernel, stride, pad = (1, *kernel), (1, *stride), (0, *pad)
    (h, w), out = _geometry(op, x, kernel, stride, pad, (1, 1), ceil_mode)
    total = tf.reduce_sum(_windows(x, kernel, stride, pad, (1, 1), out, 0), axis=-1)
    if divisor_override is not None:
        divisor = np.full(out, float(divisor_override))
    else:
        (h_pad, h_in), (w_pad, w_in) = _divisors(h, kernel[0], stride[0], pad[0], out[0]), \
            _divisors(w, kernel[1], stride[1], pad[1], out[1])
        # count_include_pad counts the zeros of the padding, never the extra right padding of ceil_mode
        divisor = np.outer(h_pad, w_pad) if count_include_pad else np.outer(h_in, w_in)
    return _squeeze(total / tf.constant(divisor, x.dtype), nd, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling of (N, C, L) or (C, L)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling of (N, C, H, W) or (C, H, W)."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _broadcasts_to(shape, target) -> bool:
    """Whether ``shape`` expands to ``target`` (an unknown target size takes only a 1 from ``shape``)."""
    if len(shape) > len(target):
        return False
    return all(s == 1 or (t is not None and s == t) for s, t in zip(reversed(shape), reversed(target)))


# -- linear ---------------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    """y = x W^T + b over the last axis of x (any leading shape); weight is (out_features, in_features),
    or (in_features,) for a single output that is dropped from the shape, as torch's matmul does."""
    op = "linear"
    x, w = _tensor(input, "input", op), _tensor(weight, "weight", op)
    _floating(x, "input", op)
    _same_dtype(x, w, "weight", op)
    if x.shape.rank == 0 or w.shape.rank == 0:
        raise ValueError(f"{op}: input must be at least 1-D and weight 1-D or 2-D, got input of shape {_shape(x)} "
                         f"and weight of shape {_shape(w)}")
    if w.shape.rank > 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got weight of shape {_shape(w)}")
    in_features = _static(w.shape, (-1,), op)[0]
    if x.shape[-1] != in_features:
        raise ValueError(f"{op}: input of shape {_shape(x)} has {x.shape[-1]} features but weight of shape "
                         f"{_shape(w)} expects {in_features}")
    vector = x.shape.rank == 1
    if vector:  # torch: a 1-D input is a batch of one, squeezed afterwards
        x = x[None]
    w2 = w if w.shape.rank == 2 else w[None]
    y = tf.matmul(tf.reshape(x, [-1, in_features]), w2, transpose_b=True)  # Dense's kernel would be w.T
    out = [] if w.shape.rank == 1 else [w.shape[0]]
    y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], out], axis=0))
    if bias is not None:
        b = _tensor(bias, "bias", op)
        _same_dtype(x, b, "bias", op)
        out_shape = [*x.shape.as_list()[:-1], *out]
        if not _broadcasts_to(_shape(b), out_shape):  # torch expands the bias to the output, never the reverse
            raise ValueError(f"{op}: bias of shape {_shape(b)} does not broadcast to the output shape {out_shape}")
        y = y + b
    return y[0] if vector else y


# -- relu -----------------------------------------------------------------------------------------------

def _threshold(x):
    # torch's rule: x <= 0 gives 0, anything else passes, NaN included, value and gradient alike
    # (tf.nn.relu's gradient is 0 at NaN)
    return tf.where(x <= 0, tf.zeros_like(x), x)


def relu(input, inplace=False):
    """max(x, 0) elementwise; the gradient is 0 where x <= 0 and passes elsewhere (NaN too), as in torch."""
    if inplace:
        if not isinstance(input, tf.Variable):
            raise TypeError("relu: inplace=True needs a tf.Variable (a tf.Tensor is immutable); "
                            "use inplace=False and rebind the name")
        input.assign(_threshold(input))
        return input
    x = _tensor(input, "input", "relu")
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise TypeError(f"relu: input must be a real-valued tensor, got {x.dtype.name}")
    return _threshold(x)


# -- mse_loss -------------------------------------------------------------------------------------------

_REDUCTIONS = ("none", "mean", "sum")


def _promote(op, **tensors):
    """torch's type promotion for the loss operands: the widest floating dtype among them."""
    for name, t in tensors.items():
        if not (t.dtype.is_floating or t.dtype.is_integer or t.dtype.is_bool):
            raise TypeError(f"{op}: {name} must be a real-valued tensor, got {t.dtype.name}")
    floats = [t.dtype for t in tensors.values() if t.dtype.is_floating]
    if not floats:
        raise TypeError(f"{op}: at least one of {', '.join(tensors)} must be a floating-point tensor, got "
                        + ", ".join(f"{k} {t.dtype.name}" for k, t in tensors.items()))
    dtype = max(floats, key=lambda d: d.size)
    if dtype.size == 2 and len(set(floats)) > 1:
        dtype = tf.float32  # float16 with bfloat16 promotes to float32 in torch
    return [tf.cast(t, dtype) if t.dtype != dtype else t for t in tensors.values()]


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean (or sum, or elementwise) squared error; with ``weight``, the weighted mean sum(w e^2) / sum(w)."""
    op = "mse_loss"
    x, t = _tensor(input, "input", op), _tensor(target, "target", op)
    if _shape(t) != _shape(x):  # torch's warning, verbatim
        warnings.warn(f"Using a target size ({_shape(t)}) that is different to the input size ({_shape(x)}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=2)
    if size_average is not None or reduce is not None:  # the deprecated pair, read as torch reads it
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                      stacklevel=2)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; use one of {_REDUCTIONS}")
    tensors = {"input": x, "target": t}
    if weight is not None:
        wt = _tensor(weight, "weight", op)
        if not (wt.dtype.is_floating or wt.dtype.is_integer):
            raise TypeError(f"{op}: weight must be a real-valued tensor, got {wt.dtype.name}")
        if _shape(wt) != _shape(x):
            raise ValueError(f"{op}: weight must have the input's shape {_shape(x)}, got {_shape(wt)}")
        tensors["weight"] = wt
    promoted = _promote(op, **tensors)
    x, t = promoted[:2]
    try:
        shape = np.broadcast_shapes(tuple(_shape(x)), tuple(_shape(t)))
    except ValueError:
        raise ValueError(f"{op}: input of shape {_shape(x)} and target of shape {_shape(t)} do not broadcast") from None
    sq = tf.square(tf.broadcast_to(x, shape) - tf.broadcast_to(t, shape))
    if weight is not None:
        wt = promoted[2]
        sq = sq * wt
        if reduction == "mean":
            return tf.reduce_sum(sq) / tf.reduce_sum(wt)
    if reduction == "none":
        return sq
    return tf.reduce_sum(sq) if reduction == "sum" else tf.reduce_mean(sq)


# -- the seed's examples --------------------------------------------------------------------------------

def main():
    x = tf.constant([0.8008, -0.2586, 0.5019, -0.2002, -0.7416])
    print(relu(x))  # In [22]
    print(mse_loss(tf.constant([[3.0]]), tf.constant([[0.0]])))  # In [25]
    print(mse_loss(tf.constant([[3.0, 0.0, 0.0, 0.0]]), tf.constant([[0.0, 0.0, 0.0, 0.0]])))  # In [26]
    print(conv1d(tf.constant([[[1.0, 2.0, 3.0, 4.0]]]), tf.constant([[[3.0, 2.0]]])))  # (1,2,3,4) (+) (3,2)
    weight = tf.random.normal((5, 4, 2, 3))
    bias = tf.random.normal((5,))
    input1 = tf.random.normal((117, 4, 10, 13))
    print(conv2d(input1, weight, bias).shape)  # In [27]
    x = tf.random.normal((1, 1, 20, 30))
    print(conv2d(x, tf.random.normal((1, 1, 3, 3)), tf.random.normal((1,)), dilation=4).shape)  # In [28]
    x = tf.constant([[[[1.0, 1.0, 0.0, 2.0, 1.0, 1.0], [2.0, 2.0, 2.0, 0.0, 2.0, 1.0]],
                      [[1.0, 1.0, 0.0, 0.0, 2.0, 1.0], [0.0, 2.0, 0.0, 2.0, 1.0, 0.0]]]])
    print(x)  # In [29]
    print(max_pool2d(x, (1, 2)))  # In [30]


if __name__ == "__main__":
    main()
