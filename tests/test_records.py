"""Golden records: record, check, and the records check must refuse."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

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


def _snapshot(d):
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def _stop_on_the_second_case(monkeypatch):
    real = records.compute

    def compute(case, side, inputs, ctx):
        if case.name != CASE:
            raise KeyboardInterrupt("stopped midway")
        return real(case, side, inputs, ctx)

    monkeypatch.setattr(records, "compute", compute)
    return [REGISTRY[CASE], REGISTRY["autograd.norm_grad"]]


def test_a_recording_stopped_midway_leaves_the_previous_record_untouched(recorded, tmp_path, monkeypatch, capsys):
    d = copy(recorded, tmp_path)  # an old, complete record is being overwritten
    before = _snapshot(d)
    all_cases()
    cases = _stop_on_the_second_case(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        records.record(d, cases, [Context("float32")])
    assert _snapshot(d) == before, "the previous record changed"  # no temporary file left either
    monkeypatch.undo()
    assert main(["check", str(d)]) == 0  # and it still checks


def test_a_recording_stopped_midway_in_a_new_directory_leaves_nothing_check_accepts(tmp_path, monkeypatch, capsys):
    d = tmp_path / "new"
    all_cases()
    cases = _stop_on_the_second_case(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        records.record(d, cases, [Context("float32")])
    assert list(d.iterdir()) == []
    assert main(["check", str(d)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_a_recording_stopped_while_renaming_leaves_no_manifest(recorded, tmp_path, monkeypatch, capsys):
    d = copy(recorded, tmp_path)
    all_cases()
    renames = []
    real = os.replace

    def replace(src, dst):
        if renames:
            raise KeyboardInterrupt("stopped between two renames")
        renames.append(dst)
        real(src, dst)

    monkeypatch.setattr(records.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        records.record(d, [REGISTRY[CASE], REGISTRY["autograd.norm_grad"]], [Context("float32")])
    monkeypatch.undo()
    assert len(renames) == 1 and not (d / "manifest.json").exists()
    assert not list(d.glob(".*.tmp")), "temporary files left behind"
    assert main(["check", str(d)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_the_manifest_is_written_last(recorded, tmp_path, monkeypatch):
    """The old manifest goes first, the case files are renamed into place, the new manifest last."""
    d = copy(recorded, tmp_path)
    all_cases()
    events = []
    real_replace, real_unlink = os.replace, pathlib.Path.unlink

    def unlink(self, missing_ok=False):
        if self.name == "manifest.json":
            events.append("unlink manifest.json")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "replace", lambda src, dst: (events.append(pathlib.Path(dst).name), real_replace(src, dst)))
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    records.record(d, [REGISTRY[CASE], REGISTRY["autograd.norm_grad"]], [Context("float32")])
    assert events == ["unlink manifest.json", f"{CASE}.npz", "autograd.norm_grad.npz", "manifest.json"]


def test_a_killed_record_process_leaves_the_previous_record_untouched(recorded, tmp_path):
    """`python -m equivalence record DIR` killed (SIGKILL: no cleanup) once its first case file is
    staged: the previous record is as it was, and checks."""
    d = copy(recorded, _mkdir(tmp_path / "rec"))
    before = _snapshot(d)
    root = pathlib.Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "equivalence", "record", str(d), "--case", "autograd.*"],
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(d.glob(".*.tmp")):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the recording ended (status {proc.returncode}) before a case file was staged")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    after = {name: data for name, data in _snapshot(d).items() if not name.endswith(".tmp")}
    assert after == before, "the previous record changed"
    assert main(["check", str(d)]) == 0


def _mkdir(path):
    path.mkdir()
    return path


def test_files_atomic_write_keeps_the_old_file_when_stopped(tmp_path, monkeypatch):
    from equivalence import files

    path = tmp_path / "report.json"
    path.write_text("previous")

    def half_then_stop(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt("stopped while writing")

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(path, half_then_stop)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError):
        files.atomic_write(path, b"new")
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    monkeypatch.undo()
    files.atomic_write(path, b"new")
    assert path.read_text() == "new"


@pytest.mark.parametrize("option", ["--json", "--report"])
def test_cli_reports_are_written_atomically(option, tmp_path, monkeypatch):
    """A run stopped while writing its report leaves the previous report untouched, and no
    half-written file under its name."""
    from equivalence import files

    path = tmp_path / ("r.json" if option == "--json" else "r.html")
    assert main(["run", "--case", "autograd.norm_grad", "--dtype", "float32", option, str(path)]) == 0
    before = path.read_bytes()
    real_fsync = files.os.fsync

    def fsync(fd):  # stopped after the new content is written, before it is renamed into place
        real_fsync(fd)
        raise KeyboardInterrupt("stopped")

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        main(["run", "--case", "autograd.norm_grad", "--dtype", "float64", option, str(path)])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_cli_report_path_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "dir.json").mkdir()
    assert main(["run", "--case", "autograd.norm_grad", "--dtype", "float32", "--json", str(tmp_path / "dir.json")]) == 2
    assert "--json" in capsys.readouterr().err
