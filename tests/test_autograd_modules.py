"""Each autograd tutorial module runs as ``python -m <package>.<module>`` and prints its key values.

One subprocess per package runs every module the way ``-m`` does
(``runpy.run_module(name, run_name="__main__")``), each after a marker line,
so the cost is one interpreter start and one framework import per package.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("autograd_basics", "dag", "mlp_tanh", "dynamic_graph", "gradient_descent", "higher_order", "inplace",
           "perceptron")
MARK = "=====MODULE "

# values each module's main() prints, whatever the framework's print format
KEY_VALUES = {
    "autograd_basics": [3.0, 0.3333, 0.6667, 2.0, 4.0, 8.0, 0.1, 0.05, 5.0, 16.0, 56.0, 27.0, 12.0, 75.0, 54.0,
                        24.0, 150.0],
    "mlp_tanh": [20.0, 10.0, 5.0],  # the parameter shapes (20, 10), (20,), (5, 20), (5,)
    "gradient_descent": [0.4246, -0.4246, 0.5099, -0.4901],
    "higher_order": [3.0, 0.75, 12.0, -6.0, 6.0, 0.42, 0.6397, -0.7269, 0.6216, -0.5652, 0.2527, 1.5, 24.0],
    "inplace": [12.0, 20.0, 28.0, 16.0, 24.0],
    "perceptron": [-12.0, 65.0, 36.0, 81.0, -8.0, 0.4621, 1.0689, 1.4621, 1.1499],
}
KEY_TEXT = {
    "autograd_basics": ["(x).requires_grad False", "(x + y).requires_grad False", "(x + z).requires_grad True"],
    "dynamic_graph": ["w[1] and w[2] get no gradient"],
    "higher_order": ["RuntimeError"],
    "inplace": ["RuntimeError"],
    "perceptron": ["wanted it to be negative and a -1", "v grad", "w grad"],
}


def outputs(package: str) -> dict[str, str]:
    script = (
        "import runpy, sys\n"
        f"for m in {MODULES!r}:\n"
        f"    print({MARK!r} + m, flush=True)\n"
        f"    runpy.run_module('{package}.' + m, run_name='__main__')\n"
        "    sys.stdout.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{package}: a module failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    parts = proc.stdout.split(MARK)[1:]
    return {p.split("\n", 1)[0]: p.split("\n", 1)[1] if "\n" in p else "" for p in parts}


def numbers(text: str) -> np.ndarray:
    """Every number printed, with TF's ``shape=(...)`` and ``dtype=...`` annotations removed."""
    text = re.sub(r"shape=\([^)]*\)|dtype=\w+|float32|float64|Variable:\d+", " ", text)
    return np.array([float(s) for s in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", text)])


def problems(package: str, module: str, text: str) -> list[str]:
    """What is missing from one module's output."""
    out = []
    printed = numbers(text)
    for v in KEY_VALUES.get(module, []):
        if not np.any(np.abs(printed - v) <= 5e-5 * max(1.0, abs(v))):
            out.append(f"did not print {v}")
    out += [f"did not print {s!r}" for s in KEY_TEXT.get(module, []) if s not in text]
    if module == "dag":
        # unseeded weights, as in the seed: q, x3 and x3.grad are printed first, and x3.grad = x3 / q;
        # each printed value is within 5e-5 (times its size, in scientific notation) of the true one
        q, x3, gx3 = printed[0], printed[1:6], printed[6:11]
        dq, dx3, dg = (5e-5 * np.maximum(1.0, np.abs(v)) for v in (q, x3, gx3))
        bound = dg + dx3 / q + np.abs(x3) * dq / q**2
        if not np.all(np.abs(gx3 - x3 / q) <= 2 * bound):
            out.append(f"printed x3.grad {gx3} is not x3 / q = {x3 / q}")
    return [f"python -m {package}.{module} {p}:\n{text}" for p in out]


# one test per package, not per module: each package is one subprocess, and under pytest-xdist a
# per-module parametrization would start it again in every worker
@pytest.mark.parametrize("package", ["torch_impl", "tf_impl"])
def test_modules_run_as_main(package):
    out = outputs(package)
    missing = [m for m in MODULES if m not in out]
    assert not missing, f"{package}: {missing} printed nothing"
    found = [p for m in MODULES for p in problems(package, m, out[m])]
    assert not found, "\n\n".join(found)
