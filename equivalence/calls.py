"""One ``torch.nn.functional`` call as data, run in torch and in ``tf_impl.functional``, with its tolerance model.

A :class:`Call` is an op name and its arguments exactly as torch takes them
(tensors as float64 NumPy arrays, the rest as Python values), plus how many of
them go positionally. The same call replays against both modules::

    call = Call("conv2d", {"input": x, "weight": w, "stride": 2, "padding": "same"})
    y_torch = call.apply(torch.nn.functional, torch.as_tensor)
    y_tf = call.apply(tf_impl.functional, tf.constant)

:func:`as_case` turns a call into a :class:`~equivalence.case.Case`: the output,
the indices of a max-pool, and the gradients of ``sum(out * cotangent)`` with
respect to every floating tensor argument, each with the operation count ``n``
and the elementwise magnitude that ``docs/tolerances.md`` asks for.
``equivalence/cases/functional.py`` registers a grid of them and
``tests/test_functional_properties.py`` builds them from hypothesis draws.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .case import Case, Q
from .frameworks import tf, torch

#: torch.nn.functional's parameter order (the TF port has the same; tests/test_functional_errors.py checks both)
SIGNATURES: dict[str, tuple[str, ...]] = {
    "conv1d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool1d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool1d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "linear": ("input", "weight", "bias"),
    "relu": ("input", "inplace"),
    "mse_loss": ("input", "target", "size_average", "reduce", "reduction", "weight"),
}
#: the tensor parameters of each op
TENSORS: dict[str, tuple[str, ...]] = {
    op: tuple(p for p in params if p in ("input", "weight", "bias", "target")) for op, params in SIGNATURES.items()
}
#: tensors the cases differentiate with respect to (mse_loss's weight is a constant)
NOT_DIFFERENTIATED = {("mse_loss", "weight")}


@dataclass(frozen=True)
class Call:
    """``op(*args[:positional], **rest)`` with torch's argument names; tensors as NumPy arrays."""

    op: str
    args: Mapping[str, Any]
    positional: int = 1
    tensor_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self):
        if self.op not in SIGNATURES:
            raise ValueError(f"unknown op {self.op!r}; known: {sorted(SIGNATURES)}")
        params = SIGNATURES[self.op]
        unknown = sorted(set(self.args) - set(params))
        if unknown:
            raise ValueError(f"{self.op} has no parameter(s) {unknown}; its signature is {params}")
        present = 0
        while present < len(params) and params[present] in self.args:
            present += 1
        if not 0 <= self.positional <= present:
            raise ValueError(f"{self.op}: {self.positional} positional arguments, but only the first {present} "
                             f"parameters {params[:present]} are given")
        names = tuple(k for k in TENSORS[self.op] if self.args.get(k) is not None)
        object.__setattr__(self, "tensor_names", names)

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(self.args[k]) for k in self.tensor_names}

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.args.items() if k not in self.tensor_names}

    @property
    def differentiated(self) -> tuple[str, ...]:
        return tuple(k for k in self.tensor_names if (self.op, k) not in NOT_DIFFERENTIATED)

    def apply(self, module: ModuleType, convert: Callable[[np.ndarray], Any] | None = None,
              tensors: Mapping[str, Any] | None = None):
        """Call ``module.<op>`` with these arguments; tensors from ``tensors`` or ``convert(array)``."""
        given = dict(tensors) if tensors is not None else {k: convert(v) for k, v in self.tensors.items()}
        values = {k: given.get(k, v) if k in self.tensor_names else v for k, v in self.args.items()}
        params = SIGNATURES[self.op]
        args = [values.pop(p) for p in params[: self.positional]]
        with warnings.catch_warnings():
            # torch notes that 'same' padding with an even kernel copies the input: a performance
            # remark about a call the case makes on purpose, printed by every `equivalence` command
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)
            return getattr(module, self.op)(*args, **values)

    def __repr__(self) -> str:
        def show(k, v):
            return f"{k}{tuple(np.shape(v))}" if k in self.tensor_names else f"{k}={v!r}"

        params = SIGNATURES[self.op]
        items = [show(p, self.args[p]) for p in params if p in self.args]
        return f"{self.op}({', '.join(items)}; {self.positional} positional)"


# -- running a call in each framework, with the gradient of sum(out * cotangent) ------------------------

def _split(out):
    return out if isinstance(out, tuple) else (out, None)


def run_torch(call: Call, a: Mapping[str, np.ndarray], ctx, module: ModuleType | None = None) -> dict:
    """Output, indices and gradients from torch (``torch.nn.functional`` unless ``module`` is given)."""
    module = module or torch().nn.functional
    tensors = {k: ctx.t(a[k], requires_grad=k in call.differentiated) for k in call.tensor_names}
    out, indices = _split(call.apply(module, tensors=tensors))
    wrt = list(call.differentiated)
    grads = torch().autograd.grad(out, [tensors[k] for k in wrt], grad_outputs=ctx.t(a["cotangent"]))
    result = {"out": out, **{f"grad:{k}": g for k, g in zip(wrt, grads)}}
    if indices is not None:
        result["indices"] = indices
    return result


def run_tf(call: Call, a: Mapping[str, np.ndarray], ctx, module: ModuleType | None = None) -> dict:
    """Output, indices and gradients from ``tf_impl.functional`` (or ``module``) under a GradientTape."""
    if module is None:
        from tf_impl import functional as module
    tensors = {k: ctx.tf_const(a[k]) for k in call.tensor_names}
    wrt = list(call.differentiated)
    with tf().GradientTape() as tape:
        for k in wrt:
            tape.watch(tensors[k])
        out, indices = _split(call.apply(module, tensors=tensors))
    grads = tape.gradient(out, [tensors[k] for k in wrt], output_gradients=ctx.tf_const(a["cotangent"]))
    missing = [k for k, g in zip(wrt, grads) if g is None]
    if missing:
        raise ValueError(f"{call}: the TF port gives no gradient for {missing} (disconnected)")
    result = {"out": out, **{f"grad:{k}": g for k, g in zip(wrt, grads)}}
    if indices is not None:
        result["indices"] = indices
    return result


def output_shape(call: Call) -> tuple[int, ...]:
    """The shape of torch's output (the values, for a max-pool with indices), from the meta device."""
    meta = {k: torch().empty(v.shape, dtype=torch().float64, device="meta") for k, v in call.tensors.items()}
    out, _ = _split(call.apply(torch().nn.functional, tensors=meta))
    return tuple(out.shape)


# -- the tolerance model of each op ----------------------------------------------------------------------

def _pair(v, n):
    return (v,) * n if isinstance(v, int) else (tuple(v) * n if len(v) == 1 else tuple(v))


def _coverage(size, out, k, s, p, d) -> int:
    """The most windows that contain one input position along one axis."""
    pos = (np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d).ravel()
    pos = pos[(pos >= 0) & (pos < size)]
    return int(np.bincount(pos, minlength=size).max()) if pos.size else 0


def _pool_coverage(call: Call, out_shape) -> int:
    nd = 2 if call.op.endswith("2d") else 1
    o = call.args
    k = _pair(o["kernel_size"], nd)
    stride = o.get("stride")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride, nd)
    p, d = _pair(o.get("padding", 0), nd), _pair(o.get("dilation", 1), nd)
    size = call.tensors["input"].shape[-nd:]
    return math.prod(_coverage(*args) for args in zip(size, out_shape[-nd:], k, s, p, d))


def _abs_run(call: Call, inputs64, abs_tensors: bool) -> dict[str, np.ndarray]:
    """torch float64 on |tensors| (or the tensors themselves) and |cotangent|: Higham's sum |x_i||y_i| terms."""
    from .frameworks import Context

    a = {k: (np.abs(v) if abs_tensors and k in call.tensor_names else v) for k, v in inputs64.items()}
    a["cotangent"] = np.abs(inputs64["cotangent"])
    out = run_torch(call, a, Context(dtype="float64"))
    return {k: v.detach().numpy() for k, v in out.items()}


def _abs_runner(call: Call, abs_tensors: bool):
    """_abs_run, computed once per set of inputs (the quantities of one run share it)."""
    last: dict = {}

    def run(inputs64):
        if last.get("inputs") is not inputs64:
            last["inputs"], last["values"] = inputs64, _abs_run(call, inputs64, abs_tensors)
        return last["values"]

    return run


def quantities(call: Call) -> tuple[Q, ...]:
    """The compared quantities of a call, each with its operation count n and, where values cancel, magnitude."""
    op, o = call.op, call.args
    x = call.tensors["input"]
    out_shape = output_shape(call)
    wrt = call.differentiated
    if op in ("conv1d", "conv2d", "linear", "avg_pool1d", "avg_pool2d"):
        # linear in each argument: the same call on |x|, |w|, |b| with |cotangent| gives sum |x_i||y_i| everywhere
        magnitudes = _abs_runner(call, abs_tensors=True)

        def mag(name):
            return lambda inputs64, ref: magnitudes(inputs64)[name]
    else:
        mag = None
    qs = []
    if op in ("conv1d", "conv2d"):
        w = call.tensors["weight"]
        groups = o.get("groups", 1)
        taps = math.prod(w.shape[2:])
        batch = x.shape[0] if x.ndim == w.ndim else 1
        # out: a dot product over the C_in/groups * kernel window, plus the bias
        qs.append(Q("out", "forward", n=w.shape[1] * taps + ("bias" in wrt), magnitude=mag("out")))
        # grad:input: each input element gathers C_out/groups * kernel terms
        qs.append(Q("grad:input", "grad", n=w.shape[0] // groups * taps, magnitude=mag("grad:input")))
        # grad:weight and grad:bias: sums over the batch and every output position
        summed = batch * math.prod(out_shape[-(w.ndim - 2):])
        qs.append(Q("grad:weight", "param_grad", n=summed, magnitude=mag("grad:weight")))
        if "bias" in wrt:
            qs.append(Q("grad:bias", "param_grad", n=summed, magnitude=mag("grad:bias")))
    elif op == "linear":
        w = call.tensors["weight"]
        rows = math.prod(x.shape[:-1])
        out_features = w.shape[0] if w.ndim == 2 else 1  # a 1-D weight is a single output
        qs.append(Q("out", "forward", n=w.shape[-1] + ("bias" in wrt), magnitude=mag("out")))  # in_features, + bias
        qs.append(Q("grad:input", "grad", n=out_features, magnitude=mag("grad:input")))  # out_features terms
        qs.append(Q("grad:weight", "param_grad", n=rows, magnitude=mag("grad:weight")))  # a sum over the rows
        if "bias" in wrt:
            qs.append(Q("grad:bias", "param_grad", n=rows, magnitude=mag("grad:bias")))
    elif op in ("avg_pool1d", "avg_pool2d"):
        nd = 2 if op.endswith("2d") else 1
        kernel = math.prod(_pair(o["kernel_size"], nd))
        qs.append(Q("out", "forward", n=kernel + 1, magnitude=mag("out")))  # a window sum, then the division
        # each input element: c quotients g/divisor summed (c windows cover it): c-1 additions + 1 division
        qs.append(Q("grad:input", "grad", n=_pool_coverage(call, out_shape), magnitude=mag("grad:input")))
    elif op in ("max_pool1d", "max_pool2d"):
        qs.append(Q("out", "forward", n=0))  # a selection: exact
        if o.get("return_indices"):
            qs.append(Q("indices", "forward", n=0))
        # the cotangents of the c windows that pick an element are added: c-1 roundings (0: no overlap, exact)
        c = _pool_coverage(call, out_shape)
        at_x = _abs_runner(call, abs_tensors=False)  # the windows' choices at x itself, |cotangent| summed
        qs.append(Q("grad:input", "grad", n=max(c - 1, 0),
                    magnitude=lambda inputs64, ref: at_x(inputs64)["grad:input"]))
    elif op == "relu":
        qs.append(Q("out", "forward", n=0))  # max(x, 0): exact
        qs.append(Q("grad:input", "grad", n=0))  # cotangent or 0: exact
    elif op == "mse_loss":
        reduction = _mse_reduction(o)
        count = math.prod(np.broadcast_shapes(x.shape, call.tensors["target"].shape))
        weighted = "weight" in call.tensor_names
        # fl(fl(x - t)^2) = (x - t)^2 (1+d1)^2 (1+d2): the square doubles the subtraction's rounding, so 3;
        # the weight 1 more; then a sum of count terms; the mean's division 1 (or a weight sum of count)
        n_out = {"none": 3, "sum": 3 + count, "mean": 4 + count}[reduction]
        # torch: fl(2/count) * fl(x - t) * cotangent (the mean's 2/count rounded: 4; 2 is exact: 2)
        n_grad = {"none": 2, "sum": 2, "mean": 4}[reduction]
        if weighted:
            n_out += 1 + (count if reduction == "mean" else 0)
            n_grad += 1 + (count if reduction == "mean" else 0)
        qs.append(Q("out", "forward", n=n_out))
        for k in ("input", "target"):
            if k in wrt:
                qs.append(Q(f"grad:{k}", "grad", n=n_grad))
    return tuple(qs)


def _mse_reduction(o) -> str:
    if o.get("size_average") is not None or o.get("reduce") is not None:
        size_average = True if o.get("size_average") is None else o["size_average"]
        reduce = True if o.get("reduce") is None else o["reduce"]
        return ("mean" if size_average else "sum") if reduce else "none"
    return o.get("reduction", "mean")


# -- a call as a registered case -------------------------------------------------------------------------

def as_case(name: str, source: str, call: Call, *, cotangent: np.ndarray | None = None, doc: str = "",
            seed: int = 0, reference: Callable | str = "torch", torch_module: ModuleType | None = None,
            tf_module: ModuleType | None = None, **case_fields) -> Case:
    """The call as a Case: torch against the TF port, each against a float64 reference (torch by default).

    The cotangent (the upstream gradient) is drawn from the case's seed unless given.
    A NumPy ``reference(a)`` gets the arrays by parameter name plus ``cotangent``.
    """
    def inputs(rng):
        arrays = dict(call.tensors)
        arrays["cotangent"] = rng.standard_normal(output_shape(call)) if cotangent is None else cotangent
        return arrays

    def torch_side(a, ctx):
        if torch_module is None:
            from torch_impl import functional as module
        else:
            module = torch_module
        return run_torch(call, a, ctx, module)

    return Case(
        name=name, source=source, doc=doc or repr(call), inputs=inputs, torch=torch_side,
        tf=lambda a, ctx: run_tf(call, a, ctx, tf_module), reference=reference, quantities=quantities(call),
        seed=seed, **case_fields,
    )
