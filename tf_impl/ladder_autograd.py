"""The two-layer network with autograd (seed 003, "Autograd"), on ``tf.GradientTape``.

The weights are ``tf.Variable``s; the tape returns fresh gradients (nothing
accumulates, so there is nothing to zero), and ``assign_sub`` is the update
torch makes under ``no_grad``. Run ``python -m tf_impl.ladder_autograd``.
"""

import numpy as np
import tensorflow as tf

from .ladder_numpy import tutorial_data

dtype = tf.float32


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop from (w1, w2): loss, gradients (from the tape) and the updated weights."""
    w1, w2 = tf.Variable(w1), tf.Variable(w2)
    with tf.GradientTape() as tape:
        y_pred = tf.matmul(tf.maximum(tf.matmul(x, w1), 0), w2)
        loss = tf.reduce_sum(tf.square(y_pred - y))
    grad_w1, grad_w2 = tape.gradient(loss, [w1, w2])
    w1.assign_sub(learning_rate * grad_w1)
    w2.assign_sub(learning_rate * grad_w2)
    return {"loss": loss, "grad_w1": grad_w1, "grad_w2": grad_w2,
            "w1": tf.convert_to_tensor(w1), "w2": tf.convert_to_tensor(w2)}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop on Variables copied from w1, w2; ``log(t, loss)`` at t % 100 == 99."""
    w1, w2 = tf.Variable(w1), tf.Variable(w2)

    @tf.function  # the loop body as one graph: the same operations, without eager dispatch
    def train_step():
        with tf.GradientTape() as tape:
            y_pred = tf.matmul(tf.maximum(tf.matmul(x, w1), 0), w2)
            loss = tf.reduce_sum(tf.square(y_pred - y))

        grad_w1, grad_w2 = tape.gradient(loss, [w1, w2])

        # the update torch makes under no_grad(); the tape's gradients are fresh, so no zero_()
        w1.assign_sub(learning_rate * grad_w1)
        w2.assign_sub(learning_rate * grad_w2)
        return loss

    losses = []
    for t in range(steps):
        loss = train_step()
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "w1": tf.convert_to_tensor(w1), "w2": tf.convert_to_tensor(w2)}


def main():
    x, y, w1, w2 = (tf.constant(a, dtype=dtype) for a in tutorial_data(np.random.default_rng(0)))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
