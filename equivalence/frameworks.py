"""One place that imports and configures the two frameworks.

Both frameworks are imported lazily (``equivalence list`` needs neither) and
configured once per process: quiet TensorFlow logging, the Keras backend pinned
to TensorFlow, deterministic kernels, and strict float32 (no TF32).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = ("float32", "float64")


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


@functools.cache
def torch():
    import torch as _torch

    _torch.use_deterministic_algorithms(True)
    _torch.backends.cudnn.benchmark = False
    _torch.backends.cuda.matmul.allow_tf32 = False
    _torch.backends.cudnn.allow_tf32 = False
    return _torch


@functools.cache
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # torch first: both bundle an OpenMP runtime and this order is the one tested.
    torch()
    import tensorflow as _tf

    _tf.config.experimental.enable_op_determinism()
    _tf.config.experimental.enable_tensor_float_32_execution(False)
    return _tf


@functools.cache
def keras():
    tf()
    import keras as _keras

    if _keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"Keras is configured for the {_keras.backend.backend()!r} backend; "
            "this project compares against TensorFlow: set KERAS_BACKEND=tensorflow"
        )
    return _keras


def set_tf32(allowed: bool) -> None:
    """Strict float32 (False, the default here) or each framework's own default TF32 use (True).

    torch's defaults: matmul TF32 off, cuDNN convolutions TF32 on; TensorFlow's: TF32 on.
    """
    t = torch()
    t.backends.cuda.matmul.allow_tf32 = False
    t.backends.cudnn.allow_tf32 = allowed
    tf().config.experimental.enable_tensor_float_32_execution(allowed)


def settings() -> dict[str, object]:
    """The numerical settings in force, for reports."""
    t, f = torch(), tf()
    return {
        "torch_matmul_allow_tf32": bool(t.backends.cuda.matmul.allow_tf32),
        "torch_cudnn_allow_tf32": bool(t.backends.cudnn.allow_tf32),
        "tf_tensor_float_32_execution": bool(f.config.experimental.tensor_float_32_execution_enabled()),
        "torch_deterministic_algorithms": bool(t.are_deterministic_algorithms_enabled()),
        "torch_cudnn_benchmark": bool(t.backends.cudnn.benchmark),
        "tf_op_determinism": _tf_determinism(),
    }


def _tf_determinism() -> bool:
    try:
        return bool(tf().config.experimental.is_op_determinism_enabled())
    except AttributeError:  # older TensorFlow: enabled by tf() itself
        return True


def versions() -> dict[str, str]:
    import platform

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch().__version__,
        "tensorflow": tf().__version__,
        "keras": keras().__version__,
    }


@dataclass(frozen=True)
class Context:
    """What a case builder needs to know: the dtype and each framework's device."""

    dtype: str = "float32"
    torch_device: str = "cpu"  # "cpu" or "cuda"
    tf_device: str = "cpu"  # "cpu" or "gpu"
    allow_tf32: bool = False  # keep the frameworks' default TF32 use on GPUs

    def precision(self, side: str) -> str:
        """The precision the tolerance model charges a side with: TF32 where it may be used."""
        on_gpu = (self.torch_device if side == "torch" else self.tf_device) != "cpu"
        return "tf32" if self.allow_tf32 and on_gpu and self.dtype == "float32" else self.dtype

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def torch_dtype(self):
        return getattr(torch(), self.dtype)

    @property
    def tf_dtype(self):
        return getattr(tf(), self.dtype)

    # -- conversions: NumPy arrays in, framework tensors out ------------------
    def t(self, array: Any, requires_grad: bool = False):
        """A torch tensor of this context's dtype (floats only) on its device."""
        a = np.asarray(array)
        x = torch().as_tensor(a, device=self.torch_device)
        if a.dtype.kind == "f":
            x = x.to(self.torch_dtype)
        if requires_grad:
            x.requires_grad_(True)
        return x

    def tf_const(self, array: Any):
        a = np.asarray(array)
        with tf().device(self.tf_device_name):
            if a.dtype.kind == "f":
                return tf().constant(a, dtype=self.tf_dtype)
            return tf().constant(a)

    def tf_var(self, array: Any, name: str | None = None):
        with tf().device(self.tf_device_name):
            return tf().Variable(self.tf_const(array), name=name)

    @property
    def tf_device_name(self) -> str:
        return "/GPU:0" if self.tf_device == "gpu" else "/CPU:0"


def to_numpy(x: Any) -> np.ndarray:
    """Any tensor, variable, number or array as a NumPy array (a copy for tensors)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):  # tf.Tensor / tf.Variable
        return np.asarray(x.numpy())
    return np.asarray(x)


def resolve_device(framework: str, wanted: str) -> str:
    """Map 'cpu' | 'gpu' | 'auto' to the device a framework will use."""
    if wanted not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be 'cpu', 'gpu' or 'auto', not {wanted!r}")
    if wanted == "cpu":
        return "cpu"
    if framework == "torch":
        has_gpu = torch().cuda.is_available()
        gpu_name = "cuda"
        label = "torch"
    elif framework == "tf":
        has_gpu = bool(tf().config.list_physical_devices("GPU"))
        gpu_name = "gpu"
        label = "TensorFlow"
    else:
        raise ValueError(f"unknown framework {framework!r}")
    if has_gpu:
        return gpu_name
    if wanted == "gpu":
        raise DeviceError(f"a GPU was asked for {label}, but {label} sees none on this machine")
    return "cpu"
