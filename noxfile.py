"""The version matrix: each cell installs one TensorFlow and one torch release and
runs the main job and the tests. docs/compatibility.md records which cells ran.

    nox -s matrix                                    # every cell
    nox -s "matrix(tensorflow='2.20.0', torch='2.13.0')"   # one cell
    nox -s matrix -- -x                              # extra arguments go to pytest
"""

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

TENSORFLOW = ["2.19.0", "2.20.0", "2.21.0"]
# torch 2.13.0 is the CPU build the default install uses; 2.14.1 is the next release
# (a CUDA build from the registry: several GB, but it runs on the CPU as well).
TORCH = ["2.13.0", "2.14.1"]
KERAS = "3.15.1"


@nox.session(python="3.11")
@nox.parametrize("torch", TORCH)
@nox.parametrize("tensorflow", TENSORFLOW)
def matrix(session: nox.Session, tensorflow: str, torch: str) -> None:
    session.install(f"torch=={torch}", f"tensorflow-cpu=={tensorflow}", f"keras=={KERAS}")
    session.install("-e", ".[test]")
    cell = f"tf{tensorflow}-torch{torch}"
    # the float64 NumPy references depend on neither framework: the cells share them
    # (equivalence/refcache.py; keyed by the package's code, NumPy's version and the inputs)
    session.env["EQUIVALENCE_REFERENCE_CACHE"] = str(Path(".nox", "reference-cache").resolve())
    session.run("python", "-c", "import torch, tensorflow, keras; print(torch.__version__, tensorflow.__version__, keras.__version__)")
    session.run("equivalence", "run", "--json", f"reports/matrix-{cell}.json")
    session.run("python", "-m", "pytest", "-n", "auto", "-q", *session.posargs)
