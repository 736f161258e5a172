"""Golden records: every case's inputs and compared values, saved on one machine and
checked on another (another device, another framework version, or a machine with
only one of the frameworks' GPU builds).

A record directory holds one ``<case>.npz`` per case (keys ``<dtype>/<side>/<name>``
with side ``input``, ``torch``, ``tf`` or ``reference``; loaded with
``allow_pickle=False``) and ``manifest.json`` (format, framework versions, devices,
dtypes, the numerical settings, and the SHA-256 of each file). Every file is written
to a temporary name and renamed into place, the manifest last, so a run stopped
midway leaves no record that ``check`` would accept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .case import REGISTRY, Case, all_cases
from .frameworks import Context, settings, versions
from .runner import SIDES, CaseResult, compare_values, compute, make_inputs

FORMAT = 1
MANIFEST = "manifest.json"


class RecordError(ValueError):
    """A record that cannot be used: missing, corrupt, from an unknown case or format."""


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(directory: str | os.PathLike, cases: Iterable[Case], contexts: Sequence[Context]) -> dict:
    """Compute and save every case in every context; returns the manifest."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # the old manifest must not vouch for new files
    entries = {}
    for case in cases:
        arrays: dict[str, np.ndarray] = {}
        for ctx in contexts:
            if ctx.dtype not in case.dtypes:
                continue
            inputs, wide = make_inputs(case, ctx.dtype)
            values = {"input": inputs, "torch": compute(case, "torch", inputs, ctx),
                      "tf": compute(case, "tf", inputs, ctx), "reference": compute(case, "reference", wide, ctx)}
            for side, named in values.items():
                for name, value in named.items():
                    arrays[f"{ctx.dtype}/{side}/{name}"] = np.asarray(value)
        path = out / f"{case.name}.npz"
        _atomic_write(path, lambda f: np.savez(f, **arrays))
        entries[case.name] = {"file": path.name, "sha256": _sha256(path),
                              "dtypes": sorted({k.split("/")[0] for k in arrays})}
    ctx = contexts[0]
    manifest = {"format": FORMAT, "versions": versions(), "settings": settings(),
                "device": {"torch": ctx.torch_device, "tf": ctx.tf_device}, "cases": entries}
    _atomic_write(out / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))
    return manifest


def load_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise RecordError(f"{directory}: no {MANIFEST}; not a record directory (or its recording did not finish)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: corrupt manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("cases"), dict):
        raise RecordError(f"{path}: not a format-{FORMAT} manifest")
    return manifest


def load_case(directory: str | os.PathLike, name: str, entry: dict) -> dict[str, np.ndarray]:
    if name not in REGISTRY:
        raise RecordError(f"the record holds case {name!r}, which this version does not know")
    path = Path(directory) / str(entry.get("file", ""))
    if not path.is_file():
        raise RecordError(f"{path}: missing file of case {name!r}")
    if _sha256(path) != entry.get("sha256"):
        raise RecordError(f"{path}: corrupt (its SHA-256 does not match the manifest)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise RecordError(f"{path}: unreadable ({e})") from None


def check(directory: str | os.PathLike, frameworks: Sequence[str], make_ctx) -> list[CaseResult]:
    """Recompute ``frameworks`` on the recorded inputs and compare with the record.

    Each recomputed side is compared with the same side of the record (both in the
    run's precision) and with the recorded float64 reference.
    """
    bad = [f for f in frameworks if f not in SIDES]
    if bad or not frameworks:
        raise ValueError(f"frameworks must be a non-empty subset of {SIDES}, got {list(frameworks)}")
    manifest = load_manifest(directory)
    all_cases()  # registers the cases the record names
    results = []
    for name, entry in sorted(manifest["cases"].items()):
        arrays = load_case(directory, name, entry)
        case = REGISTRY[name]
        for dtype in entry.get("dtypes", []):
            ctx = make_ctx(dtype)
            res = CaseResult(case, ctx)
            try:
                inputs = _section(arrays, dtype, "input")
                wide = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.items()}
                outs = {"reference": _section(arrays, dtype, "reference")}
                pairs = []
                for side in frameworks:
                    outs[f"{side}@record"] = _section(arrays, dtype, side)
                    outs[side] = compute(case, side, inputs, ctx)
                    pairs += [(side, f"{side}@record", ctx.precision(side), dtype),
                              (side, "reference", ctx.precision(side), "float64")]
                res.rows = compare_values(case, ctx, wide, outs, pairs)
            except RecordError:
                raise
            except Exception as exc:
                res.error = f"{type(exc).__name__}: {exc}"
            results.append(res)
    return results


def _section(arrays: dict[str, np.ndarray], dtype: str, side: str) -> dict[str, np.ndarray]:
    prefix = f"{dtype}/{side}/"
    found = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    if not found:
        raise RecordError(f"the record has no {side} values for {dtype}")
    return found


__all__ = ["RecordError", "record", "check", "load_manifest", "load_case"]
