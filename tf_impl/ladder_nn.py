"""The two-layer network with Keras (seed 003, "PyTorch: nn").

``keras.Sequential([Dense, ReLU, Dense])`` with a sum-reduced squared error and
the manual update ``param.assign_sub(learning_rate * grad)``. Two things differ
from a literal translation: Keras's ``MeanSquaredError(reduction="sum")`` sums
per-sample *means* (torch's value / D_out), so ``SumSquaredError`` sums every
element as ``MSELoss(reduction="sum")`` does; and every layer takes the run's
dtype (a Keras layer casts its input to its own dtype, float32 by default).
Run ``python -m tf_impl.ladder_nn``.
"""

import keras
import numpy as np
import tensorflow as tf

from . import _weights
from .ladder_numpy import D_in, D_out, H, tutorial_data, two_layer_params

dtype = "float32"


def torch_init(fan_in):
    """nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for kernel and bias alike."""
    bound = 1.0 / np.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def build_model(params=None, dtype=dtype):
    """keras.Sequential([Dense(H), ReLU(), Dense(D_out)]); weights from torch-named ``params`` if given."""
    model = keras.Sequential([
        keras.Input((D_in,), dtype=dtype),
        keras.layers.Dense(H, kernel_initializer=torch_init(D_in), bias_initializer=torch_init(D_in), dtype=dtype),
        keras.layers.ReLU(dtype=dtype),
        keras.layers.Dense(D_out, kernel_initializer=torch_init(H), bias_initializer=torch_init(H), dtype=dtype),
    ])
    if params is not None:
        _weights.load(torch_layers(model), params)
    return model


def torch_layers(model):
    """torch's module names for the Dense layers: Sequential numbers its children 0, 1, 2."""
    return {str(i): layer for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Dense)}


class SumSquaredError(keras.losses.Loss):
    """MSELoss(reduction="sum"): the squared error summed over every element.

    Keras's ``MeanSquaredError(reduction="sum")`` is not it: it averages over the
    last axis first, giving torch's value divided by D_out.
    """

    def __init__(self, name="sum_squared_error", dtype=None):
        super().__init__(name=name, reduction="sum", dtype=dtype)

    def call(self, y_true, y_pred):
        return tf.reduce_sum(tf.square(y_pred - y_true), axis=-1)


def named_parameters(model):
    return _weights.named_parameters(torch_layers(model))


def step(model, x, y, learning_rate=1e-4):
    """One pass of the loop: the loss, every parameter's gradient, and the parameters after the update."""
    loss_fn = SumSquaredError(dtype=x.dtype)
    with tf.GradientTape() as tape:
        y_pred = model(x)
        loss = loss_fn(y, y_pred)
    grads = tape.gradient(loss, model.trainable_variables)
    for param, grad in zip(model.trainable_variables, grads):
        param.assign_sub(learning_rate * grad)
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    return {"loss": loss, "grad": _weights.named_gradients(torch_layers(model), by_path),
            "params": named_parameters(model)}


def train(model, x, y, learning_rate=1e-4, steps=500, log=None):
    """The tutorial's loop (updates ``model`` in place); ``log(t, loss)`` at t % 100 == 99."""
    loss_fn = SumSquaredError(dtype=x.dtype)  # Mean Squared Error, summed over every element

    @tf.function  # the loop body as one graph: the same operations, without eager dispatch
    def train_step():
        with tf.GradientTape() as tape:
            y_pred = model(x)
            loss = loss_fn(y, y_pred)

        # the tape's gradients are fresh each step: nothing to zero
        grads = tape.gradient(loss, model.trainable_variables)

        for param, grad in zip(model.trainable_variables, grads):
            param.assign_sub(learning_rate * grad)
        return loss

    losses = []
    for t in range(steps):
        loss = train_step()
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "params": named_parameters(model)}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    # nn.Linear's initialisation, drawn in NumPy: the torch module starts from the same weights
    model = build_model(two_layer_params(rng))
    train(model, tf.constant(x, dtype=dtype), tf.constant(y, dtype=dtype), log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
