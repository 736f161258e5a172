"""Control flow + weight sharing: DynamicNet (seed 003, "Control Flow + Weight Sharing"), in Keras.

The Keras model runs eagerly, so Python control flow chooses how often the one
``middle_linear`` layer runs (0 to 3 times), as in torch; the tape sums the
shared layer's gradient over its uses. The draw comes from ``self.rng`` or is
given as ``depth``. Torch's SGD with momentum is ``TorchSGD``: Keras's own SGD
is the same algorithm (it keeps -lr * buf) but in float64 it rounds the
momentum to float32 (see tf_impl.ladder_optim). The optimizer is built over
every variable up front: a pass of depth 0 gives the middle layer no gradient,
and then, as in torch, it is left untouched. Run ``python -m tf_impl.dynamic_net``.
"""

import random

import keras
import numpy as np
import tensorflow as tf

from . import _weights
from .ladder_nn import SumSquaredError, torch_init
from .ladder_numpy import D_in, D_out, H, dynamic_params, tutorial_data
from .ladder_optim import make_optimizer as _make_optimizer

dtype = "float32"
MAX_DEPTH = 3


class DynamicNet(keras.Model):
    def __init__(self, D_in, H, D_out, rng=random, dtype=dtype):
        """Three Dense layers (nn.Linear's init); ``rng`` (with ``randint``) chooses how often the middle one runs."""
        super().__init__(dtype=dtype)
        self.D_in = D_in
        dense = lambda units, fan_in: keras.layers.Dense(  # noqa: E731
            units, kernel_initializer=torch_init(fan_in), bias_initializer=torch_init(fan_in), dtype=dtype)
        self.input_linear = dense(H, D_in)
        self.middle_linear = dense(H, H)
        self.output_linear = dense(D_out, H)
        self.rng = rng

    def build(self, input_shape):
        # build the layers directly: tracing call() would draw a depth
        self.input_linear.build(input_shape)
        self.middle_linear.build((input_shape[0], self.input_linear.units))
        self.output_linear.build((input_shape[0], self.input_linear.units))
        super().build(input_shape)

    def call(self, x, depth=None):
        """input_linear + ReLU, then middle_linear + ReLU ``depth`` times (drawn from 0..3 if None), then output_linear."""
        if depth is None:
            depth = self.rng.randint(0, MAX_DEPTH)
        h_relu = tf.maximum(self.input_linear(x), 0)
        for _ in range(depth):
            h_relu = tf.maximum(self.middle_linear(h_relu), 0)
        y_pred = self.output_linear(h_relu)
        return y_pred

    def torch_layers(self):
        return {"input_linear": self.input_linear, "middle_linear": self.middle_linear,
                "output_linear": self.output_linear}


def build_model(params=None, dtype=dtype, rng=random):
    """DynamicNet(D_in, H, D_out), built; weights from torch-named ``params`` if given."""
    model = DynamicNet(D_in, H, D_out, rng=rng, dtype=dtype)
    model.build((None, D_in))
    if params is not None:
        _weights.load(model.torch_layers(), params)
    return model


def make_optimizer(model, learning_rate=1e-4, momentum=0.9):
    """The tutorial's optimizer, torch's SGD with momentum (TorchSGD), built over every variable."""
    optimizer = _make_optimizer(model, "sgd", lr=learning_rate, momentum=momentum)
    optimizer.build(model.trainable_variables)
    return optimizer


def _apply(optimizer, grads, variables):
    # a depth-0 pass leaves the middle layer without a gradient: skip it, as torch's optimizer does
    optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])


def step(model, x, y, optimizer, depth=None):
    """One pass of the loop: the loss, the gradients and the parameters after the update."""
    loss_fn = SumSquaredError(dtype=x.dtype)
    with tf.GradientTape() as tape:
        y_pred = model(x, depth=depth)
        loss = loss_fn(y, y_pred)
    grads = tape.gradient(loss, model.trainable_variables)
    _apply(optimizer, grads, model.trainable_variables)
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    return {"loss": loss, "grad": _weights.named_gradients(model.torch_layers(), by_path),
            "params": _weights.named_parameters(model.torch_layers())}


def train(model, x, y, optimizer, steps=500, log=None, depths=None):
    """The tutorial's loop; ``depths[t]`` fixes step t's depth (else the model draws it)."""
    loss_fn = SumSquaredError(dtype=x.dtype)

    # the loop body as one graph per depth (a Python int: each of 0..3 is traced once)
    @tf.function
    def train_step(depth):
        with tf.GradientTape() as tape:
            # Forward pass: compute predicted y by passing x to the model
            y_pred = model(x, depth=depth)
            loss = loss_fn(y, y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        _apply(optimizer, grads, model.trainable_variables)
        return loss

    losses = []
    for t in range(steps):
        # the random choice stays in Python, outside the graph: one shared seeded source
        depth = model.rng.randint(0, MAX_DEPTH) if depths is None else int(depths[t])
        loss = train_step(depth)
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "params": _weights.named_parameters(model.torch_layers())}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    # one seeded source for the depths: the torch module draws the same sequence
    model = build_model(dynamic_params(rng), rng=random.Random(0))
    optimizer = make_optimizer(model)
    train(model, tf.constant(x, dtype=dtype), tf.constant(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
