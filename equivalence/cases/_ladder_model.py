"""Error bounds for the ladder: one step, and a whole training trajectory.

A float64 pass through the network carries, beside every value v, a bound on
how far the same computation in a precision with unit roundoff u can land from
v (Wilkinson's running error analysis, with Higham's gamma_n):

* rounding: ``gamma_n(u) * M`` with ``n`` the chain of dependent roundings and
  ``M`` the magnitude of the terms, ``|a| @ |W|^T + |b|`` for a layer (never the
  value itself, which cancels: late in training y_pred ~ y);
* branches: a ReLU input z with ``|z|`` within its own error bound may take the
  other branch, so the gradient behind it may be 0 instead of G or G instead of
  0: an absolute error ``|G|``, not proportional to u (``flip`` terms);
* optimizer updates: SGD, momentum, Nesterov, weight decay (torch's coupled
  form) and Adam, whose division by ``sqrt(v) + eps`` is bounded over the whole
  rounding interval of v, not by its derivative at v.

``bounds(u)`` are absolute bounds B(u). The runner's tolerance is
``(gamma_n(u_a) + gamma_n(u_b)) * m``; ``magnitude`` turns bounds into an ``m``
valid for both pairs a run compares (docs/tolerances-trajectories.md):
``m = max(B(u_run) / gamma_n(u_run), B(u_64) / gamma_n(u_64))``.

Over a trajectory, the bound of step t is computed at the float64 reference's
state and errors add from step to step (the hypothesis that one step of the
optimizer does not expand a perturbation of its parameters; measured in
docs/tolerances-trajectories.md). Optimizer state errors (momentum buffers,
Adam's m and v) are carried exactly, as running bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..tolerance import ELEMENTARY, gamma, unit_roundoff

PRECISIONS = ("float32", "float64")


def g(n: int, precision: str) -> float:
    return gamma(n, unit_roundoff(precision))


@dataclass
class Bounded:
    """A float64 value, the magnitude M and chain length n of its rounding, and its flip terms per precision."""

    value: np.ndarray
    M: np.ndarray
    n: int
    flip: dict = field(default_factory=lambda: {p: 0.0 for p in PRECISIONS})

    def bound(self, precision: str) -> np.ndarray:
        return g(self.n, precision) * self.M + self.flip[precision]


# -- one forward and backward pass ------------------------------------------------
# A network is a list of layer uses: (torch module name, ReLU after it?). The
# dynamic net uses "middle_linear" several times; its gradient sums over the uses.
def uses_two_layer(names=("0", "2")):
    return [(names[0], True), (names[1], False)]


def uses_dynamic(depth):
    return [("input_linear", True)] + [("middle_linear", True)] * depth + [("output_linear", False)]


def forward_backward(params, x, y, uses, pass_at_zero=False, E=None):
    """Loss and parameter gradients in float64 with their bounds (``Bounded``), and the forward record.

    ``params`` are torch-layout arrays: "name.weight" (out, in) and optionally
    "name.bias". ``pass_at_zero``: MyReLU's backward rule (gradient passes at z == 0).
    ``E`` (per precision): a bound on the Euclidean norm of the parameters' own
    error, carried from earlier steps of a trajectory. It moves every layer's
    output by at most ``delta`` per sample (``||da|| (||W|| + E) + (||a|| + 1) E``,
    a ReLU being 1-Lipschitz), which adds ``sum 2 ||r|| delta + delta^2`` to the
    loss bound. It does not widen the ReLUs' reach: that a carried error moves no
    ReLU input across its kink is a hypothesis of the trajectory bound (H2 in
    docs/tolerances-trajectories.md), measured there; a step's own rounding does
    (the flip terms).
    """
    E = E or {p: 0.0 for p in PRECISIONS}
    delta = {p: np.zeros(x.shape[0]) for p in PRECISIONS}
    a = Bounded(x, np.abs(x), 0)
    record = []
    for name, relu in uses:
        W, b = params[f"{name}.weight"], params.get(f"{name}.bias")
        z = a.value @ W.T
        Mz = a.M @ np.abs(W).T
        n = a.n + W.shape[1]  # a reduction over fan_in
        if b is not None:
            z, Mz, n = z + b, Mz + np.abs(b), n + 1
        a_norm, w_norm = np.linalg.norm(a.value, axis=1), np.linalg.norm(W)
        for p in PRECISIONS:
            if E[p]:
                delta[p] = delta[p] * (w_norm + E[p]) + (a_norm + (b is not None)) * E[p]
        # a ReLU is 1-Lipschitz: the forward error does not grow, whichever branch is taken
        zb = Bounded(z, Mz, n)
        record.append((name, relu, a, zb))
        a = Bounded(np.maximum(z, 0), Mz, n) if relu else zb
    r = a.value - y
    Mr, n_r = a.M + np.abs(y), a.n + 1
    loss = float(np.sum(r * r))

    def loss_bound(precision):
        # sum (r + d)^2 - sum r^2 = sum 2 r d + d^2, and the squares and the sum round too
        d = g(n_r, precision) * Mr
        rounding = float(np.sum(2 * np.abs(r) * d + d * d) + g(r.size + 1, precision) * np.sum((np.abs(r) + d) ** 2))
        # the parameters' carried error: the outputs move by delta per sample
        dp = delta[precision]
        carried = float(np.sum(2 * np.linalg.norm(np.abs(r) + d, axis=1) * dp + dp * dp)) if E[precision] else 0.0
        return rounding + carried

    G = Bounded(2.0 * r, 2.0 * Mr, n_r + 1)
    grads: dict[str, Bounded] = {}
    for name, relu, a_in, z in reversed(record):
        if relu:
            G = _relu_backward(G, z, pass_at_zero)
        W, b = params[f"{name}.weight"], params.get(f"{name}.bias")
        N = G.value.shape[0]
        parts = {f"{name}.weight": Bounded(G.value.T @ a_in.value, G.M.T @ a_in.M, G.n + a_in.n + N,
                                           {p: _flip_map(G.flip[p], lambda f: f.T @ a_in.M) for p in PRECISIONS})}
        if b is not None:
            parts[f"{name}.bias"] = Bounded(G.value.sum(0), G.M.sum(0), G.n + N,
                                            {p: _flip_map(G.flip[p], lambda f: f.sum(0)) for p in PRECISIONS})
        for k, part in parts.items():  # a shared layer: its uses add up
            if k in grads:
                old = grads[k]
                grads[k] = Bounded(old.value + part.value, old.M + part.M, max(old.n, part.n) + 1,
                                   {p: old.flip[p] + part.flip[p] for p in PRECISIONS})
            else:
                grads[k] = part
        G = Bounded(G.value @ W, G.M @ np.abs(W), G.n + W.shape[0],
                    {p: _flip_map(G.flip[p], lambda f: f @ np.abs(W)) for p in PRECISIONS})
    return {"loss": loss, "loss_bound": loss_bound, "grads": grads, "record": record, "r": r}


def loss_and_grads(params, x, y, uses, pass_at_zero=False, masks=None):
    """forward_backward's values alone (no bounds), optionally with given ReLU masks (one per use).

    With the reference's masks the map is the smooth one around the reference: no
    ReLU changes branch (the tangent twin; branch changes are bounded separately).
    """
    acts, zs = [x], []
    for name, relu in uses:
        z = acts[-1] @ params[f"{name}.weight"].T
        if f"{name}.bias" in params:
            z = z + params[f"{name}.bias"]
        zs.append(z)
        if relu:
            keep = masks[len(zs) - 1] if masks is not None else (z >= 0 if pass_at_zero else z > 0)
            acts.append(np.where(keep, z, 0.0))
        else:
            acts.append(z)
    r = acts[-1] - y
    G, grads = 2.0 * r, {}
    for i in range(len(uses) - 1, -1, -1):
        name, relu = uses[i]
        if relu:
            keep = masks[i] if masks is not None else (zs[i] >= 0 if pass_at_zero else zs[i] > 0)
            G = np.where(keep, G, 0.0)
        parts = {f"{name}.weight": G.T @ acts[i]}
        if f"{name}.bias" in params:
            parts[f"{name}.bias"] = G.sum(0)
        for k, v in parts.items():
            grads[k] = grads[k] + v if k in grads else v
        G = G @ params[f"{name}.weight"]
    return float(np.sum(r * r)), grads


def _flip_map(f, fn):
    """A linear map of a flip term; 0 (no ReLU input within reach of its kink) stays 0, cheaply."""
    return fn(f) if np.ndim(f) and np.any(f) else 0.0


def _relu_backward(G, z, pass_at_zero):
    """Mask G by the reference's branch; where z is within its error of 0 either branch may be taken."""
    passed = z.value >= 0 if pass_at_zero else z.value > 0
    flip = {}
    for p in PRECISIONS:
        uncertain = np.abs(z.value) <= z.bound(p)
        reach = passed | uncertain
        f = np.asarray(G.flip[p]) * reach if np.ndim(G.flip[p]) else 0.0
        if uncertain.any():
            f = f + np.where(uncertain, np.abs(G.value) + G.bound(p), 0.0)
        flip[p] = f
    # M keeps the rounding part wherever either branch passes G (the precisions share M)
    reach_any = passed | (np.abs(z.value) <= z.bound("float32"))
    return Bounded(np.where(passed, G.value, 0.0), G.M * reach_any, G.n, flip)


# -- optimizer steps, with their bounds --------------------------------------------
class SGDModel:
    """torch.optim.SGD (dampening 0) in float64, carrying bounds on the updated parameters and buffers."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0, buffers=None):
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.buf = dict(buffers or {})  # exact float64 buffers (the reference's)
        self.buf_err = {p: {} for p in PRECISIONS}  # running bounds on the computed buffers

    def step(self, params, grads):
        """New params, and per precision the bound on each new parameter (this step's rounding and carried state)."""
        new, err = {}, {p: {} for p in PRECISIONS}
        for k, p in params.items():
            if k not in grads:  # no gradient (an unused layer): torch leaves it and its buffer alone
                new[k] = p
                for prec in PRECISIONS:
                    err[prec][k] = np.zeros_like(p)
                continue
            gb = grads[k]
            d = gb.value + self.weight_decay * p
            old_buf = self.buf.get(k)
            if self.momentum:
                self.buf[k] = d.copy() if old_buf is None else self.momentum * old_buf + d
            for prec in PRECISIONS:
                # g + wd p: the gradient's bound plus two roundings
                e = gb.bound(prec) + g(2, prec) * (np.abs(gb.value) + self.weight_decay * np.abs(p))
                if self.momentum:
                    base = 0.0 if old_buf is None else self.momentum * np.abs(old_buf)
                    # momentum * buf + d: the carried error decays by momentum, plus two roundings
                    # (five: Keras keeps -lr * buf, converted on the way in and out)
                    e_buf = self.momentum * self.buf_err[prec].get(k, 0.0) + e + g(5, prec) * (base + np.abs(d) + e)
                    self.buf_err[prec][k] = e_buf
                    if self.nesterov:  # d + momentum * buf: two more roundings
                        e = e + self.momentum * e_buf + g(2, prec) * (np.abs(d) + self.momentum * np.abs(self.buf[k]))
                    else:
                        e = e_buf
                err[prec][k] = e  # the bound on this step's direction
            if self.momentum:
                d = d + self.momentum * self.buf[k] if self.nesterov else self.buf[k]
            new[k] = p - self.lr * d
            for prec in PRECISIONS:
                # p - lr d: lr d and the subtraction round (Keras's -lr*buf velocity: two more)
                e = err[prec][k]
                err[prec][k] = self.lr * e * (1 + g(2, prec)) + g(4, prec) * (np.abs(p) + self.lr * np.abs(d))
        return new, err


class AdamModel:
    """torch.optim.Adam in float64, carrying bounds on the updated parameters and on m and v."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, state=None):
        self.lr, (self.b1, self.b2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        state = state or {}
        self.t = int(state.get("step", 0))
        self.m = dict(state.get("exp_avg", {}))
        self.v = dict(state.get("exp_avg_sq", {}))
        self.m_err = {p: {} for p in PRECISIONS}
        self.v_err = {p: {} for p in PRECISIONS}

    def update_cap(self):
        """C_t with |m^_t| / (sqrt(v^_t) + eps) <= C_t for any gradients (weight decay included).

        Cauchy-Schwarz on m_t = (1-b1) sum b1^k g_{t-k}, v_t = (1-b2) sum b2^k g_{t-k}^2:
        |m_t| <= (1-b1)/sqrt(1-b2) sqrt(v_t) sqrt(sum_{k<t} (b1^2/b2)^k), valid while b1^2 < b2.
        """
        ratio = self.b1**2 / self.b2
        if ratio >= 1:
            return math.inf
        geometric = (1 - ratio**self.t) / (1 - ratio)
        return ((1 - self.b1) / math.sqrt(1 - self.b2) * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
                * math.sqrt(geometric))

    def step(self, params, grads):
        self.t += 1
        bc1, bc2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        s, c2 = self.lr / bc1, math.sqrt(bc2)
        cap = self.update_cap()
        new, err = {}, {p: {} for p in PRECISIONS}
        for k, p in params.items():
            gb = grads[k]
            d = gb.value + self.weight_decay * p
            m_old, v_old = self.m.get(k, np.zeros_like(p)), self.v.get(k, np.zeros_like(p))
            m = m_old + (1 - self.b1) * (d - m_old)
            v = self.b2 * v_old + (1 - self.b2) * d * d
            sqrt_v = np.sqrt(v)
            D = sqrt_v / c2 + self.eps
            f = s * m / D
            abs_d, abs_m_old, abs_m, abs_f = np.abs(d), np.abs(m_old), np.abs(m), np.abs(f)
            wd_p = self.weight_decay * np.abs(p)
            for prec in PRECISIONS:
                e_d = gb.bound(prec) + g(2, prec) * (np.abs(gb.value) + wd_p)
                # m + (1 - b1)(d - m): the carried error decays by b1, plus three roundings
                e_m = (self.b1 * self.m_err[prec].get(k, 0.0) + (1 - self.b1) * e_d
                       + g(3, prec) * (abs_m_old + (1 - self.b1) * (abs_d + e_d + abs_m_old)))
                # b2 v + (1 - b2) d^2: |(d+e)^2 - d^2| <= 2|d|e + e^2, plus four roundings
                e_v = (self.b2 * self.v_err[prec].get(k, 0.0) + (1 - self.b2) * (2 * abs_d + e_d) * e_d
                       + g(4, prec) * (self.b2 * v_old + (1 - self.b2) * (abs_d + e_d) ** 2))
                self.m_err[prec][k], self.v_err[prec][k] = e_m, e_v
                # sqrt over the whole interval [v - e_v, v + e_v]: |sqrt(a) - sqrt(b)| <= |a - b| / (sqrt(a) + sqrt(b))
                # and <= sqrt|a - b|; then sqrt's own rounding (an elementary function)
                lo = np.sqrt(np.maximum(v - e_v, 0.0))
                sqrt_hi = np.sqrt(v + e_v)
                e_sqrt = np.minimum(e_v / np.maximum(sqrt_v + lo, np.finfo(float).tiny), np.sqrt(e_v))
                e_sqrt += g(ELEMENTARY, prec) * sqrt_hi
                # / sqrt(bc2) (itself rounded), + eps
                e_D = e_sqrt / c2 + g(3, prec) * (sqrt_hi / c2 + self.eps)
                D_lo = np.maximum(D - e_D, self.eps * (1 - g(3, prec)))
                if not np.all(D_lo > 0):
                    raise ValueError("Adam with eps = 0 and a zero second moment: the update is not bounded")
                # s m / D: |m^/D^ - m/D| <= e_m / D^ + |m| e_D / (D D^); s rounds, then the product and the quotient
                e_f = s * (e_m + abs_m * e_D / D) / D_lo
                e_f += g(3, prec) * (abs_f + e_f)
                # and never more than twice the largest Adam update (both runs' updates are bounded)
                e_f = np.minimum(e_f, 2 * self.lr * cap * (1 + g(16, prec)))
                err[prec][k] = e_f + g(1, prec) * (np.abs(p - f) + e_f)  # p - f rounds once
            self.m[k], self.v[k] = m, v
            new[k] = p - f
        return new, err


# -- from bounds to the runner's magnitude -------------------------------------------
def magnitude(bound_by_precision, n, dtype):
    """``m`` with ``(gamma_n(u_a) + gamma_n(u_b)) m`` >= B_a + B_b for the pairs of a ``dtype`` run.

    A run compares dtype with dtype (torch~tf) and dtype with float64 (each side
    against the reference): m = max(B(dtype) / gamma_n(dtype), B(float64) / gamma_n(float64)).
    """
    return np.maximum(np.asarray(bound_by_precision[dtype]) / g(n, dtype),
                      np.asarray(bound_by_precision["float64"]) / g(n, "float64"))


# -- growth along the trajectory -----------------------------------------------------------
class Twin:
    """A float64 copy of the run, a small random distance away, that measures growth (Benettin's method).

    The twin steps with the reference's ReLU masks (the smooth map around the
    reference; a branch change is an additive jump, bounded by the flip terms).
    After every step its distance to the reference (parameters and optimizer
    state alike) is measured in the parameters and scaled back to ``eta``: the
    ratio is the step's growth factor g_t, by which the trajectory bound
    multiplies (E_{t+1} = max(1, g_t) E_t + rho_t). A perturbation carried this
    way turns towards the most expanded direction, as a rounding error does.
    """

    def __init__(self, params, opt, rel=1e-7, seed=0):
        rng = np.random.default_rng(seed)
        norm = math.sqrt(sum(np.sum(v * v) for v in params.values()))
        self.eta = rel * norm
        d = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        dn = math.sqrt(sum(np.sum(v * v) for v in d.values()))
        self.params = {k: v + self.eta * d[k] / dn for k, v in params.items()}
        self.opt = opt

    def step(self, x, y, uses, pass_at_zero, masks, base_params, base_opt):
        """One step of the twin with the reference's ReLU masks; returns g_t. ``base_*``: the reference after its step."""
        _, grads = loss_and_grads(self.params, x, y, uses, pass_at_zero, masks)
        new = self.opt.step(self.params, grads)
        dist = math.sqrt(sum(np.sum((new[k] - base_params[k]) ** 2) for k in base_params))
        growth = dist / self.eta
        scale = self.eta / dist if dist else 1.0
        self.params = {k: base_params[k] + (new[k] - base_params[k]) * scale for k in base_params}
        for attr in ("buf", "m", "v"):  # the optimizer state's distance shrinks by the same factor
            mine, base = getattr(self.opt, attr, None), getattr(base_opt, attr, None)
            if mine is not None and base is not None:
                for k in list(mine):
                    if k in base:
                        mine[k] = base[k] + (mine[k] - base[k]) * scale
        return growth
