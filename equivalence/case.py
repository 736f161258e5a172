"""Cases: one declaration per tutorial construct, checked when declared.

A case names what it compares and how each framework computes it::

    register(Case(
        name="autograd.norm_grad",
        source="seed 000 §2; seed 001 §4.2",
        inputs=lambda rng: {"x": np.array([1.0, 2.0, 2.0])},
        torch=lambda a, ctx: ...,        # returns {"l": ..., "grad:x": ...}
        tf=lambda a, ctx: ...,           # the same names
        reference=lambda a: ...,         # NumPy float64; or "torch" / "tf" for that framework in float64
        quantities=(Q("l", "forward", n=4 + ELEMENTARY), Q("grad:x", "grad", n=...)),
    ))

``inputs`` gets a seeded ``numpy.random.Generator`` and returns float64 arrays
(integers stay integers). The runner rounds the floating arrays once to the
run's dtype; both frameworks receive those same arrays, and the float64
reference receives them widened back to float64, so input rounding is never
counted as a disagreement.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frameworks import DTYPES

#: what a quantity is; the generic tests are parametrized by these
KINDS = ("forward", "grad", "param_grad", "higher_order", "step", "trajectory", "behaviour")
REFERENCES = ("torch", "tf")
_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class CaseError(ValueError):
    """A case declaration is inconsistent; raised when the case is declared."""


@dataclass(frozen=True)
class Quantity:
    """One compared value.

    ``n`` is the operation count of the tolerance model (docs/tolerances.md):
    the length of the longest chain of dependent roundings behind one element.
    ``n=0`` demands bit equality (shapes, flags, integer results).
    ``magnitude(inputs64, reference)`` may return elementwise magnitudes
    (``sum |x_i||y_i|``-style) where the value itself suffers cancellation;
    without it the magnitude is ``max |reference|`` over the tensor. With
    ``magnitude_uses_dtype=True`` it also gets the run's dtype (see runner._magnitude);
    ``reference`` then includes any auxiliary ``"_name"`` entries a NumPy reference returned.
    """

    name: str
    kind: str
    n: int
    magnitude: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], np.ndarray] | None = None
    doc: str = ""
    #: matmul/conv reductions in the chain; used only under --allow-tf32 (TF32 rounds their inputs)
    reductions: int = 1
    #: the magnitude function takes the run's dtype as a third argument (runner._magnitude)
    magnitude_uses_dtype: bool = False

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise CaseError(f"a quantity needs a non-empty name, got {self.name!r}")
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise CaseError(f"quantity {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")
        for attr in ("n", "reductions"):
            value = getattr(self, attr)
            if not _is_int(value) or value < 0:
                raise CaseError(f"quantity {self.name!r}: {attr} must be an int >= 0, not {value!r}")
            object.__setattr__(self, attr, int(value))
        if self.magnitude is not None and not callable(self.magnitude):
            raise CaseError(f"quantity {self.name!r}: magnitude must be callable")
        if not isinstance(self.magnitude_uses_dtype, (bool, np.bool_)):
            raise CaseError(f"quantity {self.name!r}: magnitude_uses_dtype must be True or False, "
                            f"not {self.magnitude_uses_dtype!r}")
        if not isinstance(self.doc, str):
            raise CaseError(f"quantity {self.name!r}: doc must be a str, not {type(self.doc).__name__}")


Q = Quantity


@dataclass(frozen=True)
class Override:
    """Widen the model's tolerance for some quantities: data, with its reason."""

    quantity: str  # a glob over quantity names
    factor: float
    reason: str
    dtype: str | None = None  # None: every dtype

    def __post_init__(self):
        if not isinstance(self.quantity, str) or not self.quantity:
            raise CaseError(f"override: quantity must be a non-empty glob over quantity names, got {self.quantity!r}")
        if not (isinstance(self.factor, (int, float, np.integer, np.floating)) and not isinstance(self.factor, bool)
                and math.isfinite(self.factor) and self.factor >= 1):
            raise CaseError(f"override {self.quantity!r}: factor must be a finite number >= 1 (overrides only "
                            f"widen), got {self.factor!r}")
        if not isinstance(self.reason, str) or len(self.reason.strip()) < 10:
            raise CaseError(f"override {self.quantity!r}: a reason of at least a sentence is required, "
                            f"got {self.reason!r}")
        if self.dtype is not None and (not isinstance(self.dtype, str) or self.dtype not in DTYPES):
            raise CaseError(f"override {self.quantity!r}: dtype must be one of {DTYPES} or None, got {self.dtype!r}")


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    torch: Callable[[dict[str, np.ndarray], Any], Mapping[str, Any]]
    tf: Callable[[dict[str, np.ndarray], Any], Mapping[str, Any]]
    quantities: tuple[Quantity, ...]
    reference: Callable[[dict[str, np.ndarray]], Mapping[str, Any]] | str = "torch"
    seed: int = 0
    dtypes: tuple[str, ...] = DTYPES
    overrides: tuple[Override, ...] = ()
    #: "equal" for a port; "differ" for a negative control, a known-wrong port the
    #: suite must detect (the case passes when its TF side is caught disagreeing)
    expect: str = "equal"
    #: the precision the floating inputs are drawn in (None: as ``inputs`` returns them, float64):
    #: "float32" rounds them once to float32 values for every dtype's run, as the tutorials'
    #: ``torch.randn`` draws them; then the float32 and float64 runs get the same inputs and share
    #: one float64 reference (runner.compute), which for a long trajectory is most of a run's cost
    input_precision: str | None = None
    doc: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise CaseError(f"case name {self.name!r} must be dotted lower_snake_case, e.g. 'autograd.norm_grad'")
        if not isinstance(self.source, str) or not self.source.strip():
            raise CaseError(f"case {self.name}: source (the tutorial it comes from) is required, as a str")
        for attr in ("inputs", "torch", "tf"):
            if not callable(getattr(self, attr)):
                raise CaseError(f"case {self.name}: {attr} must be callable")
        if not callable(self.reference) and (not isinstance(self.reference, str) or self.reference not in REFERENCES):
            raise CaseError(f"case {self.name}: reference must be a NumPy function or one of {REFERENCES}")
        for attr, kind in (("quantities", Quantity), ("overrides", Override), ("dtypes", str), ("tags", str)):
            value = getattr(self, attr)
            if isinstance(value, (str, kind)) or not isinstance(value, (tuple, list)):
                raise CaseError(f"case {self.name}: {attr} must be a tuple or list of {kind.__name__}, "
                                f"got {type(value).__name__} {value!r}")
            bad = [v for v in value if not isinstance(v, kind)]
            if bad:
                raise CaseError(f"case {self.name}: {attr} must hold {kind.__name__} objects only, got {bad[0]!r}")
            object.__setattr__(self, attr, tuple(value))
        if not isinstance(self.doc, str):
            raise CaseError(f"case {self.name}: doc must be a str, not {type(self.doc).__name__}")
        if not self.quantities:
            raise CaseError(f"case {self.name}: declares no quantities to compare")
        names = [q.name for q in self.quantities]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise CaseError(f"case {self.name}: quantity names repeated: {dupes}")
        for o in self.overrides:
            if not fnmatch.filter(names, o.quantity):
                raise CaseError(f"case {self.name}: override {o.quantity!r} matches no quantity of {names}")
        bad = [d for d in self.dtypes if d not in DTYPES]
        if bad or not self.dtypes:
            raise CaseError(f"case {self.name}: dtypes must be a non-empty subset of {DTYPES}, got {self.dtypes}")
        if not isinstance(self.expect, str) or self.expect not in ("equal", "differ"):
            raise CaseError(f"case {self.name}: expect must be 'equal' or 'differ', not {self.expect!r}")
        if self.input_precision is not None and self.input_precision not in DTYPES:
            raise CaseError(f"case {self.name}: input_precision must be one of {DTYPES} or None, "
                            f"not {self.input_precision!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise CaseError(f"case {self.name}: seed must be an int >= 0, not {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if any(q.kind == k for q in self.quantities))

    def quantity(self, name: str) -> Quantity:
        for q in self.quantities:
            if q.name == name:
                return q
        raise KeyError(name)

    def factor(self, quantity: str, dtype: str) -> tuple[float, str]:
        """The widening factor for one quantity and its reasons (largest wins)."""
        factor, reasons = 1.0, []
        for o in self.overrides:
            if fnmatch.fnmatchcase(quantity, o.quantity) and o.dtype in (None, dtype):
                factor = max(factor, float(o.factor))
                reasons.append(o.reason)
        return factor, "; ".join(reasons)


REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    if not isinstance(case, Case):
        raise CaseError(f"register() takes a Case, not {type(case).__name__}")
    if case.name in REGISTRY:
        raise CaseError(f"case {case.name!r} is registered twice")
    REGISTRY[case.name] = case
    return case


def all_cases() -> list[Case]:
    from . import cases  # noqa: F401  (registers the topic modules)

    return sorted(REGISTRY.values(), key=lambda c: c.name)


def select(patterns: str | None) -> list[Case]:
    """Cases whose names match any of the comma-separated globs (all if None)."""
    cases = all_cases()
    if not patterns:
        return cases
    globs = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [c for c in cases if any(fnmatch.fnmatchcase(c.name, g) for g in globs)]
    if not chosen:
        raise KeyError(f"no case matches {patterns!r}; `equivalence list` shows the names")
    return chosen
