"""Golden records (records.py): behaviours that surviving mutants showed no test pinned down
(docs/reliability.md). Each test records its own small case: mutmut credits the work of a shared
module-scoped fixture to the first test that uses it only."""

import dataclasses
import json

import numpy as np
import pytest

from equivalence import files, records
from equivalence.case import REGISTRY
from equivalence.frameworks import Context


def _small_case(name="t.recorded", dtypes=("float32", "float64")):
    from equivalence.case import Case, Q

    return Case(name=name, source="tests/test_records.py", inputs=lambda rng: {"x": rng.standard_normal(3)},
                torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2}, tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2},
                reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1),), dtypes=dtypes)


def test_the_manifest_describes_each_file(tmp_path):
    # recorded here, not by the module's fixture: mutmut credits a shared fixture's work to one test only
    records.record(tmp_path, [_small_case()], [Context("float32"), Context("float64")])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == records.FORMAT
    assert manifest["device"] == {"torch": "cpu", "tf": "cpu"}
    assert manifest["cases"] == {"t.recorded": {"file": "t.recorded.npz", "dtypes": ["float32", "float64"],
                                                "sha256": records._sha256(tmp_path / "t.recorded.npz")}}
    for name in ("manifest.json", "t.recorded.npz"):  # readable by others, like any file np.savez writes
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    with np.load(tmp_path / "t.recorded.npz", allow_pickle=False) as z:
        assert set(z.files) == {f"{d}/{side}/{name}" for d in ("float32", "float64")
                                for side, name in [("input", "x"), ("torch", "y"), ("tf", "y"), ("reference", "y")]}
        np.testing.assert_array_equal(z["float32/torch/y"], z["float32/input/x"] * 2)


def test_record_skips_the_dtypes_a_case_does_not_declare(tmp_path):
    # a float64-only case among float32 and float64 contexts: float32 is skipped, float64 still recorded
    out = tmp_path / "new" / "nested"  # parent directories are created
    manifest = records.record(out, [_small_case(dtypes=("float64",)), _small_case("t.both")],
                              [Context("float32"), Context("float64")])
    assert manifest["cases"]["t.recorded"]["dtypes"] == ["float64"]
    assert manifest["cases"]["t.both"]["dtypes"] == ["float32", "float64"]
    with np.load(out / "t.recorded.npz", allow_pickle=False) as z:
        assert {k.split("/")[0] for k in z.files} == {"float64"}
        assert z["float64/input/x"].dtype == np.float64


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.npz"
    target.write_bytes(b"old")

    def dies_midway(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(target, dies_midway)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def _recorded_small(tmp_path, case, dtypes=("float32",)):
    records.record(tmp_path, [case], [Context(d) for d in dtypes])
    return tmp_path


@pytest.fixture
def registered(request):
    made = []

    def register(case):
        REGISTRY[case.name] = case
        made.append(case.name)
        return case

    yield register
    for name in made:
        REGISTRY.pop(name, None)


def _rewrite(d, name, change):
    """Change the arrays of a record's file and keep the manifest consistent (a valid but different record)."""
    path = d / f"{name}.npz"
    with np.load(path, allow_pickle=True) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["cases"][name]["sha256"] = records._sha256(path)
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_check_refuses_pickled_arrays(tmp_path, registered):
    d = _recorded_small(tmp_path, registered(_small_case()))
    _rewrite(d, "t.recorded", lambda a: a.update({"float32/torch/y": np.array([object(), 1.0], dtype=object)}))
    with pytest.raises(records.RecordError, match="unreadable"):
        records.check(d, ["torch"], Context)


def test_check_refuses_a_record_without_the_side_it_recomputes(tmp_path, registered):
    d = _recorded_small(tmp_path, registered(_small_case()))
    _rewrite(d, "t.recorded", lambda a: a.pop("float32/tf/y"))
    assert all(not r.error for r in records.check(d, ["torch"], Context))
    with pytest.raises(records.RecordError, match="no tf values for float32"):
        records.check(d, ["tf"], Context)
    with pytest.raises(ValueError, match=r"subset of \('torch', 'tf'\), got \['jax'\]"):
        records.check(d, ["jax"], Context)


def test_check_hands_magnitude_functions_float64_inputs(tmp_path, registered):
    # Quantity.magnitude(inputs64, reference): the recorded float32 inputs are widened, as in a run
    from equivalence.case import Case, Q

    seen = []

    def magnitude(inputs, ref):
        seen.append(inputs["x"].dtype)
        return np.abs(inputs["x"]) * 2

    case = registered(Case(name="t.magnitude", source="tests/test_records.py",
                           inputs=lambda rng: {"x": rng.standard_normal(3)},
                           torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2}, tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2},
                           reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1, magnitude=magnitude),)))
    d = _recorded_small(tmp_path, case)
    seen.clear()
    (result,) = records.check(d, ["torch"], Context)
    assert not result.error and result.passed
    assert seen and set(seen) == {np.dtype(np.float64)}


def test_a_recomputation_that_raises_is_an_error_of_that_case(tmp_path, registered):
    d = _recorded_small(tmp_path, registered(_small_case()))

    def broken(a, ctx):
        raise ArithmeticError("the port broke after recording")

    REGISTRY["t.recorded"] = dataclasses.replace(REGISTRY["t.recorded"], torch=broken)
    (result,) = records.check(d, ["torch"], Context)
    assert not result.passed and result.error == "ArithmeticError: the port broke after recording"
