"""Suite cost: ``equivalence run`` (every case, float32 and float64, CPU) over the floor of
importing torch, TensorFlow and Keras in one process. Goal: at most 3.

Both are fresh subprocesses, run alternately (import, suite, import, suite, ...); the first
pair is a warm-up (disk cache) and is not counted; the ratio is median over median. Wall
time is the goal's measure; CPU time (user + system of the subprocess and its workers) is
printed beside it because other processes' load inflates it far less.

    PYTHONPATH=. python -m benchmarks.suite_cost [--reps 3] [--jobs N|auto] [--serial] [--reference-cache] [--breakdown] [--cprofile 25]

Every reference is computed (``--no-reference-cache``) unless ``--reference-cache`` asks for a
warm cache (equivalence/refcache.py), which the warm-up pair fills.

``--breakdown`` then runs the suite once in this process and says where the time goes: the
imports, case discovery, each topic, the slowest cases. ``--cprofile N`` profiles that
in-process run and prints the top N functions by cumulative time (cProfile slows torch's
and TF's Python layers several-fold: read its shares, not its seconds).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time

from benchmarks._common import IMPORT_FLOOR, fmt_times, load, median, timed_subprocess, timed_subprocess_cpu

SUITE = ["-m", "equivalence.cli", "run", "--dtype", "float32,float64", "--device", "cpu"]


def measure(reps: int, jobs: str = "auto", cache: str | None = None,
            serial: bool = False) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) seconds of the import floor and of the suite (``--jobs jobs``, every reference
    computed: ``--no-reference-cache``, whatever the environment says), in turns, ``reps`` rounds
    after a warm-up round. With ``serial``, each round also runs the suite with ``--jobs 1``. With
    ``cache`` (an empty directory) each round also runs the suite with it: the warm-up round fills
    it, the measured rounds load the trajectories' references from it."""
    suite = SUITE + ["--jobs", str(jobs)]
    commands = {"floor": ["-c", IMPORT_FLOOR], "suite": suite + ["--no-reference-cache"]}
    if serial:
        commands["serial"] = SUITE + ["--jobs", "1", "--no-reference-cache"]
    if cache:
        commands["warm"] = suite + ["--reference-cache", cache]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for i in range(reps + 1):  # the first round warms the disk cache (and fills the reference cache)
        for name, command in commands.items():
            wall, cpu, rc = timed_subprocess_cpu(command)
            if rc:
                raise SystemExit(f"a subprocess failed: {' '.join(command[:3])}... exit {rc}")
            if i:
                times[name].append((wall, cpu))
    return times


DEFAULT_THREADS: dict[str, str] = {}  # the frameworks' own defaults (2 threads here)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def threads_ab(reps: int) -> None:
    """The suite with the frameworks' default threads against one thread each, alternated."""
    import os

    default, single = [], []
    def run(extra):
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            return timed_subprocess(SUITE)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    for i in range(reps + 1):
        d, rc_d = run(DEFAULT_THREADS)
        s, rc_s = run(ONE_THREAD)
        if rc_d or rc_s:
            raise SystemExit(f"equivalence run failed: default threads exit {rc_d}, one thread exit {rc_s}")
        if i:
            default.append(d)
            single.append(s)
    print(f"equivalence run, frameworks' default threads: median {median(default):.2f} s  [{fmt_times(default)}]")
    print(f"equivalence run, one thread each (OMP_NUM_THREADS=1, TF_NUM_INTRA/INTEROP_THREADS=1): "
          f"median {median(single):.2f} s  [{fmt_times(single)}]")
    print(f"one thread / default: {median(single) / median(default):.2f}")


def breakdown(top: int = 12) -> None:
    """The suite in this process, timed by stage, topic and case."""
    t0 = time.perf_counter()
    from equivalence.frameworks import Context, keras

    keras()
    t1 = time.perf_counter()
    from equivalence.case import select
    from equivalence.runner import run_case

    cases = select(None)
    t2 = time.perf_counter()
    per = []
    for case in cases:  # a case's dtypes back to back, as the CLI runs them (they share its reference)
        for dtype in ("float32", "float64"):
            if dtype in case.dtypes:
                s = time.perf_counter()
                run_case(case, Context(dtype=dtype))
                per.append((time.perf_counter() - s, case.name, dtype))
    t3 = time.perf_counter()
    print(f"\nwhere the time goes (one in-process run, {len(per)} case runs):")
    print(f"  import torch+TF+Keras (configured)  {t1 - t0:6.2f} s")
    print(f"  discover cases (imports the ports)  {t2 - t1:6.2f} s")
    print(f"  run the cases                       {t3 - t2:6.2f} s")
    topics = collections.defaultdict(lambda: [0.0, 0])
    for t, name, _ in per:
        topics[name.split(".")[0]][0] += t
        topics[name.split(".")[0]][1] += 1
    for topic, (t, n) in sorted(topics.items(), key=lambda kv: -kv[1][0]):
        print(f"    {topic:12s} {n:4d} runs {t:6.2f} s ({1000 * t / n:.0f} ms per run)")
    print(f"  slowest {top} case runs:")
    for t, name, dtype in sorted(per, reverse=True)[:top]:
        print(f"    {t:6.2f} s  {name} ({dtype})")


def cprofile(n: int) -> None:
    import cProfile
    import io
    import pstats

    from equivalence.frameworks import Context, keras

    keras()
    from equivalence.case import select
    from equivalence.runner import run_case

    cases = select(None)
    prof = cProfile.Profile()
    prof.enable()
    for case in cases:
        for dtype in ("float32", "float64"):
            if dtype in case.dtypes:
                run_case(case, Context(dtype=dtype))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(n)
    print(out.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3, help="measured pairs after the warm-up pair (default 3)")
    p.add_argument("--breakdown", action="store_true", help="also time stages, topics and cases in-process")
    p.add_argument("--cprofile", type=int, metavar="N", help="also print cProfile's top N by cumulative time")
    p.add_argument("--jobs", default="auto", help="run the suite as `equivalence run --jobs N` (default: auto, "
                                                  "the command's default)")
    p.add_argument("--serial", action="store_true",
                   help="also time `equivalence run --jobs 1` in each round (the suite in one process)")
    p.add_argument("--reference-cache", action="store_true",
                   help="time the suite with a warm reference cache (a temporary directory that the warm-up "
                        "pair fills): what a second run or a version matrix's later cells pay")
    p.add_argument("--threads-ab", action="store_true",
                   help="instead: the suite with default threads against one thread per framework, alternated")
    args = p.parse_args(argv)
    import os

    from equivalence.refcache import ENV

    os.environ.pop(ENV, None)  # the in-process breakdown and --threads-ab compute every reference too
    print(f"before: {load()}")
    if args.threads_ab:
        threads_ab(args.reps)
        print(f"after:  {load()}")
        return 0
    with tempfile.TemporaryDirectory(prefix="reference-cache-") as tmp:
        times = measure(args.reps, args.jobs, tmp if args.reference_cache else None, args.serial)
    print(f"after:  {load()}")
    what = f"equivalence run --jobs {args.jobs}"
    for i, clock in enumerate(("wall", "CPU (user+sys)")):
        fl = [x[i] for x in times["floor"]]
        f = median(fl)
        print(f"{clock}: import floor (torch, tensorflow, keras): median {f:.2f} s  [{fmt_times(fl)}]")
        for name, label in (("suite", what), ("serial", "equivalence run --jobs 1"),
                            ("warm", what + " --reference-cache, warm")):
            if name not in times:
                continue
            su = [x[i] for x in times[name]]
            s = median(su)
            print(f"{clock}: {label} (all cases, float32+float64, CPU): median {s:.2f} s  [{fmt_times(su)}]")
            pairs = [b / a for a, b in zip(fl, su)]
            print(f"{clock}:   ratio over the import floor: {s / f:.2f}  (per round: {fmt_times(pairs)}"
                  + (f"; goal <= 3: {'met' if s / f <= 3 else 'NOT met'})" if i == 0 else ")"))
        if "warm" in times:
            cold, warm = median([x[i] for x in times["suite"]]), median([x[i] for x in times["warm"]])
            print(f"{clock}:   warm cache / every reference computed: {warm / cold:.2f}")
        if "serial" in times:
            par, ser = median([x[i] for x in times["suite"]]), median([x[i] for x in times["serial"]])
            print(f"{clock}:   --jobs {args.jobs} / --jobs 1: {par / ser:.2f}")
    if args.breakdown:
        breakdown()
    if args.cprofile:
        cprofile(args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
