"""GPU verification in one process: what docs/gpu.md reports.

1. The whole registry with torch on CUDA against TensorFlow on the CPU (and the
   float64 CPU reference), float32 and float64: strict float32 (TF32 off), then
   with ``--allow-tf32`` (the frameworks' defaults, TF32's unit roundoff charged).
2. With ``--records DIR`` (golden records made on a CPU machine by
   ``equivalence record DIR``): ``equivalence check DIR --frameworks torch`` with
   torch on CUDA, TF32 off and on.
3. The TF32 measurement of pitfalls.md: a float32 conv2d and matmul on the GPU
   with torch's default settings (cuDNN TF32 on) and with TF32 off, each
   against a float64 CPU reference, judged by the tolerance model.

Every run's JSON goes to OUT_DIR; the exit status is the worst of the runs'.

Usage (on a machine with a CUDA GPU):
    python tools/gpu_check.py OUT_DIR [--records CPU_RECORDS_DIR] [--case GLOB]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def registry_on_gpu(out: Path, cases: list[str]) -> dict[str, int]:
    """``equivalence run`` with torch on CUDA, TensorFlow on the CPU, TF32 off and on."""
    from equivalence.cli import main

    codes = {}
    for tf32 in (False, True):
        name = f"registry_torch-cuda_tf-cpu{'_tf32' if tf32 else ''}"
        codes[name] = main(["run", "--torch-device", "gpu", "--tf-device", "cpu", *cases,
                            *(["--allow-tf32"] if tf32 else []), "--json", str(out / f"{name}.json")])
    return codes


def records_on_gpu(out: Path, records: Path) -> dict[str, int]:
    """``equivalence check`` of CPU-made golden records (every case they hold; record a subset with
    ``equivalence record DIR --case ...``), torch recomputed on CUDA, TF32 off and on."""
    from equivalence.cli import main

    codes = {}
    for tf32 in (False, True):
        name = f"check_cpu-records_torch-cuda{'_tf32' if tf32 else ''}"
        codes[name] = main(["check", str(records), "--frameworks", "torch", "--torch-device", "gpu",
                            *(["--allow-tf32"] if tf32 else []), "--json", str(out / f"{name}.json")])
    return codes


def tf32_measurement() -> list[dict]:
    from equivalence import tolerance as tm
    from equivalence.compare import compare
    from equivalence.frameworks import torch

    t = torch()
    rng = np.random.default_rng(0)
    rows = []
    x = rng.standard_normal((32, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((128, 64, 3, 3)).astype(np.float32)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    F = t.nn.functional
    ref_conv = F.conv2d(t.from_numpy(x).double(), t.from_numpy(w).double()).numpy()
    mag_conv = F.conv2d(t.from_numpy(np.abs(x)).double(), t.from_numpy(np.abs(w)).double()).numpy()
    ref_mm = (t.from_numpy(a).double() @ t.from_numpy(b).double()).numpy()
    mag_mm = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    xc, wc = t.from_numpy(x).cuda(), t.from_numpy(w).cuda()
    ac, bc = t.from_numpy(a).cuda(), t.from_numpy(b).cuda()
    n_conv, n_mm = 64 * 3 * 3, 1024
    for label, cudnn_tf32, matmul_tf32 in (("strict float32", False, False), ("torch defaults (cuDNN TF32 on)", True, False),
                                           ("TF32 everywhere", True, True)):
        t.backends.cudnn.allow_tf32 = cudnn_tf32
        t.backends.cuda.matmul.allow_tf32 = matmul_tf32
        conv = F.conv2d(xc, wc).cpu().numpy()
        mm = (ac @ bc).cpu().numpy()
        for op, got, ref, mag, n in (("conv2d (32,64,56,56)*(128,64,3,3)", conv, ref_conv, mag_conv, n_conv),
                                     ("matmul 1024x1024", mm, ref_mm, mag_mm, n_mm)):
            tol = tm.pair_tolerance(n, "float32", "float64", mag)
            c = compare(got, ref, tol, ulp_dtype="float32")
            rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
            rows.append({"setting": label, "op": op, "normwise_rel_err": rel, "max_abs_err": c.max_abs_err,
                         "margin": c.ratio, "within_strict_float32_model": c.passed})
    t.backends.cudnn.allow_tf32 = False
    t.backends.cuda.matmul.allow_tf32 = False
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", metavar="OUT_DIR", help="where the JSON results go (created)")
    p.add_argument("--records", type=Path, metavar="DIR", help="golden records made on a CPU machine to check")
    p.add_argument("--case", help="only the cases matching these comma-separated globs (the registry runs)")
    args = p.parse_args(argv)
    from equivalence.frameworks import torch

    t = torch()
    if not t.cuda.is_available():
        print(f"gpu_check: torch {t.__version__} sees no CUDA device (built with CUDA {t.version.cuda}); run this "
              "on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2
    if args.records is not None and not (args.records / "manifest.json").is_file():
        print(f"gpu_check: {args.records} holds no manifest.json: not a directory made by `equivalence record`",
              file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = ["--case", args.case] if args.case else []
    info = {"torch": t.__version__, "cuda": t.version.cuda, "device": t.cuda.get_device_name(0)}
    codes = registry_on_gpu(out, cases)
    if args.records is not None:
        codes |= records_on_gpu(out, args.records)
    rows = tf32_measurement()
    for r in rows:
        print(f"{r['setting']:32s} {r['op']:36s} rel {r['normwise_rel_err']:.2e}  margin {r['margin']:.3g}  "
              f"{'within' if r['within_strict_float32_model'] else 'OUTSIDE'} the strict float32 model")
    from equivalence.files import atomic_write_text

    atomic_write_text(out / "tf32.json", json.dumps({"info": info, "exit_codes": codes, "rows": rows}, indent=1))
    print(json.dumps({**info, "exit_codes": codes}))
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main())
