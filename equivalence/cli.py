"""``equivalence list``, ``run``, ``record`` and ``check``.

Exit status: 0 when every case meets its expectation, 1 on any mismatch (or an
undetected negative control), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from .frameworks import DTYPES


class UsageError(Exception):
    pass


def _dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise argparse.ArgumentTypeError(f"--dtype takes a comma-separated subset of {','.join(DTYPES)}; got {text!r}")
    return dtypes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="equivalence", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list the registered cases")
    ls.add_argument("--case", metavar="GLOB", help="only cases matching these comma-separated globs")
    run = sub.add_parser("run", help="run the cases and compare torch, TensorFlow and the float64 reference")
    rec = sub.add_parser("record", help="save every case's inputs and values as a golden record in DIR")
    rec.add_argument("dir", metavar="DIR")
    chk = sub.add_parser("check", help="recompute on this machine and compare with the golden record in DIR")
    chk.add_argument("dir", metavar="DIR")
    chk.add_argument("--frameworks", choices=("torch", "tf", "both"), default="both",
                     help="which framework(s) to recompute (default: both)")
    for sp in (run, rec, chk):
        if sp is not chk:
            sp.add_argument("--case", metavar="GLOB", help="only cases matching these comma-separated globs")
            sp.add_argument("--dtype", type=_dtypes, default=DTYPES, metavar="float32,float64")
        sp.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu",
                        help="device for both frameworks (default: cpu); 'auto' picks a GPU where a framework sees one")
        sp.add_argument("--torch-device", choices=("cpu", "gpu", "auto"), help="torch's device (overrides --device)")
        sp.add_argument("--tf-device", choices=("cpu", "gpu", "auto"), help="TensorFlow's device (overrides --device)")
        sp.add_argument("--allow-tf32", action="store_true",
                        help="keep the frameworks' default TF32 use on GPUs (default: strict float32) and charge "
                             "TF32's unit roundoff in the tolerance model")
    for sp in (run, chk):
        sp.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        sp.add_argument("--report", metavar="PATH.html",
                        help="also write a self-contained HTML report (table and error/tolerance plot)")
        sp.add_argument("--verbose", "-v", action="store_true", help="a row per comparison, not only per case")
    return p


def cmd_list(args) -> int:
    from .case import select

    for c in select(args.case):
        kinds = ",".join(c.kinds)
        flag = "  [negative control]" if c.expect == "differ" else ""
        print(f"{c.name:40s} {kinds:32s} {c.source}{flag}")
    return 0


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    return f"{x:.2e}"


def render(results, verbose: bool, console, title: str = "equivalence run") -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("case", "dtype", "device", "quantity", "pair", "max abs err", "max rel err", "max ulp",
                "tolerance", "headroom", "result"):
        table.add_column(col, justify="right" if col.startswith(("max", "tol", "head")) else "left")
    for res in results:
        rows = res.rows if verbose else []
        if not verbose and res.rows:  # the tightest row stands for the case
            rows = [max(res.rows, key=lambda r: r.comparison.ratio)]
        if res.error:
            table.add_row(res.case.name, res.ctx.dtype, "", "", "", "", "", "", "", "", "[red]ERROR")
            continue
        for r in rows:
            c = r.comparison
            if res.case.expect == "differ":
                verdict = "[green]detected" if res.passed else "[red]NOT DETECTED"
            else:
                verdict = "[green]pass" if r.passed else "[red]FAIL"
            table.add_row(r.case, r.dtype, r.device, r.quantity, r.pair, _fmt(c.max_abs_err), _fmt(c.max_rel_err),
                          "inf" if math.isinf(c.max_ulp) else f"{c.max_ulp:.0f}", _fmt(c.tolerance), _fmt(c.headroom), verdict)
    console.print(table)
    for res in results:
        if res.error:
            console.print(f"[red]{res.case.name} ({res.ctx.dtype}) raised:[/red]\n{res.error}", markup=True,
                          highlight=False)
        elif not res.passed:
            bad = [r for r in res.rows if not r.passed]
            for r in bad[:10]:
                c = r.comparison
                console.print(f"[red]{r.case} {r.dtype} {r.quantity} {r.pair}: max abs err {_fmt(c.max_abs_err)} "
                              f"> tolerance {_fmt(c.tolerance)} {c.problem}", highlight=False)


def _contexts(args):
    """A Context factory for the devices and TF32 policy the arguments ask for."""
    from .frameworks import Context, DeviceError, resolve_device, set_tf32, tf

    tf().get_logger().setLevel("ERROR")  # retracing notices from Keras internals are not results

    try:
        dev = {"torch_device": resolve_device("torch", args.torch_device or args.device),
               "tf_device": resolve_device("tf", args.tf_device or args.device)}
    except DeviceError as e:
        raise UsageError(str(e)) from None
    set_tf32(args.allow_tf32)
    return lambda dtype: Context(dtype=dtype, allow_tf32=args.allow_tf32, **dev)


def _select(args):
    from .case import select

    try:
        return select(args.case)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


def _report(results, args, what: str, title: str = "equivalence run") -> int:
    from rich.console import Console

    from .frameworks import settings, versions

    console = Console(width=None if sys.stdout.isatty() else 160)
    render(results, args.verbose, console, title)
    failed = [r for r in results if not r.passed]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({what})")
    if args.json:
        from pathlib import Path

        from .files import atomic_write_text

        payload = {"versions": versions(), "settings": settings(), "results": [row.as_dict() for res in results for row in res.rows],
                   "errors": [{"case": r.case.name, "dtype": r.ctx.dtype, "error": r.error} for r in results if r.error]}
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.json, json.dumps(payload, indent=1, allow_nan=False))  # all or nothing
        except OSError as e:
            raise UsageError(f"--json {args.json}: cannot write it ({e.strerror or e})") from None
    if getattr(args, "report", None):
        from .report import write_html

        try:
            write_html(results, args.report, versions(), settings())
        except OSError as e:
            raise UsageError(f"--report {args.report}: cannot write it ({e.strerror or e})") from None
        console.print(f"report: {args.report}")
    return 0 if not failed else 1


def run_with_progress(jobs, run, delay: float = 2.0):
    """``[run(job) for job in jobs]``, with a progress bar on a terminal once the run takes
    longer than ``delay`` seconds (never in logs or pipes)."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    jobs = list(jobs)
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    task = progress.add_task("cases", total=len(jobs))
    start, shown, results = time.monotonic(), False, []
    try:
        for job in jobs:
            if not shown and console.is_terminal and time.monotonic() - start > delay:
                progress.start()
                shown = True
            progress.update(task, description=str(job[0].name))
            results.append(run(job))
            progress.advance(task)
    finally:
        if shown:
            progress.stop()
    return results


def cmd_run(args) -> int:
    from .runner import run_case

    cases = _select(args)
    make_ctx = _contexts(args)
    jobs = [(case, make_ctx(dtype)) for dtype in args.dtype for case in cases if dtype in case.dtypes]
    results = run_with_progress(jobs, lambda job: run_case(*job))
    return _report(results, args, f"{len(cases)} cases x {len(args.dtype)} dtypes")


def cmd_record(args) -> int:
    from .records import RecordError, record

    cases = _select(args)
    make_ctx = _contexts(args)
    try:
        manifest = record(args.dir, cases, [make_ctx(d) for d in args.dtype])
    except RecordError as e:
        raise UsageError(str(e)) from None
    print(f"recorded {len(manifest['cases'])} cases ({','.join(args.dtype)}) in {args.dir}")
    return 0


def cmd_check(args) -> int:
    from .records import RecordError, check

    frameworks = ("torch", "tf") if args.frameworks == "both" else (args.frameworks,)
    try:
        results = check(args.dir, frameworks, _contexts(args))
    except RecordError as e:
        raise UsageError(str(e)) from None
    return _report(results, args, f"{args.dir} against {'+'.join(frameworks)} on this machine", "equivalence check")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    try:
        return {"list": cmd_list, "run": cmd_run, "record": cmd_record, "check": cmd_check}[args.command](args)
    except UsageError as e:
        print(f"equivalence: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
