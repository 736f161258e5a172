"""The two implementations of the autograd tutorials behind one small adapter, for the tests.

``IMPLS`` are pytest params ("torch", "tf"); ``Impl.mod(name)`` is
``torch_impl.<name>`` or ``tf_impl.<name>``; ``Impl.tensor`` makes a tensor
of that framework; ``value`` turns any result into a float64 NumPy array.
"""

import importlib

import numpy as np
import pytest

from equivalence.frameworks import tf as _tf
from equivalence.frameworks import to_numpy
from equivalence.frameworks import torch as _torch

torch = _torch()  # torch first, then TensorFlow: the order equivalence.frameworks configures and tests
tf = _tf()


class Impl:
    def __init__(self, name: str):
        self.name = name
        self.package = {"torch": "torch_impl", "tf": "tf_impl"}[name]

    def mod(self, module: str):
        return importlib.import_module(f"{self.package}.{module}")

    def tensor(self, values, dtype: str = "float32"):
        a = np.asarray(values)
        if self.name == "torch":
            return torch.as_tensor(a.astype(dtype) if a.dtype.kind == "f" else a)
        return tf.constant(a.astype(dtype) if a.dtype.kind == "f" else a)

    def gradients(self, fn, *inputs):
        """fn(*inputs) (a scalar) and its gradients w.r.t. every input, straight from the framework."""
        if self.name == "torch":
            xs = [x.detach().requires_grad_() for x in inputs]
            out = fn(*xs)
            return out, torch.autograd.grad(out, xs)
        with tf.GradientTape() as tape:
            for x in inputs:
                tape.watch(x)
            out = fn(*inputs)
        return out, tape.gradient(out, list(inputs))

    def __repr__(self):
        return self.name


IMPLS = [pytest.param(Impl("torch"), id="torch"), pytest.param(Impl("tf"), id="tf")]


def value(x) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64)


def assert_printed(actual, printed, decimals: int = 4, what: str = ""):
    """``actual`` rounds to the value the seed printed with ``decimals`` decimals.

    A printed 0.3333 stands for any value within half a unit of its last digit.
    """
    actual, printed = value(actual), np.asarray(printed, dtype=np.float64)
    assert actual.shape == printed.shape, f"{what}: shape {actual.shape}, the seed printed {printed.shape}"
    half = 0.5 * 10.0**-decimals
    err = np.abs(actual - printed)
    assert np.all(err <= half * (1 + 1e-9)), f"{what}: {actual} does not print as {printed} ({decimals} decimals)"
