"""Kill rates per module from mutmut's results in mutants/ (tools/mutation.sh, docs/reliability.md).

    python tools/mutation_summary.py                      # a table: module, checked, killed, survived, ...
    python tools/mutation_summary.py --survivors MODULE   # the surviving mutant names of a module
    python tools/mutation_summary.py --names --every 10 MODULE...   # every 10th mutant name (a sample)
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

# mutmut 3.8's exit codes (mutmut/stats.py)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


def results(root: Path = Path("mutants")) -> dict[str, dict[str, int | None]]:
    """module -> {mutant name: exit code}"""
    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = ".".join(meta.relative_to(root).with_suffix("").with_suffix("").parts)
        out[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("modules", nargs="*")
    p.add_argument("--names", action="store_true", help="print mutant names (one a line) instead of the table")
    p.add_argument("--every", type=int, default=1, help="with --names: every k-th name, from the first")
    p.add_argument("--survivors", action="store_true", help="print the names of surviving mutants")
    p.add_argument("--timeouts", action="store_true", help="with --survivors: the timed-out ones too")
    args = p.parse_args(argv)
    res = {m: r for m, r in results().items() if not args.modules or m in args.modules}
    if args.names or args.survivors:
        for m, r in res.items():
            names = sorted(r, key=lambda n: (n.rsplit("__mutmut_", 1)[0], int(n.rsplit("_", 1)[1])))
            if args.survivors:
                keep = ("survived", "no tests", "timeout") if args.timeouts else ("survived", "no tests")
                names = [n for n in names if STATUS.get(r[n], "suspicious") in keep]
            else:
                names = names[:: args.every]
            for n in names:
                print(n)
        return
    print(f"{'module':28} {'mutants':>7} {'checked':>7} {'killed':>6} {'survived':>8} {'no tests':>8} "
          f"{'timeout':>7} {'other':>5} {'kill rate':>9}")
    for m, r in res.items():
        c = Counter(STATUS.get(code, "suspicious") for code in r.values())
        checked = len(r) - c["not checked"]
        if not checked:
            continue
        other = checked - c["killed"] - c["survived"] - c["no tests"] - c["timeout"]
        rate = (c["killed"] + c["timeout"]) / checked
        print(f"{m:28} {len(r):7} {checked:7} {c['killed']:6} {c['survived']:8} {c['no tests']:8} {c['timeout']:7} "
              f"{other:5} {rate:9.1%}")


if __name__ == "__main__":
    main()
