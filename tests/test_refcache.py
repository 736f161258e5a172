"""The on-disk cache of float64 references (equivalence/refcache.py): hits, keys, what is never
cached, damaged entries, and the CLI's --reference-cache."""

import json
import os
import pathlib
import types

import numpy as np
import pytest

from equivalence import refcache, runner
from equivalence.case import Case, Quantity, all_cases
from equivalence.cli import main
from equivalence.frameworks import Context

CASE = "autograd.dag_backward"  # a built-in case with a NumPy reference, cheap


def builtin(name=CASE):
    return next(c for c in all_cases() if c.name == name)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "not" / "yet" / "refs"  # created, parents too, by the first store
    monkeypatch.setenv(refcache.ENV, str(d))
    monkeypatch.setattr(runner, "_last_reference", [None, None, None])  # no in-memory reuse between calls
    monkeypatch.setattr(refcache, "MIN_SECONDS", 0.0)  # CASE's reference is fast: store it anyway
    return d


def reference(case, dtype="float32"):
    """The case's float64 reference as runner.compute gives it, and where it came from."""
    runner._last_reference[:] = [None, None, None]
    _, wide = runner.make_inputs(case, dtype)
    out = runner.compute(case, "reference", wide, Context(dtype=dtype))
    return out, runner.reference_source[0], wide


def test_second_compute_loads_what_the_first_stored(cache_dir):
    case = builtin()
    assert refcache.cacheable(case)
    first, source, wide = reference(case)
    assert source == "computed"
    assert len(list(cache_dir.glob("*.npz"))) == 1
    second, source, _ = reference(case)
    assert source == "cache"
    assert first.keys() == second.keys()
    for k in first:
        assert second[k].dtype == first[k].dtype and second[k].shape == first[k].shape
        np.testing.assert_array_equal(second[k], first[k])


def test_a_fast_reference_is_not_stored(cache_dir, monkeypatch):
    monkeypatch.setattr(refcache, "MIN_SECONDS", 3600.0)
    case = builtin()
    assert reference(case)[1] == "computed"
    assert reference(case)[1] == "computed"
    assert not cache_dir.exists()


def test_a_hit_is_the_file_not_a_recomputation(cache_dir):
    """Change the stored values: what comes back is the file's (so a hit runs no reference)."""
    case = builtin()
    out, _, wide = reference(case)
    cache = refcache.active()
    tampered = {k: np.asarray(v) + 1.0 for k, v in out.items()}
    cache.store(case, runner._inputs_digest(wide), tampered)
    back, source, _ = reference(case)
    assert source == "cache"
    for k in out:
        np.testing.assert_array_equal(back[k], tampered[k])


def test_key_covers_name_inputs_and_code(tmp_path, monkeypatch):
    cache = refcache.ReferenceCache(tmp_path)
    case = builtin()
    other = builtin("autograd.dag_grad")
    base = cache.path(case, "a" * 64)
    assert cache.path(case, "a" * 64) == base
    assert cache.path(other, "a" * 64) != base
    assert cache.path(case, "b" * 64) != base
    monkeypatch.setattr(refcache, "fingerprint", lambda: "another version of the code")
    assert cache.path(case, "a" * 64) != base


def test_fingerprint_changes_with_any_file_of_the_suite_or_the_ports(tmp_path, monkeypatch):
    dirs = {name: tmp_path / name for name in refcache._PACKAGES}
    for d in dirs.values():
        (d / "sub").mkdir(parents=True)
        (d / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(refcache, "_package_dir", dirs.get)
    fp = refcache.fingerprint.__wrapped__
    seen = {fp()}
    assert fp() in seen
    for name, d in dirs.items():
        (d / "sub" / "b.py").write_text(f"y = {name!r}\n")  # a new file
        seen.add(fp())
        (d / "a.py").write_text(f"x = {name!r}\n")  # a changed file
        seen.add(fp())
    monkeypatch.setattr(refcache.np, "__version__", "0.0.0")
    seen.add(fp())
    assert len(seen) == 2 * len(dirs) + 2


def test_the_real_fingerprint_covers_the_ports():
    assert refcache._package_dir("equivalence").resolve() == pathlib.Path(refcache.__file__).resolve().parent
    for name in ("torch_impl", "tf_impl"):
        assert (refcache._package_dir(name) / "__init__.py").exists()
    assert refcache._package_dir("no_such_package_here") is None


def _user_reference(a):
    return {"y": a["x"] * 2.0}


def test_a_users_case_and_a_framework_reference_are_never_cached(cache_dir):
    user = Case(name="user.double", source="a user's model", inputs=lambda rng: {"x": rng.standard_normal(3)},
                torch=lambda a, ctx: {"y": a["x"] * 2}, tf=lambda a, ctx: {"y": a["x"] * 2},
                reference=_user_reference, quantities=(Quantity("y", "forward", n=1),))
    assert not refcache.cacheable(user)
    assert reference(user)[1] == "computed"
    assert reference(user)[1] == "computed"
    framework = next(c for c in all_cases() if c.reference == "torch")
    assert not refcache.cacheable(framework)
    assert not cache_dir.exists()
    with pytest.raises(ValueError, match="not cacheable"):
        refcache.ReferenceCache(cache_dir).store(user, "0" * 64, {"y": np.zeros(3)})


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "a quantity missing"])
def test_a_damaged_entry_is_recomputed_with_a_warning(cache_dir, damage):
    case = builtin()
    first, _, wide = reference(case)
    (path,) = cache_dir.glob("*.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "not a zip":
        path.write_bytes(b"this is not an npz file")
    else:
        refcache.active().store(case, runner._inputs_digest(wide),
                                {k: v for k, v in first.items() if k != case.quantities[0].name})
    expected = (f"lacks {case.quantities[0].name}; recomputing it" if damage == "a quantity missing"
                else "cannot be read .*; recomputing it")
    with pytest.warns(RuntimeWarning, match=expected):
        again, source, _ = reference(case)
    assert source == "computed"
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    assert reference(case)[1] == "cache"  # rewritten whole


def test_any_quantity_name_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(refcache, "cacheable", lambda case: True)
    names = ["file", "allow_pickle", "names", "arr_0", "_B:loss:float32", "0.weight", "a/b"]
    case = types.SimpleNamespace(name="x", reference=refcache.cacheable,
                                 quantities=[types.SimpleNamespace(name=n) for n in names])
    cache = refcache.ReferenceCache(tmp_path)
    values = {n: np.full((2, i + 1), float(i)) for i, n in enumerate(names)}
    values["scalar"] = np.float64(3.5)
    cache.store(case, "d" * 64, values)
    back = cache.load(case, "d" * 64)
    assert list(back) == list(values)
    for n, v in values.items():
        np.testing.assert_array_equal(back[n], v)
        assert back[n].shape == np.shape(v)


def test_not_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        refcache.ReferenceCache(f)
    with pytest.raises(ValueError, match="empty path"):
        refcache.ReferenceCache("")


def test_cli_reference_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(refcache.ENV, raising=False)
    monkeypatch.setattr(refcache, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(runner, "_last_reference", [None, None, None])
    d = tmp_path / "refs"
    args = ["run", "--case", CASE, "--reference-cache", str(d)]
    assert main([*args, "--json", str(tmp_path / "1.json")]) == 0
    assert refcache.ENV not in os.environ  # the command's setting is not left behind
    runner._last_reference[:] = [None, None, None]
    assert main([*args, "--json", str(tmp_path / "2.json")]) == 0
    out = capsys.readouterr().out
    assert "float64 references: 0 loaded from the cache" in out and "2 loaded from the cache" in out
    one, two = (json.loads((tmp_path / f"{i}.json").read_text()) for i in (1, 2))
    assert one["results"] == two["results"]
    # float32 and float64 draw different inputs here: two entries, both loaded the second time
    assert one["reference_cache"]["runs"] == {"computed": 2, "reused": 0, "cache": 0}
    assert two["reference_cache"]["runs"] == {"computed": 0, "reused": 0, "cache": 2}
    assert two["reference_cache"]["fingerprint"] == refcache.fingerprint()

    monkeypatch.setenv(refcache.ENV, str(d))
    runner._last_reference[:] = [None, None, None]
    assert main(["run", "--case", CASE, "--no-reference-cache", "--json", str(tmp_path / "3.json")]) == 0
    assert json.loads((tmp_path / "3.json").read_text())["reference_cache"] is None
    assert os.environ[refcache.ENV] == str(d)  # restored


def test_cli_cache_that_is_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(refcache.ENV, raising=False)
    f = tmp_path / "file"
    f.write_text("")
    assert main(["run", "--case", CASE, "--reference-cache", str(f)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["run", "--case", CASE, "--reference-cache", ""]) == 2
    assert "--reference-cache needs a directory, not an empty path" in capsys.readouterr().err
    assert refcache.ENV not in os.environ


def test_jobs_workers_load_what_a_serial_run_stored(tmp_path):
    """--jobs workers are fresh processes: they get the cache through the environment. A
    trajectory's reference (0.6 s or more) is stored by a serial run and loaded by a --jobs 2
    run, which writes the same results."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != refcache.ENV}
    env.update(OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    out = {}
    for i in (1, 2):
        path = tmp_path / f"{i}.json"
        proc = subprocess.run([sys.executable, "-m", "equivalence", "run", "--case", f"{CASE},ladder.nn_trajectory",
                               "--jobs", str(i), "--reference-cache", str(tmp_path / "refs"), "--json", str(path)],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        out[i] = json.loads(path.read_text())
    assert len(list((tmp_path / "refs").glob("*.npz"))) == 1  # the trajectory's; CASE's is too fast to store
    # nn_trajectory: float32 computes (or loads), float64 reuses it in the same worker; CASE computes twice
    assert out[1]["reference_cache"]["runs"] == {"computed": 3, "reused": 1, "cache": 0}
    assert out[2]["reference_cache"]["runs"] == {"computed": 2, "reused": 1, "cache": 1}
    assert out[1]["results"] == out[2]["results"]


def test_a_cache_that_cannot_be_written_warns_and_the_run_goes_on(cache_dir, monkeypatch):
    from equivalence import files

    def fail(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files, "atomic_write", fail)
    case = builtin()
    with pytest.warns(RuntimeWarning, match=r"cannot store .*'s reference \(Permission denied\)$"):
        out, source, _ = reference(case)
    assert source == "computed" and set(out) >= {q.name for q in case.quantities}


@pytest.mark.parametrize(("module", "expected"), [
    ("equivalence.cases.ladder", True), ("equivalence", True), ("equivalence_extras.cases", False),
    ("my_models.equivalence", False), ("tests.test_refcache", False), (None, False)])
def test_in_package_by_the_module_that_defines_the_reference(module, expected):
    def fn(a):
        return a

    fn.__module__ = module
    assert refcache.in_package(fn) is expected
    assert refcache.in_package("torch") is False


def test_an_unregistered_copy_of_a_builtin_case_is_not_cacheable():
    import dataclasses

    case = builtin()
    assert refcache.cacheable(case)
    assert not refcache.cacheable(dataclasses.replace(case, seed=case.seed + 1))


def test_record_uses_the_cache_and_records_the_same_values(tmp_path, monkeypatch):
    monkeypatch.delenv(refcache.ENV, raising=False)
    monkeypatch.setattr(refcache, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(runner, "_last_reference", [None, None, None])
    cache = tmp_path / "refs"
    assert main(["record", str(tmp_path / "computed"), "--case", CASE, "--reference-cache", str(cache)]) == 0
    assert len(list(cache.glob("*.npz"))) == 2  # float32 and float64 draw different inputs here
    runner._last_reference[:] = [None, None, None]
    assert main(["record", str(tmp_path / "loaded"), "--case", CASE, "--reference-cache", str(cache)]) == 0
    assert runner.reference_source[0] == "cache"
    assert refcache.ENV not in os.environ
    with np.load(tmp_path / "computed" / f"{CASE}.npz") as a, np.load(tmp_path / "loaded" / f"{CASE}.npz") as b:
        assert a.files == b.files and any("/reference/" in k for k in a.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
