"""Measure how far float32 (and float64) training runs drift from the float64 oracle, against the bound.

For every rung of the ladder, the whole 500-step tutorial run (the registered
cases shorten some of them): torch and TF in float32 and float64 from the same
rounded inputs, the NumPy float64 oracle with its running bounds
(equivalence/cases/_ladder_model.py), and per quantity the observed error, the
tolerance the suite would apply, and their ratio (the headroom). Then the one
hypothesis the trajectory bound rests on: one exact (float64) step of the
optimizer does not expand the actual error in the parameters. It is measured
at every 25th step as ||P(s^) - P(s)|| / ||p^ - p||: s^ the float32 torch state
(parameters and optimizer state), s the oracle's, P the parameters after one
float64 step. Prints Markdown (docs/tolerances-trajectories.md quotes it).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python scripts/ladder_trajectory_divergence.py
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from equivalence import frameworks
from equivalence.case import select
from equivalence.cases import _ladder_model as BM
from equivalence.cases import ladder as L
from equivalence.frameworks import Context
from equivalence.runner import make_inputs
from equivalence.tolerance import gamma, unit_roundoff
from torch_impl import ladder_numpy as NP

STEPS = 500
GROWTH = {}
CHECKPOINTS = [99, 199, 299, 399, 499]


def rungs():
    two = L.TWO_LAYER
    tln = L.TWO_LAYER_NET
    return {
        "tensors": dict(case="ladder.tensors_trajectory", plain="ladder_tensors"),
        "autograd": dict(case="ladder.autograd_trajectory", plain="ladder_autograd"),
        "my_relu": dict(case="ladder.my_relu_trajectory", plain="my_relu"),
        "nn": dict(case="ladder.nn_trajectory", module="ladder_nn", names=two, uses=lambda a: lambda t: BM.uses_two_layer(),
                   pass0=False, torch_opt=lambda T, m: L.NN_LR, tf_opt=lambda F, m: L.NN_LR,
                   ref=lambda: BM.SGDModel(L.NN_LR), np_opt=lambda: NP.SGD(L.NN_LR)),
        "optim_adam": dict(case="ladder.optim_adam_trajectory", module="ladder_optim", names=two,
                           uses=lambda a: lambda t: BM.uses_two_layer(), pass0=False,
                           torch_opt=lambda T, m: T.make_optimizer(m, "adam", lr=L.NN_LR),
                           tf_opt=lambda F, m: F.make_optimizer(m, "adam", lr=L.NN_LR),
                           ref=lambda: BM.AdamModel(L.NN_LR), np_opt=lambda: NP.Adam(L.NN_LR)),
        "two_layer_net": dict(case="ladder.two_layer_net_trajectory", module="two_layer_net", names=tln,
                              uses=lambda a: lambda t: BM.uses_two_layer(("linear1", "linear2")), pass0=True,
                              torch_opt=lambda T, m: L._torch("ladder_optim").make_optimizer(m, "adam", lr=L.NN_LR),
                              tf_opt=lambda F, m: L._tf("ladder_optim").make_optimizer(m, "adam", lr=L.NN_LR),
                              ref=lambda: BM.AdamModel(L.NN_LR), np_opt=None),
        "dynamic_net": dict(case="ladder.dynamic_net_trajectory", module="dynamic_net", names=L.DYNAMIC,
                            uses=lambda a: lambda t: BM.uses_dynamic(int(a["depths"][t])), pass0=True,
                            torch_opt=lambda T, m: T.make_optimizer(m), tf_opt=lambda F, m: F.make_optimizer(m),
                            ref=lambda: BM.SGDModel(L.NN_LR, momentum=0.9),
                            np_opt=lambda: NP.SGD(L.NN_LR, momentum=0.9)),
    }


def run_sides(spec, a, ctx):
    """torch and TF training runs (STEPS steps) -> {quantity: array}, like the case builders."""
    if "plain" in spec:
        T, F = L._torch(spec["plain"]), L._tf(spec["plain"])
        t = T.train(*(ctx.t(a[k]) for k in ("x", "y", "w1", "w2")), steps=STEPS)
        f = F.train(*(ctx.tf_const(a[k]) for k in ("x", "y", "w1", "w2")), steps=STEPS)
        names = ("w1", "w2")
    else:
        T, F = L._torch(spec["module"]), L._tf(spec["module"])
        kw = {"depths": a["depths"]} if "depths" in a else {}
        tm, fm = T.build_model(L._params(a), dtype=ctx.torch_dtype), F.build_model(L._params(a), dtype=ctx.dtype)
        t = T.train(tm, ctx.t(a["x"]), ctx.t(a["y"]), spec["torch_opt"](T, tm), steps=STEPS, **kw)
        f = F.train(fm, ctx.tf_const(a["x"]), ctx.tf_const(a["y"]), spec["tf_opt"](F, fm), steps=STEPS, **kw)
        names = spec["names"]
    return ({k: frameworks.to_numpy(v) for k, v in L._traj_out(t, names).items()},
            {k: frameworks.to_numpy(v) for k, v in L._traj_out(f, names).items()})


def reference(spec, a):
    if "plain" in spec:
        return L._plain_trajectory_reference(a, STEPS)
    return L._module_trajectory_reference(a, spec["uses"](a), spec["pass0"], spec["ref"](), STEPS, spec["names"])


def rows_for(name, spec, dtype):
    case = select(spec["case"])[0]
    inputs, wide = make_inputs(case, dtype)
    ctx = Context(dtype)
    t0 = time.time()
    torch_out, tf_out = run_sides(spec, inputs, ctx)
    t1 = time.time()
    ref = reference(spec, wide)
    t2 = time.time()
    GROWTH[name] = np.asarray(ref["_growth"])
    rows = []
    for q in case.quantities:
        m = q.magnitude(wide, ref, dtype)
        tol_ref = (gamma(q.n, unit_roundoff(dtype)) + gamma(q.n, unit_roundoff("float64"))) * m
        tol_pair = 2 * gamma(q.n, unit_roundoff(dtype)) * m
        expected = np.asarray(ref[q.name], dtype=np.float64)
        for pair, a_, b_, tol in (("torch~ref", torch_out, ref, tol_ref), ("tf~ref", tf_out, ref, tol_ref),
                                  ("torch~tf", torch_out, tf_out, tol_pair)):
            err = np.abs(np.asarray(a_[q.name], np.float64) - np.asarray(b_[q.name], np.float64))
            tol = np.broadcast_to(tol, err.shape)
            ratio = np.max(np.where(err == 0, 0, err / tol))
            if q.name == "losses":
                for t in CHECKPOINTS:
                    if t < err.size:
                        rows.append((name, dtype, f"loss@{t}", pair, err[t], tol[t], abs(expected[t])))
            else:
                rows.append((name, dtype, q.name, pair, float(err.max()), float(np.max(tol)),
                             float(np.abs(expected).max()), float(np.linalg.norm(err))))
            rows[-1] = rows[-1] + ((1 / ratio if ratio else math.inf),) if q.name != "losses" else rows[-1]
    return rows, (t1 - t0, t2 - t1)


def hypotheses(name, spec, dtype, every=25):
    """Along torch's run in ``dtype``: the growth of its actual parameter error over one exact (float64)
    step, every ``every`` steps (H1 measured on the real error), and at every step the ReLU inputs whose
    sign differs between torch's parameters and the oracle's (H2: the carried error crosses no kink)."""
    torch = frameworks.torch()
    case = select(spec["case"])[0]
    inp, wide = make_inputs(case, dtype)
    tdt = getattr(torch, dtype)
    x64, y64 = wide["x"], wide["y"]
    x, y = torch.tensor(inp["x"], dtype=tdt), torch.tensor(inp["y"], dtype=tdt)
    depths = wide.get("depths")
    if "plain" in spec:
        T = L._torch(spec["plain"])
        w = [torch.tensor(inp["w1"], dtype=tdt), torch.tensor(inp["w2"], dtype=tdt)]
        params = L._plain_params(wide)
        uses_at, pass0 = (lambda t: L.PLAIN_USES), True
        np_opt = NP.SGD(L.TUTORIAL_LR)

        def torch_state():
            return {"w1.weight": w[0].numpy().T.astype(np.float64), "w2.weight": w[1].numpy().T.astype(np.float64)}, None

        def torch_step(t):
            out = T.step(x, y, *w, L.TUTORIAL_LR)
            w[:] = [out["w1"], out["w2"]]
    else:
        if spec.get("np_opt") is None:
            return None
        TO, T = L._torch("ladder_optim"), L._torch(spec["module"])
        model = T.build_model(L._params(inp), dtype=tdt)
        kind = "adam" if "adam" in name else "sgd"
        hyper = {"lr": L.NN_LR} if kind == "adam" else {"lr": L.NN_LR, "momentum": 0.9 if "dynamic" in name else 0.0}
        opt = TO.make_optimizer(model, kind, **hyper) if "dynamic" not in name else T.make_optimizer(model)
        params = L._params(wide)
        uses_at, pass0 = spec["uses"](wide), spec["pass0"]
        np_opt = spec["np_opt"]()

        def torch_state():
            return ({k: v.detach().numpy().astype(np.float64) for k, v in model.named_parameters()},
                    TO.get_state(opt, model))

        def torch_step(t):
            if depths is not None:
                T.step(model, x, y, opt, int(depths[t]))
            else:
                TO.step(model, x, y, opt)

    def clone(o):
        c = type(o).__new__(type(o))
        c.__dict__ = {k: (dict(v) if isinstance(v, dict) else v) for k, v in o.__dict__.items()}
        return c

    def signs(p, uses):
        out, a = [], x64
        for nm, relu in uses:
            z = a @ p[f"{nm}.weight"].T + (p[f"{nm}.bias"] if f"{nm}.bias" in p else 0.0)
            if relu:
                out.append(z > 0)
            a = np.maximum(z, 0) if relu else z
        return out

    ratios, crossings = [], 0
    for t in range(STEPS):
        uses = uses_at(t)
        hat, state = torch_state()
        crossings += sum(int(np.sum(a != b)) for a, b in zip(signs(hat, uses), signs(params, uses)))
        if t % every == every - 1:
            o_hat = clone(np_opt)
            if state and "exp_avg" in state:
                o_hat.m = {k: v.astype(np.float64) for k, v in state["exp_avg"].items()}
                o_hat.v = {k: v.astype(np.float64) for k, v in state["exp_avg_sq"].items()}
            elif state and "momentum_buffer" in state:
                o_hat.buf = {k: v.astype(np.float64) for k, v in state["momentum_buffer"].items()}
            grads = lambda p: BM.loss_and_grads(p, x64, y64, uses, pass0)[1]  # noqa: E731
            a1, a0 = o_hat.step(hat, grads(hat)), clone(np_opt).step(params, grads(params))
            num = math.sqrt(sum(np.sum((a1[k] - a0[k]) ** 2) for k in a0))
            den = math.sqrt(sum(np.sum((hat[k] - params[k]) ** 2) for k in params))
            if den:
                ratios.append(num / den)
        torch_step(t)
        params = np_opt.step(params, BM.loss_and_grads(params, x64, y64, uses, pass0)[1])
    return np.array(ratios), crossings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rung", action="append", help="only these rungs (default: all)")
    parser.add_argument("--no-amplification", action="store_true")
    args = parser.parse_args(argv)
    chosen = {k: v for k, v in rungs().items() if not args.rung or k in args.rung}
    print("| rung | dtype | quantity | pair | max abs err | tolerance | max abs value | headroom |")
    print("|---|---|---|---|---|---|---|---|")
    timings = {}
    growth = GROWTH
    for name, spec in chosen.items():
        for dtype in ("float32", "float64"):
            rows, (t_sides, t_ref) = rows_for(name, spec, dtype)
            timings[name, dtype] = (t_sides, t_ref)
            for r in rows:
                if r[2].startswith("loss@"):
                    head = r[5] / r[4] if r[4] else math.inf
                else:
                    head = r[-1]
                print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2e} | {r[5]:.2e} | {r[6]:.2e} | {head:.2e} |")
    print()
    print("| rung | dtype | torch + TF, 500 steps (s) | float64 oracle with bounds (s) |")
    print("|---|---|---|---|")
    for (name, dtype), (a, b) in timings.items():
        print(f"| {name} | {dtype} | {a:.1f} | {b:.1f} |")
    if not args.no_amplification:
        print()
        print("| rung | dtype | twin (smooth) growth: max step, product over 500 | actual error's one-step growth, "
              "every 25th step: max (median) | ReLU inputs on the other side of 0 than the oracle's (sum over steps) |")
        print("|---|---|---|---|---|")
        for name, spec in chosen.items():
            if name in ("autograd", "my_relu"):
                continue  # the tensors' arithmetic
            for dtype in ("float32", "float64"):
                res = hypotheses(name, spec, dtype)
                if res is None:
                    continue
                r, crossings = res
                g = growth[name]
                print(f"| {name} | {dtype} | {g.max():.4f}, {np.prod(np.maximum(g, 1)):.3g} | "
                      f"{r.max():.4f} ({np.median(r):.4f}) | {crossings} |")


if __name__ == "__main__":
    main()
