"""Cross-framework equivalence checks between PyTorch and TensorFlow/Keras."""

import numpy as np

from .adapter import AdapterError, keras_to_torch, keras_values, torch_to_keras, torch_values
from .api import (Divergence, EquivalenceError, ModelComparison, TensorRow, TransferEntry, TransferReport,
                  assert_equivalent, transfer)
from .api import compare as compare_models
from .case import REGISTRY, Case, CaseError, Override, Q, Quantity, all_cases, register, select
from .compare import Comparison, ulp_distance
from .compare import compare as compare_arrays
from .frameworks import Context, DeviceError
from .runner import CaseResult, Row, run_case
from .tolerance import ELEMENTARY, gamma, unit_roundoff

__all__ = [
    "REGISTRY", "Case", "CaseError", "Override", "Q", "Quantity", "all_cases", "register", "select",
    "Comparison", "compare", "compare_arrays", "compare_models", "ulp_distance", "Context", "DeviceError",
    "CaseResult", "Row", "run_case", "ELEMENTARY", "gamma", "unit_roundoff",
    "AdapterError", "keras_to_torch", "keras_values", "torch_to_keras", "torch_values",
    "transfer", "assert_equivalent", "TransferReport", "TransferEntry", "ModelComparison", "TensorRow",
    "Divergence", "EquivalenceError",
]
__version__ = "0.1.0"


def compare(*args, **kwargs):
    """``compare(torch_model, keras_model, inputs, ...)``: :func:`equivalence.api.compare`.

    With an array first (``compare(actual, expected, tolerance)``) it is the elementwise
    :func:`equivalence.compare.compare`. ``compare_models`` and ``compare_arrays`` name each
    unambiguously."""
    first = args[0] if args else kwargs.get("actual", kwargs.get("torch_model"))
    models = "torch_model" in kwargs or "keras_model" in kwargs or any(_is_model(a) for a in args[:2])
    if not models and ("actual" in kwargs or isinstance(first, (np.ndarray, np.generic, int, float, list))):
        return compare_arrays(*args, **kwargs)
    return compare_models(*args, **kwargs)


def _is_model(obj) -> bool:
    """A torch module or a Keras layer, told by its classes' modules (importing neither)."""
    return any(c.__module__.split(".")[0] in ("torch", "keras", "tf_keras") and c.__name__ in ("Module", "Layer")
               for c in type(obj).__mro__)
