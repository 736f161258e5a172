"""Golden records: every case's inputs and compared values, saved on one machine and
checked on another (another device, another framework version, or a machine with
only one of the frameworks' GPU builds).

A record directory holds one ``<case>.npz`` per case (keys ``<dtype>/<side>/<name>``
with side ``input``, ``torch``, ``tf`` or ``reference``; loaded with
``allow_pickle=False``) and ``manifest.json`` (format, framework versions, devices,
dtypes, the numerical settings, and the SHA-256 of each file). Every file is written
to a temporary name and renamed into place, the manifest last (see :func:`record`), so
a run stopped midway leaves either the previous record untouched or no manifest: never
a record that ``check`` would accept with missing or partial files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .case import REGISTRY, Case, all_cases
from .files import atomic_write, fsync_directory, stage
from .frameworks import DTYPES, Context, settings, versions
from .runner import SIDES, CaseResult, compare_values, compute, make_inputs

FORMAT = 1
MANIFEST = "manifest.json"


class RecordError(ValueError):
    """A record that cannot be used: missing, corrupt, from an unknown case or format."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(directory: str | os.PathLike, cases: Iterable[Case], contexts: Sequence[Context]) -> dict:
    """Compute and save every case in every context; returns the manifest.

    Each case file is first written (and fsynced) under a temporary name; only when every case
    is computed are they renamed into place, the previous manifest having been removed first,
    and the new manifest written last (equivalence.files). A recording stopped while computing
    leaves a previous record in ``directory`` untouched (and checkable); one stopped while the
    files are renamed leaves no manifest, so ``check`` refuses the directory.
    """
    cases, contexts = list(cases), list(contexts)
    if not cases:
        raise RecordError("nothing to record: no case given")
    if not contexts or not all(isinstance(c, Context) for c in contexts):
        raise RecordError(f"contexts must be a non-empty sequence of Context, got {contexts!r}")
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecordError(f"{directory}: cannot be used as a record directory ({e.strerror or e})") from None
    staged: dict[str, Path] = {}
    entries = {}
    try:
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
            name = f"{case.name}.npz"
            staged[name] = stage(out / name, lambda f: np.savez(f, **arrays))
            entries[case.name] = {"file": name, "sha256": _sha256(staged[name]),
                                  "dtypes": sorted({k.split("/")[0] for k in arrays})}
        ctx = contexts[0]
        manifest = {"format": FORMAT, "versions": versions(), "settings": settings(),
                    "device": {"torch": ctx.torch_device, "tf": ctx.tf_device}, "cases": entries}
        text = json.dumps(manifest, indent=1, sort_keys=True)
        # commit: no manifest while the case files change, the new one last
        (out / MANIFEST).unlink(missing_ok=True)
        fsync_directory(out)
        for name in list(staged):
            os.replace(staged[name], out / name)
            del staged[name]
        fsync_directory(out)
        atomic_write(out / MANIFEST, text.encode())
    finally:
        for tmp in staged.values():  # stopped before the commit: the previous record stays as it was
            tmp.unlink(missing_ok=True)
    return manifest


def _directory(directory) -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path (str or os.PathLike), got {type(directory).__name__}")
    return Path(directory)


def load_manifest(directory: str | os.PathLike) -> dict:
    """The record's manifest, checked entry by entry; :class:`RecordError` when it is missing,
    corrupt, or names files outside the directory, unknown dtypes or no case."""
    path = _directory(directory) / MANIFEST
    if not path.is_file():
        raise RecordError(f"{directory}: no {MANIFEST}; not a record directory (or its recording did not finish)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: corrupt manifest ({e})") from None
    if (not isinstance(manifest, dict) or type(manifest.get("format")) is not int or manifest["format"] != FORMAT
            or not isinstance(manifest.get("cases"), dict)):
        raise RecordError(f"{path}: not a format-{FORMAT} manifest")
    if not manifest["cases"]:
        raise RecordError(f"{path}: the manifest records no case")
    for name, entry in manifest["cases"].items():
        problem = _entry_problem(entry)
        if problem:
            raise RecordError(f"{path}: corrupt entry for case {name!r}: {problem}")
    return manifest


def _entry_problem(entry) -> str:
    if not isinstance(entry, dict):
        return f"not an object but {type(entry).__name__}"
    file = entry.get("file")
    if not isinstance(file, str) or not file.endswith(".npz") or Path(file).name != file or file.startswith("."):
        return f"'file' must name a .npz file in the record directory, got {file!r}"
    sha = entry.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return f"'sha256' must be 64 lowercase hex digits, got {sha!r}"
    dtypes = entry.get("dtypes")
    if not isinstance(dtypes, list) or not dtypes or any(d not in DTYPES for d in dtypes):
        return f"'dtypes' must be a non-empty list of {DTYPES}, got {dtypes!r}"
    return ""


def load_case(directory: str | os.PathLike, name: str, entry: dict) -> dict[str, np.ndarray]:
    if name not in REGISTRY:
        raise RecordError(f"the record holds case {name!r}, which this version does not know")
    problem = _entry_problem(entry)
    if problem:
        raise RecordError(f"corrupt entry for case {name!r}: {problem}")
    path = _directory(directory) / entry["file"]
    if not path.is_file():
        raise RecordError(f"{path}: missing file of case {name!r}")
    if _sha256(path) != entry["sha256"]:
        raise RecordError(f"{path}: corrupt (its SHA-256 does not match the manifest)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise RecordError(f"{path}: unreadable ({e})") from None


def check(directory: str | os.PathLike, frameworks: Sequence[str], make_ctx) -> list[CaseResult]:
    """Recompute ``frameworks`` on the recorded inputs and compare with the record.

    Each recomputed side is compared with the same side of the record (both in the
    run's precision) and with the recorded float64 reference.
    """
    if isinstance(frameworks, str) or not isinstance(frameworks, (tuple, list)):
        raise TypeError(f"frameworks must be a tuple or list drawn from {SIDES}, got {frameworks!r}")
    bad = [f for f in frameworks if f not in SIDES]
    if bad or not frameworks:
        raise ValueError(f"frameworks must be a non-empty subset of {SIDES}, got {list(frameworks)}")
    if not callable(make_ctx):
        raise TypeError(f"make_ctx must be a function from a dtype to a Context, got {type(make_ctx).__name__}")
    manifest = load_manifest(directory)
    all_cases()  # registers the cases the record names
    results = []
    for name, entry in sorted(manifest["cases"].items()):
        arrays = load_case(directory, name, entry)
        case = REGISTRY[name]
        for dtype in entry["dtypes"]:
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
