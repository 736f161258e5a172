"""Golden records: record, check, and the records check must refuse."""

import json

import numpy as np
import pytest

from equivalence import records
from equivalence.case import REGISTRY, all_cases
from equivalence.cli import main
from equivalence.frameworks import Context

CASE = "autograd.norm_grad_random"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    assert main(["record", str(d), "--case", CASE]) == 0
    return d


def copy(src, dst):
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_record_layout(recorded):
    manifest = json.loads((recorded / "manifest.json").read_text())
    assert manifest["format"] == records.FORMAT
    assert set(manifest["cases"]) == {CASE}
    assert {"torch", "tensorflow", "keras"} <= set(manifest["versions"])
    assert "torch_cudnn_allow_tf32" in manifest["settings"]
    with np.load(recorded / f"{CASE}.npz", allow_pickle=False) as z:
        assert {"float32/input/x", "float32/torch/grad:x", "float32/tf/l", "float64/reference/grad:x"} <= set(z.files)
        assert z["float32/input/x"].dtype == np.float32


@pytest.mark.parametrize("frameworks", ["torch", "tf", "both"])
def test_check_against_own_record_passes(recorded, frameworks):
    assert main(["check", str(recorded), "--frameworks", frameworks]) == 0


def test_a_changed_value_is_a_mismatch(recorded, tmp_path):
    d = copy(recorded, tmp_path)
    path = d / f"{CASE}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["float32/torch/grad:x"] = arrays["float32/torch/grad:x"] * np.float32(1 + 1e-4)
    np.savez(path, **arrays)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["cases"][CASE]["sha256"] = records._sha256(path)  # a consistent but different record
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(d), "--frameworks", "torch"]) == 1
    assert main(["check", str(d), "--frameworks", "tf"]) == 0


def test_corrupt_file_is_refused(recorded, tmp_path, capsys):
    d = copy(recorded, tmp_path)
    data = bytearray((d / f"{CASE}.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / f"{CASE}.npz").write_bytes(bytes(data))
    assert main(["check", str(d)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_unknown_case_is_refused(recorded, tmp_path, capsys):
    d = copy(recorded, tmp_path)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["cases"]["autograd.no_such_case"] = manifest["cases"].pop(CASE)
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(d)]) == 2
    assert "does not know" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "{not json", json.dumps({"format": 99, "cases": {}})])
def test_bad_manifest_is_refused(tmp_path, text, capsys):
    (tmp_path / "manifest.json").write_text(text)
    assert main(["check", str(tmp_path)]) == 2
    assert "manifest" in capsys.readouterr().err


def test_a_recording_stopped_midway_leaves_nothing_check_accepts(recorded, tmp_path, monkeypatch, capsys):
    d = copy(recorded, tmp_path)  # an old, complete record is being overwritten
    all_cases()
    calls = {"n": 0}
    real = records.compute

    def dies_on_the_second_case(case, side, inputs, ctx):
        calls["n"] += 1
        if case.name != CASE:
            raise KeyboardInterrupt("stopped midway")
        return real(case, side, inputs, ctx)

    monkeypatch.setattr(records, "compute", dies_on_the_second_case)
    cases = [REGISTRY[CASE], REGISTRY["autograd.norm_grad"]]
    with pytest.raises(KeyboardInterrupt):
        records.record(d, cases, [Context("float32")])
    assert not (d / "manifest.json").exists()
    assert not list(d.glob(".*.tmp")), "temporary files left behind"
    assert main(["check", str(d)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
