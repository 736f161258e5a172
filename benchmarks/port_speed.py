"""Port speed: training steps per second of the TF/Keras port over the torch original.

Two models, batch 64, plain SGD, CPU:

* the two-layer network (N=64, 1000 -> 100 -> 10, ReLU, sum of squared errors, lr 1e-4);
* the seed's CNN (``torch_impl.modules.Net`` / ``tf_impl.modules.Net``, 28x28 inputs,
  cross-entropy over 10 classes, lr 1e-2).

Modes: torch eager, ``torch.compile``; TF eager, ``tf.function``, ``tf.function(jit_compile=True)``
(XLA), and both with 10 steps in one call (``x10``: a ``tf.range`` loop inside the function,
what Keras's ``compile(steps_per_execution=10)`` does; torch has no counterpart, a step per
Python call). Each mode gets its own model and optimizer, runs its warm-up calls (compilation
included) first, then the modes take turns: every round times ``--steps`` steps of each
mode in turn, and a mode's rate is the median over ``--rounds`` rounds. The ratio is the
best TF mode over the best torch mode (goal: >= 1.0), and TF over torch mode by mode.

    PYTHONPATH=. python -m benchmarks.port_speed [--rounds 5] [--threads 1] [--deterministic]

On a loaded machine torch's two OpenMP threads wait for each other at every op
(a descheduled thread stalls the other): ``--threads 1`` is then each framework's best.

By default both frameworks run with their own defaults (what a user of the port gets);
``--deterministic`` configures them as the equivalence suite does (deterministic kernels,
strict float32).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks._common import load, median

BATCH = 64
#: several training steps in one tf.function call (a tf.range loop in the graph: what Keras's
#: ``compile(steps_per_execution=N)`` does): the per-call dispatch paid once for them all
PER_CALL = 10
MODES = ("torch eager", "torch.compile", "TF eager", "tf.function", "tf.function(XLA)",
         f"tf.function x{PER_CALL}", f"tf.function(XLA) x{PER_CALL}")


THREADS = None  # --threads: each framework's intra-op threads (None: its default)


def frameworks(deterministic: bool):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if deterministic:
        from equivalence.frameworks import keras, tf, torch

        torch, tf, keras = torch(), tf(), keras()
    else:
        import torch  # torch first: both bundle an OpenMP runtime (as equivalence.frameworks does)
        import tensorflow as tf
        import keras
    if THREADS and torch.get_num_threads() != THREADS:
        torch.set_num_threads(THREADS)
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    return torch, tf, keras


def data(kind: str):
    rng = np.random.default_rng(0)
    if kind == "two_layer":
        x = rng.standard_normal((BATCH, 1000)).astype(np.float32)
        y = rng.standard_normal((BATCH, 10)).astype(np.float32)
    else:
        x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, BATCH)
    return x, y


# -- torch ----------------------------------------------------------------------------


def torch_step(torch, kind: str, compiled: bool):
    nn, F = torch.nn, torch.nn.functional
    x, y = data(kind)
    if kind == "two_layer":
        model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))
        lr, xt, yt = 1e-4, torch.from_numpy(x), torch.from_numpy(y)

        def loss_fn(out):
            return (out - yt).pow(2).sum()
    else:
        from torch_impl.modules import Net

        model = Net()
        lr, xt, yt = 1e-2, torch.from_numpy(x), torch.from_numpy(y)

        def loss_fn(out):
            return F.cross_entropy(out, yt)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(xt))
        loss.backward()
        opt.step()
        return loss

    return step, lambda loss: loss.item()


# -- TensorFlow / Keras ---------------------------------------------------------------


def tf_step(tf, keras, kind: str, mode: str):
    x, y = data(kind)
    if kind == "two_layer":
        model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(100, activation="relu"),
                                  keras.layers.Dense(10)])
        lr, xt, yt = 1e-4, tf.constant(x), tf.constant(y)

        def loss_fn(out):
            return tf.reduce_sum(tf.square(out - yt))
    else:
        from tf_impl.modules import Net

        model = Net()
        model(tf.zeros((1, 28, 28, 1)))  # build
        lr, xt, yt = 1e-2, tf.constant(np.transpose(x, (0, 2, 3, 1))), tf.constant(y)

        def loss_fn(out):
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yt, logits=out))
    opt = keras.optimizers.SGD(learning_rate=lr)
    variables = model.trainable_variables
    opt.build(variables)  # optimizer state exists before any tf.function traces

    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(model(xt, training=True))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return loss

    if mode.endswith(f" x{PER_CALL}"):
        one = step

        def step():
            loss = tf.constant(0.0)
            for _ in tf.range(PER_CALL):
                loss = one()
            return loss

        mode = mode.removesuffix(f" x{PER_CALL}")
    if mode == "tf.function":
        step = tf.function(step)
    elif mode == "tf.function(XLA)":
        step = tf.function(step, jit_compile=True)
    return step, lambda loss: float(loss.numpy())


# -- the measurement ------------------------------------------------------------------


def bench(kind: str, rounds: int, steps: int, warmup: int, deterministic: bool, modes) -> dict[str, float]:
    torch, tf, keras = frameworks(deterministic)
    builders = {
        "torch eager": lambda: torch_step(torch, kind, False),
        "torch.compile": lambda: torch_step(torch, kind, True),
        "TF eager": lambda: tf_step(tf, keras, kind, "eager"),
        "tf.function": lambda: tf_step(tf, keras, kind, "tf.function"),
        "tf.function(XLA)": lambda: tf_step(tf, keras, kind, "tf.function(XLA)"),
        f"tf.function x{PER_CALL}": lambda: tf_step(tf, keras, kind, f"tf.function x{PER_CALL}"),
        f"tf.function(XLA) x{PER_CALL}": lambda: tf_step(tf, keras, kind, f"tf.function(XLA) x{PER_CALL}"),
    }
    builders = {k: v for k, v in builders.items() if k in modes}
    ready, failed = {}, {}
    for name, build in builders.items():
        try:
            step, sync = build()
            start = time.perf_counter()
            for _ in range(warmup):
                loss = step()
            sync(loss)
            ready[name] = (step, sync)
            print(f"  {kind}: {name} ready (warm-up {warmup} steps, compilation included: "
                  f"{time.perf_counter() - start:.1f} s)", flush=True)
        except Exception as exc:  # a mode that does not work here is a result, with its reason
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"  {kind}: {name} FAILED: {failed[name]}", flush=True)
    rates = {name: [] for name in ready}
    for _ in range(rounds):
        for name, (step, sync) in ready.items():
            per_call = PER_CALL if name.endswith(f" x{PER_CALL}") else 1
            calls = max(1, steps // per_call)
            for _ in range(max(1, calls // 10)):  # untimed: the other modes' threads go idle first
                loss = step()
            sync(loss)
            start = time.perf_counter()
            for _ in range(calls):
                loss = step()
            sync(loss)  # wait for the last step's value
            rates[name].append(calls * per_call / (time.perf_counter() - start))
    out = {name: median(r) for name, r in rates.items()}
    for name, r in rates.items():
        print(f"  {kind}: {name:18s} {out[name]:8.1f} steps/s  [{' '.join(f'{v:.0f}' for v in r)}]")
    for name, why in failed.items():
        print(f"  {kind}: {name:18s}   failed: {why}")
    return out


def report(kind: str, rates: dict[str, float]) -> None:
    torch_modes = {k: v for k, v in rates.items() if k.startswith("torch")}
    tf_modes = {k: v for k, v in rates.items() if not k.startswith("torch")}
    if not torch_modes or not tf_modes:
        return
    bt = max(torch_modes, key=torch_modes.get)
    bf = max(tf_modes, key=tf_modes.get)
    r = tf_modes[bf] / torch_modes[bt]
    print(f"{kind}: best TF ({bf}, {tf_modes[bf]:.0f}/s) over best torch ({bt}, {torch_modes[bt]:.0f}/s): "
          f"{r:.2f}  (goal >= 1.0: {'met' if r >= 1.0 else 'NOT met'})")
    for t in torch_modes:
        print(f"  " + "  ".join(f"{f} / {t}: {tf_modes[f] / torch_modes[t]:.2f}" for f in tf_modes))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per mode (median; default 5)")
    p.add_argument("--model", choices=("two_layer", "cnn", "both"), default="both")
    p.add_argument("--deterministic", action="store_true", help="the equivalence suite's framework settings")
    p.add_argument("--modes", default=",".join(MODES),
                   help=f"comma-separated subset of {','.join(MODES)} (e.g. one framework alone, to see how much "
                        f"the other's threads cost it)")
    p.add_argument("--threads", type=int, help="intra-op threads for both frameworks (default: their own)")
    args = p.parse_args(argv)
    global THREADS
    THREADS = args.threads
    print(f"before: {load()}")
    torch, tf, _ = frameworks(args.deterministic)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), TF {tf.__version__} "
          f"(intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}), "
          f"{'deterministic' if args.deterministic else 'framework defaults'}")
    results = {}
    kinds = ("two_layer", "cnn") if args.model == "both" else (args.model,)
    for kind in kinds:
        steps, warmup = (200, 50) if kind == "two_layer" else (20, 10)
        results[kind] = bench(kind, args.rounds, steps, warmup, args.deterministic, args.modes.split(","))
    print(f"after:  {load()}")
    for kind in kinds:
        report(kind, results[kind])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
