"""Autograd behaviours on both sides: errors, accumulation, weight sharing, higher order, in-place rules.

Where the two frameworks behave alike, one test runs on both; where only
torch refuses something, the torch test checks the refusal and the TF test
checks what TensorFlow computes instead, against a closed form.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograd_impls import IMPLS, Impl, assert_printed, tf, torch, value
from equivalence import tolerance as tm
from equivalence.case import REGISTRY, all_cases
from tf_impl import autograd_basics as F
from tf_impl import inplace as F_ip

all_cases()  # registers the cases whose operation counts the property tests reuse

TORCH = Impl("torch")
U64 = tm.unit_roundoff("float64")

# float64 points away from overflow, and away from underflow: |x| >= 1e-12 or 0, so that x^3 stays a
# normal number even in float32 (TensorFlow's CPU kernels flush subnormals to zero and torch keeps
# them, a difference the relative tolerance model has no term for: test_tf_flushes_subnormals_to_zero)
points = st.lists(st.floats(-3, 3).map(lambda v: v if abs(v) >= 1e-12 else 0.0), min_size=1, max_size=6).map(np.array)
seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------- floats only, and no silent None


def test_torch_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        TORCH.mod("autograd_basics").requires_grad_(torch.tensor([1, 2, 3]))


def test_torch_integer_source_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        TORCH.mod("autograd_basics").grad((x * x).sum(), (x, torch.tensor([1, 2])))


def test_tf_raw_tape_returns_none_for_integers():
    # the TensorFlow behaviour the port guards against: a watched integer gets a silent None
    k = tf.constant([1, 2, 3])
    with tf.GradientTape() as tape:
        tape.watch(k)
        s = tf.reduce_sum(k * k)
    assert tape.gradient(s, k) is None


def test_tf_requires_grad_refuses_integers_naming_the_dtype():
    with pytest.raises(TypeError, match=r"int32.*only floating point"):
        with tf.GradientTape() as tape:
            F.requires_grad_(tape, tf.constant([1, 2, 3]))


def test_tf_grad_refuses_an_integer_source_naming_its_index():
    x, k = tf.constant([1.0, 2.0]), tf.constant([1, 2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(x * x)
    with pytest.raises(TypeError, match=r"source at index 1 of dtype int32"):
        F.grad(tape, s, (x, k))


def test_tf_grad_refuses_an_integer_target():
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        n = tf.cast(tf.reduce_sum(x), tf.int32)
    with pytest.raises(TypeError, match="target"):
        F.grad(tape, n, x)


def test_tf_grad_refuses_an_integer_variable_source():
    v = tf.Variable([1, 2])
    x = tf.Variable([1.0, 2.0], name="x")
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(x * x)
    with pytest.raises(TypeError, match="int32"):
        F.grad(tape, s, [x, v])


@pytest.mark.parametrize("impl", IMPLS)
def test_unused_source_raises_unless_allowed(impl):
    m = impl.mod("autograd_basics")
    x, unused = impl.tensor([1.0, 2.0]), impl.tensor([3.0])
    if impl.name == "torch":
        x, unused = x.requires_grad_(), unused.requires_grad_()
        with pytest.raises(RuntimeError, match="allow_unused"):
            m.grad((x * x).sum(), (x, unused))
        g = m.grad((x * x).sum(), (x, unused), allow_unused=True)
    else:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            tape.watch(unused)
            s = tf.reduce_sum(x * x)
        with pytest.raises(ValueError, match=r"index 1.*allow_unused"):
            m.grad(tape, s, (x, unused))
        g = m.grad(tape, s, (x, unused), allow_unused=True)
    assert g[1] is None
    assert_printed(g[0], [2.0, 4.0], what="the used source's gradient")


@pytest.mark.parametrize("impl", IMPLS)
def test_a_single_source_still_gives_a_tuple(impl):
    # seed 001: "inputs can be a single tensor, but the result is still a one element tuple"
    m = impl.mod("autograd_basics")
    x = impl.tensor([1.0, 2.0])
    if impl.name == "torch":
        x.requires_grad_()
        g = m.grad((x * x).sum(), x)
    else:
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = tf.reduce_sum(x * x)
        g = m.grad(tape, s, x)
    assert isinstance(g, tuple) and len(g) == 1


def test_tf_requires_grad_follows_variables_and_watch():
    # torch's flag, read off the tape: a trainable variable is watched, a non-trainable one and a
    # constant are not, and a result is watched iff one of its operands is
    v, frozen, c = tf.Variable([1.0]), tf.Variable([2.0], trainable=False), tf.constant([3.0])
    leaves = [v, frozen, c]
    with tf.GradientTape(persistent=True) as tape:
        flags = [F.requires_grad(tape, t, leaves) for t in (v, frozen, c, frozen * c, v * c)]
    assert flags == [True, False, False, False, True]


@pytest.mark.parametrize("impl", IMPLS)
@given(t=points, seed=seeds)
def test_a_tuple_of_outputs_has_the_sum_of_their_gradients(impl, t, seed):
    u = np.random.default_rng(seed).uniform(0.1, 5.0, 3)
    gt, gu = impl.mod("autograd_basics").tuple_outputs_grad(impl.tensor(t, "float64"), impl.tensor(u, "float64"))
    # each output on its own, straight from the framework
    _, (g1,) = impl.gradients(lambda t_: (t_**2).sum() if impl.name == "torch" else tf.reduce_sum(t_**2),
                              impl.tensor(t, "float64"))
    _, (g2, g3) = impl.gradients(
        lambda t_, u_: (t_**3).sum() + u_.log().sum() if impl.name == "torch"
        else tf.reduce_sum(t_**3) + tf.reduce_sum(tf.math.log(u_)),
        impl.tensor(t, "float64"), impl.tensor(u, "float64"))
    np.testing.assert_allclose(value(gt), value(g1) + value(g2), rtol=4 * U64, atol=0)
    np.testing.assert_array_equal(value(gu), value(g3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tf_flushes_subnormals_to_zero(dtype):
    # why the property tests keep results normal: TF (CPU) flushes a subnormal result to zero, torch keeps it
    tiny = np.array([np.finfo(dtype).smallest_normal / 4], dtype=dtype)
    assert value(torch.tensor(tiny) * 1.0)[0] == tiny[0]
    assert value(tf.constant(tiny) * 1.0)[0] == 0.0


# --------------------------------------------------------------------------- accumulation


@pytest.mark.parametrize("impl", IMPLS)
@given(x=points, k=st.integers(1, 5))
def test_k_backward_passes_accumulate_k_gradients(impl, x, k):
    g = 3 * x**2
    if impl.name == "torch":
        xt = torch.tensor(x, requires_grad=True)
        for _ in range(k):
            xt.pow(3).sum().backward()
        acc = xt.grad
    else:
        xv, store = tf.Variable(x), F.GradStore()
        for _ in range(k):
            with tf.GradientTape() as tape:
                u = tf.reduce_sum(tf.pow(xv, 3))
            store.backward(tape, u, [xv])
        acc = store[xv]
    # k additions of a gradient that is itself within a few roundings of 3x^2
    np.testing.assert_allclose(value(acc), k * g, rtol=(k + 8) * U64, atol=0)


def test_tf_gradstore_zero_and_unknown_sources():
    x, other = tf.Variable([1.0, 2.0]), tf.Variable([3.0])
    store = F.GradStore()
    assert store[x] is None  # like x.grad before any backward
    with tf.GradientTape() as tape:
        u = tf.reduce_sum(x * x)
    store.backward(tape, u, [x])
    store.zero_()
    np.testing.assert_array_equal(value(store[x]), [0.0, 0.0])
    assert store[other] is None


def test_tf_gradstore_refuses_an_unconnected_source():
    x, other = tf.Variable([1.0, 2.0]), tf.Variable([3.0])
    with tf.GradientTape() as tape:
        u = tf.reduce_sum(x * x)
    with pytest.raises(ValueError, match="index 1"):
        F.GradStore().backward(tape, u, [x, other])


# --------------------------------------------------------------------------- the DAG: weight sharing


@pytest.mark.parametrize("impl", IMPLS)
@given(seed=seeds)
def test_a_shared_weight_gets_the_sum_of_its_uses(impl, seed):
    rng = np.random.default_rng(seed)
    w1, w2, x = rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    m = impl.mod("dag")
    _, _, _, gw1, _, _ = m.dag_backward(*(impl.tensor(v, "float64") for v in (w1, w2, x)))
    # the same graph with phi1 and phi3 given separate copies of w1
    _, (g_phi1, g_phi3) = impl.gradients(lambda a, b: m.dag(a, impl.tensor(w2, "float64"), impl.tensor(x, "float64"),
                                                            w3=b)[3],
                                         impl.tensor(w1, "float64"), impl.tensor(w1, "float64"))
    total = value(g_phi1) + value(g_phi3)
    np.testing.assert_allclose(value(gw1), total, rtol=0, atol=1e3 * U64 * np.abs(total).max())
    assert np.abs(value(g_phi1)).max() > 0 and np.abs(value(g_phi3)).max() > 0  # both uses contribute


@pytest.mark.parametrize("impl", IMPLS)
def test_dag_grad_matches_dag_backward(impl):
    # seed 001's tf.gradients (TF1 graph, here a tf.function) and the eager tape/backward agree
    rng = np.random.default_rng(16)
    args = [impl.tensor(v, "float64") for v in (rng.random((5, 5)), rng.random((5, 5)), rng.standard_normal(5))]
    m = impl.mod("dag")
    q, _, _, gw1, gw2, gx = m.dag_backward(*args)
    q_, gw1_, gw2_, gx_ = m.dag_grad(*args)
    for a, b in ((q, q_), (gw1, gw1_), (gw2, gw2_), (gx, gx_)):
        np.testing.assert_allclose(value(a), value(b), rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------------- the data-dependent graph


@pytest.mark.parametrize("impl", IMPLS)
def test_blah_graph_follows_the_data(impl):
    rng = np.random.default_rng(17)
    w, xu, xv = (impl.tensor(v) for v in (rng.random((3, 10, 10)), rng.random(10), rng.random(10)))
    m = impl.mod("dynamic_graph")
    *_, gw = m.dynamic_graph(w, xu, xv)  # k = 1 and 3: every w[i] was used
    assert all(np.abs(value(gw)[i]).max() > 0 for i in range(3))
    *_, gw = m.dynamic_graph(w, xu, xv, k_u=1, k_v=1)  # only w[0] was used: w[1], w[2] get exact zeros
    assert np.abs(value(gw)[0]).max() > 0
    np.testing.assert_array_equal(value(gw)[1:], 0.0)


# --------------------------------------------------------------------------- gradient descent


@pytest.mark.parametrize("impl", IMPLS)
def test_detach_cuts_the_coupling_term_off_a(impl):
    # one step from (0.5, -0.5) with eta = 0.1: dl/da = 2(a-1) + 2(a-b) = 1 without detach, 2(a-1) = -1 with it;
    # dl/db = 2(b+1) - 2(a-b) = -1 either way
    m = impl.mod("gradient_descent")
    a, b, _ = m.descend(impl.tensor(0.5, "float64"), impl.tensor(-0.5, "float64"), eta=0.1, steps=1)
    assert_printed(a, 0.4, decimals=12, what="a without detach")
    assert_printed(b, -0.4, decimals=12, what="b without detach")
    a, b, _ = m.descend(impl.tensor(0.5, "float64"), impl.tensor(-0.5, "float64"), eta=0.1, steps=1, detach=True)
    assert_printed(a, 0.6, decimals=12, what="a with detach")
    assert_printed(b, -0.4, decimals=12, what="b with detach")


# --------------------------------------------------------------------------- retain_graph, create_graph


@pytest.mark.parametrize("impl", IMPLS)
def test_second_backward_needs_retain_graph(impl):
    m = impl.mod("higher_order")
    x = impl.tensor([-1.0, 0.5, 2.0])
    with pytest.raises(RuntimeError, match="a second time" if impl.name == "torch" else "non-persistent"):
        m.backward_twice(x, retain_graph=False)
    assert_printed(m.backward_twice(x, retain_graph=True), [6.0, 1.5, 24.0], what="2 * 3x^2")


def test_torch_second_derivative_needs_create_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(x.pow(3).sum(), x)  # without create_graph: g is a plain tensor
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.autograd.grad(g.sum(), x)


def test_tf_second_derivative_needs_a_recording_outer_tape():
    # the counterpart: a gradient computed outside any other tape is not recorded, so it is not
    # connected to x; the port's grad says so instead of returning None
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as t1:
        t1.watch(x)
        y = tf.reduce_sum(tf.pow(x, 3))
    g = t1.gradient(y, x)
    with tf.GradientTape() as t2:
        t2.watch(x)
        s = tf.reduce_sum(g)
    with pytest.raises(ValueError, match="not used"):
        F.grad(t2, s, x)


def _closed_form_check(impl, name, f, x, dtype):
    case = REGISTRY[name]
    d = impl.mod("higher_order").derivatives(f, impl.tensor(x, dtype), order=3)
    wide = {"x": np.asarray(x, dtype=dtype).astype(np.float64)}
    ref = case.reference(wide)
    for q, got in zip(case.quantities, d):
        m = q.magnitude(wide, ref) if q.magnitude else np.full(wide["x"].shape, np.abs(ref[q.name]).max())
        tol = tm.pair_tolerance(q.n, dtype, "float64", m)
        err = np.abs(value(got) - ref[q.name])
        assert np.all(err <= tol), f"{impl} {q.name} [{dtype}] at x={x}: error {err.max():.3g} > {tol.max():.3g}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(x=points)
def test_derivatives_of_tanh_against_closed_forms(impl, dtype, x):
    _closed_form_check(impl, "autograd.higher_order_tanh", impl.mod("higher_order").tanh, x, dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(x=points)
def test_derivatives_of_cube_against_closed_forms(impl, dtype, x):
    _closed_form_check(impl, "autograd.higher_order_pow3", impl.mod("higher_order").cube, x, dtype)


# --------------------------------------------------------------------------- in-place operations

X = [1.0, 2.0, 3.0]


@pytest.mark.parametrize("impl", IMPLS)
def test_inplace_update_of_a_leaf_is_refused(impl):
    # torch: "a leaf Variable that requires grad is being used in an in-place operation";
    # TF: `variable += value` is refused for every variable, pointing to assign_add
    with pytest.raises(RuntimeError, match="leaf Variable" if impl.name == "torch" else "assign_add"):
        impl.mod("inplace").update_leaf(impl.tensor(X), 1.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_leaf_update_outside_the_graph(impl):
    # torch: under no_grad; TF: assign_add, which no tape records. Either way x stays a leaf.
    x, still_leaf = impl.mod("inplace").update_leaf_no_grad(impl.tensor(X), 1.0)
    assert still_leaf
    assert_printed(x, [2.0, 3.0, 4.0], what="x + 1")


@pytest.mark.parametrize("impl", IMPLS)
def test_inplace_functions_leave_the_callers_tensor_alone(impl):
    x = impl.tensor(X)
    m = impl.mod("inplace")
    m.update_leaf_no_grad(x, 1.0)
    m.modify_unsaved(x)
    m.index_assign(x, 5.0)
    np.testing.assert_array_equal(value(x), X)


@pytest.mark.parametrize("impl", IMPLS)
def test_inplace_where_nothing_saved_is_touched(impl):
    m = impl.mod("inplace")
    _, g = m.modify_unsaved(impl.tensor(X))
    assert_printed(g, [12.0, 20.0, 28.0], what="4 (2x + 1)")
    _, g = m.index_assign(impl.tensor(X), impl.tensor(5.0))
    assert_printed(g, [0.0, 16.0, 24.0], what="8x, 0 where y[0] was overwritten")


def test_torch_refuses_backward_through_a_modified_saved_value():
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        TORCH.mod("inplace").modify_saved(torch.tensor(X))


def test_tf_tensors_are_immutable():
    t = tf.constant(X)
    with pytest.raises(TypeError, match="does not support item assignment"):
        t[0] = 5.0


def test_tf_saved_values_cannot_be_modified():
    # h *= 2 makes a new tensor: the gradient is that of sum(2 tanh x), computed from the intact saved h
    x = np.array(X)
    g = F_ip.modify_saved(tf.constant(x))
    np.testing.assert_allclose(value(g), 2 * (1 - np.tanh(x) ** 2), rtol=1e-6)


def test_torch_refuses_an_update_between_two_reads_of_a_leaf():
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        TORCH.mod("inplace").modify_between_reads(torch.tensor(X), 1.0)


def test_tf_differentiates_each_read_of_a_variable_as_the_variable():
    # y = x*x; x.assign_add(1); z = y*x: dz/dx = 2 x_old x_new + x_old^2 (both reads taken as x)
    x = np.array(X)
    g = F_ip.modify_between_reads(tf.constant(x), 1.0)
    np.testing.assert_allclose(value(g), 2 * x * (x + 1) + x**2, rtol=1e-6)


def test_tf_tape_does_not_see_an_assign():
    # x.assign(2x) inside a tape, then l = sum x^2: the tape differentiates the new value as x itself,
    # 2 x_new = 4 x_old, not the chain rule's 8 x_old through the update
    x = tf.Variable(X)
    with tf.GradientTape() as tape:
        x.assign(2 * x)
        l = tf.reduce_sum(x * x)
    np.testing.assert_allclose(value(tape.gradient(l, x)), 4 * np.array(X), rtol=1e-6)
