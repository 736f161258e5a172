"""Negative controls (issue 8): the catalogue of porting bugs, each control detected where it
must be and its correct port passing on the same construct, the strict adapter refusing the
weight-copy bugs, and how ``equivalence run`` reports margins and weak detections."""

from __future__ import annotations

import functools
import json
import math
import re

import numpy as np
import pytest

from equivalence import AdapterError, adapter, transfer
from equivalence import tolerance as tm
from equivalence.case import REGISTRY, Case, CaseError, Q, all_cases
from equivalence.cli import main
from equivalence.controls import CATALOGUE, WEAK_MARGIN, Bug, bug_of, catalogue, validate
from equivalence.frameworks import Context, keras, tf
from equivalence.runner import evaluate, run_case

CASES = all_cases()

#: issue 8, item 1, in its own words -> the catalogue's name for it
ISSUE_8 = {
    "transposed Dense kernel": "dense_kernel_transposed",
    "flatten without the permutation": "flatten_unpermuted",
    "conv kernel left in OIHW": "conv_kernel_oihw",
    "'same' padding with stride 2": "same_padding_stride_2",
    "zero padding in max-pool": "max_pool_zero_padding",
    "ceil_mode ignored": "ceil_mode_ignored",
    "MyReLU with relu's gradient at 0": "relu_gradient_at_zero",
    "MSE mean for sum": "mse_mean_for_sum",
    "Adam's epsilon placement": "adam_epsilon_placement",
    "BatchNorm momentum and eps conventions": "batchnorm_conventions",
    "TF32 left on": "tf32_left_on",
    "a missing bias": "bias_missing",
    "a dropped weight": "weight_dropped",
}

PAIRS = [(control, port) for bug in CATALOGUE.values() for control, port in bug.controls.items()]


@functools.cache
def result(name: str, dtype: str):
    return run_case(REGISTRY[name], Context(dtype=dtype))


def tf_rows(res, quantity=None):
    return [r for r in res.rows if "tf" in r.pair.split("~") and quantity in (None, r.quantity)]


# -- the catalogue ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bug", sorted(ISSUE_8.values()))
def test_every_bug_of_the_issue_has_a_registered_control(bug):
    assert bug in CATALOGUE, f"issue 8's {bug!r} is not catalogued"
    for control in CATALOGUE[bug].controls:
        assert control in REGISTRY and REGISTRY[control].expect == "differ", control


def test_the_catalogue_matches_the_registry():
    validate(REGISTRY)


def test_every_negative_control_is_catalogued():
    missing = [c.name for c in CASES if c.expect == "differ" and bug_of(c.name) is None]
    assert not missing, f"negative controls with no bug in equivalence.controls.CATALOGUE: {missing}"


def test_list_shows_the_bug_names(capsys):
    assert main(["list", "--case", "modules.neg_*"]) == 0
    out = capsys.readouterr().out
    assert "[negative control: dense_kernel_transposed]" in out and "[negative control: tf32_left_on]" in out


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(name="Bad Name", description="a sentence long enough", controls={"a.neg": "a.port"}), "lower_snake_case"),
    (dict(name="short", description="too short", controls={"a.neg": "a.port"}), "at least a sentence"),
    (dict(name="no_controls", description="a sentence long enough", controls={}), "non-empty dict"),
    (dict(name="undotted", description="a sentence long enough", controls={"neg": "a.port"}), "is not a case name"),
    (dict(name="itself", description="a sentence long enough", controls={"a.neg": "a.neg"}), "names itself"),
])
def test_bad_bug_declarations_are_refused(kwargs, message):
    with pytest.raises(CaseError, match=message):
        Bug(**kwargs)


def test_a_bug_catalogued_twice_or_a_control_claimed_twice_is_refused():
    with pytest.raises(CaseError, match="catalogued twice"):
        catalogue(Bug("bias_missing", "a sentence long enough", {"x.y": "x.z"}))
    with pytest.raises(CaseError, match="already represents bug 'bias_missing'"):
        catalogue(Bug("another_name", "a sentence long enough", {"modules.neg_linear_bias_missing": "x.z"}))


def test_validate_names_every_dangling_reference(monkeypatch):
    monkeypatch.setitem(CATALOGUE, "dangling", Bug("dangling", "a sentence long enough", {
        "modules.linear": "modules.no_such_case", "modules.no_such_control": "modules.net_flatten_unpermuted"}))
    with pytest.raises(CaseError) as e:
        validate(REGISTRY)
    text = str(e.value)
    assert "control 'modules.linear' has expect='equal'" in text
    assert "correct port 'modules.no_such_case' (of modules.linear) is not a registered case" in text
    assert "control 'modules.no_such_control' is not a registered case" in text
    assert "correct port 'modules.net_flatten_unpermuted' is itself a negative control" in text


# -- each control detected, each correct port passing -------------------------------------------------


@pytest.mark.parametrize(("control", "port", "dtype"), [
    pytest.param(c, p, d, id=f"{c}-{d}") for c, p in PAIRS for d in REGISTRY[c].dtypes])
def test_control_detected_and_its_correct_port_passes(control, port, dtype):
    """The control is caught; the correct port of the same construct, compared by the same
    tolerance model, is not: the detection is the bug's, not the comparison's."""
    res = result(control, dtype)
    assert not res.error, res.error
    assert res.detected and res.passed, f"{control} [{dtype}] not detected: margin {res.margin:.3g}"
    assert res.margin > 1
    ok = result(port, dtype)
    assert not ok.error, ok.error
    bad = [f"{r.quantity} {r.pair}: {r.comparison.ratio:.3g}" for r in ok.rows if not r.passed]
    assert not bad, f"the correct port {port} [{dtype}] fails, so {control} proves nothing: {bad}"
    assert ok.margin <= 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_each_convention_shows_where_it_acts(dtype):
    eps = result("modules.neg_batchnorm2d_keras_defaults_eval", dtype)  # epsilon 1e-3: the inference output
    assert any(not r.comparison.passed for r in tf_rows(eps, "out"))
    assert all(r.comparison.passed for r in tf_rows(eps, "grad:bias"))  # a sum of the cotangent: eps-free
    momentum = result("modules.neg_batchnorm2d_keras_momentum_train", dtype)  # epsilon right, momentum 0.99
    assert all(r.comparison.passed for r in tf_rows(momentum, "out"))
    assert any(not r.comparison.passed for r in tf_rows(momentum, "running_mean"))
    biased = result("modules.neg_batchnorm2d_keras_biased_running_var", dtype)  # eps and momentum right
    assert all(r.comparison.passed for r in tf_rows(biased) if r.quantity != "running_var")
    assert any(not r.comparison.passed for r in tf_rows(biased, "running_var"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_builtin_relu_is_caught_exactly_at_the_zeros(dtype):
    case = REGISTRY["ladder.my_relu_builtin_relu"]
    wide, torch_out, tf_out, _ = evaluate(case, Context(dtype=dtype))
    zeros = wide["x"] == 0
    assert zeros.sum() >= 8 and np.signbit(wide["x"][zeros]).any()  # +0 and -0 both present
    differ = torch_out["grad:x"] != tf_out["grad:x"]
    assert np.array_equal(differ, zeros & (wide["grad_output"] != 0))


def test_same_padding_control_uses_stride_2():
    from equivalence.cases.functional import _NEGATIVE

    (options,) = [opts for op, name, *_, opts in _NEGATIVE if name == "keras_same_padding"]
    assert options["stride"] == 2 and options["padding"] == 1


def test_tf32_controls_are_float32_only():
    # TF32 rounds float32 operands only; a float64 run has nothing to catch
    for c in CATALOGUE["tf32_left_on"].controls:
        assert REGISTRY[c].dtypes == ("float32",), c


# -- the TF32 emulation ----------------------------------------------------------------------------


def test_round_to_tf32_keeps_10_fraction_bits_rounding_ties_away():
    from equivalence.cases.porting_bugs import round_to_tf32

    t = tf()
    x = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
    r = round_to_tf32(t.constant(x)).numpy()
    assert not (r.view(np.int32) & 0x1FFF).any()  # the low 13 of float32's 23 fraction bits are gone
    assert np.all(np.abs(r - x) <= 2.0**-11 * np.abs(x))  # to nearest: half of TF32's 2^-10 spacing
    half = np.float32(1 + 2.0**-11)  # exactly between 1 and the next TF32 value, 1 + 2^-10
    edge = round_to_tf32(t.constant([half, -half, 1 + 2.0**-10, 3.0], dtype=t.float32)).numpy()
    assert edge.tolist() == [1 + 2.0**-10, -(1 + 2.0**-10), 1 + 2.0**-10, 3.0]
    f64 = t.constant([1 + 2.0**-30], dtype=t.float64)
    assert round_to_tf32(f64).numpy()[0] == 1 + 2.0**-30  # TF32 touches float32 only


def test_tf32_emulation_rounds_matmul_operands_forward_and_backward():
    from equivalence.cases.porting_bugs import round_to_tf32, tf32_emulation

    t = tf()
    rng = np.random.default_rng(1)
    a, b, g = (t.constant(rng.standard_normal(s), dtype=t.float32) for s in ((5, 7), (7, 3), (5, 3)))
    with tf32_emulation(), t.GradientTape() as tape:
        tape.watch([a, b])
        y = t.matmul(a, b)
    ga, gb = tape.gradient(y, [a, b], output_gradients=g)
    ar, br, gr = round_to_tf32(a), round_to_tf32(b), round_to_tf32(g)
    assert np.array_equal(y.numpy(), t.matmul(ar, br).numpy())
    assert np.array_equal(ga.numpy(), t.matmul(gr, br, transpose_b=True).numpy())
    assert np.array_equal(gb.numpy(), t.matmul(ar, gr, transpose_a=True).numpy())
    assert not np.array_equal(y.numpy(), t.matmul(a, b).numpy())  # outside the block: strict float32
    a64, b64 = t.cast(a, t.float64), t.cast(b, t.float64)
    with tf32_emulation():
        assert np.array_equal(t.matmul(a64, b64).numpy(), t.matmul(a64, b64).numpy())


# -- the strict adapter refuses the weight-copy bugs ------------------------------------------------


def test_strict_transfer_refuses_a_missing_bias():
    from tf_impl import modules as K
    from torch_impl import modules as T

    with pytest.raises(AdapterError, match=re.escape("torch Linear has a bias (4,), Keras Dense at <root> has no bias: "
                                                     "a weight would be left out")):
        transfer(T.Linear(10, 4), K.Linear(10, 4, bias=False))


def test_strict_adapter_refuses_a_dropped_weight():
    from tf_impl import modules as K
    from torch_impl import modules as T

    t, k = T.mlp(), K.mlp()
    state = {n: p.detach().numpy() for n, p in t.named_parameters() if n != "2.weight"}
    with pytest.raises(AdapterError, match=re.escape("missing ['2.weight']")):
        adapter.torch_to_keras(t, k, state=state)
    # and a Keras model one layer short: the torch layer has nowhere to go
    short = keras().Sequential([K.Linear(10, 100), K.ReLU(), K.Linear(100, 50)])
    with pytest.raises(AdapterError, match=re.escape("layer path '4': torch Linear (weight (2, 50), bias (2,)) has no "
                                                     "Keras counterpart")):
        transfer(t, short)


def test_strict_transfer_refuses_keras_batchnorm_defaults():
    from torch import nn

    layer = keras().layers.BatchNormalization()
    layer.build((None, 6, 6, 3))
    with pytest.raises(AdapterError, match=r"(?s)eps=1e-05, .*epsilon=0.001.*momentum=0.1, .*momentum=0.99"):
        transfer(nn.BatchNorm2d(3), layer)


# -- reporting: margins, weak detections, undetected controls ----------------------------------------

N_SYNTHETIC = 1000  # wide enough that rounding the injected error is negligible next to it


def _synthetic(name, factor):
    """A negative control whose TF side is torch's 2x plus ``factor`` times its tf~reference tolerance
    (``factor`` 0: the TF side is right, so the control goes undetected)."""

    def tf_side(a, ctx):
        y = 2 * a["x"]
        m = np.max(np.abs(y))
        return {"y": y + factor * tm.pair_tolerance(N_SYNTHETIC, ctx.dtype, "float64", np.full(y.shape, m))}

    return Case(name=name, source="tests/test_controls.py", inputs=lambda rng: {"x": rng.standard_normal(6)},
                torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2}, tf=tf_side, reference=lambda a: {"y": 2 * a["x"]},
                quantities=(Q("y", "forward", n=N_SYNTHETIC),), expect="differ")


@pytest.fixture
def synthetic_controls():
    cases = {"weak": _synthetic("test.weak_control", 1.5), "undetected": _synthetic("test.undetected_control", 0.0),
             "strong": _synthetic("test.strong_control", 1e3)}
    for case in cases.values():
        REGISTRY[case.name] = case
    yield cases
    for case in cases.values():
        del REGISTRY[case.name]


def test_a_weak_detection_is_reported_but_passes(synthetic_controls, capsys, tmp_path):
    path = tmp_path / "r.json"
    assert 1.5 < WEAK_MARGIN
    assert main(["run", "--case", "test.weak_control,test.strong_control", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("detected, WEAK (margin 1.5)") == 2  # a row per dtype
    assert "4 negative controls: 4 detected (2 weak: test.weak_control [float32], margin 1.5, " \
           "test.weak_control [float64], margin 1.5)" in out
    records = json.loads(path.read_text())["negative_controls"]
    assert {(r["case"], r["dtype"]) for r in records} == {(c, d) for c in ("test.weak_control", "test.strong_control")
                                                         for d in ("float32", "float64")}
    for r in records:
        assert r["detected"] is True and r["bug"] is None and r["error"] is False
        if r["case"] == "test.weak_control":
            assert r["weak"] is True and r["margin"] == pytest.approx(1.5, rel=1e-2)
        else:
            assert r["weak"] is False and r["margin"] == pytest.approx(1e3, rel=1e-2)


def test_an_undetected_control_fails_the_run(synthetic_controls, capsys, tmp_path):
    path = tmp_path / "r.json"
    assert main(["run", "--case", "test.undetected_control,test.strong_control", "--dtype", "float64",
                 "--json", str(path)]) == 1
    out = capsys.readouterr().out
    assert "NOT DETECTED (margin 0)" in out
    assert "2 negative controls: 1 detected, 1 NOT DETECTED: test.undetected_control [float64] (margin 0)" in out
    (missed,) = [r for r in json.loads(path.read_text())["negative_controls"] if not r["detected"]]
    assert missed["case"] == "test.undetected_control" and missed["weak"] is False


def test_a_real_control_reports_its_margin(capsys, tmp_path):
    path = tmp_path / "r.json"
    assert main(["run", "--case", "modules.neg_linear_kernel_transposed", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "detected (margin" in out and "2 negative controls: 2 detected" in out and "WEAK" not in out
    for r in json.loads(path.read_text())["negative_controls"]:
        assert r["bug"] == "dense_kernel_transposed" and r["margin"] > WEAK_MARGIN and not r["weak"]


def test_margin_counts_only_the_tf_side_rows():
    res = result("modules.neg_linear_kernel_transposed", "float32")
    assert res.margin == max(r.comparison.ratio for r in tf_rows(res))
    assert math.isfinite(res.margin) and res.margin > 1
    assert all(r.comparison.passed for r in res.rows if r.pair == "torch~reference")
