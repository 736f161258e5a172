"""The command line: exit codes, JSON schema, failures reported as failures."""

import json

import numpy as np
import pytest

from equivalence.case import REGISTRY, Case, Q
from equivalence.cli import main

REQUIRED = {"case", "quantity", "dtype", "device", "max_abs_err", "max_rel_err", "max_ulp", "tolerance", "passed"}
# every field README.md documents for a row of --json
DOCUMENTED = REQUIRED | {"kind", "pair", "headroom", "within_tolerance", "expect", "note"}


def test_list(capsys):
    assert main(["list"]) == 0
    assert "autograd.norm_grad" in capsys.readouterr().out


def test_run_writes_json_with_the_documented_fields(tmp_path):
    path = tmp_path / "r.json"
    assert main(["run", "--case", "autograd.norm_grad", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert {"torch", "tensorflow", "keras", "numpy"} <= set(data["versions"])
    assert data["results"], "no rows"
    for row in data["results"]:
        assert set(row) == DOCUMENTED  # README.md, "--json PATH"
        assert row["passed"] is True
    assert {r["dtype"] for r in data["results"]} == {"float32", "float64"}


@pytest.mark.parametrize(
    "argv",
    [["run", "--dtype", "float16"], ["run", "--case", "no.such.case"], ["run", "--device", "tpu"], ["frobnicate"],
     ["run", "--jobs", "0"], ["run", "--jobs", "two"]],
)
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    assert code == 2
    assert capsys.readouterr().err


def test_gpu_asked_for_but_absent_is_a_usage_error(capsys):
    from equivalence.frameworks import tf, torch

    if torch().cuda.is_available() or tf().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the absent-GPU error cannot be provoked here")
    assert main(["run", "--case", "autograd.norm_grad", "--device", "gpu"]) == 2
    assert "GPU" in capsys.readouterr().err


@pytest.fixture
def broken_case():
    # a TF "port" that is off by 1e-3: the run must fail, naming it
    case = Case(name="test.off_by_a_little", source="tests/test_cli.py", inputs=lambda rng: {"x": rng.standard_normal(5)},
                torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2}, tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2.001},
                reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1),))
    REGISTRY[case.name] = case
    yield case
    del REGISTRY[case.name]


def test_a_mismatch_exits_1_and_is_named(broken_case, capsys, tmp_path):
    path = tmp_path / "r.json"
    assert main(["run", "--case", broken_case.name, "--json", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and broken_case.name in out
    rows = json.loads(path.read_text())["results"]
    assert {r["pair"] for r in rows if not r["passed"]} == {"torch~tf", "tf~reference"}
    assert all(r["passed"] for r in rows if r["pair"] == "torch~reference")


def test_two_runs_write_identical_results(tmp_path):
    # determinism: seeded inputs, deterministic kernels, no wall-clock data in the results
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p in paths:
        assert main(["run", "--case", "autograd.*", "--json", str(p)]) == 0
    a, b = (json.loads(p.read_text()) for p in paths)
    assert a["results"] == b["results"]
    assert a["settings"]["torch_deterministic_algorithms"] and a["settings"]["tf_op_determinism"]
    assert not a["settings"]["torch_cudnn_allow_tf32"] and not a["settings"]["tf_tensor_float_32_execution"]


def test_html_report_is_self_contained(tmp_path):
    path = tmp_path / "r.html"
    assert main(["run", "--case", "autograd.norm_grad", "--dtype", "float32", "--report", str(path)]) == 0
    text = path.read_text()
    assert "data:image/png;base64," in text  # the plot is embedded, not linked
    assert "autograd.norm_grad" in text and "torch~tf" in text
    assert "<script" not in text and "http" not in text.replace("http-equiv", "")


def test_progress_runs_every_job_in_order():
    from equivalence.cli import run_with_progress

    class Job:
        def __init__(self, name):
            self.name = name

    jobs = [(Job(f"j{i}"), i) for i in range(5)]
    assert run_with_progress(jobs, lambda job: job[1] * 2, delay=0.0) == [0, 2, 4, 6, 8]


def test_jobs_give_the_serial_results_row_for_row(tmp_path):
    """--jobs 2 (fresh worker processes, whole cases each, the slow ones first) writes what a serial
    run writes, given the same threads per process (one here: a matmul's reduction split may
    depend on the thread count)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    cases = "autograd.norm_grad,autograd.dag*,modules.conv2d_basic,ladder.nn_step,modules.neg_linear_kernel_transposed"
    out = {}
    for jobs in ("1", "2"):
        path = tmp_path / f"j{jobs}.json"
        proc = subprocess.run([sys.executable, "-m", "equivalence", "run", "--case", cases, "--jobs", jobs,
                               "--json", str(path)], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        out[jobs] = json.loads(path.read_text())
    assert out["1"]["results"] and out["1"]["results"] == out["2"]["results"]
    assert out["1"]["negative_controls"] == out["2"]["negative_controls"]


def test_a_case_registered_at_run_time_is_an_error_in_a_worker(broken_case):
    from equivalence.frameworks import Context
    from equivalence.parallel import run_parallel
    import equivalence.cases  # noqa: F401  (registers the built-in cases)

    case = REGISTRY["autograd.norm_grad"]
    res = run_parallel([(broken_case, [Context("float64")]), (case, [Context("float64")])], jobs=1)
    assert [r.case.name for r in res] == [broken_case.name, case.name]
    assert "--jobs 1" in res[0].error and not res[0].passed
    assert res[1].passed and not res[1].error


def test_workers_are_spawned_with_the_thread_variables_and_the_parent_keeps_its_own(monkeypatch):
    """NumPy's OpenBLAS sizes its pool at import, before a worker's initializer runs: the thread
    variables must be in the environment the worker is spawned with (equivalence/parallel.py)."""
    import concurrent.futures as cf
    import multiprocessing
    import os

    from equivalence.parallel import THREAD_VARIABLES, worker_environment

    for var in THREAD_VARIABLES + ("TF_NUM_INTEROP_THREADS",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's own setting wins
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with worker_environment(2):
            futures = {var: pool.submit(os.getenv, var) for var in THREAD_VARIABLES + ("TF_NUM_INTEROP_THREADS",)}
        seen = {var: f.result() for var, f in futures.items()}
    assert seen == {"OMP_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2", "OPENBLAS_NUM_THREADS": "2",
                    "MKL_NUM_THREADS": "3", "TF_NUM_INTEROP_THREADS": "1"}
    assert os.environ["MKL_NUM_THREADS"] == "3"
    assert not {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTEROP_THREADS"} & set(os.environ)


def test_gpu_check_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    import importlib.util
    import pathlib

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the no-GPU error of tools/gpu_check.py cannot be provoked here")
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main([str(tmp_path / "out")]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- what `run`, `list`, `record` and `check` print (cases of the test's own, float32 only) ---------
@pytest.fixture
def own_cases():
    """A correct port, a broken one, a builder that raises, and three negative controls: one caught,
    one missed (its TF side is right), one whose torch side is wrong too."""
    def case(name, torch_k, tf_k, expect="equal", raises=False):
        def tf_side(a, ctx):
            if raises:
                raise RuntimeError("the TF side blew up")
            return {"y": ctx.tf_const(a["x"]) * tf_k}
        return Case(name=f"test.{name}", source="tests/test_cli.py", inputs=lambda rng: {"x": rng.standard_normal(5)},
                    torch=lambda a, ctx: {"y": ctx.t(a["x"]) * torch_k}, tf=tf_side,
                    reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1),), expect=expect,
                    dtypes=("float32",))
    made = [case("good", 2, 2), case("bad", 2, 2.001), case("raises", 2, 2, raises=True),
            case("control_caught", 2, 2.001, "differ"), case("control_missed", 2, 2, "differ"),
            case("control_torch_wrong", 2.01, 2.001, "differ")]
    for c in made:
        REGISTRY[c.name] = c
    yield {c.name.removeprefix("test."): c.name for c in made}
    for c in made:
        del REGISTRY[c.name]


def _table_rows(out):
    """The table's body lines by case name (rich draws one line per row at width 200)."""
    return {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[1:-1]]
            for line in out.splitlines() if line.startswith("│") and "test." in line}


def test_run_prints_one_row_per_case_with_its_tightest_comparison_and_a_verdict(own_cases, capsys, tmp_path):
    names = own_cases
    assert main(["run", "--case", "test.*", "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "quantity" in line)
    assert [h.strip() for h in header.split("┃")[1:-1]] == [
        "case", "dtype", "device", "quantity", "pair", "max abs err", "max rel err", "max ulp", "tolerance",
        "headroom", "result"]
    assert "equivalence run" in out.splitlines()[0]
    rows = _table_rows(out)
    assert set(rows) == set(names.values())
    good, bad = rows[names["good"]], rows[names["bad"]]
    assert good[1:5] == ["float32", "torch:cpu,tf:cpu", "y", "torch~tf"] and good[-1] == "pass"
    # the broken port's row is its worst comparison: torch~tf and tf~reference fail alike, torch~reference passes
    assert bad[4] in ("torch~tf", "tf~reference") and bad[-1] == "FAIL"
    assert rows[names["raises"]][-1] == "ERROR" and rows[names["raises"]][2:10] == [""] * 8
    assert "test.raises (float32) raised:" in out and "the TF side blew up" in out
    assert rows[names["control_caught"]][-1].startswith("detected (margin")
    # a control's row is one of the pairs that compare the TF side, the one that detects it
    assert "tf" in rows[names["control_caught"]][4]
    assert rows[names["control_missed"]][-1].startswith("NOT DETECTED (margin")
    assert "test.control_missed (float32): negative control NOT DETECTED" in out
    assert rows[names["control_torch_wrong"]][-1].startswith("FAIL (torch~reference; margin")
    # its torch~reference error is the largest, but the row shown compares the TF side
    assert "tf" in rows[names["control_torch_wrong"]][4]
    controls = json.loads((tmp_path / "r.json").read_text())["negative_controls"]
    assert {(c["case"], c["detected"], c["bug"]) for c in controls} == {
        (names["control_caught"], True, None), (names["control_missed"], False, None),
        (names["control_torch_wrong"], True, None)}
    assert "test.bad float32 y torch~tf: max abs err" in out  # the failing comparisons are listed
    # the control whose torch side is wrong fails as a run, though the bug it stands for is detected
    assert "2 passed, 4 failed (6 cases, 6 runs: float32)" in out
    assert "test.bad float32 y tf~reference: max abs err" in out
    assert ("3 negative controls: 2 detected, 1 NOT DETECTED: test.control_missed [float32] (margin" in out)


def test_verbose_prints_every_comparison(own_cases, capsys):
    assert main(["run", "--case", "test.good", "-v"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│") and "test.good" in line]
    assert sorted(line.split("│")[5].strip() for line in rows) == ["tf~reference", "torch~reference", "torch~tf"]


def test_list_flags_negative_controls(own_cases, capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["modules.neg_linear_kernel_transposed"].endswith("[negative control: dense_kernel_transposed]")
    assert lines["test.control_missed"].endswith("[negative control]")  # a control outside the catalogue
    assert "negative control" not in lines["test.good"] and "negative control" not in lines["autograd.norm_grad"]


def test_tensorflow_gpu_alone_asked_for_and_absent_is_a_usage_error(capsys):
    from equivalence.frameworks import tf

    if tf().config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees a GPU here: the absent-GPU error cannot be provoked")
    assert main(["run", "--case", "autograd.norm_grad", "--tf-device", "gpu"]) == 2
    assert "a GPU was asked for TensorFlow, but TensorFlow sees none" in capsys.readouterr().err


def test_record_then_check_on_the_command_line(tmp_path, capsys):
    d = tmp_path / "golden"
    assert main(["record", str(d), "--case", "autograd.norm_grad"]) == 0
    assert (d / "manifest.json").is_file() and (d / "autograd.norm_grad.npz").is_file()
    capsys.readouterr()
    for frameworks, shown in (("torch", "torch"), ("tf", "tf"), ("both", "torch+tf")):
        path = tmp_path / f"check-{frameworks}.json"
        assert main(["check", str(d), "--frameworks", frameworks, "--json", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"against {shown} on this machine" in out and "equivalence check" in out
        pairs = {r["pair"] for r in json.loads(path.read_text())["results"]}
        assert pairs and all(p.split("~")[0] in shown.split("+") for p in pairs)


def test_device_auto_is_accepted_and_the_program_is_named(capsys):
    from equivalence.frameworks import tf, torch

    if torch().cuda.is_available() or tf().config.list_physical_devices("GPU"):
        pytest.skip("a GPU here: 'auto' would pick it")
    assert main(["run", "--case", "autograd.norm_grad", "--dtype", "float32", "--device", "auto"]) == 0
    assert "torch:cpu,tf:cpu" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: equivalence ")
