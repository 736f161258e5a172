"""``retain_graph`` and ``create_graph`` (seed 001 §4.2; seed 000 §2), with tapes.

A non-persistent tape can compute one set of gradients; ``persistent=True`` is
torch's ``retain_graph=True``. A tape records every operation run inside it,
gradient computations of inner tapes included, so nesting tapes is torch's
``create_graph=True``. Run ``python -m tf_impl.higher_order``.
"""

import tensorflow as tf

from .autograd_basics import GradStore


def cube(x):
    """x^3, elementwise: derivatives 3x^2, 6x, 6."""
    return tf.pow(x, 3)


def tanh(x):
    """tanh, elementwise: with t = tanh x, derivatives 1 - t^2, -2t (1 - t^2), -2 (1 - t^2)(1 - 3t^2)."""
    return tf.tanh(x)


def derivatives(f, x, order=3):
    """[f(x), f'(x), f''(x), ...] for an elementwise f: each one is the gradient of the previous one's sum."""
    x = tf.convert_to_tensor(x)
    if order == 0:
        return [f(x)]
    with tf.GradientTape() as tape:  # records the inner tapes' gradient computations too
        tape.watch(x)
        out = derivatives(f, x, order - 1)
    return out + [tape.gradient(out[-1], x)]  # a non-scalar target: the gradient of its sum


def backward_twice(x, retain_graph=True):
    """y = sum x^3; two backward passes through one tape into a ``GradStore``: 2 * 3x^2.

    Without ``retain_graph`` (a non-persistent tape) the second pass raises ``RuntimeError``.
    """
    x = tf.Variable(x)
    store = GradStore()
    with tf.GradientTape(persistent=retain_graph) as tape:
        y = tf.reduce_sum(cube(x))
    store.backward(tape, y, [x])
    store.backward(tape, y, [x])
    return store[x]


def main():
    x = tf.constant([-1.0, 0.5, 2.0])
    for name, f in (("x^3", cube), ("tanh", tanh)):
        d = derivatives(f, x)
        print(name, "f, f', f'', f''':")
        for di in d:
            print(" ", di)
    print(backward_twice(x))
    try:
        backward_twice(x, retain_graph=False)
    except RuntimeError as e:
        print("RuntimeError:", str(e).split(".")[0])


if __name__ == "__main__":
    main()
