"""Torch Linear <-> Keras Dense weights, the minimum the ladder needs (private).

nn.Linear stores weight (out, in) and computes x W^T + b; Dense stores kernel
(in, out) and computes x K + b, so K = W^T and the bias is the same vector.
Parameters travel by their torch ``state_dict`` names ("0.weight",
"linear1.bias", ...) and in torch's layout; ``layers`` maps a torch module name
to the Dense that plays it. The project's general adapter will replace this.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _slots(layers):
    """(torch name, Keras variable, transposed?) for every parameter, in torch's order."""
    for name, dense in layers.items():
        yield f"{name}.weight", dense.kernel, True
        if dense.use_bias:
            yield f"{name}.bias", dense.bias, False


def load(layers, params):
    """Assign torch-layout ``params`` (name -> array) to the Dense layers; every parameter must be given."""
    slots = list(_slots(layers))
    missing = sorted({n for n, _, _ in slots} - set(params))
    extra = sorted(set(params) - {n for n, _, _ in slots})
    if missing or extra:
        raise KeyError(f"parameters do not match the layers: missing {missing}, unexpected {extra}")
    for name, var, transposed in slots:
        value = np.asarray(params[name])
        value = value.T if transposed else value
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{name}: shape {np.shape(params[name])} does not fit {var.path} of shape {tuple(var.shape)}"
                             f"{' (transposed)' if transposed else ''}")
        var.assign(value)


def variables(layers):
    """torch name -> (Keras variable, transposed?)."""
    return {name: (var, transposed) for name, var, transposed in _slots(layers)}


def to_torch(value, transposed):
    return tf.transpose(value) if transposed else value


def to_keras(value, transposed):
    value = np.asarray(value)
    return value.T if transposed else value


def named_parameters(layers):
    """torch name -> the parameter in torch's layout."""
    return {name: to_torch(tf.convert_to_tensor(var), t) for name, var, t in _slots(layers)}


def named_gradients(layers, grads):
    """torch name -> gradient in torch's layout; ``grads`` maps a Keras variable's path to its gradient."""
    return {name: to_torch(grads[var.path], t) for name, var, t in _slots(layers) if grads.get(var.path) is not None}
