"""The tanh MLP of seed 001 §4.2: 10 -> 20 -> 5, MSE loss, written with raw tensors.

    h = tanh(w1 x + b1),  y = tanh(w2 h + b2),  loss = mean((y - target)^2)

The weights keep torch's (out, in) layout, so ``w1 @ x`` is ``matvec(w1, x)``;
one tape gives the gradients of the four parameters.
Run ``python -m tf_impl.mlp_tanh``.
"""

import tensorflow as tf


def mlp(w1, b1, w2, b2, x):
    """The forward pass: the hidden activations h and the output y."""
    h = tf.tanh(tf.linalg.matvec(w1, x) + b1)
    y = tf.tanh(tf.linalg.matvec(w2, h) + b2)
    return h, y


def mse(y, target):
    """The mean of the squared differences (``keras.losses.MeanSquaredError``)."""
    return tf.reduce_mean(tf.square(y - target))


def mlp_grads(w1, b1, w2, b2, x, target):
    """loss, y, and the gradients of the loss w.r.t. w1, b1, w2, b2."""
    w1, b1, w2, b2 = (tf.Variable(p) for p in (w1, b1, w2, b2))
    with tf.GradientTape() as tape:
        _, y = mlp(w1, b1, w2, b2, x)
        loss = mse(y, target)
    return loss, y, tuple(tape.gradient(loss, [w1, b1, w2, b2]))


def main():
    w1 = tf.random.uniform([20, 10])
    b1 = tf.random.uniform([20])
    w2 = tf.random.uniform([5, 20])
    b2 = tf.random.uniform([5])
    x = tf.random.uniform([10])
    target = tf.random.uniform([5])
    loss, y, grads = mlp_grads(w1, b1, w2, b2, x, target)
    print(loss)
    for name, g in zip(("w1", "b1", "w2", "b2"), grads):
        print(name, tuple(g.shape), tf.norm(g))


if __name__ == "__main__":
    main()
