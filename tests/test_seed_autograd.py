"""Every deterministic value printed by seeds 000, 001 (§4.1-4.2) and 004, for both implementations.

Literals come from the seed files (with their printed precision); where a seed
cell prints random values (unseeded RNG), the relation between the printed
values is asserted instead. Seed 004's notebook carries no outputs; its values
are the closed forms the notebook states (9a^2, -2b) and its hand formulas,
evaluated at its inputs and written here as literals.
"""

import numpy as np
import pytest

from autograd_impls import IMPLS, assert_printed, tf, value

# --------------------------------------------------------------------------- seed 000


@pytest.mark.parametrize("impl", IMPLS)
def test_seed000_norm_grad(impl):
    # In [140]: l = x.norm() at (1, 2, 2): tensor(3.); torch.autograd.grad: (tensor([0.3333, 0.6667, 0.6667]),)
    l, g = impl.mod("autograd_basics").norm_with_grad(impl.tensor([1.0, 2.0, 2.0]))
    assert_printed(l, 3.0, what="l")
    assert_printed(g, [0.3333, 0.6667, 0.6667], what="grad")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed000_norm_backward(impl):
    # In [141]: l.backward(); x.grad: tensor([0.3333, 0.6667, 0.6667])
    l, g = impl.mod("autograd_basics").norm_with_backward(impl.tensor([1.0, 2.0, 2.0]))
    assert_printed(l, 3.0, what="l")
    assert_printed(g, [0.3333, 0.6667, 0.6667], what="x.grad")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed000_dag_printed_x3_and_its_gradient(impl):
    # In [142] printed q, x3 and x3.grad from unseeded weights. Their relation is reproducible:
    # q = ||x3|| and x3.grad = x3 / ||x3||. From the printed x3 (4 decimals):
    x3 = [2.8595, 5.9130, 5.7412, -7.1607, 2.9478]
    q, g = impl.mod("autograd_basics").norm_with_grad(impl.tensor(x3))
    assert_printed(q, 11.6648, what="q")
    assert_printed(g, [0.2451, 0.5069, 0.4922, -0.6139, 0.2527], what="x3.grad")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed000_dag_x3_grad_is_x3_over_q(impl):
    # the same relation inside the DAG itself: dq/dx3 = x3 / q, whatever the weights
    rng = np.random.default_rng(142)
    w1, w2, x = rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    q, x3, gx3, *_ = impl.mod("dag").dag_backward(*(impl.tensor(v, "float64") for v in (w1, w2, x)))
    np.testing.assert_allclose(value(gx3), value(x3) / value(q), rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------- seed 001 §4.2


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_requires_grad_table(impl):
    # In [2] x.requires_grad: False; In [3] (x+y).requires_grad: False; In [6]/[7] z.requires_grad = True;
    # (x+z).requires_grad: True
    table = impl.mod("autograd_basics").requires_grad_table(
        impl.tensor([1.0, 2.0]), impl.tensor([4.0, 5.0]), impl.tensor([7.0, 3.0]))
    assert table == {"x": False, "x + y": False, "z": True, "x + z": True}


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_only_floating_point_tensors_have_gradients(impl):
    # "Only floating point type tensors can have their gradient computed."
    m = impl.mod("autograd_basics")
    k = impl.tensor([1, 2, 3])
    if impl.name == "torch":
        with pytest.raises(RuntimeError, match="floating point"):
            m.requires_grad_(k)
    else:
        with pytest.raises(TypeError, match="floating point"):
            with tf.GradientTape() as tape:
                m.requires_grad_(tape, k)


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_pow_log_grad(impl):
    # In [8]: torch.autograd.grad(a, (t, u)) -> (tensor([2., 4., 8.]), tensor([0.1000, 0.0500]))
    a, (gt, gu) = impl.mod("autograd_basics").pow_log_grad(impl.tensor([1.0, 2.0, 4.0]), impl.tensor([10.0, 20.0]))
    assert_printed(gt, [2.0, 4.0, 8.0], what="grad t")
    assert_printed(gu, [0.1000, 0.0500], what="grad u")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_tuple_of_outputs_sums_their_gradients(impl):
    # "if outputs is a tuple, the result is the sum of the gradients of its elements":
    # (sum t^2, sum t^3 + sum log u) at t = (1, 2, 4): 2t + 3t^2 = (5, 16, 56); 1/u = (0.1, 0.05)
    gt, gu = impl.mod("autograd_basics").tuple_outputs_grad(impl.tensor([1.0, 2.0, 4.0]), impl.tensor([10.0, 20.0]))
    assert_printed(gt, [5.0, 16.0, 56.0], what="grad t")
    assert_printed(gu, [0.1000, 0.0500], what="grad u")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_accumulation(impl):
    # In [15]: x.grad (None before), u.backward(); x.grad -> tensor([27., 12., 75.]); the warning that
    # backward accumulates: a second backward doubles it, and zeroing resets it
    stages = impl.mod("autograd_basics").pow3_accumulation(impl.tensor([-3.0, 2.0, 5.0]))
    assert stages["before"] is None
    assert_printed(stages["once"], [27.0, 12.0, 75.0], what="after one backward")
    assert_printed(stages["twice"], [54.0, 24.0, 150.0], what="after two")
    assert_printed(stages["zeroed"], [0.0, 0.0, 0.0], what="after zero_()")
    assert_printed(stages["after_zero"], [27.0, 12.0, 75.0], what="after zero_() and one more backward")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_descent_no_grad(impl):
    # In [21]: tensor(0.4246, requires_grad=True) tensor(-0.4246, requires_grad=True)
    a, b, _ = impl.mod("gradient_descent").descend_no_grad(impl.tensor(0.5), impl.tensor(-0.5))
    assert_printed(a, 0.4246, what="a")
    assert_printed(b, -0.4246, what="b")
    # and they still say requires_grad=True: the no_grad updates did not make them results of operations
    if impl.name == "torch":
        assert a.requires_grad and a.grad_fn is None and b.requires_grad and b.grad_fn is None
    else:
        assert a.trainable and b.trainable  # still variables that a tape watches


@pytest.mark.parametrize("impl", IMPLS)
def test_seed001_descent_detach(impl):
    # In [20]: tensor(0.5099, requires_grad=True) tensor(-0.4901, requires_grad=True)
    a, b, _ = impl.mod("gradient_descent").descend_detach(impl.tensor(0.5), impl.tensor(-0.5))
    assert_printed(a, 0.5099, what="a")
    assert_printed(b, -0.4901, what="b")


# --------------------------------------------------------------------------- seed 004


@pytest.mark.parametrize("impl", IMPLS)
def test_seed004_q_external_grad(impl):
    # a = (2, 3), b = (6, 4), Q = 3a^3 - b^2, Q.backward(gradient=(1, 1)): a.grad == 9a^2, b.grad == -2b
    Q, ga, gb = impl.mod("perceptron").q_backward(impl.tensor([2.0, 3.0]), impl.tensor([6.0, 4.0]),
                                                  impl.tensor([1.0, 1.0]))
    assert_printed(Q, [-12.0, 65.0], what="Q")
    assert_printed(ga, [36.0, 81.0], what="a.grad = 9a^2")
    assert_printed(gb, [-12.0, -8.0], what="b.grad = -2b")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed004_numpy_perceptron(impl):
    # the NumPy cell: the wrong point X[1] = (1, 1) with w = (1, -0.5): v = 0.5, y = tanh(0.5)
    X = np.array([[0, 1], [1, 1], [0, -1], [1, -1]])
    assert_printed(impl.mod("perceptron").numpy_forward(X, np.asarray([1.0, -0.5])), 0.4621, what="y")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed004_perceptron_autograd(impl):
    # y = tanh(0.5) = 0.4621, e = (-1 - y)^2 / 2 = 1.0689; y.grad = (-1 - y)(-1) = 1.4621,
    # v.grad = 1.4621 (1 - tanh(0.5)^2) = 1.1499, w.grad = v.grad * x = (1.1499, 1.1499)
    y, e, gy, gv, gw, gx = impl.mod("perceptron").perceptron(impl.tensor([1.0, 1.0]), impl.tensor([1.0, -0.5]))
    assert_printed(y, 0.4621, what="y")
    assert_printed(e, 1.0689, what="e")
    assert_printed(gy, 1.4621, what="y.grad")
    assert_printed(gv, 1.1499, what="v.grad")
    assert_printed(gw, [1.1499, 1.1499], what="w.grad")
    assert_printed(gx, [1.1499, -0.5749], what="x.grad = v.grad * w")


@pytest.mark.parametrize("impl", IMPLS)
def test_seed004_perceptron_by_hand(impl):
    # the seed's last cell: the same three gradients from its hand-derived formulas
    gy, gv, gw = impl.mod("perceptron").by_hand(impl.tensor([1.0, 1.0]), impl.tensor([1.0, -0.5]))
    assert_printed(gy, 1.4621, what="y grad")
    assert_printed(gv, 1.1499, what="v grad")
    assert_printed(gw, [1.1499, 1.1499], what="w grad")
