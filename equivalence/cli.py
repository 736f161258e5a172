"""``equivalence list``, ``run``, ``record`` and ``check``.

Exit status: 0 when every case meets its expectation, 1 on any mismatch (or an
undetected negative control), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Sequence

from .frameworks import DTYPES
from .refcache import ENV, MIN_SECONDS


class UsageError(Exception):
    pass


def _dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise argparse.ArgumentTypeError(f"--dtype takes a comma-separated subset of {','.join(DTYPES)}; got {text!r}")
    return dtypes


def _jobs(text: str) -> int | str:
    if text == "auto":
        return text  # resolved once the devices are known (_run)
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a number >= 1 or 'auto', not {text!r}")
    return jobs


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
    run.add_argument("--jobs", "-j", type=_jobs, default="auto", metavar="N|auto",
                     help="cases run at once: this process and N-1 worker processes, each running whole cases "
                          "(default 'auto': one per core on the CPU, 1 where a framework runs on a GPU)")
    for sp in (run, rec):
        cache = sp.add_mutually_exclusive_group()
        cache.add_argument("--reference-cache", metavar="DIR",
                           help="load the built-in cases' float64 NumPy references from DIR, and store there those "
                                f"that take {MIN_SECONDS:g} s of CPU or more to compute (keyed by the project's code, NumPy and "
                                f"the inputs; default: ${ENV} if set, else none)")
        cache.add_argument("--no-reference-cache", action="store_true", help=f"compute every reference (ignore ${ENV})")
    for sp in (run, chk):
        sp.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        sp.add_argument("--report", metavar="PATH.html",
                        help="also write a self-contained HTML report (table and error/tolerance plot)")
        sp.add_argument("--verbose", "-v", action="store_true", help="a row per comparison, not only per case")
    return p


def cmd_list(args) -> int:
    from .case import select
    from .controls import bug_of

    for c in select(args.case):
        kinds = ",".join(c.kinds)
        bug = bug_of(c.name)
        flag = f"  [negative control: {bug}]" if bug else "  [negative control]" if c.expect == "differ" else ""
        print(f"{c.name:40s} {kinds:32s} {c.source}{flag}")
    return 0


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    return f"{x:.2e}"


def _control_verdict(res) -> str:
    """detected (margin M), detected, WEAK (margin M), or NOT DETECTED, for a negative control."""
    from .controls import status

    s = status(res)
    margin = f"margin {s['margin']:.2g}"  # observed error over tolerance, the largest TF-side row
    if not res.passed:
        return f"[red]NOT DETECTED ({margin})" if not s["detected"] else f"[red]FAIL (torch~reference; {margin})"
    return f"[yellow]detected, WEAK ({margin})" if s["weak"] else f"[green]detected ({margin})"


def render(results, verbose: bool, console, title: str = "equivalence run") -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("case", "dtype", "device", "quantity", "pair", "max abs err", "max rel err", "max ulp",
                "tolerance", "headroom", "result"):
        table.add_column(col, justify="right" if col.startswith(("max", "tol", "head")) else "left",
                         overflow="fold" if col == "case" else "ellipsis",  # long case names fold, never vanish
                         no_wrap=col == "result")
    for res in results:
        rows = res.rows if verbose else []
        if not verbose and res.rows:  # the tightest row stands for the case; for a control, the detecting one
            counted = [r for r in res.rows if res.case.expect != "differ" or "tf" in r.pair.split("~")]
            rows = [max(counted or res.rows, key=lambda r: r.comparison.ratio)]
        if res.error:
            table.add_row(res.case.name, res.ctx.dtype, "", "", "", "", "", "", "", "", "[red]ERROR")
            continue
        for r in rows:
            c = r.comparison
            if res.case.expect == "differ":
                verdict = _control_verdict(res)
            else:
                verdict = "[green]pass" if r.passed else "[red]FAIL"
            table.add_row(r.case, r.dtype, r.device, r.quantity, r.pair, _fmt(c.max_abs_err), _fmt(c.max_rel_err),
                          f"{c.max_ulp:.0f}" if c.max_ulp < 1e6 else _fmt(c.max_ulp), _fmt(c.tolerance), _fmt(c.headroom),
                          verdict)
    console.print(table)
    for res in results:
        if res.error:
            console.print(f"[red]{res.case.name} ({res.ctx.dtype}) raised:[/red]\n{res.error}", markup=True,
                          highlight=False)
        elif res.case.expect == "differ" and not res.detected:
            console.print(f"[red]{res.case.name} ({res.ctx.dtype}): negative control NOT DETECTED: every comparison of "
                          f"the TF side is within its tolerance (margin {res.margin:.3g})", highlight=False)
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


def _reference_counts(results) -> dict[str, int]:
    counts = {"computed": 0, "reused": 0, "cache": 0}
    for r in results:
        if r.reference:
            counts[r.reference] += 1
    return counts


def _report(results, args, what: str, title: str = "equivalence run", cache=None) -> int:
    from rich.console import Console
    from rich.markup import escape

    from .controls import status, summary
    from .frameworks import settings, versions

    console = Console(width=None if sys.stdout.isatty() else 200)  # logs: room for long case names
    render(results, args.verbose, console, title)
    failed = [r for r in results if not r.passed]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({what})")
    controls = [r for r in results if r.case.expect == "differ"]
    if controls:
        style = ("red" if any(not r.passed for r in controls) else
                 "yellow" if any(status(r)["weak"] for r in controls) else "green")
        console.print(f"[{style}]{escape(summary(controls))}", highlight=False, soft_wrap=True)
    if cache is not None:
        n = _reference_counts(results)
        console.print(f"float64 references: {n['cache']} loaded from the cache {escape(str(cache.directory))}, "
                      f"{n['computed']} computed, {n['reused']} reused within the run", highlight=False, soft_wrap=True)
    if args.json:
        from pathlib import Path

        from .files import atomic_write_text
        from .refcache import fingerprint

        def finite(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        payload = {"versions": versions(), "settings": settings(), "results": [row.as_dict() for res in results for row in res.rows],
                   "negative_controls": [{k: finite(v) for k, v in status(r).items()} for r in results
                                         if r.case.expect == "differ"],
                   "errors": [{"case": r.case.name, "dtype": r.ctx.dtype, "error": r.error} for r in results if r.error],
                   "reference_cache": None if cache is None else {
                       "directory": str(cache.directory), "fingerprint": fingerprint(), "runs": _reference_counts(results)}}
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


class _Progress:
    """A progress bar on a terminal once a run takes longer than ``delay`` seconds (never in logs or pipes)."""

    def __init__(self, total: int, delay: float = 2.0):
        import time

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._clock = time.monotonic
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=True)
        self.task = self.progress.add_task("cases", total=total)
        self.start, self.delay, self.shown = self._clock(), delay, False

    def update(self, description: str, advance: int = 0) -> None:
        if not self.shown and self.console.is_terminal and self._clock() - self.start > self.delay:
            self.progress.start()
            self.shown = True
        self.progress.update(self.task, description=description, advance=advance)

    def close(self) -> None:
        if self.shown:
            self.progress.stop()


def run_with_progress(jobs, run, delay: float = 2.0):
    """``[run(job) for job in jobs]``, with a progress bar on a terminal once the run takes
    longer than ``delay`` seconds (never in logs or pipes)."""
    jobs = list(jobs)
    bar, results = _Progress(len(jobs), delay), []
    try:
        for job in jobs:
            bar.update(str(job[0].name))
            results.append(run(job))
            bar.update(str(job[0].name), advance=1)
    finally:
        bar.close()
    return results


@contextlib.contextmanager
def _reference_cache(args):
    """The cache the arguments ask for, put in ``$EQUIVALENCE_REFERENCE_CACHE`` for the command
    (--jobs workers inherit it) and restored afterwards; yields the active cache, or None."""
    from .refcache import active

    if args.reference_cache == "":
        raise UsageError("--reference-cache needs a directory, not an empty path")
    saved = os.environ.get(ENV)
    if args.no_reference_cache:
        os.environ.pop(ENV, None)
    elif args.reference_cache is not None:
        os.environ[ENV] = args.reference_cache
    try:
        try:
            cache = active()
        except (ValueError, OSError) as e:
            raise UsageError(f"--reference-cache / ${ENV}: {e}") from None
        yield cache
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved


def _resolve_jobs(jobs: int | str, ctx) -> int:
    """``--jobs``: a number as given; 'auto' is one per core this process may use, or 1 where a
    framework runs on a GPU (the GPU is then the parallel part, and workers would share its memory)."""
    if jobs != "auto":
        return jobs
    from .parallel import default_jobs

    return default_jobs() if ctx.torch_device == ctx.tf_device == "cpu" else 1


def cmd_run(args) -> int:
    with _reference_cache(args) as cache:
        return _run(args, cache)


def _run(args, cache) -> int:
    from .runner import run_case

    cases = _select(args)
    make_ctx = _contexts(args)
    # a case's dtypes back to back (they can share its float64 reference: runner.compute); the
    # table lists the results dtype by dtype
    jobs = [(case, make_ctx(dtype)) for case in cases for dtype in args.dtype if dtype in case.dtypes]
    n = _resolve_jobs(args.jobs, make_ctx("float32"))
    if n > 1 and len(cases) > 1:
        from .parallel import run_parallel

        work = [(case, [ctx for c, ctx in jobs if c is case]) for case in cases]
        bar = _Progress(len(jobs))
        try:
            results = run_parallel([w for w in work if w[1]], min(n, len(cases)),
                                   done=lambda case: bar.update(case.name, advance=sum(c is case for c, _ in jobs)),
                                   here=lambda case, contexts: [run_case(case, ctx) for ctx in contexts])
        finally:
            bar.close()
    else:
        results = run_with_progress(jobs, lambda job: run_case(*job))
    results.sort(key=lambda r: args.dtype.index(r.ctx.dtype))  # stable: case order within a dtype
    # what ran: a case runs only in the dtypes it declares (the ladder's Keras-SGD controls: float32)
    ran = [d for d in args.dtype if any(ctx.dtype == d for _, ctx in jobs)]
    return _report(results, args, f"{len({c.name for c, _ in jobs})} cases, {len(jobs)} runs: {', '.join(ran)}",
                   cache=cache)


def cmd_record(args) -> int:
    from .records import RecordError, record

    cases = _select(args)
    make_ctx = _contexts(args)
    try:
        with _reference_cache(args):
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
