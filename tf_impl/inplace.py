"""In-place operations and the tape (seed 001 §4.2), the TensorFlow counterparts.

TensorFlow tensors are immutable: ``t[0] = v`` raises ``TypeError`` and
``t *= 2`` rebinds the name to a new tensor, so a value saved for a backward
pass can never be corrupted. Variables change only through ``assign*``
(``v += d`` raises ``RuntimeError``), and a tape never records an ``assign``:
each read of a variable is differentiated as the variable itself, whatever
was assigned before it. Where torch refuses (a modified saved value, an
update between two reads), TensorFlow computes a gradient, which the
functions below return. Run ``python -m tf_impl.inplace``.
"""

import tensorflow as tf


def _like(x, delta):
    # assign_add does not broadcast: delta as a tensor of x's shape and dtype
    return tf.broadcast_to(tf.cast(delta, x.dtype), x.shape)


def update_leaf(x, delta):
    """``x += delta`` on a watched variable: refused (``RuntimeError``), like torch, for every variable."""
    x = tf.Variable(x)
    with tf.GradientTape():
        x += delta  # TF: "use variable.assign_add(value)"
    return x


def update_leaf_no_grad(x, delta):
    """``x.assign_add(delta)`` inside a tape: allowed and not recorded.

    Returns x, and whether the tape still treats x as a leaf: the gradient of
    sum(x) after the update is 1, not a gradient through the update.
    """
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        x.assign_add(_like(x, delta))
        l = tf.reduce_sum(x * 1.0)  # reads the updated value
    g = tape.gradient(l, x)
    return x, g is not None and bool(tf.reduce_all(g == 1.0))


def modify_saved(x):
    """h = tanh(x); ``h *= 2`` makes a new tensor; the saved h is intact: d(sum 2 tanh x)/dx = 2 (1 - tanh^2 x)."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        h = tf.tanh(x)
        h *= 2  # h = h * 2: a new tensor, the tape still holds tanh's output
        l = tf.reduce_sum(h)
    return tape.gradient(l, x)


def modify_between_reads(x, delta):
    """y = x * x; ``x.assign_add(delta)``; z = y * x: the two reads are both taken as x.

    dz/dx = 2 x_old x_new + x_old^2, where x_old and x_new are the values read.
    """
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = x * x
        x.assign_add(_like(x, delta))  # not recorded
        z = y * x
        l = tf.reduce_sum(z)
    return tape.gradient(l, x)


def modify_unsaved(x):
    """y = 2x; ``y += 1`` (a new tensor); l = sum y^2: dl/dx = 4 (2x + 1), as in torch."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = x * 2
        y += 1
        l = tf.reduce_sum(tf.pow(y, 2))
    return l, tape.gradient(l, x)


def index_assign(x, value):
    """y = 2x; y[0] = value written out of place (``t[0] = v`` raises); l = sum y^2: 8x, and 0 at index 0."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = x * 2
        y = tf.tensor_scatter_nd_update(y, [[0]], tf.reshape(tf.cast(value, y.dtype), [1]))
        l = tf.reduce_sum(tf.pow(y, 2))
    return l, tape.gradient(l, x)


def main():
    x = tf.constant([1.0, 2.0, 3.0])
    try:
        update_leaf(x, 1.0)
    except RuntimeError as e:
        print(f"update_leaf: RuntimeError: {str(e)[:110]}")
    try:
        t = tf.constant([1.0, 2.0, 3.0])
        t[0] = 5.0
    except TypeError as e:
        print(f"t[0] = 5.0: TypeError: {e}")
    print("update_leaf_no_grad:", update_leaf_no_grad(x, 1.0))
    print("modify_saved:", modify_saved(x))
    print("modify_between_reads:", modify_between_reads(x, 1.0))
    print("modify_unsaved:", modify_unsaved(x)[1])
    print("index_assign:", index_assign(x, 5.0)[1])


if __name__ == "__main__":
    main()
