"""The catalogue of porting bugs: each a mistake people really make when porting PyTorch to
Keras, and the negative control(s) that represent it (issue 8).

A negative control is a registered case with ``expect="differ"``: a realistic wrong port of
one construct, compared with the same tolerance model as the correct port; the suite passes
only if it is caught. Each entry here names, for each of its controls, the case of the
*correct* port of the same construct, which must pass: the evidence that the control is
caught because of the bug, not because the comparison fails on anything
(tests/test_controls.py runs both).

``equivalence run`` reports each control as detected with its margin: the largest observed
error over tolerance among the rows that compare the TF side (torch~tf, tf~reference),
``runner.CaseResult.margin``. A margin below :data:`WEAK_MARGIN` is a weak detection,
printed as a warning (docs/tolerances.md §9 says why that threshold).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .case import CaseError

#: a detection whose margin is below this is weak: reported as a warning, not a failure.
#: The tolerance is a worst-case bound whose constants are estimates: a recount of an operation
#: count or of the elementary-function charge moves it by up to ~2x, and the observed error of a
#: bug moves with the seed by ~1.5x (measured: TF32 in a linear layer, 8 seeds). A control
#: detected by less than 2 x 2 could be hidden by such a change rather than by a fix of the bug.
WEAK_MARGIN = 4.0

_BUG = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
_CASE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


@dataclass(frozen=True)
class Bug:
    """One porting bug and its negative controls.

    ``controls`` maps each negative-control case name to the case name of the correct port
    of the same construct (same inputs where possible), which must pass where the control
    must be detected.
    """

    name: str
    description: str
    controls: Mapping[str, str]
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _BUG.match(self.name):
            raise CaseError(f"bug name {self.name!r} must be lower_snake_case, e.g. 'dense_kernel_transposed'")
        if not isinstance(self.description, str) or len(self.description.strip()) < 10:
            raise CaseError(f"bug {self.name}: a description of at least a sentence is required")
        if not isinstance(self.controls, Mapping) or not self.controls:
            raise CaseError(f"bug {self.name}: controls must be a non-empty dict {{control case: correct-port case}}")
        for control, port in self.controls.items():
            for what, case in (("control", control), ("correct port", port)):
                if not isinstance(case, str) or not _CASE.match(case):
                    raise CaseError(f"bug {self.name}: {what} {case!r} is not a case name (dotted lower_snake_case)")
            if control == port:
                raise CaseError(f"bug {self.name}: control {control!r} names itself as its correct port")
        object.__setattr__(self, "controls", dict(self.controls))


CATALOGUE: dict[str, Bug] = {}


def catalogue(bug: Bug) -> Bug:
    """Add a bug to the catalogue; a case may represent one bug only."""
    if not isinstance(bug, Bug):
        raise CaseError(f"catalogue() takes a Bug, not {type(bug).__name__}")
    if bug.name in CATALOGUE:
        raise CaseError(f"bug {bug.name!r} is catalogued twice")
    for control in bug.controls:
        other = bug_of(control)
        if other is not None:
            raise CaseError(f"bug {bug.name}: control {control!r} already represents bug {other!r}")
    CATALOGUE[bug.name] = bug
    return bug


def bug_of(case_name: str) -> str | None:
    """The catalogued bug a negative-control case represents, or None."""
    return next((b.name for b in CATALOGUE.values() if case_name in b.controls), None)


def validate(registry: Mapping) -> None:
    """Check the catalogue against the case registry: every control is a registered negative
    control, every correct port a registered positive case covering the control's dtypes."""
    problems = []
    for bug in CATALOGUE.values():
        for control, port in bug.controls.items():
            c, p = registry.get(control), registry.get(port)
            if c is None:
                problems.append(f"bug {bug.name}: control {control!r} is not a registered case")
            elif c.expect != "differ":
                problems.append(f"bug {bug.name}: control {control!r} has expect={c.expect!r}, not 'differ'")
            if p is None:
                problems.append(f"bug {bug.name}: correct port {port!r} (of {control}) is not a registered case")
            elif p.expect != "equal":
                problems.append(f"bug {bug.name}: correct port {port!r} is itself a negative control")
            elif c is not None and not set(c.dtypes) <= set(p.dtypes):
                problems.append(f"bug {bug.name}: correct port {port!r} runs in {p.dtypes}, control {control!r} in "
                                f"{c.dtypes}")
    if problems:
        raise CaseError("the catalogue of porting bugs does not match the registry:\n  " + "\n  ".join(problems))


# -- reporting ----------------------------------------------------------------------------------


def status(res) -> dict:
    """A negative control's result (a runner.CaseResult) as a record: detected, margin, weak."""
    margin = res.margin if not res.error else math.nan
    detected = bool(not res.error and res.detected)
    return {"case": res.case.name, "dtype": res.ctx.dtype, "bug": bug_of(res.case.name), "detected": detected,
            "margin": margin, "weak": bool(detected and margin < WEAK_MARGIN), "error": bool(res.error)}


def summary(results: Iterable) -> str | None:
    """One line for the negative controls among ``results`` (None if there are none), e.g.
    ``13 negative controls: 13 detected (1 weak: NAME [float32], margin 1.7)``."""
    records = [status(r) for r in results if r.case.expect == "differ"]
    if not records:
        return None
    detected = [r for r in records if r["detected"]]
    weak = [r for r in detected if r["weak"]]
    missed = [r for r in records if not r["detected"]]
    text = f"{len(records)} negative controls: {len(detected)} detected"
    if weak:
        text += f" ({len(weak)} weak: " + ", ".join(f"{r['case']} [{r['dtype']}], margin {r['margin']:.3g}"
                                                     for r in weak) + ")"
    if missed:
        text += f", {len(missed)} NOT DETECTED: " + ", ".join(
            f"{r['case']} [{r['dtype']}]" + (" (error)" if r["error"] else f" (margin {r['margin']:.3g})")
            for r in missed)
    return text


# -- the catalogue --------------------------------------------------------------------------------
# The first thirteen are issue 8's list; the rest are the other controls the suite carries.

for _bug in (
    Bug("dense_kernel_transposed", "torch Linear weight (out, in) copied into a square Keras Dense kernel "
        "(in, out) without the transpose", {"modules.neg_linear_kernel_transposed": "modules.linear_square"},
        "pitfalls.md (layouts and weights)"),
    Bug("flatten_unpermuted", "a Dense after a channels_last Flatten given torch's rows in C, H, W order",
        {"modules.net_flatten_unpermuted": "modules.net"}, "nn-transfer #16, keras #13830"),
    Bug("conv_kernel_oihw", "a torch conv weight (O, I, kH, kW) reshaped into the Keras HWIO kernel instead of "
        "transposed", {"modules.neg_conv2d_kernel_oihw_reshaped": "modules.conv2d_basic"},
        "pitfalls.md (layouts and weights)"),
    Bug("same_padding_stride_2", "torch padding=1 at stride 2 ported as Keras padding='same', which pads (0, 1)",
        {"functional.negative.conv2d_keras_same_padding": "functional.conv2d.stride_padding"},
        "pitfalls.md (padding and pooling)"),
    Bug("max_pool_zero_padding", "torch max-pool padding (-inf) ported as ZeroPadding2D + MaxPooling2D",
        {"modules.max_pool2d_zero_padding": "modules.max_pool2d_padding",
         "functional.negative.max_pool2d_zero_padding": "functional.max_pool2d.padding_negative_inputs"},
        "pitfalls.md (padding and pooling)"),
    Bug("ceil_mode_ignored", "torch pooling with ceil_mode=True ported as Keras 'valid' pooling, dropping the "
        "last window", {"modules.neg_max_pool2d_ceil_mode_ignored": "modules.max_pool2d_ceil_global_average",
                        "modules.neg_avg_pool2d_ceil_mode_ignored": "modules.avg_pool2d_ceil_global_average"},
        "pitfalls.md (padding and pooling)"),
    Bug("relu_gradient_at_zero", "MyReLU (which passes the gradient at 0) ported as tf.nn.relu (which blocks it)",
        {"ladder.my_relu_builtin_relu": "ladder.my_relu_zeros"}, "pitfalls.md (autograd semantics)"),
    Bug("mse_mean_for_sum", "MSELoss(reduction='sum') ported as a Keras MeanSquaredError, which averages (over "
        "everything, or per sample before its 'sum')",
        {"ladder.neg_nn_keras_mse_mean": "ladder.nn_step", "ladder.nn_keras_mse_sum": "ladder.nn_step"},
        "seed 003 §PyTorch: nn"),
    Bug("adam_epsilon_placement", "torch Adam ported as keras.optimizers.Adam, which adds epsilon before the bias "
        "correction", {"ladder.optim_adam_keras_stock": "ladder.optim_adam_eps_step"}, "keras #17391, optax #571"),
    Bug("batchnorm_conventions", "torch BatchNorm (eps 1e-5, momentum 0.1) ported as Keras BatchNormalization "
        "with its defaults (epsilon 1e-3, momentum 0.99)",
        {"modules.neg_batchnorm2d_keras_defaults_eval": "modules.batchnorm2d_eval",
         "modules.neg_batchnorm2d_keras_momentum_train": "modules.batchnorm2d_train"},
        "pitfalls.md (optimizers and normalisation)"),
    Bug("tf32_left_on", "float32 matmul/conv run in TF32 (TensorFlow's GPU default) against strict float32; "
        "here the CPU emulation of TF32's input rounding",
        {"modules.neg_linear_tf32": "modules.linear", "modules.neg_net_tf32": "modules.net"},
        "pitfalls.md (GPUs)"),
    Bug("bias_missing", "a Keras layer with use_bias=False where torch has a bias; only the kernel copied",
        {"modules.neg_linear_bias_missing": "modules.linear"}, "pitfalls.md (layouts and weights)"),
    Bug("weight_dropped", "one parameter not transferred, left at its Keras initialisation",
        {"modules.neg_mlp_weight_dropped": "modules.mlp"}, "a hand-written copy loop"),
    Bug("batchnorm_biased_running_var", "torch BatchNorm training ported as Keras BatchNormalization with the "
        "right eps and momentum, whose moving variance takes the biased batch variance (torch: unbiased)",
        {"modules.neg_batchnorm2d_keras_biased_running_var": "modules.batchnorm2d_train"},
        "pitfalls.md (optimizers and normalisation)"),
    Bug("gradient_accumulation_forgotten", "backward()'s accumulation into .grad ported as tape.gradient, which "
        "does not accumulate", {"autograd.neg_accumulation_forgotten": "autograd.accumulation"},
        "pitfalls.md (autograd semantics)"),
    Bug("stop_gradient_forgotten", "a.detach() ported without tf.stop_gradient",
        {"autograd.neg_detach_forgotten": "autograd.descent_detach"}, "seed 001 §4.2"),
    Bug("max_pool_tie_gradient_split", "max-pooling ported through tf.reduce_max, whose gradient splits among tied "
        "maxima (torch: the first)",
        {"functional.negative.max_pool2d_tie_gradient_split": "functional.max_pool2d_seed"},
        "pitfalls.md (padding and pooling)"),
    Bug("max_pool_indices_nhwc", "return_indices ported as tf.nn.max_pool_with_argmax, whose flat indices count "
        "NHWC positions", {"functional.negative.max_pool2d_nhwc_argmax_indices": "functional.max_pool2d.seed_with_indices"},
        "pitfalls.md (padding and pooling)"),
    Bug("sgd_weight_decay_decoupled", "torch SGD's coupled weight decay ported as Keras SGD's weight_decay, which "
        "is decoupled", {"ladder.optim_sgd_weight_decay_keras_stock": "ladder.optim_sgd_weight_decay_step"},
        "pitfalls.md (optimizers and normalisation)"),
    Bug("sgd_momentum_rounded_to_float32", "Keras SGD in float64 rounds its momentum through float32",
        {"ladder.optim_sgd_momentum_keras_float64": "ladder.optim_sgd_momentum_step"}, "keras SGD's ops.cast"),
):
    catalogue(_bug)

