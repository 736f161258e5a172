"""Check your own port: ``transfer``, ``compare`` and ``assert_equivalent``.

    >>> report = transfer(torch_model, keras_model)          # weights torch -> Keras
    >>> result = compare(torch_model, keras_model, x)          # forward, gradients, where it breaks
    >>> assert_equivalent(torch_model, keras_model, x)         # AssertionError with the table

Tolerances come from the project's tolerance model (docs/porting.md, "How the tolerance is
chosen"): for every compared tensor, ``2 * gamma_n(u) * m + 2 n tiny`` elementwise, where
``n`` counts the dependent roundings of the torch layers executed up to that tensor (the
fan-in of every Linear / Conv, the reductions of the normalisations, ``ELEMENTARY`` per
elementary function, and for gradients the backward chain and the batch reduction of a
parameter's gradient), and ``m`` is the elementwise magnitude from the torch model run in
float64 on ``|inputs|`` with ``|weights|``. Explicit ``rtol`` / ``atol`` replace the model by
``atol + rtol * |torch value|``; the result says so.

The first diverging layer is found by recording the inputs and outputs of the paired layers
(torch forward hooks; on the Keras side each paired layer's ``call`` is wrapped for the
duration of the run) and comparing them with the same model of tolerances.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np

from . import adapter as _adapter
from . import tolerance as _tm
from .adapter import AdapterError
from .compare import compare as _compare_arrays
from .frameworks import keras as _keras
from .frameworks import tf as _tf
from .frameworks import to_numpy
from .frameworks import torch as _torch

__all__ = ["transfer", "compare", "assert_equivalent", "TransferReport", "TransferEntry", "ModelComparison",
           "TensorRow", "Divergence", "EquivalenceError"]


# -- argument checks ---------------------------------------------------------------------


def _is_torch_module(obj) -> bool:
    return isinstance(obj, _torch().nn.Module)


def _is_keras(obj) -> bool:
    return isinstance(obj, _keras().layers.Layer)


def _what(obj, load="the model first: torch.load / keras.saving.load_model") -> str:
    if isinstance(obj, (str, os.PathLike)):
        return f"the path or string {os.fspath(obj)!r} (load {load})"
    return f"a {type(obj).__name__}"


def _check_torch(obj, argument: str) -> None:
    if not _is_torch_module(obj):
        raise TypeError(f"{argument} must be a torch.nn.Module, got {_what(obj)}")


def _check_keras(obj, argument: str) -> None:
    if not _is_keras(obj):
        raise TypeError(f"{argument} must be a Keras model or layer, got {_what(obj)}")


def _check_inputs(inputs) -> tuple[np.ndarray, ...]:
    if isinstance(inputs, (str, bytes, os.PathLike)):
        raise TypeError(f"inputs must be NumPy arrays in torch's layout (one array, or a tuple for several "
                        f"inputs), got {_what(inputs, 'the arrays first: np.load')}")
    if isinstance(inputs, dict):
        raise TypeError("inputs must be NumPy arrays in torch's layout (one array, or a tuple for several inputs), "
                        "got a dict: pass the arrays in the order forward() takes them")
    items = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not items:
        raise ValueError("inputs is empty: give at least one array")
    if isinstance(inputs, list) and all(isinstance(x, (int, float, list, np.generic)) for x in items):
        raise TypeError("inputs is a (nested) list of numbers: pass np.asarray(inputs) for one input, or a tuple "
                        "of arrays for several (a list of arrays is read as several inputs)")
    out = []
    for i, x in enumerate(items):
        if x is None or isinstance(x, (str, bytes, dict, set)):
            raise TypeError(f"inputs[{i}] must be a NumPy array, got {_what(x, 'the arrays first: np.load')}")
        try:
            a = np.asarray(to_numpy(x))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"inputs[{i}] is not an array of numbers: {exc}") from None
        if a.dtype.kind not in "fiub":
            raise ValueError(f"inputs[{i}] must hold numbers (float for features, int for indices), got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError(f"inputs[{i}] is a scalar: give a batch (first axis = samples)")
        out.append(a)
    return tuple(out)


def _check_tol(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (or None for the tolerance model), got {type(value).__name__} "
                        f"{value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _check_flag(value, name, none_ok=False):
    if none_ok and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False{' (or None)' if none_ok else ''}, got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)


def _check_seed(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"seed must be an int >= 0, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"seed must be an int >= 0, got {value!r}")
    return int(value)


def _check_shape(value, name):
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)) or not len(value) or any(
            isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 0 for d in value):
        raise ValueError(f"{name} must be a non-empty tuple of ints >= 0 in torch's layout, e.g. (1, 3, 32, 32), "
                         f"got {value!r}")
    return tuple(int(d) for d in value)


# -- transfer ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransferEntry:
    """One Keras variable and the torch tensor(s) it was copied from (or to)."""

    torch_names: tuple[str, ...]
    torch_shapes: tuple[tuple[int, ...], ...]
    keras_path: str  # the variable's Keras path, e.g. "sequential/dense/kernel"
    keras_shape: tuple[int, ...]
    how: str  # the layout change: "transposed OIHW -> HWIO", "as is", ...
    buffer: bool = False  # running statistics (not a parameter)


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """What :func:`transfer` moved where; ``notes`` lists convention mismatches copied anyway
    (``strict=False``) and how an unbuilt Keras model was built."""

    direction: str  # "torch -> keras" or "keras -> torch"
    entries: tuple[TransferEntry, ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"transfer {self.direction}: {len(self.entries)} Keras variables"]
        w = max([len(", ".join(e.torch_names)) for e in self.entries] + [10])
        for e in self.entries:
            t = ", ".join(e.torch_names)
            shapes = " + ".join(str(s) for s in e.torch_shapes)
            lines.append(f"  {t:<{w}} {shapes:<16} -> {e.keras_path} {e.keras_shape}  [{e.how}]")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _channels_last_model(keras_model) -> bool:
    """Does the Keras model hold a channels_last convolution or pooling (then rank-3/4 inputs move)?"""
    for _, layer in _tfm().named_modules(keras_model):
        for sub in ([layer, getattr(layer, "conv", None)] if layer is not None else []):
            fmt = getattr(sub, "data_format", None)
            if fmt is not None and isinstance(sub, _keras().layers.Layer) and not isinstance(
                    sub, (_keras().layers.Flatten, _keras().layers.Permute)):
                return fmt == "channels_last"
    return False


def _tfm():
    return _adapter._tfm()


def _to_keras_layout(a: np.ndarray, channels_last: bool) -> np.ndarray:
    if channels_last and a.ndim in (3, 4):
        return np.moveaxis(a, 1, -1)
    return a


def _to_torch_layout(a: np.ndarray, channels_last: bool, torch_shape) -> np.ndarray:
    """A Keras tensor in torch's layout, when its shape says it is a moved channels_last map."""
    if channels_last and a.ndim in (3, 4):
        moved = np.moveaxis(a, -1, 1)
        if tuple(moved.shape) == tuple(torch_shape):
            return moved
    return a


def _build(keras_model, shape, dtype) -> None:
    keras_model(np.zeros(shape, dtype=dtype), training=False)


def transfer(src, dst, *, strict: bool = True, input_shape: Sequence[int] | None = None) -> TransferReport:
    """Copy weights (and running statistics) from ``src`` to ``dst``: a ``torch.nn.Module`` and a
    Keras model or layer, in either order. Returns a :class:`TransferReport`.

    An unbuilt Keras model is built first: from ``input_shape`` (torch's layout, batch
    first) when given, else from the first torch layer when it fixes the shape (a Linear:
    ``(1, in_features)``); otherwise call the Keras model once, or use :func:`compare`, which
    builds it from the inputs. ``strict=False`` copies even where conventions differ (eps,
    momentum, ...), listing them in ``notes``.
    """
    strict = _check_flag(strict, "strict")
    input_shape = _check_shape(input_shape, "input_shape")
    if _is_torch_module(src):
        _check_keras(dst, "dst (the Keras side)")
        torch_model, keras_model, direction = src, dst, "torch -> keras"
    elif _is_keras(src):
        _check_torch(dst, "dst (the torch side)")
        torch_model, keras_model, direction = dst, src, "keras -> torch"
    else:
        raise TypeError(f"src must be a torch.nn.Module or a Keras model, got {_what(src)}")
    notes = []
    list(_adapter._torch_weighted(torch_model, ""))  # unsupported torch layers first: they need no build
    if not keras_model.built or not keras_model.weights and any(True for _ in torch_model.parameters()):
        notes.append(_build_from_torch(torch_model, keras_model, input_shape))
    links = _adapter.plan(torch_model, keras_model, strict)
    notes += [m for l in links for m in l.mismatches]
    notes += [_training_caveat(l) for l in links if _training_caveat(l)]
    if direction == "torch -> keras":
        _adapter.torch_to_keras(torch_model, keras_model, strict=strict)
    else:
        _adapter.keras_to_torch(keras_model, torch_model, strict=strict)
    entries = []
    for link in links:
        for slot in link.slots():
            entries.append(TransferEntry(slot.torch_names, tuple(tuple(t.shape) for t in slot.torch_tensors),
                                         slot.var.path, tuple(int(d) for d in slot.var.shape), slot.how, slot.buffer))
    return TransferReport(direction, tuple(entries), tuple(notes))


def _training_caveat(link) -> str:
    """What no copy or setting can align: a difference that shows only in training."""
    bn = _torch().nn.modules.batchnorm._BatchNorm
    if isinstance(link.torch_module, bn) and link.torch_module.track_running_stats:
        return (f"layer path {link.path!r}: in training, Keras updates moving_variance with the biased batch "
                f"variance (divisor n), torch updates running_var with the unbiased one (n - 1): the running "
                f"statistics drift apart with every training step (normalised outputs and inference agree)")
    return ""


def _build_from_torch(torch_model, keras_model, input_shape) -> str:
    nn = _torch().nn
    dtype = next((str(p.dtype).removeprefix("torch.") for p in torch_model.parameters()), "float32")
    if input_shape is None:
        first = next((m for m in torch_model.modules() if not any(True for _ in m.children())
                      and any(True for _ in m.parameters(recurse=False))), None)
        int_input = isinstance(first, nn.Embedding)
        if isinstance(first, nn.Linear):
            input_shape = (1, first.in_features)
        elif isinstance(first, (nn.GRU, nn.LSTM)):
            input_shape = (1, 1, first.input_size)
        elif isinstance(first, (nn.LayerNorm, nn.BatchNorm1d)) and not isinstance(first, nn.BatchNorm2d):
            input_shape = (1, first.normalized_shape[-1] if isinstance(first, nn.LayerNorm) else first.num_features)
        elif int_input:
            input_shape = (1, 1)
        else:
            what = type(first).__name__ if first is not None else "no layer with parameters"
            raise AdapterError(f"the Keras {type(keras_model).__name__} is not built and the torch model's first "
                               f"layer ({what}) does not fix the input shape: pass input_shape=(N, C, H, W) in "
                               f"torch's layout, call the Keras model once, or use compare(), which builds it from "
                               f"the inputs")
    else:
        int_input = False
    shape = tuple(int(d) for d in input_shape)
    kshape = _to_keras_layout(np.zeros(shape, np.uint8), _channels_last_model(keras_model)).shape
    try:
        _build(keras_model, kshape, "int64" if int_input else dtype)
    except Exception as exc:
        raise AdapterError(f"building the Keras {type(keras_model).__name__} on an input of shape {kshape} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    return f"built the Keras model on an input of shape {kshape} (torch {shape})"


# -- the result ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorRow:
    """One compared tensor: the Keras value against the torch value."""

    name: str  # "output", "grad:input", "grad:fc1.weight"
    kind: str  # "forward" or "grad"
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    max_ulp: float
    tolerance: float  # at the element closest to its bound
    ratio: float  # largest error / tolerance
    passed: bool
    n: int  # the operation count behind the tolerance (0 with explicit rtol/atol)
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where the two models first part ways.

    ``where`` is ``"layer"`` (the paired layer's output disagrees while its input agrees),
    ``"between"`` (its input already disagrees although the previous paired layer agreed:
    code outside the paired layers, e.g. a functional call in ``forward`` / ``call``), or
    ``"after"`` (every paired layer agrees, the model's output does not). A backward
    divergence is ``"forward"`` when the forward pass already diverged and every paired
    layer's backward agrees on the same output gradient: the gradients differ downstream of
    the forward divergence, which is where to look."""

    direction: str  # "forward" or "backward"
    where: str
    layer: str  # torch module path ("" for the root)
    torch_type: str
    keras_path: str
    keras_type: str
    previous: str | None  # the paired layer before it (in the direction of the pass)
    detail: str  # max error, tolerance

    def __str__(self) -> str:
        name = f"{self.layer!r} (torch {self.torch_type} / Keras {self.keras_type})" if self.layer != "<output>" else ""
        if self.where == "layer":
            return (f"{self.direction}: first diverging layer {name}; its "
                    f"{'input' if self.direction == 'forward' else 'output gradient'} agrees. {self.detail}")
        if self.where == "between":
            prev = repr(self.previous) if self.previous else "the model's input"
            return (f"{self.direction}: diverges between {prev} and {self.layer!r} (code outside the paired layers: "
                    f"functional calls in forward/call, reshapes, pooling). {self.detail}")
        if self.where == "forward":
            return (f"{self.direction}: every paired layer's backward agrees on the same output gradient; the "
                    f"gradients differ because the forward pass does (see forward) ({self.detail})")
        return f"{self.direction}: every paired layer agrees; diverges after the last one ({self.detail})"


@dataclasses.dataclass(frozen=True)
class ModelComparison:
    """What :func:`compare` found. ``passed`` when every row passed. ``str()`` is the table."""

    passed: bool
    rows: tuple[TensorRow, ...]
    forward: Divergence | None
    backward: Divergence | None
    tolerance: str  # "tolerance model (float32)" or "explicit rtol=..., atol=..."
    transfer: TransferReport | None
    layers: tuple[TensorRow, ...] = ()  # the per-layer comparisons behind the localisation

    def __bool__(self) -> bool:
        return self.passed

    def failed(self) -> list[TensorRow]:
        return [r for r in self.rows if not r.passed]

    def table(self) -> str:
        head = ("tensor", "shape", "max abs err", "max rel err", "ULP", "tolerance", "err/tol", "")
        body = [(r.name, "x".join(map(str, r.shape)) or "()", f"{r.max_abs_err:.3g}", f"{r.max_rel_err:.3g}",
                 f"{r.max_ulp:.3g}", f"{r.tolerance:.3g}", f"{r.ratio:.3g}",
                 "ok" if r.passed else ("FAIL " + r.problem).strip()) for r in self.rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        fmt = lambda cells: "  ".join(c.ljust(w) if i in (0, 1, 7) else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])

    def __str__(self) -> str:
        n_fail = len(self.failed())
        lines = [f"{'PASSED' if self.passed else 'FAILED'}: {len(self.rows) - n_fail} of {len(self.rows)} tensors "
                 f"within tolerance ({self.tolerance})", self.table()]
        bad = [r for r in self.layers if not r.passed]
        if self.layers:
            lines.append(f"layer by layer: {len(self.layers) - len(bad)} of {len(self.layers)} checks within tolerance"
                         + (":" if bad else ""))
            lines += [f"  FAIL {r.name}: max abs err {r.max_abs_err:.3g}, tolerance {r.tolerance:.3g} "
                      f"({r.ratio:.3g}x){' ' + r.problem if r.problem else ''}" for r in bad[:6]]
            if len(bad) > 6:
                lines.append(f"  ... and {len(bad) - 6} more")
        for d in (self.forward, self.backward):
            if d is not None:
                lines.append(str(d))
        if self.transfer is not None and self.transfer.notes:
            lines += [f"transfer note: {n}" for n in self.transfer.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        first = f"; {self.forward}" if self.forward else ""
        return f"<ModelComparison {str(self).splitlines()[0]}{first}>"


class EquivalenceError(AssertionError):
    """Raised by :func:`assert_equivalent`; ``str()`` is the table and the first divergence."""

    def __init__(self, result: ModelComparison):
        super().__init__(str(result))
        self.result = result


# -- operation counts ---------------------------------------------------------------------


def _cost(module, inputs, output) -> int:
    """The dependent roundings one torch leaf adds to the chain behind one output element."""
    nn = _torch().nn
    E = _tm.ELEMENTARY
    if isinstance(module, nn.Linear):
        return module.in_features + 1  # a dot product of in_features terms, then the bias
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return module.in_channels // module.groups * math.prod(module.kernel_size) + 1
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return E + 5  # var + eps, sqrt, subtract, divide (or multiply), scale, shift
    if isinstance(module, nn.LayerNorm):
        d = math.prod(module.normalized_shape)
        return 2 * d + E + 7  # the mean (d), the variance (d + squares), then as BatchNorm
    if isinstance(module, nn.Embedding):
        return 0  # a lookup
    if isinstance(module, (nn.GRU, nn.LSTM)):
        steps = inputs[0].shape[1 if module.batch_first else 0] if inputs and inputs[0].dim() == 3 else 1
        # per step: the recurrent and input matmuls, the gate nonlinearities, the state update
        return steps * (module.hidden_size + module.input_size + 2 * E + 6)
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.Flatten,
                           nn.Unflatten, nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                           nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.Hardtanh)):
        return 0  # exact: selections and copies
    if isinstance(module, nn.LeakyReLU):
        return 1
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d)):
        k = module.kernel_size
        return (math.prod(k) if isinstance(k, tuple) else k ** (inputs[0].dim() - 2)) + 1
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        return max(1, inputs[0][0, 0].numel() // max(1, output[0, 0].numel())) + 1
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return inputs[0].shape[module.dim if module.dim is not None else -1] + E + 2
    if isinstance(module, nn.GELU):
        return E + 3  # erf (or tanh), and x * 0.5 * (1 + ...)
    return E  # any other weightless layer: one elementary function


def _feature_axis(module) -> int:
    nn = _torch().nn
    conv = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.modules.batchnorm._BatchNorm)
    return 1 if isinstance(module, conv) else -1


# -- layer pairing for the localisation ----------------------------------------------------


def _layer_pairs(torch_model, keras_model, links) -> list[tuple[str, Any, str, Any]]:
    """(torch path, torch leaf, Keras path, Keras layer) for every pair of leaves that compute
    the same step: weighted ones from the adapter, weightless ones by name in subclassed
    models and by position in Sequentials of the same length."""
    tfm = _tfm()
    nn = _torch().nn
    kmods = dict(tfm.named_modules(keras_model))
    pairs = {}

    def walk(t, k, tp, kp):
        tch = list(t.named_children())
        if not tch:
            L = _keras().layers
            # a flatten moves elements in a framework's own order: compared through the Dense it feeds
            reorders = isinstance(t, (nn.Flatten, nn.Unflatten)) or isinstance(k, (L.Flatten, L.Reshape, L.Permute))
            if isinstance(k, (L.Layer, _Chain)) and tp not in pairs and not reorders:
                pairs[tp] = (tp, t, kp, k)
            return
        kch = tfm.named_children(k)
        if isinstance(t, nn.Sequential) and _is_keras(k) and not isinstance(k, list):
            kch = _units(kch)
        if isinstance(t, (nn.Sequential, nn.ModuleList)):
            if len(kch) != len(tch):
                return  # different lengths: the adapter's weighted pairs only
            for (tn, tc), (kn, kc) in zip(tch, kch):
                walk(tc, kc, f"{tp}.{tn}" if tp else tn, f"{kp}.{kn}" if kp else kn)
            return
        kd = dict(kch)
        for tn, tc in tch:
            if tn in kd:
                walk(tc, kd[tn], f"{tp}.{tn}" if tp else tn, f"{kp}.{tn}" if kp else tn)

    walk(torch_model, keras_model, "", "")
    for link in links:  # weighted layers the structural walk did not reach (Sequentials of other lengths)
        if link.path not in pairs:
            pairs[link.path] = (link.path, link.torch_module, link.keras_path,
                                kmods.get(link.keras_path, link.keras_layer))
    return list(pairs.values())


class _Chain:
    """Keras layers that together stand for one torch layer: a ``ZeroPadding2D`` and the
    convolution or pooling after it (the faithful port of torch's symmetric padding)."""

    def __init__(self, layers):
        self.layers = tuple(layers)

    def __call__(self, x, training=False):
        for layer in self.layers:
            x = layer(x, training=training)
        return x


def _kname(kl) -> str:
    if isinstance(kl, _Chain):
        return "+".join(type(layer).__name__ for layer in kl.layers)
    return type(kl).__name__


def _units(kch):
    """A Sequential's Keras children with each zero padding joined to the layer after it."""
    L = _keras().layers
    out, pending = [], []
    for name, child in kch:
        if isinstance(child, (L.ZeroPadding1D, L.ZeroPadding2D)):
            pending.append((name, child))
            continue
        if pending:
            out.append((name, _Chain([c for _, c in pending] + [child])))
            pending = []
        else:
            out.append((name, child))
    out += pending
    return out


@contextmanager
def _wrapped_calls(layers: dict[str, Any], record: dict[str, tuple]):
    """Wrap each Keras layer's ``call`` to record its first (input, output)."""
    originals = {}
    inputs = {}
    try:
        for key, item in layers.items():
            chain = item.layers if isinstance(item, _Chain) else (item,)
            for i, layer in enumerate(chain):
                if id(layer) in originals:
                    continue
                original = layer.call
                originals[id(layer)] = (layer, "call" in vars(layer))
                first, last = i == 0, i == len(chain) - 1

                def call(*args, __original=original, __key=key, __first=first, __last=last, **kwargs):
                    if __first and __key not in inputs:
                        inputs[__key] = args[0] if args else None
                    out = __original(*args, **kwargs)
                    if __last and __key not in record:
                        record[__key] = (inputs.get(__key), out)
                    return out

                layer.call = call
        yield
    finally:
        for layer, had in originals.values():
            if not had:
                try:
                    del layer.call
                except AttributeError:
                    pass


def _first(x):
    while isinstance(x, (tuple, list)):
        x = x[0]
    return x


# -- max-pooling and normalisation in the magnitude run -------------------------------------


def _next_branch(branches, key, calls, shape):
    """The real run's (input, output gradient) of this call of ``key``, or None."""
    if branches is None:
        return None
    seen = branches.get(key, [])
    i = calls[key] = calls.get(key, -1) + 1
    return seen[i] if i < len(seen) and tuple(seen[i][0].shape) == tuple(shape) else None


def _spread_max_pool(F, rank, branches=None, sites=None, eta=None, calls=None):
    """Max-pooling whose backward sends the gradient to every element of the window: in the
    magnitude run it bounds whichever element the real network routes to.

    With ``branches`` (the real float64 run's input and output gradient of each call, in
    order), a window whose maximum is not decided beyond rounding (another element within
    eta() (m_e + m_max) of it, eta() the relative error bound of the chain so far) is where
    torch and TensorFlow may route the window's gradient to different elements: ``sites`` gets
    (input, output, scatter, real output gradient), scatter mapping a bound on |output
    gradient| to the error on the input, that bound on every candidate (docs/tolerances.md
    section 10)."""
    original = F.max_pool2d if rank == 2 else F.max_pool1d
    avg = F.avg_pool2d if rank == 2 else F.avg_pool1d
    key = f"max_pool{rank}d"
    calls = {} if calls is None else calls

    def pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        real = _next_branch(branches, key, calls, input.shape)
        y = original(input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
        if dilation not in (1, (1,), (1, 1), [1, 1]) or return_indices:
            return (y, None) if return_indices else y
        k = kernel_size if isinstance(kernel_size, int) else math.prod(kernel_size)
        k = k ** rank if isinstance(kernel_size, int) else k
        stride = stride if stride not in (None, []) else kernel_size
        s = avg(input, kernel_size, stride, padding, ceil_mode, True) * k
        if s.shape != y.shape:  # a window only in the padding: keep the max alone
            return y
        ties = None
        if real is not None and input.requires_grad:
            ties = _pool_ties(real[0], input.detach(), kernel_size, stride, padding, rank, eta(), tuple(y.shape))
        if ties is None:
            return y.detach() + (s - s.detach())
        route, scatter = ties
        out = y.detach() + route(input)  # the gradient goes to the window's candidates only
        if scatter is not None and sites is not None and real[1] is not None and real[1].shape == y.shape:
            sites.append((input, out, scatter, real[1]))
        return out

    return pool


def _pool_ties(x, m, kernel_size, stride, padding, rank, eta, out_shape):
    """For a max-pool on the real input ``x`` (magnitudes ``m``), with a candidate being an
    element within eta (m_e + m_max) of its window's maximum (either framework may pick it):

    * ``route(m)``: zero-valued, output-shaped, whose gradient sends each window's output
      gradient to every candidate of the window (to the whole window where it has none: NaN);
    * ``scatter(bound)``: the error different routing may put on the input, ``bound`` (on
      |the output gradient|) on every candidate of each window with two or more; None when no
      window is undecided.

    None when the geometry is not one this reads (then the gradient is spread over the window)."""
    torch = _torch()
    F = torch.nn.functional

    def per_axis(v):
        v = (v,) if isinstance(v, int) else tuple(v)
        return v * rank if len(v) == 1 else v

    k, st, p = per_axis(kernel_size), per_axis(stride), per_axis(padding)
    if not (len(k) == len(st) == len(p) == rank):
        return None
    shape = tuple(x.shape)
    unbatched = x.dim() == rank + 1
    x4, m4 = (x[None], m[None]) if unbatched else (x, m)
    if rank == 1:
        x4, m4 = x4[:, :, None, :], m4[:, :, None, :]
        k, st, p = (1, *k), (1, *st), (0, *p)
        out_hw = (1, out_shape[-1])
    else:
        out_hw = tuple(out_shape[-2:])
    n, c, h, w = x4.shape
    # pad p on the left and as much as the last window needs on the right (ceil_mode)
    right = [max(0, (o - 1) * si + ki - size - pi) for o, si, ki, size, pi in zip(out_hw, st, k, (h, w), p)]
    pads = (p[1], right[1], p[0], right[0])
    xp = F.pad(x4, pads, value=-math.inf)
    mp = F.pad(m4, pads, value=0.0)
    xu, mu = F.unfold(xp, k, stride=st), F.unfold(mp, k, stride=st)
    taps, windows = math.prod(k), out_hw[0] * out_hw[1]
    if xu.shape[-1] != windows:
        return None
    xu, mu = xu.view(n, c, taps, windows), mu.view(n, c, taps, windows)
    top = xu.max(2, keepdim=True).values
    reach = _finite(eta * (mu + mu.max(2, keepdim=True).values))
    candidate = torch.isfinite(xu) & (xu >= top - reach)
    count = candidate.sum(2, keepdim=True)
    routes = (candidate | (count == 0)).to(x.dtype)
    weights = (candidate & (count >= 2)).to(x.dtype)

    def route(m_in):
        m4_in = m_in[None] if unbatched else m_in
        if rank == 1:
            m4_in = m4_in[:, :, None, :]
        taps_in = F.unfold(F.pad(m4_in, pads, value=0.0), k, stride=st).view(n, c, taps, windows)
        picked = (routes * taps_in).sum(2)
        return (picked - picked.detach()).reshape(out_shape)

    def scatter(g):
        g4 = g.reshape(n, c, 1, windows)
        e = F.fold((weights * g4).view(n, c * taps, windows), output_size=tuple(xp.shape[-2:]), kernel_size=k,
                   stride=st)
        e = e[:, :, p[0]:p[0] + h, p[1]:p[1] + w]
        return e.reshape(shape)

    return route, (scatter if weights.any() else None)


def _magnitude_relu(branches, sites, eta, calls=None):
    """ReLU in the magnitude run: the value passes. With the real run's input x (``branches``),
    the gradient passes where x > -eta m (where x < -eta m both frameworks take the zero branch:
    their gradients are exactly 0 there), and where |x| <= eta m the two may take different
    branches: a site whose error is the whole |output gradient| (docs/tolerances.md section 10).
    Without it (a layer checked alone) everything passes."""
    calls = {} if calls is None else calls

    def relu(input, inplace=False):
        real = _next_branch(branches, "relu", calls, input.shape)
        if real is None or not input.requires_grad:
            return input
        x, g = real
        reach = _finite(eta() * input.detach())
        out = input.detach() + (x > -reach).to(input.dtype) * (input - input.detach())
        flip = (x.abs() <= reach).to(input.dtype)
        if sites is not None and g is not None and flip.any():
            sites.append((input, out, lambda bound, flip=flip: flip * bound, g))
        return out

    return relu


def _branch_recorder(F, inputs, outputs):
    """Patches for the real float64 run: keep the input and output of every relu and max-pool
    call, in order (``inputs[key]``, ``outputs[key]``)."""
    def recording(original, key):
        def call(input, *args, **kwargs):
            inputs.setdefault(key, []).append(input.detach().clone())
            out = original(input, *args, **kwargs)
            outputs.setdefault(key, []).append(out[0] if isinstance(out, tuple) else out)
            return out
        return call

    return {key: recording(getattr(F, key), key) for key in ("relu", "max_pool1d", "max_pool2d")}


def _real_branches(wide, xs64, R, grads, hooks_done):
    """The real float64 run (``hooks_done`` removes the statistics hooks afterwards): the input of
    every relu and max-pool call and, with ``grads``, the gradient of sum(R * output) at its
    output: key -> [(input, output gradient or None)] in call order."""
    torch = _torch()
    F = torch.nn.functional
    inputs, outputs = {}, {}
    with torch.set_grad_enabled(grads), contextlib.ExitStack() as patches:
        for key, fn in _branch_recorder(F, inputs, outputs).items():
            patches.enter_context(mock.patch.object(F, key, fn))
        out = wide(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs64])
    hooks_done()
    found = {key: [(x, None) for x in xs] for key, xs in inputs.items()}
    if not grads:
        return found
    outs = [out] if torch.is_tensor(out) else [o for o in out if torch.is_tensor(o)]
    proj = sum((o * torch.as_tensor(r, dtype=o.dtype)).sum() for o, r in zip(outs, R) if o.requires_grad)
    slots = [(key, i, o) for key, os_ in outputs.items() for i, o in enumerate(os_)
             if torch.is_tensor(o) and o.requires_grad]
    if not torch.is_tensor(proj) or not slots:
        return found
    got = torch.autograd.grad(proj, [o for _, _, o in slots], allow_unused=True)
    for (key, i, o), g in zip(slots, got):
        found[key][i] = (found[key][i][0], torch.zeros_like(o).detach() if g is None else g.detach())
    return found


#: sup |f'(x)| of the weightless activations: in the magnitude run their backward multiplies
#: by this bound (their derivative at |x| may be far smaller than at x: tanh saturates)
_SLOPE = {"Tanh": 1.0, "Sigmoid": 0.25, "GELU": 1.13, "SiLU": 1.1, "ELU": 1.0, "Softplus": 1.0, "Softsign": 1.0,
          "Hardtanh": 1.0, "Hardsigmoid": 1 / 6, "Hardswish": 1.5, "Mish": 1.1, "LeakyReLU": 1.0, "Softmax": 1.0,
          "LogSoftmax": 1.0, "Tanhshrink": 1.0, "SELU": 1.76, "CELU": 1.0}

#: sup |f''(x)|: the derivative a backward pass evaluates at a perturbed input moves by at most
#: this much per unit of input error (docs/tolerances.md section 10; measured on a 3e-5 grid over
#: [-30, 30] in float64 and rounded up: tanh 4/(3 sqrt 3), sigmoid 1/(6 sqrt 3), GELU 2 phi(0),
#: SiLU 1/2, Softplus 1/4, Softsign 2, Mish 0.645, SELU scale * alpha, Hardswish 1/3; piecewise
#: linear ones 0; Softmax and LogSoftmax are not elementwise: 1)
_CURVATURE = {"Tanh": 0.77, "Sigmoid": 0.0963, "GELU": 0.8, "SiLU": 0.5, "ELU": 1.0, "Softplus": 0.25,
              "Softsign": 2.0, "Hardtanh": 0.0, "Hardsigmoid": 0.0, "Hardswish": 1 / 3, "Mish": 0.645,
              "LeakyReLU": 0.0, "Softmax": 1.0, "LogSoftmax": 1.0, "Tanhshrink": 0.77, "SELU": 1.76, "CELU": 1.0}


def _slopes(module):
    """(sup |f'|, sup |f''|) of a weightless activation, with its parameters."""
    nn = _torch().nn
    name = type(module).__name__
    slope, curvature = _SLOPE[name], _CURVATURE[name]
    if isinstance(module, nn.LeakyReLU):
        slope = max(1.0, abs(module.negative_slope))
    if isinstance(module, nn.ELU):
        slope = curvature = max(1.0, abs(module.alpha))
    if isinstance(module, nn.CELU):
        curvature = 1.0 / abs(module.alpha)
    if isinstance(module, nn.Softplus):
        curvature = module.beta / 4.0
    return slope, curvature


def _local_slopes(module, x, radius):
    """sup |f'| and sup |f''| over [x - radius, x + radius], elementwise: tight for tanh and
    sigmoid, whose |f'| falls with |t| (so its sup is at the point nearest 0) and whose
    |f''| = 2 |tanh t| tanh'(t), resp. sigmoid'(t) tanh(|t| / 2), is at most that sup times
    the factor at the farthest point; the global suprema for the others."""
    torch = _torch()
    slope, curvature = _slopes(module)
    if isinstance(module, (torch.nn.Tanh, torch.nn.Sigmoid)):
        nearest = torch.clamp(torch.zeros_like(x), x - radius, x + radius)  # the point closest to 0
        farthest = x.abs() + radius
        if isinstance(module, torch.nn.Tanh):
            s = 1 - torch.tanh(nearest) ** 2
            c = 2 * torch.tanh(farthest) * s
        else:
            sg = torch.sigmoid(nearest)
            s = sg * (1 - sg)
            c = s * torch.tanh(farthest / 2)
        return s, torch.clamp(c, max=curvature)
    return torch.full_like(x, slope), torch.full_like(x, curvature)


#: the magnitude of the terms of f'(x) as the backward passes compute it (Higham's magnitude of
#: the derivative's own arithmetic, >= sup |f'|): tanh 1 - y^2 (terms 1 + y^2 <= 2), sigmoid
#: y (1 - y) (terms y (1 + y) <= 2), GELU Phi(x) + x phi(x) (<= 1 + phi(1)), ELU and SELU from
#: their output (y + alpha), Hardswish (2x + 3) / 6 on (-3, 3); SiLU and Mish, whose x (1 -
#: sigmoid(x)) term grows with |x|, and tanh and sigmoid are elementwise (_derivative_terms)
_TERMS = {"Tanh": 2.0, "Sigmoid": 2.0, "GELU": 1.25, "SiLU": math.inf, "ELU": 2.0, "Softplus": 1.0, "Softsign": 1.0,
          "Hardtanh": 1.0, "Hardsigmoid": 1 / 6, "Hardswish": 1.5, "Mish": math.inf, "LeakyReLU": 1.0, "Softmax": 2.0,
          "LogSoftmax": 2.0, "Tanhshrink": 1.0, "SELU": 3.52, "CELU": 2.0}


def _derivative_terms(module, m):
    """Elementwise bound on the magnitude of the terms of f'(x), |x| <= m (see _TERMS)."""
    torch = _torch()
    nn = torch.nn
    slope, _ = _slopes(module)
    if isinstance(module, nn.Tanh):
        return 1 + torch.tanh(m) ** 2
    if isinstance(module, nn.Sigmoid):
        sg = torch.sigmoid(m)
        return sg * (1 + sg)
    if isinstance(module, (nn.SiLU, nn.Mish)):
        return 1 + 2 * m  # sigmoid(x) (1 + x (1 - sigmoid(x))): the terms 1 + |x| (1 + sigmoid)
    terms = _TERMS[type(module).__name__]
    if isinstance(module, (nn.ELU, nn.CELU)):
        terms = max(1.0, 2 * abs(module.alpha))
    return torch.full_like(m, max(terms, slope))


def _activation_magnitude(module, m, out, real, eta):
    """An activation in the magnitude run on m = the magnitude of its input.

    The backward multiplies by f'(x), which it computes with its own rounding: the gradient's
    multiplier is at least the magnitude of the terms of that computation, t (_TERMS), not only
    sup |f'|. Without ``real`` (a layer checked alone: its input is exact on both sides) the
    value is |f(m)| (>= |f(x)|) and the multiplier t. Along a run the input carries the error of
    the chain before it, at most eta * m: it reaches the output through f', so the value is
    |f(m)| + s m, and the derivative the backward evaluates at the perturbed input moves by at
    most c eta m, so the multiplier is t + c m, with s and c the suprema of |f'| and |f''| over
    [x - eta m, x + eta m] around the real run's input x (docs/tolerances.md section 10)."""
    md = m.detach()
    terms = _derivative_terms(module, md)
    if real is None:
        return out.abs().detach() + terms * (m - md)
    radius = _finite(eta * md)
    s, c = _local_slopes(module, real.to(md.dtype), radius)
    return (out.abs().detach() + s * md) + (terms + c * md) * (m - md)


def _finite(t):
    return _torch().nan_to_num(t, nan=0.0, posinf=float(np.finfo(np.float64).max))


def _layer_norm_magnitude():
    torch = _torch()

    class LayerNormMagnitude(torch.autograd.Function):
        """Forward: (|x| + |mean|) / std |gamma| + |beta|. Backward: the bound on LayerNorm's
        input gradient, |dx| <= (|g| + mean|g| + |xhat| mean(|g||xhat|)) / std, g = gamma dy."""

        @staticmethod
        def forward(ctx, x, mean, inv, xhat, w, dims):
            ctx.save_for_backward(inv, xhat, w)
            ctx.dims = dims
            return (x + mean.abs()) * inv * w

        @staticmethod
        def backward(ctx, dy):
            inv, xhat, w = ctx.saved_tensors
            g = dy.abs() * w
            bound = inv * (g + g.mean(ctx.dims, keepdim=True) + xhat.abs() * (g * xhat.abs()).mean(ctx.dims, keepdim=True))
            # the gradient of gamma: sum over the positions of |dy| |xhat|
            lead = tuple(range(dy.dim() - len(ctx.dims)))
            gw = (dy.abs() * xhat.abs()).sum(lead) if w.dim() else None
            return bound, None, None, None, gw, None

    return LayerNormMagnitude


def _rnn_magnitude(module, x):
    """An unrolled GRU / LSTM on magnitudes: |weights|, gates with the sup of their slopes."""
    torch = _torch()
    nn = torch.nn

    def act(v, slope, f):
        return f(v).abs().detach() + slope * (v - v.detach())

    sig = lambda v: act(v, 0.25, torch.sigmoid)  # noqa: E731
    tanh = lambda v: act(v, 1.0, torch.tanh)  # noqa: E731
    if not module.batch_first:
        x = x.transpose(0, 1)
    N, T, _ = x.shape
    H = module.hidden_size
    h = x.new_zeros(N, H)
    c = x.new_zeros(N, H)
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0  # |weights| already
    b_ih = module.bias_ih_l0 if module.bias else 0.0
    b_hh = module.bias_hh_l0 if module.bias else 0.0
    outs = []
    for step in range(T):
        gi = x[:, step] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        if isinstance(module, nn.GRU):
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            # the value (1 - z) n + z h, computed n + z (h - n) (torch) or (1 - z) n + z h (Keras):
            # the magnitude of its terms is (1 + z) |n| + z |h|, not (1 - z) |n| + z |h|: when z
            # saturates towards 1, 1 - z cancels and keeps the absolute error of z (docs/porting.md
            # section 7). The gradient of each term's magnitude: to n (1 + z), to h z, to z |n| + |h|
            # (the real ones: 1 - z, z, h - n)
            zd, nd, hd = z.detach(), n.detach(), h.detach()
            h = ((1 + zd) * nd + zd * hd) + (1 + zd) * (n - nd) + zd * (h - hd) + (z - zd) * (nd + hd)
        else:
            g = gi + gh
            i, f, gg, o = sig(g[:, :H]), sig(g[:, H:2 * H]), tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
            c = f * c + i * gg
            h = o * tanh(c)
        outs.append(h)
    out = torch.stack(outs, 1)
    if not module.batch_first:
        out = out.transpose(0, 1)
    return (out, h[None]) if isinstance(module, nn.GRU) else (out, (h[None], c[None]))


class _ChainBound:
    """gamma_n(u) of the forward chain so far in the magnitude run: ``n`` grows by each torch
    leaf's operation count (``costs``: wide module -> count) as it runs; ``()`` is the bound."""

    def __init__(self, u: float, costs: dict):
        self.u, self.costs, self.n = u, costs, 0

    def __call__(self) -> float:
        nu = self.n * self.u
        return nu / (1 - nu) if nu < 0.5 else math.inf

    def count(self, module, args, out):
        self.n += self.costs.get(module, 0)


@contextmanager
def _magnitude_mode(model, stats, acts=None, eta=None, branches=None, sites=None):
    """Abs weights (done by the caller), spread max-pools, identity ReLU, activations by
    :func:`_activation_magnitude` (``acts``: module -> its inputs in the real float64 run, in
    call order; None for a layer checked alone; ``eta``: a :class:`_ChainBound`, the relative
    error bound of the chain before them), normalisations acting on magnitudes with the real run's statistics
    (``stats``: module -> (mean, 1/std, xhat)), RNNs unrolled on magnitudes. ``branches``:
    the real run's relu and max-pool inputs (see _magnitude_relu, _spread_max_pool), whose
    undecided branches are appended to ``sites``."""
    torch = _torch()
    F = torch.nn.functional
    nn = torch.nn
    handles = []
    LNM = _layer_norm_magnitude()

    def norm_hook(module, args, out):
        mean, inv, xhat = stats[module]
        x = args[0]
        # the parameters are |weights| already (no abs() here: its derivative at a zero bias is 0)
        w = module.weight if module.weight is not None else torch.ones((), dtype=x.dtype)
        b = module.bias if module.bias is not None else 0.0
        if isinstance(module, nn.LayerNorm):
            dims = tuple(range(-len(module.normalized_shape), 0))
            return LNM.apply(x, mean, inv, xhat, w, dims) + b
        view = (1, -1) + (1,) * (x.dim() - 2)
        w = w.reshape(view) if w.dim() else w
        b = b.reshape(view) if torch.is_tensor(b) else b
        return (x + mean.abs()) * inv * w + b  # eval BatchNorm is affine: its backward is inv |gamma|

    calls = {}

    def activation_hook(module, args, out):
        real = None
        if acts is not None:
            seen = acts.get(module, [])
            i = calls[module] = calls.get(module, -1) + 1
            real = seen[i] if i < len(seen) and seen[i].shape == args[0].shape else None
            if real is None:  # not recorded: the value's propagated error with the sup of |f'|
                real = torch.zeros_like(args[0])
        return _activation_magnitude(module, args[0], out, real, eta() if eta is not None else math.inf)

    for m in model.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
            handles.append(m.register_forward_hook(norm_hook))
        elif type(m).__name__ in _SLOPE:
            handles.append(m.register_forward_hook(activation_hook))
        elif isinstance(m, (nn.GRU, nn.LSTM)):
            handles.append(m.register_forward_hook(lambda mod, args, out: _rnn_magnitude(mod, args[0])))
    if eta is not None:  # after the hooks above: an activation reads the chain before itself
        for m in model.modules():
            if not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(eta.count))
    try:
        calls = {}
        with mock.patch.object(F, "max_pool2d", _spread_max_pool(F, 2, branches, sites, eta, calls)), \
                mock.patch.object(F, "max_pool1d", _spread_max_pool(F, 1, branches, sites, eta, calls)), \
                mock.patch.object(F, "relu", _magnitude_relu(branches, sites, eta, calls)):
            yield
    finally:
        for h in handles:
            h.remove()


def _norm_stats(model, stats):
    """Forward hooks that keep each normalisation's (mean, 1/std) in the real float64 run."""
    torch = _torch()
    nn = torch.nn

    def hook(module, args, out, copy_of):
        x = args[0].detach()
        if isinstance(module, nn.LayerNorm):
            dims = tuple(range(-len(module.normalized_shape), 0))
            mean = x.mean(dim=dims, keepdim=True)
            var = x.var(dim=dims, unbiased=False, keepdim=True)
        else:
            view = (1, -1) + (1,) * (x.dim() - 2)
            mean, var = module.running_mean.reshape(view), module.running_var.reshape(view)
        inv = 1 / torch.sqrt(var + module.eps)
        stats[copy_of] = (mean, inv, (x - mean) * inv)

    return hook


# -- compare ------------------------------------------------------------------------------


def compare(torch_model, keras_model, inputs, *, grads: bool = True, transfer: bool = True,
            rtol: float | None = None, atol: float | None = None, seed: int = 0, strict: bool = True,
            channels_last: bool | None = None) -> ModelComparison:
    """Compare a torch model and its Keras port on ``inputs`` (NumPy arrays in torch's layout;
    a tuple for several inputs). See the module docstring and docs/porting.md.

    ``transfer``: copy the torch weights into the Keras model first (:func:`transfer`,
    ``strict``). ``grads``: also compare the gradients of a projection ``sum(R * output)``
    (``R`` seeded by ``seed``) with respect to the float inputs and every parameter.
    ``channels_last``: move rank-3/4 inputs (and outputs) between layouts; by default when the
    Keras model holds a channels_last convolution or pooling layer. ``rtol`` / ``atol``:
    replace the tolerance model by ``atol + rtol * |torch value|``.
    """
    _check_torch(torch_model, "torch_model")
    _check_keras(keras_model, "keras_model")
    xs = _check_inputs(inputs)
    rtol, atol = _check_tol(rtol, "rtol"), _check_tol(atol, "atol")
    grads, transfer, strict = _check_flag(grads, "grads"), _check_flag(transfer, "transfer"), _check_flag(strict, "strict")
    channels_last = _check_flag(channels_last, "channels_last", none_ok=True)
    seed = _check_seed(seed)
    torch = _torch()
    params = dict(torch_model.named_parameters())
    dtype = next(iter(params.values())).dtype if params else torch.float32
    np_dtype = np.dtype(str(dtype).removeprefix("torch."))
    xs = tuple(x.astype(np_dtype) if x.dtype.kind == "f" else x.astype(np.int64) for x in xs)

    was_training = torch_model.training
    torch_model.eval()
    try:
        # does each model run on these inputs at all?
        with torch.no_grad():
            try:
                torch_model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs])
            except Exception as exc:
                hint = ("; integer inputs are passed as int64 (indices): cast features to float"
                        if any(x.dtype.kind != "f" for x in xs) else "")
                raise AdapterError(f"the torch {type(torch_model).__name__} fails on the given inputs (shapes "
                                   f"{[x.shape for x in xs]}): {type(exc).__name__}: {exc}{hint}") from exc
        if channels_last is None:
            channels_last = _channels_last_model(keras_model)
        kxs = tuple(_to_keras_layout(x, channels_last) for x in xs)
        try:
            keras_model(*kxs, training=False)
        except Exception as exc:
            raise AdapterError(f"the Keras {type(keras_model).__name__} fails on the given inputs (shapes "
                               f"{[x.shape for x in kxs]}{', moved to channels_last' if channels_last else ''}): "
                               f"{type(exc).__name__}: {exc} (inputs are read batch first, in torch's layout: "
                               f"an unbatched input needs its batch axis)") from exc
        report = _transfer_into(torch_model, keras_model, strict) if transfer else None
        links = _adapter.plan(torch_model, keras_model, strict=False)
        return _compare(torch_model, keras_model, xs, kxs, links, report, grads, rtol, atol, seed, channels_last,
                        dtype, np_dtype)
    finally:
        torch_model.train(was_training)


def _transfer_into(torch_model, keras_model, strict):
    return transfer(torch_model, keras_model, strict=strict)


def _torch_run(model, xs, R, pairs, grads, dtype, costs=None, sites=None, chain=None):
    """Forward (and gradients) of a torch model, recording the paired layers' inputs and outputs."""
    torch = _torch()
    order, record, handles = [], {}, []

    def hook_for(path):
        def hook(module, args, out):
            if path not in record:
                order.append(path)
                record[path] = (args[0] if args else None, _first(out))
        return hook

    def count(module, args, out):
        costs.append((module, _cost(module, args, _first(out)), _first(out)))

    for path, tmod, _, _ in pairs:
        handles.append(tmod.register_forward_hook(hook_for(path)))
    if costs is not None:
        for m in model.modules():
            if not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(count))
    try:
        ts = [torch.from_numpy(np.ascontiguousarray(x)).to(dtype if x.dtype.kind == "f" else torch.int64)
              for x in xs]
        for t in ts:
            if t.is_floating_point() and grads:
                t.requires_grad_()
        with torch.set_grad_enabled(grads):
            out = model(*ts)
    finally:
        for h in handles:
            h.remove()
    outs = [out] if torch.is_tensor(out) else [o for o in out if torch.is_tensor(o)]
    res = {"outputs": [to_numpy(o) for o in outs], "order": order,
           "layers": {p: (None if i is None else to_numpy(i), to_numpy(o)) for p, (i, o) in record.items()},
           "grads": {}, "layer_grads": {}}
    if not grads:
        return res
    proj = sum((o * torch.as_tensor(r, dtype=o.dtype)).sum() for o, r in zip(outs, R))
    named = [(n, p) for n, p in model.named_parameters()]
    targets = [("grad:input" if len(ts) == 1 else f"grad:input{i}", t) for i, t in enumerate(ts) if t.requires_grad]
    targets += [(f"grad:{n}", p) for n, p in named]
    lt = []
    for path in order:
        i, o = record[path]
        if i is not None and torch.is_tensor(i) and i.requires_grad:
            lt.append((("in", path), i))
        if torch.is_tensor(o) and o.requires_grad:
            lt.append((("out", path), o))
    sites = [site for site in (sites or []) if site[0].requires_grad and site[1].requires_grad]
    leaves = [t for _, t in targets] + [t for _, t in lt]
    got = torch.autograd.grad(proj, leaves + [site[1] for site in sites], allow_unused=True,
                              retain_graph=bool(sites))
    for (name, t), g in zip(targets, got):
        res["grads"][name] = np.zeros(tuple(t.shape)) if g is None else to_numpy(g)
    for (key, t), g in zip(lt, got[len(targets):]):
        res["layer_grads"][key] = np.zeros(tuple(t.shape)) if g is None else to_numpy(g)
    if sites:
        # the branch sites: each framework's gradient at a site's output is within
        # gamma_{2n}(u) m of the real one (n the forward chain, as for any gradient); a
        # different branch puts that much on the site's input, carried back to every compared
        # gradient through the magnitude graph
        back = _ChainBound(chain.u, {})
        back.n = 2 * chain.n
        errors = [scatter(g_real.abs() + _finite(back() * (torch.zeros_like(out) if g is None else g)))
                  for (_, out, scatter, g_real), g in zip(sites, got[len(leaves):])]
        flips = torch.autograd.grad([inp for inp, _, _, _ in sites], leaves, grad_outputs=errors, allow_unused=True)
        res["flip_grads"] = {name: to_numpy(g) for (name, _), g in zip(targets, flips) if g is not None}
        res["flip_layer_grads"] = {key: to_numpy(g) for (key, _), g in zip(lt, flips[len(targets):])
                                   if g is not None}
    return res


def _keras_run(keras_model, torch_model, kxs, R, pairs, grads, channels_last):
    tf = _tf()
    record = {}
    layers = {p: k for p, _, _, k in pairs}
    xs = [tf.constant(x) for x in kxs]
    with _wrapped_calls(layers, record), tf.GradientTape(persistent=True) as tape:
        for x in xs:
            if x.dtype.is_floating:
                tape.watch(x)
        out = keras_model(*xs, training=False)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        proj = None
        if grads:
            for o, r in zip(outs, R):
                term = tf.reduce_sum(o * tf.constant(_to_keras_layout(r, channels_last), dtype=o.dtype))
                proj = term if proj is None else proj + term
    res = {"outputs": [to_numpy(o) for o in outs],
           "layers": {p: (None if i is None else to_numpy(i), to_numpy(_first(o))) for p, (i, o) in record.items()},
           "grads": {}, "layer_grads": {}}
    if not grads:
        return res
    float_xs = [(i, x) for i, x in enumerate(xs) if x.dtype.is_floating]
    weights = _adapter._keras_weights(keras_model)
    gx = tape.gradient(proj, [x for _, x in float_xs])
    for (i, x), g in zip(float_xs, gx):
        res["grads"]["grad:input" if len(xs) == 1 else f"grad:input{i}"] = (
            np.zeros(x.shape) if g is None else to_numpy(g))
    gw = tape.gradient(proj, weights)
    gw = [None if g is None else to_numpy(tf.convert_to_tensor(g)) for g in gw]
    for name, g in _adapter.torch_values(keras_model, torch_model, gw, gradients=True, strict=False).items():
        res["grads"][f"grad:{name}"] = g
    for path, (i, o) in record.items():
        for key, t in (("in", i), ("out", _first(o))):
            if t is not None and hasattr(t, "dtype") and t.dtype.is_floating:
                g = tape.gradient(proj, t)
                if g is not None:
                    res["layer_grads"][(key, path)] = to_numpy(g)
    del tape
    return res


def _compare(torch_model, keras_model, xs, kxs, links, report, grads, rtol, atol, seed, channels_last, dtype,
             np_dtype):
    torch = _torch()
    precision = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
                 np.dtype(np.float16): "float16"}.get(np_dtype, "float32")
    pairs = _layer_pairs(torch_model, keras_model, links)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        probe = torch_model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs])
    probe = [probe] if torch.is_tensor(probe) else [o for o in probe if torch.is_tensor(o)]
    R = [rng.standard_normal(tuple(o.shape)) for o in probe]

    costs = []
    t = _torch_run(torch_model, xs, R, pairs, grads, dtype, costs)
    k = _keras_run(keras_model, torch_model, kxs, R, pairs, grads, channels_last)

    # the magnitude run: float64, |inputs|, |weights|, |R|
    wide = copy.deepcopy(torch_model).double().eval()
    stats, handles = {}, []
    twins = dict(zip(torch_model.modules(), wide.modules()))
    acts = {}  # each activation's inputs in the real float64 run, in call order
    for m, w in twins.items():
        if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)):
            handles.append(w.register_forward_hook(
                lambda mod, a, o, w=w: _norm_stats(None, stats)(mod, a, o, w)))
        elif type(m).__name__ in _SLOPE:
            handles.append(w.register_forward_hook(lambda mod, a, o: acts.setdefault(mod, []).append(a[0].detach())))
    xs64 = tuple(x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs)
    # the real float64 run: statistics, activation inputs, and each relu's and max-pool's input
    # and output gradient, in call order
    branches = _real_branches(wide, xs64, R, grads, lambda: [h.remove() for h in handles])
    with torch.no_grad():
        for p in wide.parameters():
            p.abs_()
    wide_pairs = [(p, twins[m], kp, kl) for p, m, kp, kl in pairs]
    # the relative error bound of the forward chain so far: what an activation's input may carry
    eta = _ChainBound(_tm.unit_roundoff(precision), {twins[module]: c for module, c, _ in reversed(costs)})
    sites = []
    with _magnitude_mode(wide, stats, acts, eta, branches, sites):
        m = _torch_run(wide, tuple(np.abs(x) if x.dtype.kind == "f" else x for x in xs64), [np.abs(r) for r in R],
                       wide_pairs, grads, torch.float64, sites=sites, chain=eta)
    flip_grads, flip_layer_grads = m.get("flip_grads", {}), m.get("flip_layer_grads", {})

    # operation counts: the forward chain through each layer, the backward chain after it
    cum, total, at = 0, 0, {}
    for module, c, _ in costs:
        cum += c
        at.setdefault(id(module), cum)
    total = cum
    # a gradient's chain is the forward (2 * total counts it twice, once for the backward) plus
    # the derivative arithmetic of every activation the backward passes through
    extra_back = _DERIVATIVE_OPS * sum(type(module).__name__ in _SLOPE for module, _, _ in costs)
    n_layer = {p: at.get(id(tm), total) for p, tm, _, _ in pairs}
    red = {}
    for module, _, out in costs:
        if torch.is_tensor(out) and out.dim() > 0:
            positions = out.numel() // max(1, out.shape[_feature_axis(module)])
            for name, _ in module.named_parameters(recurse=False):
                red.setdefault(id(module), positions)
    mod_of = {}
    for mname, module in torch_model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            mod_of[f"{mname}.{pname}" if mname else pname] = module

    def tol(name, value_t, mag, n, flip=None):
        if rtol is not None or atol is not None:
            return (atol or 0.0) + (rtol or 0.0) * np.abs(value_t)
        bound = _tm.pair_tolerance(max(n, 1), precision, precision, _tm.magnitude(value_t, mag))
        if flip is not None and np.shape(flip) == np.shape(value_t):
            bound = bound + np.abs(flip)  # a relu or max-pool branch that rounding may decide either way
        # a magnitude that is NaN (NaN or Inf inputs) bounds nothing: such an element must agree exactly
        return np.nan_to_num(bound, nan=0.0, posinf=np.inf)

    def row(name, kind, actual, expected, mag, n, flip=None):
        expected = np.asarray(expected, dtype=np.float64)
        actual = np.asarray(actual, dtype=np.float64)
        if actual.shape != expected.shape:
            c = _compare_arrays(actual, expected, 0.0)
            return TensorRow(name, kind, tuple(expected.shape), c.max_abs_err, c.max_rel_err, c.max_ulp, 0.0,
                             math.inf, False, n, f"Keras shape {actual.shape} != torch shape {expected.shape}")
        c = _compare_arrays(actual, expected, tol(name, expected, mag, n, flip), ulp_dtype=precision)
        return TensorRow(name, kind, tuple(expected.shape), c.max_abs_err, c.max_rel_err, c.max_ulp, c.tolerance,
                         c.ratio, c.passed, 0 if (rtol is not None or atol is not None) else n, c.problem)

    rows = []
    for i, (to, ko, mo) in enumerate(zip(t["outputs"], k["outputs"], m["outputs"])):
        name = "output" if len(t["outputs"]) == 1 else f"output{i}"
        rows.append(row(name, "forward", _to_torch_layout(ko, channels_last, to.shape), to, mo, total))
    if len(k["outputs"]) != len(t["outputs"]):
        rows.append(TensorRow("outputs", "forward", (), math.inf, math.inf, math.inf, 0.0, math.inf, False, 0,
                              f"torch returns {len(t['outputs'])} tensors, Keras {len(k['outputs'])}"))
    if grads:
        for name, gt in t["grads"].items():
            n = 2 * total + extra_back
            module = mod_of.get(name.removeprefix("grad:"))
            if module is not None:
                n += red.get(id(module), 1)  # the gradient of a parameter sums over the positions it acts at
            gk = k["grads"].get(name)
            if gk is None:
                rows.append(TensorRow(name, "grad", tuple(gt.shape), math.inf, math.inf, math.inf, 0.0, math.inf,
                                      False, n, "no Keras gradient"))
                continue
            gk = _to_torch_layout(gk, channels_last, gt.shape) if name.startswith("grad:input") else gk
            rows.append(row(name, "grad", gk, gt, m["grads"][name], n, flip_grads.get(name)))

    # -- localisation, 1: each paired Keras layer on the torch layer's own input (and, backward,
    # with the torch layer's own output gradient): a one-layer chain, a local magnitude, a tight bound
    order = t["order"]
    by_path = {p: (tm, kp, kl) for p, tm, kp, kl in pairs}
    link_of = {l.path: l for l in links}
    local = _local_checks(order, by_path, link_of, t, twins, wide, stats, channels_last, grads, row)

    def keras_in(path, ki, ti):
        if ki is None or ti is None:
            return None
        link = link_of.get(path)
        ki = _to_torch_layout(ki, channels_last, ti.shape)
        if link is not None and link.rows is not None and ki.ndim == 2 and ki.shape == ti.shape:
            unpermuted = np.empty_like(ki)
            unpermuted[:, link.rows] = ki  # Keras column r holds torch feature rows[r]
            ki = unpermuted
        return ki

    # -- localisation, 2: the recorded inputs (forward) and output gradients (backward) of the
    # paired layers along the whole run, with the chain so far in n: a wrong step between two
    # paired layers (a functional call in forward / call, a reshape) shows up here
    cost_of = {id(mod): c for mod, c, _ in costs}
    chain = {}
    for path in order:
        ti, _ = t["layers"][path]
        ki = k["layers"].get(path, (None, None))[0]
        mi = m["layers"].get(path, (None, None))[0]
        tm, kp, kl = by_path[path]
        if ti is not None and ki is not None and mi is not None and ti.dtype.kind == "f":
            n_in = max(1, n_layer[path] - cost_of.get(id(tm), 0))
            chain[("forward", path)] = row(f"{path or '<root>'}:in (run)", "forward", keras_in(path, ki, ti), ti, mi,
                                           n_in)
        to, ko, mo = t["layers"][path][1], k["layers"].get(path, (None, None))[1], m["layers"].get(path, (None, None))[1]
        if ko is not None and mo is not None and to.dtype.kind == "f":
            chain[("forward-out", path)] = row(f"{path or '<root>'}:out (run)", "forward",
                                               _to_torch_layout(ko, channels_last, to.shape), to, mo, n_layer[path])
        gt = t["layer_grads"].get(("out", path))
        gk = k["layer_grads"].get(("out", path))
        gm = m["layer_grads"].get(("out", path))
        if grads and gt is not None and gk is not None and gm is not None:
            chain[("backward", path)] = row(f"{path or '<root>'}:grad_out (run)", "grad",
                                            _to_torch_layout(gk, channels_last, gt.shape), gt, gm, 2 * total + extra_back,
                                            flip_layer_grads.get(("out", path)))

    def detail(r, what):
        return (f"{what} differs by {r.max_abs_err:.3g} at tolerance {r.tolerance:.3g} ({r.ratio:.3g}x)"
                f"{': ' + r.problem if r.problem else ''}")

    fwd = bwd = None
    prev = None
    for path in order:
        tm, kp, kl = by_path[path]
        c = chain.get(("forward", path))
        if c is not None and not c.passed:
            fwd = Divergence("forward", "between", path, type(tm).__name__, kp, _kname(kl), prev,
                             detail(c, "its input (from the run)"))
            break
        r = local.get(("forward", path))
        if r is not None and not r.passed:
            fwd = Divergence("forward", "layer", path, type(tm).__name__, kp, _kname(kl), prev,
                             detail(r, "on the same input, its output"))
            break
        c = chain.get(("forward-out", path))
        if c is not None and not c.passed and (r is None or r.passed):
            fwd = Divergence("forward", "layer", path, type(tm).__name__, kp, _kname(kl), prev,
                             detail(c, "in the run its output") + "; called alone with training=False on the same "
                             "input it agrees: the model calls it differently (training=True? other arguments?)")
            break
        prev = path
    if fwd is None and any(not r.passed for r in rows if r.kind == "forward"):
        bad = next(r for r in rows if r.kind == "forward" and not r.passed)
        fwd = Divergence("forward", "after", "<output>", "", "", "", prev, detail(bad, bad.name))
    prev = None
    for path in reversed(order):
        tm, kp, kl = by_path[path]
        c = chain.get(("backward", path))
        # after a forward divergence the run's gradients differ downstream of it anyway: only the
        # local checks (same input, same output gradient) say something new
        if c is not None and not c.passed and fwd is None:
            bwd = Divergence("backward", "between", path, type(tm).__name__, kp, _kname(kl), prev,
                             detail(c, "the gradient of its output (from the run)"))
            break
        bad = [r for key, r in local.items() if key[0] == "backward" and key[1] == path and not r.passed]
        if bad:
            r = max(bad, key=lambda r: r.ratio)
            bwd = Divergence("backward", "layer", path, type(tm).__name__, kp, _kname(kl), prev,
                             detail(r, f"with the same output gradient, {r.name.split(' ')[-1]}"))
            break
        prev = path
    if grads and bwd is None and any(not r.passed for r in rows if r.kind == "grad"):
        bad = next(r for r in rows if r.kind == "grad" and not r.passed)
        bwd = Divergence("backward", "after" if fwd is None else "forward", "<input>", "", "", "", prev,
                         detail(bad, bad.name))

    local = {**local, **{(d, p, "run"): r for (d, p), r in chain.items()}}

    layer_rows = tuple(local.values())
    passed = all(r.passed for r in rows) and all(r.passed for r in layer_rows)
    how = (f"explicit rtol={rtol}, atol={atol} (the tolerance model is not used)"
           if rtol is not None or atol is not None else f"tolerance model, {precision}")
    return ModelComparison(passed, tuple(rows), None if passed else fwd, None if passed else bwd, how, report,
                           layer_rows)


def _backward_cost(module, inputs, output) -> int:
    """The dependent roundings in one layer's backward to its input: the fan-out of a
    Linear / Conv (the sum over the outputs each input feeds), else the forward count."""
    nn = _torch().nn
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return module.out_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
        k = module.kernel_size
        return math.prod(k) if isinstance(k, tuple) else k ** (inputs[0].dim() - 2)  # overlapping windows add up
    if type(module).__name__ in _SLOPE:
        return _cost(module, inputs, output) + _DERIVATIVE_OPS
    return max(1, _cost(module, inputs, output))


#: an activation's backward: f'(x) (or from y = f(x)) takes its elementary function and up to
#: this many more roundings (tanh: y * y, 1 - y^2, times the gradient)
_DERIVATIVE_OPS = 3


def _param_grad_cost(module, positions: int, n_forward: int, n_backward: int) -> int:
    """The dependent roundings behind a parameter's gradient in one layer checked alone.

    The gradient sums, over the ``positions`` the parameter acts at, a product of the output
    gradient with values inside the layer. For a Linear / convolution those values are the
    layer's input itself (exact here): ``positions + 1``. Elsewhere they are computed by the
    layer (BatchNorm's and LayerNorm's ``xhat``, an RNN's gates and states over every step) and
    the output gradient reaches them through the layer's own backward, so both chains add:
    ``positions + 1 + n_forward + n_backward``."""
    nn = _torch().nn
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return positions + 1
    return positions + 1 + n_forward + n_backward


def _local_checks(order, by_path, link_of, t, twins, wide, stats, channels_last, grads, row):
    """Run every paired Keras layer on the torch layer's recorded input (and backward with its
    recorded output gradient); compare with the torch layer. Keys: ("forward" | "backward", path)."""
    torch = _torch()
    tf = _tf()
    out = {}
    for path in order:
        tm, kp, kl = by_path[path]
        ti, to = t["layers"][path]
        if ti is None:
            continue
        link = link_of.get(path)
        kin = _to_keras_layout(ti, channels_last) if ti.dtype.kind == "f" else ti
        if link is not None and link.rows is not None and kin.ndim == 2:
            kin = kin[:, link.rows]  # the Keras Dense reads torch's features in Keras's flatten order
        name = path or "<root>"
        slots = link.slots() if link is not None else []
        x_k = tf.constant(kin)
        try:
            with tf.GradientTape(persistent=True) as tape:
                if x_k.dtype.is_floating:
                    tape.watch(x_k)
                y_k = _first(kl(x_k, training=False))
        except Exception as exc:
            out[("forward", path)] = TensorRow(f"{name} (layer)", "forward", tuple(to.shape), math.inf, math.inf,
                                               math.inf, 0.0, math.inf, False, 0,
                                               f"Keras {_kname(kl)} fails on the torch layer's input: "
                                               f"{type(exc).__name__}: {exc}")
            continue
        x_t = torch.from_numpy(np.ascontiguousarray(ti))
        x_w = torch.from_numpy(np.abs(ti).astype(np.float64) if ti.dtype.kind == "f" else ti)
        if x_t.is_floating_point() and grads:
            x_t.requires_grad_()
            x_w.requires_grad_()
        w = twins[tm]
        with torch.set_grad_enabled(grads):
            y_t = _first(tm(x_t))
            with _magnitude_mode(wide, stats):
                y_w = _first(w(x_w))
        n_f = _cost(tm, (x_t,), y_t)
        y_k_np = _to_torch_layout(to_numpy(y_k), channels_last, tuple(y_t.shape))
        out[("forward", path)] = row(f"{name} (layer)", "forward", y_k_np, to_numpy(y_t), to_numpy(y_w), n_f)
        go = t["layer_grads"].get(("out", path))
        if not grads or go is None or not y_t.requires_grad:
            del tape
            continue
        g_t = torch.from_numpy(go)
        params = [p for p in tm.parameters(recurse=False)]
        targets_t = ([x_t] if x_t.requires_grad else []) + params
        gt = torch.autograd.grad(y_t, targets_t, g_t, allow_unused=True)
        targets_w = ([x_w] if x_w.requires_grad else []) + list(w.parameters(recurse=False))
        # TensorFlow's CPU kernels read subnormal inputs as 0 (denormals-are-zero): where the output
        # gradient is subnormal, Keras's gradients may lack its whole contribution, which the magnitude
        # run bounds when fed |g| there and 0 elsewhere (docs/tolerances.md §2, Underflow)
        subnormal = (go != 0) & (np.abs(go) < np.finfo(go.dtype).tiny) if go.dtype.kind == "f" else np.zeros(())
        gw = torch.autograd.grad(y_w, targets_w, g_t.abs().double(), allow_unused=True,
                                 retain_graph=bool(subnormal.any()))
        gz = (torch.autograd.grad(y_w, targets_w, torch.from_numpy(np.where(subnormal, np.abs(go), 0.0)),
                                  allow_unused=True) if subnormal.any() else [None] * len(targets_w))
        gz = [None if g is None else to_numpy(g) for g in gz]
        g_k_out = tf.constant(_to_keras_layout(go, channels_last), dtype=y_k.dtype)
        kvars = [s.var for s in slots]
        try:
            gk = tape.gradient(y_k, ([x_k] if x_k.dtype.is_floating else []) + kvars, output_gradients=g_k_out)
        except Exception as exc:
            out[("backward", path)] = TensorRow(f"{name} (layer) grad", "grad", tuple(ti.shape), math.inf, math.inf,
                                                math.inf, 0.0, math.inf, False, 0,
                                                f"Keras {_kname(kl)}'s gradient fails with the torch layer's "
                                                f"output gradient: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        finally:
            del tape
        positions = y_t.numel() // max(1, y_t.shape[_feature_axis(tm)]) if y_t.dim() else 1
        n_b = _backward_cost(tm, (x_t,), y_t)
        n_p = _param_grad_cost(tm, positions, n_f, n_b)
        if x_t.requires_grad:
            gx_k = to_numpy(gk[0]) if gk[0] is not None else np.zeros(kin.shape, kin.dtype)
            if link is not None and link.rows is not None and gx_k.ndim == 2:
                unpermuted = np.empty_like(gx_k)
                unpermuted[:, link.rows] = gx_k
                gx_k = unpermuted
            gx_k = _to_torch_layout(gx_k, channels_last, ti.shape)
            out[("backward", path)] = row(f"{name} (layer) grad:in", "grad", gx_k,
                                          np.zeros(ti.shape) if gt[0] is None else to_numpy(gt[0]),
                                          np.zeros(ti.shape) if gw[0] is None else to_numpy(gw[0]), n_b, gz[0])
            gk, gt, gw, gz = gk[1:], gt[1:], gw[1:], gz[1:]
        tparams = dict(zip([id(p) for p in params], zip(gt, gw)))
        flushed = dict(zip([id(p) for p in params], gz))
        pname = {id(p): n for n, p in tm.named_parameters(recurse=False)}
        for slot, g in zip(slots, gk):
            if slot.buffer:
                continue
            parts = slot.to_torch(to_numpy(tf.convert_to_tensor(g)), True) if g is not None else [None] * len(
                slot.torch_tensors)
            for tensor, part in zip(slot.torch_tensors, parts):
                tg, mg = tparams.get(id(tensor), (None, None))
                shape = tuple(tensor.shape)
                tg = np.zeros(shape) if tg is None else to_numpy(tg)
                mg = np.zeros(shape) if mg is None else to_numpy(mg)
                part = np.zeros(shape) if part is None else part
                out[("backward", path, pname.get(id(tensor)))] = row(
                    f"{name} (layer) grad:{pname.get(id(tensor))}", "grad", part, tg, mg, n_p, flushed.get(id(tensor)))
    # the backward keys carry a parameter name: fold them under (direction, path)
    folded = {}
    for key, r in out.items():
        folded[key if len(key) == 2 else (key[0], key[1], key[2])] = r
    return folded


def assert_equivalent(torch_model, keras_model, inputs, **kwargs) -> ModelComparison:
    """:func:`compare`, raising :class:`EquivalenceError` (an ``AssertionError``) with the
    table and the first divergence when a tensor differs beyond its tolerance."""
    result = compare(torch_model, keras_model, inputs, **kwargs)
    if not result.passed:
        raise EquivalenceError(result)
    return result
