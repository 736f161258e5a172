"""An on-disk cache of the float64 NumPy references, shared by processes and runs (opt-in).

A built-in case's NumPy reference is a function of the code that computes it and of its
float64 inputs alone: it does not depend on torch, TensorFlow or Keras, nor on the device
or the dtype under test. The ladder's trajectory references (500 optimizer steps carrying
running error bounds) are most of ``equivalence run``'s time (benchmarks/README.md), and a
version matrix (noxfile.py) or a CI job that runs ``equivalence run`` and then the tests
computes the same references again in every process. With a cache directory
(``equivalence run --reference-cache DIR``, or ``EQUIVALENCE_REFERENCE_CACHE=DIR`` for any
process, pytest-xdist workers included) each is computed once and loaded afterwards.

What a cached value is keyed by (SHA-256 of all of it):

* the case's name and the SHA-256 of its float64 inputs (dtype, shape and bytes of each);
* a fingerprint of the code: every ``.py`` file of the ``equivalence``, ``torch_impl`` and
  ``tf_impl`` packages, by path and content, so any change to a case, the tolerance model, a
  helper or a port is a miss;
* NumPy's version, the machine's architecture and byte order.

Only references that took at least :data:`MIN_SECONDS` of CPU time (of the computing thread,
so that a loaded machine does not change the choice) are stored: the ladder's trajectories
(0.6-10 s each on a 2-core machine); every other built-in reference takes under 30 ms, and
some are 10 MB of float64 bounds, which loading would not make faster.

Only registered cases whose reference function is defined in the ``equivalence`` package are
cached (:func:`cacheable`): the fingerprint covers their code. A user's own case
(``equivalence.Case`` with a reference from another module) is always computed, since code
it imports from elsewhere is not in the key, and so is any case that is not in the registry.
A framework reference (``reference="torch"`` / ``"tf"``) is never cached: it depends on the
framework's version.

Entries are ``.npz`` files (loaded with ``allow_pickle=False``) written atomically
(:mod:`equivalence.files`), so concurrent writers of one key (two xdist workers) leave one
complete file. An entry that cannot be read, or that lacks a quantity of the case, is
recomputed and rewritten, with a warning. Nothing is ever evicted: delete the directory to
empty it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import os
import platform
import sys
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: the environment variable that names the cache directory for any process (empty: no cache)
ENV = "EQUIVALENCE_REFERENCE_CACHE"
FORMAT = 1
#: references computed in less CPU time than this are not stored (runner.compute times them)
MIN_SECONDS = 0.1
#: the code a built-in case's reference can run: the suite and the ports it imports helpers from
#: (the ladder's cases take the tutorial's data and parameters from torch_impl.ladder_numpy)
_PACKAGES = ("equivalence", "torch_impl", "tf_impl")


@functools.cache
def fingerprint() -> str:
    """SHA-256 of the package's code and of what else decides a NumPy reference's bits (read
    from disk once per process, at the first use)."""
    h = hashlib.sha256(f"format {FORMAT}\0numpy {np.__version__}\0{platform.machine()}\0{sys.byteorder}\0".encode())
    for package in _PACKAGES:
        root = _package_dir(package)
        h.update(f"{package}\0{'present' if root else 'absent'}\0".encode())
        for path in sorted(root.rglob("*.py")) if root else ():
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _package_dir(name: str) -> Path | None:
    """Where a package's code is, found without importing it (tf_impl would import TensorFlow)."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def cacheable(case) -> bool:
    """A registered case (``equivalence.case.register``) whose NumPy reference is defined in the
    ``equivalence`` package, so that the fingerprint covers its code. A case built at run time
    and not registered (a copy with other settings, a property test's call) is not: a reference
    closure could carry parameters that neither its name nor its inputs show."""
    from .case import REGISTRY

    return in_package(case.reference) and REGISTRY.get(case.name) is case


def in_package(fn) -> bool:
    """A function defined in the ``equivalence`` package (not a framework name such as "torch")."""
    module = getattr(fn, "__module__", None) or ""
    return callable(fn) and module.split(".")[0] == "equivalence"


class ReferenceCache:
    """One cache directory (created on the first store)."""

    def __init__(self, directory: str | os.PathLike):
        directory = os.fspath(directory)
        if not directory:
            raise ValueError("the reference cache needs a directory, not an empty path")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"reference cache {self.directory}: exists and is not a directory")

    def path(self, case, inputs_digest: str) -> Path:
        key = hashlib.sha256(f"{fingerprint()}\0{case.name}\0{inputs_digest}".encode()).hexdigest()
        return self.directory / f"{key}.npz"

    def load(self, case, inputs_digest: str) -> dict[str, np.ndarray] | None:
        """The cached reference, or None (not cached, or an entry that cannot be used: warned)."""
        path = self.path(case, inputs_digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                names = [str(n) for n in npz["names"]]
                out = {name: npz[f"arr_{i}"] for i, name in enumerate(names)}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"reference cache entry {path} for {case.name} cannot be read ({e}); recomputing it",
                          RuntimeWarning)
            return None
        missing = sorted({q.name for q in case.quantities} - set(out))
        if missing:
            warnings.warn(f"reference cache entry {path} for {case.name} lacks {', '.join(missing)}; recomputing it",
                          RuntimeWarning)
            return None
        return out

    def store(self, case, inputs_digest: str, out: Mapping[str, np.ndarray]) -> None:
        from .files import atomic_write

        if not cacheable(case):
            raise ValueError(f"case {case.name}: its reference is not cacheable (see refcache.cacheable)")
        # positional arrays and a names array: a quantity may be called anything (np.savez's own
        # keywords included)
        names = np.array(list(out))  # str: a unicode array
        arrays = [np.asarray(v) for v in out.values()]
        if any(a.dtype.hasobject for a in arrays):
            return  # not loadable without pickle: left uncached
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path(case, inputs_digest), lambda f: np.savez(f, *arrays, names=names))
        except OSError as e:  # the run goes on with the reference it computed
            warnings.warn(f"reference cache {self.directory}: cannot store {case.name}'s reference "
                          f"({e.strerror or e})", RuntimeWarning)


def active() -> ReferenceCache | None:
    """The cache ``EQUIVALENCE_REFERENCE_CACHE`` names, or None."""
    directory = os.environ.get(ENV)
    return ReferenceCache(directory) if directory else None
