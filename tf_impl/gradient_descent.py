"""Gradient descent on l = (a-1)^2 + (b+1)^2 + (a-b)^2 (seed 001 §4.2, In [20]/[21]).

torch's ``no_grad`` update becomes ``assign_sub`` outside the tape (a tape
records only what runs inside it, and never records ``assign``);
``a.detach()`` becomes ``tf.stop_gradient(a)``.
Run ``python -m tf_impl.gradient_descent``.
"""

import tensorflow as tf


def loss(a, b, detach=False):
    """l; with ``detach``, (a-b)^2 does not propagate to a."""
    a_ = tf.stop_gradient(a) if detach else a
    return (a - 1) ** 2 + (b + 1) ** 2 + (a_ - b) ** 2


def descend(a, b, eta, steps=100, detach=False):
    """``steps`` updates a -= eta * dl/da, b -= eta * dl/db; returns a, b and the path of (a, b)."""
    a, b = tf.Variable(a), tf.Variable(b)
    path = []
    for k in range(steps):
        with tf.GradientTape() as tape:
            l = loss(a, b, detach)
        ga, gb = tape.gradient(l, [a, b])
        a.assign_sub(eta * ga)  # outside the tape: not part of any graph
        b.assign_sub(eta * gb)
        path.append(tf.stack([a.read_value(), b.read_value()]))
    return a, b, tf.stack(path)


def descend_no_grad(a, b, eta=1e-3, steps=100):
    """Seed 001 In [21]: from (0.5, -0.5) with eta = 1e-3, 100 steps: (0.4246, -0.4246)."""
    return descend(a, b, eta, steps, detach=False)


def descend_detach(a, b, eta=1e-4, steps=100):
    """Seed 001 In [20]: (a.detach() - b)^2, eta = 1e-4, 100 steps: (0.5099, -0.4901)."""
    return descend(a, b, eta, steps, detach=True)


def main():
    a, b, _ = descend_no_grad(tf.constant(0.5), tf.constant(-0.5))
    print(a.numpy(), b.numpy())
    a, b, _ = descend_detach(tf.constant(0.5), tf.constant(-0.5))
    print(a.numpy(), b.numpy())


if __name__ == "__main__":
    main()
