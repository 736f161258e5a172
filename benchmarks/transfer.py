"""Weight transfer: ``equivalence.adapter.torch_to_keras`` of a ~10M-parameter model over a
plain copy of the same bytes. Goal: at most 2.

The model: three 3x3 convolutions (3 -> 64 -> 128 -> 256 channels on 8x8 maps), a 2x2
max-pool, a flatten (so the first Dense's rows are permuted: the flatten-order trap) and
three Linear/Dense layers 4096 -> 1664 -> 1664 -> 10: 9.97M parameters, float32.

Baselines, same bytes, no layout work:
* ``assign``: each torch parameter as a NumPy array, reshaped to its Keras variable's shape
  (a view), ``variable.assign``-ed: the copy a transfer cannot avoid;
* ``np.copy``: a NumPy copy of each torch parameter (memory bandwidth alone);
``adapter keras_to_torch``, the way back (each Keras value copied into its torch parameter
by ``copy_`` from a transposed view: the layout change and the copy in one pass); and, for
scale, ``adapter, assign copying`` (the adapter with a plain ``variable.assign``
that copies the layout copies once more, as it did before they were handed to TensorFlow
through DLPack) and ``transpose + assign``: each parameter transposed to its Keras layout by
NumPy and assigned (the layout work any torch -> Keras transfer does, without the
adapter's pairing, checks and fc1 row permutation).

Rounds take turns (every variant in turn); the first round is a warm-up; each time is
the median over ``--rounds``.

    PYTHONPATH=. python -m benchmarks.transfer [--rounds 7] [--profile]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import load, median

HIDDEN = 1664


def models():
    from equivalence.frameworks import keras, torch

    torch, keras = torch(), keras()
    import tf_impl.modules as tfm
    import torch_impl.modules as tm

    torch.manual_seed(0)
    t = tm.Sequential(
        tm.Conv2d(3, 64, 3, padding=1), tm.ReLU(), tm.Conv2d(64, 128, 3, padding=1), tm.ReLU(),
        tm.Conv2d(128, 256, 3, padding=1), tm.ReLU(), tm.MaxPool2d(2), tm.Flatten(),
        tm.Linear(4096, HIDDEN), tm.ReLU(), tm.Linear(HIDDEN, HIDDEN), tm.ReLU(), tm.Linear(HIDDEN, 10))
    k = tfm.Sequential(
        tfm.Conv2d(3, 64, 3, padding=1), tfm.ReLU(), tfm.Conv2d(64, 128, 3, padding=1), tfm.ReLU(),
        tfm.Conv2d(128, 256, 3, padding=1), tfm.ReLU(), tfm.MaxPool2d(2), tfm.Flatten(),
        tfm.Linear(4096, HIDDEN), tfm.ReLU(), tfm.Linear(HIDDEN, HIDDEN), tfm.ReLU(), tfm.Linear(HIDDEN, 10))
    k.build((None, 8, 8, 3))
    return t, k


def check(t, k) -> None:
    """The transfer is real: both models compute the same outputs afterwards."""
    from equivalence.frameworks import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch().no_grad():
        a = t(torch().from_numpy(x)).numpy()
    b = np.asarray(k(np.transpose(x, (0, 2, 3, 1))))
    err = float(np.max(np.abs(a - b)))
    if not err < 1e-3 * max(1.0, float(np.max(np.abs(a)))):
        raise SystemExit(f"the transferred Keras model disagrees with torch: max abs err {err:.3g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (median; default 7)")
    p.add_argument("--profile", action="store_true", help="also print cProfile's top entries for one transfer")
    args = p.parse_args(argv)
    from equivalence.adapter import keras_to_torch, torch_to_keras

    print(f"before: {load()}")
    t, k = models()
    params = list(t.parameters())
    variables = list(k.weights)
    n = sum(p.numel() for p in params)
    sizes = [(int(p.numel()), int(np.prod(v.shape))) for p, v in zip(params, variables)]
    assert len(params) == len(variables) and all(a == b for a, b in sizes), sizes
    print(f"model: {n / 1e6:.2f}M parameters, {n * 4 / 2**20:.1f} MiB float32, {len(params)} tensors")

    def assign():
        for p, v in zip(params, variables):
            v.assign(p.detach().numpy().reshape(v.shape))

    def npcopy():
        return [p.detach().numpy().copy() for p in params]

    def adapter():
        torch_to_keras(t, k)

    from equivalence import adapter as adapter_module

    handover = adapter_module._assign

    def adapter_copying():  # the adapter as it was before its layout copies were handed over
        adapter_module._assign = lambda var, value, sources: var.assign(value)
        try:
            torch_to_keras(t, k)
        finally:
            adapter_module._assign = handover

    def layout_assign():
        for p, v in zip(params, variables):
            w = p.detach().numpy()
            if w.ndim == 2:
                w = w.T  # (out, in) -> (in, out); the adapter also permutes fc1's rows
            elif w.ndim == 4:
                w = np.transpose(w, (2, 3, 1, 0))  # (out, in, kh, kw) -> (kh, kw, in, out)
            v.assign(np.ascontiguousarray(w))

    fns = {"assign (same bytes)": assign, "np.copy": npcopy, "transpose + assign": layout_assign,
           "adapter torch_to_keras": adapter, "adapter, assign copying": adapter_copying,
           "adapter keras_to_torch": lambda: keras_to_torch(k, t)}
    times = {name: [] for name in fns}
    for r in range(args.rounds + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - start)
    check(t, k)
    print(f"after:  {load()}")
    med = {name: median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:25s} median {1000 * med[name]:8.1f} ms  [{' '.join(f'{1000 * x:.1f}' for x in ts)}]")
    r = med["adapter torch_to_keras"] / med["assign (same bytes)"]
    print(f"ratio adapter / assign of the same bytes: {r:.2f}  (goal <= 2: {'met' if r <= 2 else 'NOT met'})")
    print(f"ratio adapter / np.copy: {med['adapter torch_to_keras'] / med['np.copy']:.2f}")
    print(f"ratio adapter / (transpose + assign), the layout work alone: "
          f"{med['adapter torch_to_keras'] / med['transpose + assign']:.2f}")
    print(f"ratio keras_to_torch (the way back) / assign of the same bytes: "
          f"{med['adapter keras_to_torch'] / med['assign (same bytes)']:.2f}")
    print(f"ratio adapter / adapter with assign copying its layout copies again: "
          f"{med['adapter torch_to_keras'] / med['adapter, assign copying']:.2f}")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(adapter)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
