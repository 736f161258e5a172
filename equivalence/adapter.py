"""The weight adapter: torch modules <-> channels_last Keras layers, both directions.

Supported pairs: ``nn.Linear`` / ``Dense``, ``nn.Conv1d`` / ``Conv1D`` and ``nn.Conv2d`` /
``Conv2D`` (groups, dilation, with or without bias). Weightless layers (ReLU, pooling,
Flatten, padding, ...) are skipped on both sides when pairing.

* Layouts: Linear (out, in) <-> Dense (in, out); Conv1d (out, in/groups, k) <-> Conv1D
  (k, in/groups, out); Conv2d (out, in/groups, kh, kw) <-> Conv2D (kh, kw, in/groups, out).
* Pairing: by order of the weighted layers in ``Sequential`` models (and ModuleList /
  lists), by attribute name in subclassed ones.
* The flatten-order trap: torch flattens a C, H, W map; a channels_last Keras model
  flattens H, W, C, so the rows of the first Dense after the flatten are permuted, unless
  the Keras model permutes to channels-first itself before flattening. In a Sequential
  the adapter follows the layers (convolutions make the map channels_last, ``Permute``
  moves axes, ``Flatten`` / ``Reshape`` to one axis flattens). A subclassed Keras model
  declares it: a class attribute ``flatten_layout = {"fc1": (2, 2, 64)}`` says the Dense
  at ``fc1`` reads an (H, W, C) = (2, 2, 64) map flattened in channels_last order;
  ``{"fc1": None}`` says the model hands it torch's C, H, W order. A subclassed model
  with both convolutions and Dense layers must declare it (``{}`` if no Dense reads a
  flattened map).
* Strict: every source weight is used and every target weight filled, shapes and dtypes
  agree, else :class:`AdapterError` naming the layer path and both shapes. Everything
  here is a transpose or a permutation, so a round trip is bit-exact.

Copies: every byte is copied once, except the kernel of a Dense after a flatten whose rows
are permuted, which takes two passes (the transpose, then the row gather; the other way,
the row scatter, then the transposing copy). torch -> Keras, a weight whose layout changes is
transposed / permuted into a new buffer that TensorFlow adopts (see :func:`_assign`); a weight
whose layout does not is copied by ``assign``. Keras -> torch, ``copy_`` reads the transposed
view. Neither model ever aliases the other's memory.

Keras weight lists are in ``keras_model.weights`` order, so the gradients of
``tape.gradient(loss, model.weights)`` map back with :func:`torch_values`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .frameworks import keras as _keras
from .frameworks import to_numpy
from .frameworks import torch as _torch


class AdapterError(ValueError):
    """Weights that cannot be mapped one to one: says which layer, and both shapes."""


def _tfm():
    _keras()  # configure TensorFlow/Keras first
    from tf_impl import modules

    return modules


def _shape(x) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def _where(path: str) -> str:
    return repr(path) if path else "<root>"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One Keras variable and the torch tensor(s) it is made of.

    ``to_keras(values)`` builds the Keras value from the torch values (torch layout);
    ``to_torch(value, gradient)`` splits a Keras value (or its gradient) back into one
    value per torch tensor. ``how`` says what moved, for the transfer report."""

    torch_names: tuple[str, ...]
    torch_tensors: tuple
    var: Any
    to_keras: Any
    to_torch: Any
    how: str
    buffer: bool = False  # running statistics: not parameters, no gradient


def _same(values):
    return values[0]


def _same_back(value, gradient):
    return [value]


def _permute(w: np.ndarray, axes) -> np.ndarray:
    """``np.transpose(w, axes)`` as a new C-contiguous array.

    The copy runs in torch's permute kernel where it can (a plain copy of values, bit for
    bit): on a 10M-parameter model it is several times faster than NumPy's strided copy,
    which a Keras ``assign`` of a transposed view would otherwise make (benchmarks/transfer.py).
    """
    axes = tuple(int(a) for a in axes)
    if axes == tuple(range(w.ndim)):
        return w
    if w.size >= _TORCH_COPY_MIN and w.dtype in _TORCH_COPY_DTYPES and w.dtype.isnative and w.flags.writeable:
        t = _torch().from_numpy(w)
        if axes == (1, 0) and min(w.shape) > _TILE:
            return _copy_tiled(_torch().empty(w.shape[::-1], dtype=t.dtype), t.t()).numpy()
        return t.permute(axes).contiguous().numpy()
    return np.ascontiguousarray(np.transpose(w, axes))


#: a large matrix is transposed in square tiles of this side: a tile's source and destination
#: (256 KiB each in float32) stay in a core's cache, where a whole-matrix transposing copy
#: misses the cache on every element of one side. A 1664x4096 float32 kernel into one buffer:
#: 19.4 ms whole, 5.7 ms in tiles of 256 (19.0 of 64, 11.4 of 128, 7.9 of 512; benchmarks/README.md).
_TILE = 256


def _copy_tiled(dst, src):
    """``dst.copy_(src)`` for 2-D torch tensors of one shape, tile by tile (for a transposing
    copy, where one of the two is a transposed view): the same values. Returns ``dst``."""
    rows, cols = dst.shape
    for i in range(0, rows, _TILE):
        for j in range(0, cols, _TILE):
            dst[i:i + _TILE, j:j + _TILE].copy_(src[i:i + _TILE, j:j + _TILE])
    return dst


def _take_rows(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``w[rows]``: whole rows gathered (contiguous copies) by ``np.take``, into a buffer
    torch allocates (64-byte aligned, so that :func:`_assign` can hand it to TensorFlow)."""
    rows = np.asarray(rows, np.intp)
    if rows.ndim != 1:
        raise IndexError(f"rows must be one-dimensional, not of shape {rows.shape}")
    if rows.size and not (-w.shape[0] <= rows.min() and rows.max() < w.shape[0]):
        raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for an array with {w.shape[0]} rows")
    rows = np.where(rows < 0, rows + w.shape[0], rows)
    if w.dtype not in _TORCH_COPY_DTYPES or not w.dtype.isnative:
        return w[rows]
    torch = _torch()
    out = torch.empty((rows.size, *w.shape[1:]), dtype=getattr(torch, w.dtype.name)).numpy()
    np.take(w, rows, axis=0, out=out, mode="clip")  # rows checked above: no clipping happens
    return out


#: below this many elements NumPy's copy is as fast as the detour through torch
_TORCH_COPY_MIN = 1 << 14
_TORCH_COPY_DTYPES = tuple(np.dtype(d) for d in ("float16", "float32", "float64", "int32", "int64", "bool"))


def _transposed(axes):
    back = tuple(int(i) for i in np.argsort(axes))
    return (lambda values: _permute(values[0], axes)), (lambda value, gradient: [np.transpose(value, back)])


@dataclasses.dataclass(frozen=True)
class Link:
    """One torch layer and the Keras layer that holds its weights."""

    path: str  # the torch module path, as in named_modules()
    torch_module: Any
    keras_path: str  # the torch-style path of the Keras layer (tf_impl.modules.named_modules)
    keras_layer: Any  # the Dense / Conv1D / Conv2D / BatchNormalization / ... itself
    #: Dense after a flatten: Keras kernel row r holds torch weight column rows[r]
    rows: np.ndarray | None = None
    layout: str = ""  # how rows was decided, for messages
    #: conventions that differ (eps, momentum, ...): errors under strict, notes otherwise
    mismatches: tuple[str, ...] = ()

    def entries(self):
        """(torch name, torch parameter, Keras variable, kind) for layers with a weight and a bias."""
        prefix = f"{self.path}." if self.path else ""
        t, k = self.torch_module, self.keras_layer
        out = [(prefix + "weight", t.weight, k.kernel, "weight")]
        if t.bias is not None:
            out.append((prefix + "bias", t.bias, k.bias, "bias"))
        return out

    def slots(self) -> list[Slot]:
        """Every Keras variable of this layer and where its value comes from."""
        return _slots(self)

    # -- the layouts of Linear / Conv --------------------------------------------------
    def to_keras(self, kind: str, w: np.ndarray) -> np.ndarray:
        if kind == "bias":
            return w
        if w.ndim == 2:  # Linear (out, in) -> Dense (in, out)
            w = _permute(w, (1, 0))
            return _take_rows(w, self.rows) if self.rows is not None else w
        axes = {3: (2, 1, 0), 4: (2, 3, 1, 0)}[w.ndim]  # (out, in, k...) -> (k..., in, out)
        return _permute(w, axes)

    def to_torch(self, kind: str, w: np.ndarray) -> np.ndarray:
        if kind == "bias":
            return w
        if w.ndim == 2:
            if self.rows is not None:
                unpermuted = np.empty_like(w)
                unpermuted[self.rows] = w
                w = unpermuted
            return w.T
        return np.transpose(w, _tfm().TORCH_AXES[w.ndim])


def _slots(link: Link) -> list[Slot]:
    nn = _torch().nn
    L = _keras().layers
    t, k = link.torch_module, link.keras_layer
    prefix = f"{link.path}." if link.path else ""
    if isinstance(t, (nn.Linear, nn.Conv1d, nn.Conv2d)) and not isinstance(k, L.DepthwiseConv2D):
        out = []
        for name, param, var, kind in link.entries():
            how = {"bias": "as is", 2: "transposed (out, in) -> (in, out)" + (", rows permuted: " + link.layout if link.rows is not None else ""),
                   3: "transposed (out, in, k) -> (k, in, out)", 4: "transposed OIHW -> HWIO"}[kind if kind == "bias" else param.dim()]
            out.append(Slot((name,), (param,), var, (lambda v, kind=kind: link.to_keras(kind, v[0])),
                            (lambda v, g, kind=kind: [link.to_torch(kind, v)]), how))
        return out
    if isinstance(t, nn.Conv2d):  # depthwise: torch (in*mult, 1, kh, kw) -> Keras (kh, kw, in, mult)
        cin = t.in_channels
        mult = t.out_channels // cin
        kh, kw = t.kernel_size
        out = [Slot((prefix + "weight",), (t.weight,), k.kernel,
                    lambda v: np.transpose(v[0].reshape(cin, mult, kh, kw), (2, 3, 0, 1)),
                    lambda v, g: [np.transpose(v, (2, 3, 0, 1)).reshape(cin * mult, 1, kh, kw)],
                    "depthwise: (in*mult, 1, kh, kw) -> (kh, kw, in, mult)")]
        if t.bias is not None:
            out.append(Slot((prefix + "bias",), (t.bias,), k.bias, _same, _same_back, "as is"))
        return out
    if isinstance(t, nn.ConvTranspose2d):
        to_k, to_t = _transposed((2, 3, 1, 0))
        out = [Slot((prefix + "weight",), (t.weight,), k.kernel, to_k, to_t, "transposed (in, out, kh, kw) -> (kh, kw, out, in)")]
        if t.bias is not None:
            out.append(Slot((prefix + "bias",), (t.bias,), k.bias, _same, _same_back, "as is"))
        return out
    if isinstance(t, nn.modules.batchnorm._BatchNorm):
        out = []
        if t.affine:
            out += [Slot((prefix + "weight",), (t.weight,), k.gamma, _same, _same_back, "as is (gamma)"),
                    Slot((prefix + "bias",), (t.bias,), k.beta, _same, _same_back, "as is (beta)")]
        out += [Slot((prefix + "running_mean",), (t.running_mean,), k.moving_mean, _same, _same_back, "as is (moving_mean)", True),
                Slot((prefix + "running_var",), (t.running_var,), k.moving_variance, _same, _same_back,
                     "as is (moving_variance)", True)]
        return out
    if isinstance(t, nn.LayerNorm):
        out = []
        if t.weight is not None:
            out.append(Slot((prefix + "weight",), (t.weight,), k.gamma, _same, _same_back, "as is (gamma)"))
        if t.bias is not None:
            out.append(Slot((prefix + "bias",), (t.bias,), k.beta, _same, _same_back, "as is (beta)"))
        return out
    if isinstance(t, nn.Embedding):
        return [Slot((prefix + "weight",), (t.weight,), k.embeddings, _same, _same_back, "as is (embeddings)")]
    if isinstance(t, (nn.GRU, nn.LSTM)):
        H = t.hidden_size
        if isinstance(t, nn.GRU):  # torch gates [r, z, n], Keras [z, r, h]
            order = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
            gates = "gates [r, z, n] -> [z, r, h]"
        else:  # both [i, f, g, o]
            order = np.arange(4 * H)
            gates = "gates [i, f, g, o] as is"
        back = np.argsort(order)
        cell = k.cell
        w_ih, w_hh = t.weight_ih_l0, t.weight_hh_l0
        out = [Slot((prefix + "weight_ih_l0",), (w_ih,), cell.kernel, lambda v: v[0][order].T,
                    lambda v, g: [v.T[back]], f"transposed, {gates}"),
               Slot((prefix + "weight_hh_l0",), (w_hh,), cell.recurrent_kernel, lambda v: v[0][order].T,
                    lambda v, g: [v.T[back]], f"transposed, {gates}")]
        if t.bias:
            names = (prefix + "bias_ih_l0", prefix + "bias_hh_l0")
            tensors = (t.bias_ih_l0, t.bias_hh_l0)
            if isinstance(t, nn.GRU):  # reset_after=True keeps both: Keras bias (2, 3H) = [input; recurrent]
                out.append(Slot(names, tensors, cell.bias, lambda v: np.stack([v[0][order], v[1][order]]),
                                lambda v, g: [v[0][back], v[1][back]], f"stacked [bias_ih; bias_hh], {gates}"))
            else:  # Keras LSTM has one bias: the sum; back, the gradient goes to both, the value to bias_ih
                out.append(Slot(names, tensors, cell.bias, lambda v: v[0] + v[1],
                                lambda v, g: [v, v] if g else [v, np.zeros_like(v)],
                                "bias_ih + bias_hh summed (back: the sum into bias_ih, bias_hh zero)"))
        return out
    raise AdapterError(f"layer path {_where(link.path)}: no weight layout for torch {type(t).__name__}")


# -- which torch layer goes with which Keras layer -------------------------------------


def _torch_kinds():
    """torch layer class -> the Keras layer kind that holds its weights."""
    nn = _torch().nn
    return {nn.Linear: "Dense", nn.Conv1d: "Conv1D", nn.Conv2d: "Conv2D", nn.ConvTranspose2d: "Conv2DTranspose",
            nn.BatchNorm1d: "BatchNormalization", nn.BatchNorm2d: "BatchNormalization",
            nn.LayerNorm: "LayerNormalization", nn.Embedding: "Embedding", nn.GRU: "GRU", nn.LSTM: "LSTM"}


SUPPORTED = ("Linear, Conv1d, Conv2d (grouped, depthwise), ConvTranspose2d, BatchNorm1d, BatchNorm2d, LayerNorm, "
             "Embedding, GRU, LSTM; weightless layers (activations, pooling, Dropout, Flatten) are skipped")
KERAS_SUPPORTED = ("Dense, Conv1D, Conv2D, DepthwiseConv2D, Conv2DTranspose, BatchNormalization, LayerNormalization, "
                   "Embedding, GRU, LSTM")


def _keras_classes():
    L = _keras().layers
    return (L.Dense, L.Conv1D, L.Conv2D, L.DepthwiseConv2D, L.Conv2DTranspose, L.BatchNormalization,
            L.LayerNormalization, L.Embedding, L.GRU, L.LSTM)


def weight_layer(layer):
    """The Keras layer holding a module's weights (a PaddedConv's convolution), or None."""
    w = _tfm().weight_layer(layer)
    if w is not None:
        return w
    return layer if isinstance(layer, _keras_classes()) else None


def _torch_shapes(module) -> str:
    return ", ".join(f"{n} {_shape(p)}" for n, p in module.named_parameters(recurse=False)) or "no parameters"


def _keras_shapes(layer) -> str:
    return ", ".join(f"{v.name} {_shape(v)}" for v in layer.weights) or "no weights"


def _has_params(module) -> bool:
    return any(True for _ in module.parameters())


def _check_torch_leaf(module, path: str) -> None:
    if not isinstance(module, tuple(_torch_kinds())):
        raise AdapterError(f"layer path {_where(path)}: torch {type(module).__name__} ({_torch_shapes(module)}) "
                           f"is not supported by the adapter (supported: {SUPPORTED})")
    if getattr(module, "padding_mode", "zeros") != "zeros":
        raise AdapterError(f"layer path {_where(path)}: torch {type(module).__name__} with padding_mode="
                           f"{module.padding_mode!r} is not supported (the Keras ports pad with zeros)")


def _torch_weighted(module, prefix: str):
    """The torch modules that hold parameters, in registration order; custom parameters raise."""
    for name, m in module.named_modules(prefix=prefix):
        own = list(m.named_parameters(recurse=False))
        if not own:
            continue
        if any(True for _ in m.children()):
            raise AdapterError(f"layer path {_where(name)}: parameters {[n for n, _ in own]} of torch "
                               f"{type(m).__name__} are not inside a supported layer ({SUPPORTED})")
        _check_torch_leaf(m, name)
        yield name, m


def _keras_weight_layer(layer, path: str):
    """The Dense/Conv holding ``layer``'s weights; None when it has none; raises when unsupported."""
    w = weight_layer(layer)
    if w is not None:
        if not w.built or not w.weights:
            raise AdapterError(f"Keras {type(w).__name__} at {_where(path)} is not built: call the model once "
                               f"or build it before adapting weights")
        return w
    if layer.weights:
        raise AdapterError(f"Keras {type(layer).__name__} at {_where(path)} ({_keras_shapes(layer)}) is not "
                           f"supported by the adapter (supported: {KERAS_SUPPORTED})")
    return None


def _link(tpath, tmod, kpath, klayer) -> Link:
    """Pair one torch leaf with one Keras weight layer, checking that they compute the same thing.

    Differences of structure (stride, groups, a missing bias) raise; differences of convention
    that a copy cannot fix (eps, momentum, ...) are returned as ``mismatches``, which
    :func:`plan` raises under ``strict`` and reports otherwise."""
    nn = _torch().nn
    kind = _torch_kinds()[next(c for c in _torch_kinds() if isinstance(tmod, c))]
    L = _keras().layers
    depthwise = kind == "Conv2D" and isinstance(klayer, L.DepthwiseConv2D)
    kcls = {"Dense": L.Dense, "Conv1D": L.Conv1D, "Conv2D": (L.Conv2D, L.DepthwiseConv2D),
            "Conv2DTranspose": L.Conv2DTranspose, "BatchNormalization": L.BatchNormalization,
            "LayerNormalization": L.LayerNormalization, "Embedding": L.Embedding, "GRU": L.GRU, "LSTM": L.LSTM}[kind]
    if not isinstance(klayer, kcls) or (kind == "Conv2D" and isinstance(klayer, L.Conv2DTranspose)):
        raise AdapterError(f"layer path {_where(tpath)}: torch {type(tmod).__name__} ({_torch_shapes(tmod)}) "
                           f"is paired with Keras {type(klayer).__name__} at {_where(kpath)} ({_keras_shapes(klayer)}); "
                           f"it needs a {kind}")
    here = f"layer path {_where(tpath)}: torch {type(tmod).__name__}"
    there = f"Keras {type(klayer).__name__} at {_where(kpath)}"
    mismatches = []
    if kind in ("Conv1D", "Conv2D", "Conv2DTranspose"):
        strides = tuple(getattr(klayer, "torch_strides", klayer.strides))
        checks = [("stride", tmod.stride, strides), ("dilation", tmod.dilation, tuple(klayer.dilation_rate))]
        if depthwise:
            if tmod.groups != tmod.in_channels:
                raise AdapterError(f"{here} has groups={tmod.groups} with {tmod.in_channels} input channels; {there} "
                                   f"is depthwise (groups = input channels)")
            checks.append(("channel multiplier", tmod.out_channels // tmod.in_channels, klayer.depth_multiplier))
        else:
            checks.append(("groups", tmod.groups, getattr(klayer, "groups", 1)))
        for what, t, k in checks:
            if tuple(np.atleast_1d(t)) != tuple(np.atleast_1d(k)):
                raise AdapterError(f"{here} has {what} {t}, {there} has {k}")
    if kind in ("Dense", "Conv1D", "Conv2D", "Conv2DTranspose"):
        has_bias = tmod.bias is not None
        if has_bias != bool(klayer.use_bias):
            t = f"a bias {_shape(tmod.bias)}" if has_bias else "no bias"
            k = f"a bias {_shape(klayer.bias)}" if klayer.use_bias else "no bias"
            raise AdapterError(f"{here} has {t}, {there} has {k}: a weight would be left out")
    if kind == "BatchNormalization":
        if not tmod.track_running_stats:
            mismatches.append(f"{here} has track_running_stats=False (batch statistics even in eval()); {there} uses "
                              f"its moving statistics at inference")
        if tmod.eps != klayer.epsilon:
            mismatches.append(f"{here} has eps={tmod.eps:g}, {there} has epsilon={klayer.epsilon:g} (Keras's default "
                              f"is 1e-3, torch's 1e-5): pass epsilon={tmod.eps:g}")
        if tmod.momentum is None or not math.isclose(1 - tmod.momentum, klayer.momentum, rel_tol=1e-6):
            want = "none (torch's momentum=None is a cumulative average)" if tmod.momentum is None else f"{1 - tmod.momentum:g}"
            mismatches.append(f"{here} has momentum={tmod.momentum}, {there} has momentum={klayer.momentum:g}; torch "
                              f"updates running = (1 - m) running + m batch, Keras moving = m moving + (1 - m) batch, "
                              f"so the Keras momentum must be {want}")
        if tmod.affine != bool(klayer.scale) or tmod.affine != bool(klayer.center):
            raise AdapterError(f"{here} has affine={tmod.affine}, {there} has scale={klayer.scale}, "
                               f"center={klayer.center}")
        if tuple(np.atleast_1d(klayer.axis)) not in ((-1,),):
            mismatches.append(f"{there} normalises axis {klayer.axis}; the channels_last port of torch's channel axis "
                              f"is -1")
    if kind == "LayerNormalization":
        if len(tmod.normalized_shape) != 1:
            raise AdapterError(f"{here} normalises over {tuple(tmod.normalized_shape)}: the adapter supports one "
                               f"(the last) axis")
        if tuple(np.atleast_1d(klayer.axis)) != (-1,):
            mismatches.append(f"{there} normalises axes {klayer.axis}, torch the last axis only")
        if tmod.eps != klayer.epsilon:
            mismatches.append(f"{here} has eps={tmod.eps:g}, {there} has epsilon={klayer.epsilon:g} (Keras's default "
                              f"is 1e-3, torch's 1e-5): pass epsilon={tmod.eps:g}")
        if (tmod.weight is not None) != bool(klayer.scale) or (tmod.bias is not None) != bool(klayer.center):
            raise AdapterError(f"{here} has weight {tmod.weight is not None}, bias {tmod.bias is not None}; {there} "
                               f"has scale={klayer.scale}, center={klayer.center}")
    if kind == "Embedding":
        if tmod.padding_idx is not None:
            mismatches.append(f"{here} has padding_idx={tmod.padding_idx} (its row gets no gradient); {there} "
                              f"updates every row")
        if tmod.max_norm is not None:
            mismatches.append(f"{here} has max_norm={tmod.max_norm} (renormalises rows on lookup); Keras does not")
    if kind in ("GRU", "LSTM"):
        if tmod.num_layers != 1 or tmod.bidirectional or getattr(tmod, "proj_size", 0):
            raise AdapterError(f"{here} with num_layers={tmod.num_layers}, bidirectional={tmod.bidirectional}"
                               f"{', proj_size=' + str(tmod.proj_size) if getattr(tmod, 'proj_size', 0) else ''} is not "
                               f"supported: stack single-layer {type(tmod).__name__}s (one Keras {kind} each)")
        if tmod.hidden_size != klayer.units:
            raise AdapterError(f"{here} has hidden_size={tmod.hidden_size}, {there} has units={klayer.units}")
        if bool(tmod.bias) != bool(klayer.cell.use_bias):
            raise AdapterError(f"{here} has bias={tmod.bias}, {there} has use_bias={klayer.cell.use_bias}")
        if not tmod.batch_first:
            mismatches.append(f"{here} has batch_first=False: it reads (time, batch, features), Keras (batch, time, "
                              f"features); use batch_first=True")
        if kind == "GRU" and not klayer.cell.reset_after:
            mismatches.append(f"{there} has reset_after=False; torch's GRU applies the reset gate after the recurrent "
                              f"matmul: reset_after=True")
        act = getattr(klayer.cell.activation, "__name__", str(klayer.cell.activation))
        ract = getattr(klayer.cell.recurrent_activation, "__name__", str(klayer.cell.recurrent_activation))
        if act != "tanh" or ract != "sigmoid":
            mismatches.append(f"{there} has activation={act}, recurrent_activation={ract}; torch uses tanh and sigmoid")
    return Link(tpath, tmod, kpath, klayer, mismatches=tuple(mismatches))


# -- the flatten-order trap -----------------------------------------------------------


def flatten_rows(keras_shape: Sequence[int], order: Sequence[int]) -> np.ndarray | None:
    """Row r of the Dense kernel after Keras flattens a map of ``keras_shape`` is torch's
    flattened index ``rows[r]``; Keras axis i is torch axis ``order[i]`` (channels_last
    2-D: order (1, 2, 0)). None when the two flatten alike."""
    order = tuple(order)
    if order == tuple(range(len(order))):
        return None
    torch_shape = [0] * len(order)
    for i, o in enumerate(order):
        torch_shape[o] = int(keras_shape[i])
    rows = np.arange(math.prod(torch_shape)).reshape(torch_shape).transpose(order).ravel()
    return None if np.array_equal(rows, np.arange(rows.size)) else rows  # singleton axes: the same order


def _channels_last(rank: int) -> tuple[int, ...]:
    """Keras axes (spatial..., C) as torch axes (C, spatial...)."""
    return tuple(range(1, rank)) + (0,)


def _is_sequence(obj) -> bool:
    """A keras.Sequential (not a PaddedConv, which stands for one torch layer) or a list of layers."""
    keras = _keras()
    return isinstance(obj, (list, tuple)) or (isinstance(obj, keras.Sequential) and not isinstance(obj, _tfm().PaddedConv))


def _keras_sequence(obj, prefix: str):
    """The Keras layers of a Sequential (or list) in call order, nested Sequentials opened."""
    tfm = _tfm()
    for name, child in tfm.named_children(obj):
        path = f"{prefix}.{name}" if prefix else name
        if _is_sequence(child):
            yield from _keras_sequence(child, path)
        elif weight_layer(child) is None and tfm.named_children(child) and child.weights:
            raise AdapterError(f"Keras {type(child).__name__} at {_where(path)} is a subclassed layer inside a "
                               f"Sequential; pair it by name from a subclassed model instead")
        else:
            yield path, child


def _sequence_layouts(items) -> dict[str, tuple[np.ndarray | None, str]]:
    """Walk Keras layers in call order and find, for each Dense that reads a flattened map,
    how its rows map to torch's C, H, W flatten."""
    keras = _keras()
    tfm = _tfm()
    L = keras.layers
    keep = (L.ReLU, L.Activation, L.LeakyReLU, L.ELU, L.PReLU, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
            L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D, L.ZeroPadding1D,
            L.ZeroPadding2D, L.Cropping1D, L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.Identity,
            L.InputLayer, tfm.TorchPooling2D, L.BatchNormalization, L.GaussianNoise, L.AlphaDropout,
            L.GaussianDropout)
    glob = (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D)
    order = None  # Keras axis i of the current map is torch axis order[i]; None: flat, or the model input
    pending = None  # (rows, why) for the next Dense
    out = {}
    for path, layer in items:
        w = weight_layer(layer)
        if isinstance(w, (L.Conv1D, L.Conv2D, L.DepthwiseConv2D, L.Conv2DTranspose)):
            rank = len(w.kernel_size) + 1
            order = _channels_last(rank) if w.data_format == "channels_last" else tuple(range(rank))
            pending = None
        elif isinstance(w, L.Dense):
            if pending is not None:
                out[path] = pending
                pending, order = None, None
            elif order is not None and order != tuple(range(len(order))):
                raise AdapterError(f"Keras Dense at {_where(path)} acts on the last axis of a channels_last map, "
                                   f"where torch's Linear acts on the last spatial axis: flatten first")
        elif isinstance(layer, (L.Flatten, L.Reshape)):
            if isinstance(layer, L.Reshape) and len(layer.target_shape) != 1:
                if order is not None:
                    raise AdapterError(f"Keras Reshape{tuple(layer.target_shape)} at {_where(path)}: the adapter "
                                       f"cannot follow a reshape of a channels_last map other than a flatten")
                continue
            if order is None:
                continue
            try:
                shape = tuple(layer.input.shape[1:])
            except (AttributeError, ValueError) as exc:
                raise AdapterError(f"Keras {type(layer).__name__} at {_where(path)} has no known input shape: build "
                                   f"the Sequential (call it once, or model.build(shape)) before adapting") from exc
            if any(d is None for d in shape) or len(shape) != len(order):
                raise AdapterError(f"Keras {type(layer).__name__} at {_where(path)}: input shape {shape} does not "
                                   f"match a map of {len(order)} axes with static sizes")
            eff = order
            if getattr(layer, "data_format", "channels_last") == "channels_first" and len(order) > 1:
                eff, shape = order[1:] + order[:1], shape[1:] + shape[:1]  # Keras moves axis 1 last first
            rows = flatten_rows(shape, eff)
            why = f"flattened {shape} with torch axes {eff}"
            pending = (rows, why) if rows is not None else None
            order = None
        elif isinstance(layer, L.Permute):
            if order is not None:
                order = tuple(order[d - 1] for d in layer.dims)
        elif isinstance(w, (L.Embedding, L.GRU, L.LSTM)):
            order, pending = None, None
        elif isinstance(layer, glob):
            if not getattr(layer, "keepdims", False):
                order = None
        elif isinstance(layer, keep) or order is None:
            continue
        else:
            raise AdapterError(f"Keras {type(layer).__name__} at {_where(path)}: the adapter cannot tell how it "
                               f"moves the axes of a channels_last map on the way to a Dense")
    return out


def _declared_layouts(kmodel, prefix: str, links: list[Link]) -> dict[str, tuple[np.ndarray | None, str]]:
    keras = _keras()
    layout = getattr(kmodel, "flatten_layout", None)
    if layout is None:
        kinds = {type(l.keras_layer) for l in links}
        if any(issubclass(k, keras.layers.Dense) for k in kinds) and any(
                issubclass(k, (keras.layers.Conv1D, keras.layers.Conv2D)) for k in kinds):
            raise AdapterError(f"Keras {type(kmodel).__name__} at {_where(prefix)} has convolutions and Dense layers "
                               f"but no flatten_layout: declare how its Dense layers read flattened maps, e.g. "
                               f"flatten_layout = {{'fc1': (2, 2, 64)}} for an (H, W, C) map flattened channels_last, "
                               f"{{'fc1': None}} if it flattens C, H, W, or {{}}")
        return {}
    if not isinstance(layout, Mapping):
        raise AdapterError(f"Keras {type(kmodel).__name__}.flatten_layout must be a dict, not {type(layout).__name__}")
    out = {}
    for key, shape in layout.items():
        path = f"{prefix}.{key}" if prefix else key
        if shape is None:
            out[path] = (None, "declared channels-first")
            continue
        shape = tuple(int(d) for d in shape)
        out[path] = (flatten_rows(shape, _channels_last(len(shape))), f"declared channels_last {shape}")
    return out


def _pair(tmod, kobj, tpath: str, kpath: str) -> list[Link]:
    nn = _torch().nn
    own = list(tmod.named_parameters(recurse=False))
    if own and not any(True for _ in tmod.children()):  # a torch layer: one Keras weight layer
        _check_torch_leaf(tmod, tpath)
        items = list(_keras_sequence(kobj, kpath)) if _is_sequence(kobj) else [(kpath, kobj)]
        weighted = [(p, w) for p, l in items if (w := _keras_weight_layer(l, p)) is not None]
        if len(weighted) != 1:
            raise AdapterError(f"layer path {_where(tpath)}: torch {type(tmod).__name__} ({_torch_shapes(tmod)}) "
                               f"needs one Keras weight layer at {_where(kpath)}, found {len(weighted)}")
        return [_link(tpath, tmod, kpath, weighted[0][1])]
    if isinstance(tmod, (nn.Sequential, nn.ModuleList)):
        return _pair_in_order(tmod, kobj, tpath, kpath)
    return _pair_by_name(tmod, kobj, tpath, kpath)


def _pair_in_order(tmod, kobj, tpath: str, kpath: str) -> list[Link]:
    """Sequential / ModuleList: the i-th weighted torch layer goes with the i-th weighted Keras layer."""
    tlayers = list(_torch_weighted(tmod, tpath))
    if _is_sequence(kobj):
        kitems = list(_keras_sequence(kobj, kpath))
    elif weight_layer(kobj) is not None:
        kitems = [(kpath, kobj)]
    else:
        raise AdapterError(f"layer path {_where(tpath)}: torch {type(tmod).__name__} is paired by order, but Keras "
                           f"{type(kobj).__name__} at {_where(kpath)} is neither a Sequential nor a list of layers")
    klayers = [(p, w) for p, l in kitems if (w := _keras_weight_layer(l, p)) is not None]
    for i in range(max(len(tlayers), len(klayers))):
        if i >= len(klayers):
            p, m = tlayers[i]
            raise AdapterError(f"layer path {_where(p)}: torch {type(m).__name__} ({_torch_shapes(m)}) has no Keras "
                               f"counterpart: the Keras model has only {len(klayers)} weighted layers")
        if i >= len(tlayers):
            p, l = klayers[i]
            raise AdapterError(f"Keras {type(l).__name__} at {_where(p)} ({_keras_shapes(l)}) has no torch "
                               f"counterpart: the torch model has only {len(tlayers)} weighted layers")
    links = [_link(tp, tm, kp, kl) for (tp, tm), (kp, kl) in zip(tlayers, klayers)]
    layouts = _sequence_layouts(kitems)
    for link in links:
        rows, why = layouts.get(link.keras_path, (None, ""))
        if rows is not None and len(rows) != _shape(link.keras_layer.kernel)[0]:
            n_in = _shape(link.keras_layer.kernel)[0]
            raise AdapterError(f"layer path {_where(link.path)}: the Flatten before Keras Dense at "
                               f"{_where(link.keras_path)} gives {len(rows)} features ({why}), the Dense reads {n_in}")
    return [dataclasses.replace(l, rows=layouts[l.keras_path][0], layout=layouts[l.keras_path][1])
            if l.keras_path in layouts else l for l in links]


def _pair_by_name(tmod, kobj, tpath: str, kpath: str) -> list[Link]:
    """A subclassed module: each torch attribute goes with the Keras attribute of the same name."""
    tfm = _tfm()
    own = [n for n, _ in tmod.named_parameters(recurse=False)]
    if own:
        raise AdapterError(f"layer path {_where(tpath)}: parameters {own} of torch {type(tmod).__name__} are not "
                           f"inside a supported layer ({SUPPORTED})")
    kchildren = dict(tfm.named_children(kobj))
    links, used = [], set()
    for name, tchild in tmod.named_children():
        if not _has_params(tchild):
            continue
        tp = f"{tpath}.{name}" if tpath else name
        kp = f"{kpath}.{name}" if kpath else name
        if name not in kchildren:
            raise AdapterError(f"layer path {_where(tp)}: torch {type(tchild).__name__} "
                               f"({_torch_shapes(tchild) if not any(True for _ in tchild.children()) else 'a container'}) "
                               f"has no Keras counterpart: {type(kobj).__name__} has no attribute {name!r}")
        used.add(name)
        links += _pair(tchild, kchildren[name], tp, kp)
    for name, kchild in kchildren.items():
        weights = kchild.weights if not isinstance(kchild, (list, tuple)) else [w for c in kchild for w in c.weights]
        if name not in used and weights:
            kp = f"{kpath}.{name}" if kpath else name
            shapes = ", ".join(f"{w.name} {_shape(w)}" for w in weights)
            raise AdapterError(f"Keras {type(kchild).__name__} at {_where(kp)} ({shapes}) has no torch counterpart: "
                               f"torch {type(tmod).__name__} has no attribute {name!r} with parameters")
    layouts = _declared_layouts(kobj, kpath, links)
    by_path = {l.keras_path: l for l in links}
    for path, (rows, why) in layouts.items():
        link = by_path.get(path)
        if link is None or not isinstance(link.keras_layer, _keras().layers.Dense):
            raise AdapterError(f"{type(kobj).__name__}.flatten_layout names {path!r}, which is not a Dense layer paired "
                               f"with a torch Linear")
        n_in = _shape(link.keras_layer.kernel)[0]
        if rows is not None and len(rows) != n_in:
            raise AdapterError(f"layer path {_where(link.path)}: flatten_layout ({why}) has {len(rows)} features, "
                               f"but Keras Dense at {_where(path)} reads {n_in}")
    return [dataclasses.replace(l, rows=layouts[l.keras_path][0], layout=layouts[l.keras_path][1])
            if l.keras_path in layouts else l for l in links]


def plan(torch_model, keras_model, strict: bool = True) -> list[Link]:
    """Pair every torch layer with parameters with the Keras layer holding its weights.

    ``strict``: conventions that a copy cannot reconcile (BatchNorm / LayerNorm eps and
    momentum, a GRU without reset_after, ...) raise; otherwise they stay in each link's
    ``mismatches`` for the caller to report."""
    torch = _torch()
    if not isinstance(torch_model, torch.nn.Module):
        raise AdapterError(f"the torch side must be an nn.Module, not {type(torch_model).__name__}")
    if not isinstance(keras_model, (_keras().layers.Layer, list, tuple)):
        raise AdapterError(f"the Keras side must be a Keras layer or model, not {type(keras_model).__name__}")
    links = _pair(torch_model, keras_model, "", "")
    _check_complete(links, torch_model, keras_model)
    problems = [m for l in links for m in l.mismatches]
    if strict and problems:
        raise AdapterError("the layers differ in conventions a weight copy cannot fix:\n  " + "\n  ".join(problems)
                           + "\n(transfer(..., strict=False) copies anyway and reports them)")
    return links


def _keras_weights(keras_model) -> list:
    if isinstance(keras_model, (list, tuple)):
        return [w for layer in keras_model for w in layer.weights]
    return list(keras_model.weights)


def _check_complete(links: list[Link], torch_model, keras_model) -> None:
    """Every torch parameter used and every Keras weight filled, exactly once."""
    slots = [slot for l in links for slot in l.slots()]
    used_t = {id(p) for slot in slots for p in slot.torch_tensors}
    used_k = [id(slot.var) for slot in slots]
    left_t = [n for n, p in torch_model.named_parameters() if id(p) not in used_t]
    if left_t:
        raise AdapterError(f"torch parameters {left_t} would not be used")
    left_k = [f"{v.path} {_shape(v)}" for v in _keras_weights(keras_model) if id(v) not in set(used_k)]
    if left_k:
        raise AdapterError(f"Keras weights {left_k} would not be filled")
    if len(used_k) != len(set(used_k)):
        raise AdapterError("a Keras weight would be filled twice (a layer paired with two torch layers)")


# -- moving values --------------------------------------------------------------------


def _torch_state(torch_model) -> dict[str, Any]:
    """Parameters and buffers (running statistics), by name."""
    return {**dict(torch_model.named_buffers()), **dict(torch_model.named_parameters())}


def keras_values(torch_model, keras_model, state: Mapping[str, Any] | None = None, *,
                 strict: bool = True) -> list[np.ndarray]:
    """The torch parameters and buffers (or ``state``: name -> array in torch layout) in
    Keras layout, one array per ``keras_model.weights`` entry."""
    return [value for value, _ in _keras_values(torch_model, keras_model, state, strict)]


def _keras_values(torch_model, keras_model, state, strict) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """:func:`keras_values`, each with the torch-layout arrays it was made from."""
    links = plan(torch_model, keras_model, strict)
    names = [n for n, _ in torch_model.named_parameters()]
    current = _torch_state(torch_model)
    if state is not None:
        missing = [n for n in names if n not in state]
        extra = [n for n in state if n not in current]
        if missing or extra:
            raise AdapterError(f"state does not match the parameters of torch {type(torch_model).__name__}: "
                               f"missing {missing}, not parameters {extra}")
    by_var = {}
    for link in links:
        for slot in link.slots():
            values = []
            for name, tensor in zip(slot.torch_names, slot.torch_tensors):
                value = np.asarray(to_numpy(state[name] if state is not None and name in state else tensor))
                if _shape(value) != _shape(tensor):
                    raise AdapterError(f"layer path {_where(link.path)}: {name} is {_shape(value)}, torch "
                                       f"{type(link.torch_module).__name__} has {_shape(tensor)}")
                values.append(value)
            var = slot.var
            # the layout change itself, checked before anything is assigned (torch_to_keras assigns
            # only once every slot has its value)
            try:
                keras_value = slot.to_keras(values)
                target = _shape(keras_value)
            except (ValueError, IndexError) as e:  # a reshape or row permutation the shapes do not allow
                target = f"no Keras shape ({e})"
            if target != _shape(var):
                raise AdapterError(f"layer path {_where(link.path)}: torch {', '.join(slot.torch_names)} "
                                   f"{', '.join(str(_shape(t)) for t in slot.torch_tensors)} maps to Keras shape "
                                   f"{target}, but {type(link.keras_layer).__name__} at {_where(link.keras_path)} has "
                                   f"{var.name} {_shape(var)}")
            for name, value in zip(slot.torch_names, values):
                if np.dtype(value.dtype) != np.dtype(var.dtype):
                    raise AdapterError(f"layer path {_where(link.path)}: {name} is {value.dtype}, Keras {var.path} is "
                                       f"{var.dtype}: copying would round; use the same dtype on both sides")
            by_var[id(var)] = (keras_value, values)
    return [by_var[id(v)] for v in _keras_weights(keras_model)]


def torch_values(keras_model, torch_model, values: Sequence[Any] | None = None, *, gradients: bool | None = None,
                 strict: bool = True) -> dict[str, np.ndarray]:
    """The Keras weights (or ``values``, one per ``keras_model.weights`` entry, e.g. their
    gradients) in torch layout, keyed by torch name: parameters, then buffers (running
    statistics) where a value is given for them.

    ``gradients`` (default: True when ``values`` is given) says how to split a Keras
    weight that stands for a sum of torch parameters (an LSTM's two biases): a gradient
    goes to each, a value goes to the first."""
    links = plan(torch_model, keras_model, strict)
    weights = _keras_weights(keras_model)
    if gradients is None:
        gradients = values is not None
    if values is None:
        values = weights
    values = list(values)
    if len(values) != len(weights):
        raise AdapterError(f"{len(values)} values for {len(weights)} Keras weights of {type(keras_model).__name__}")
    index = {id(v): i for i, v in enumerate(weights)}
    out = {}
    for link in links:
        for slot in link.slots():
            var = slot.var
            value = values[index[id(var)]]
            if value is None:
                if slot.buffer:
                    continue  # running statistics have no gradient
                raise AdapterError(f"layer path {_where(link.path)}: no value for Keras {var.path} (a None gradient?)")
            value = np.asarray(to_numpy(value))
            if _shape(value) != _shape(var):
                raise AdapterError(f"layer path {_where(link.path)}: the value for Keras {var.path} is "
                                   f"{_shape(value)}, the weight is {_shape(var)}")
            for name, tensor, part in zip(slot.torch_names, slot.torch_tensors, slot.to_torch(value, gradients)):
                out[name] = part
                if _shape(part) != _shape(tensor):
                    raise AdapterError(f"layer path {_where(link.path)}: Keras {var.path} {_shape(var)} maps to torch "
                                       f"shape {_shape(part)}, but torch {name} is {_shape(tensor)}")
    params = [n for n, _ in torch_model.named_parameters()]
    return {**{n: out[n] for n in params}, **{n: v for n, v in out.items() if n not in params}}


def torch_to_keras(torch_model, keras_model, state: Mapping[str, Any] | None = None, *, strict: bool = True) -> None:
    """Copy torch's parameters and running statistics (or ``state`` in torch layout) into the Keras model."""
    for var, (value, sources) in zip(_keras_weights(keras_model), _keras_values(torch_model, keras_model, state, strict)):
        _assign(var, value, sources)


#: dtypes TensorFlow takes through DLPack
_HANDOVER_DTYPES = tuple(np.dtype(d) for d in ("float16", "float32", "float64"))
#: TensorFlow's kernels check that a buffer is aligned for Eigen (at most 64 bytes) and abort
#: the process on one that is not (seen: a 16-byte aligned NumPy copy of a conv kernel);
#: DLPack import does not check, so the adapter does
_ALIGN = 64


def _assign(var, value: np.ndarray, sources: Sequence[np.ndarray]) -> None:
    """``var.assign(value)``, one copy per byte in all.

    A value the layout change made (a transposed or permuted copy: it shares memory with
    none of its ``sources``, and nothing outside this module holds it) is handed to
    TensorFlow through DLPack, so the assign adopts its buffer instead of copying it once
    more (the buffer is no torch tensor's, so later in-place updates of the Keras weight
    reach nothing of torch's either way). A value that is a view of the torch tensors (a bias, a kernel whose layout
    is the same) is copied by ``assign`` as usual: the Keras weight never aliases torch's
    memory. Only a 64-byte aligned buffer is handed over (:data:`_ALIGN`)."""
    if (value.dtype in _HANDOVER_DTYPES and value.size and value.flags.c_contiguous and value.flags.writeable
            and value.ctypes.data % _ALIGN == 0 and not any(np.may_share_memory(value, s) for s in sources)):
        from .frameworks import tf as _tf

        value = _tf().experimental.dlpack.from_dlpack(value.__dlpack__())
    var.assign(value)


def keras_to_torch(keras_model, torch_model, values: Sequence[Any] | None = None, *, strict: bool = True) -> None:
    """Copy the Keras weights (or ``values``) into the torch model's parameters and buffers."""
    torch = _torch()
    converted = torch_values(keras_model, torch_model, values, gradients=False, strict=strict)
    params = _torch_state(torch_model)
    for name, value in converted.items():
        p = params[name]
        if np.dtype(value.dtype) != np.dtype(str(p.dtype).removeprefix("torch.")):
            raise AdapterError(f"torch {name} is {p.dtype}, the Keras value is {value.dtype}: copying would round; "
                               f"use the same dtype on both sides")
    with torch.no_grad():
        for name, value in converted.items():
            p, view = params[name], _torch_view(value)
            if p.dim() == 2 and min(p.shape) > _TILE and not view.is_contiguous():  # a Dense kernel, transposed
                _copy_tiled(p, view)
            else:
                p.copy_(view)


def _torch_view(a: np.ndarray):
    """A torch tensor reading ``a`` in place (any non-negative strides: a transposed view stays
    one), for ``copy_``: torch's copy kernel then makes the layout change in the same pass as
    the copy, where ``np.ascontiguousarray`` of a transposed kernel is several times slower."""
    a = np.asarray(a)
    if a.dtype in _TORCH_COPY_DTYPES and a.dtype.isnative and all(s >= 0 and s % a.itemsize == 0 for s in a.strides):
        with warnings.catch_warnings():  # read-only (a TensorFlow value): torch only reads it here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return _torch().from_numpy(a)
    return _torch().from_numpy(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))
