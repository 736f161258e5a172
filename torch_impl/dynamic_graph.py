"""The data-dependent graph of seed 001 §4.2: ``blah(k, x)`` applies tanh(w[i] @ x) k times.

    u = blah(1, x_u),  v = blah(3, x_v),  q = u . v

w[0] is used by both u and v, w[1] and w[2] by v alone: the autograd graph is
not the network's structure, it is the graph of the operations that ran.
Run ``python -m torch_impl.dynamic_graph``.
"""

import torch


def blah(k, x, w):
    """k layers x <- tanh(w[i] @ x); the seed's ``w`` is a global, passed here."""
    for i in range(k):
        x = torch.tanh(w[i] @ x)
    return x


def dynamic_graph(w, x_u, x_v, k_u=1, k_v=3):
    """u, v, q = u . v and dq/dw (from ``q.backward()``)."""
    w = w.detach().requires_grad_()
    u = blah(k_u, x_u, w)
    v = blah(k_v, x_v, w)
    q = u.dot(v)
    q.backward()
    return u, v, q, w.grad


def main():
    w = torch.rand(3, 10, 10)
    u, v, q, gw = dynamic_graph(w, torch.rand(10), torch.rand(10))
    print(q.detach())
    # w[0] gets gradient from u and from v; w[1], w[2] from v alone
    print([float(gw[i].norm()) for i in range(3)])
    _, _, _, gw1 = dynamic_graph(w, torch.rand(10), torch.rand(10), k_u=1, k_v=1)
    print("with k = 1 for both, w[1] and w[2] get no gradient:", [float(gw1[i].norm()) for i in range(3)])


if __name__ == "__main__":
    main()
