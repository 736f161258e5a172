"""Cross-framework equivalence checks between PyTorch and TensorFlow/Keras."""

from .adapter import AdapterError, keras_to_torch, keras_values, torch_to_keras, torch_values
from .case import REGISTRY, Case, CaseError, Override, Q, Quantity, all_cases, register, select
from .compare import Comparison, compare, ulp_distance
from .frameworks import Context, DeviceError
from .runner import CaseResult, Row, run_case
from .tolerance import ELEMENTARY, gamma, unit_roundoff

__all__ = [
    "REGISTRY", "Case", "CaseError", "Override", "Q", "Quantity", "all_cases", "register", "select",
    "Comparison", "compare", "ulp_distance", "Context", "DeviceError", "CaseResult", "Row", "run_case",
    "ELEMENTARY", "gamma", "unit_roundoff",
    "AdapterError", "keras_to_torch", "keras_values", "torch_to_keras", "torch_values",
]
__version__ = "0.1.0"
