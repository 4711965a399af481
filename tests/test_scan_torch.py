"""Gradients through sg.scan against PyTorch's autograd of the same loops: back-propagation
through time, truncated, and differentiated twice."""

from __future__ import annotations

import numpy as np
import pytest

import symgraph as sg

torch = pytest.importorskip("torch")
rng = np.random.default_rng(99)


def tensors(*arrays):
    return [torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in arrays]


def sg_rnn(x, h0, W, U, **options):
    hs, _ = sg.scan(
        lambda x_t, h, W, U: sg.tanh(x_t @ W + h @ U), sequences=x, outputs_info=h0, non_sequences=[W, U], **options
    )
    return hs


def torch_rnn(x, h0, W, U, truncate=-1):
    """The loop in torch; truncated BPTT: the steps before the last ``truncate`` give no gradient."""
    steps = x.shape[0]
    first = steps - truncate if 0 <= truncate < steps else 0
    h, outputs = h0, []
    for t in range(steps):
        if t == first and first > 0:
            h = h.detach()
        if t < first:
            with torch.no_grad():
                h = torch.tanh(x[t] @ W + h @ U)
        else:
            h = torch.tanh(x[t] @ W + h @ U)
        outputs.append(h)
    return torch.stack(outputs)


@pytest.mark.parametrize("truncate", [-1, 0, 1, 3, 7])
def test_rnn_gradients_match_torch_autograd_including_truncated_bptt(truncate):
    X, H0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    W, U = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)) * 0.5
    x, h0, w, u = sg.tensor3("x"), sg.matrix("h0"), sg.matrix("w"), sg.matrix("u")
    cost = (sg_rnn(x, h0, w, u, truncate_gradient=truncate) ** 2).sum()
    ours = sg.function([x, h0, w, u], sg.grad(cost, [x, h0, w, u]))(X, H0, W, U)
    inputs = tensors(X, H0, W, U)
    torch_cost = (torch_rnn(*inputs, truncate=truncate) ** 2).sum()
    if torch_cost.requires_grad:  # truncate_gradient=0: nothing flows back at all
        torch_cost.backward()
    for got, tensor in zip(ours, inputs):
        expected = tensor.grad.numpy() if tensor.grad is not None else np.zeros(tensor.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_lstm_gradients_match_torch_autograd():
    X, H0 = rng.normal(size=(6, 3, 2)), rng.normal(size=(3, 4))
    Wx, Wh, b = rng.normal(size=(2, 16)), rng.normal(size=(4, 16)) * 0.5, rng.normal(size=16)
    H = 4

    def sg_step(x_t, h, c, Wx, Wh, b):
        a = x_t @ Wx + h @ Wh + b
        i, f, o = (sg.nn.sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        c_new = f * c + i * sg.tanh(a[:, 3 * H :])
        return o * sg.tanh(c_new), c_new

    x, h0, wx, wh, bias = sg.tensor3("x"), sg.matrix("h0"), sg.matrix("wx"), sg.matrix("wh"), sg.vector("b")
    (hs, cs), _ = sg.scan(sg_step, sequences=x, outputs_info=[h0, sg.zeros_like(h0)], non_sequences=[wx, wh, bias])
    cost = (hs**2).sum() + cs[-1].sum()
    ours = sg.function([x, h0, wx, wh, bias], [cost, *sg.grad(cost, [x, h0, wx, wh, bias])])(X, H0, Wx, Wh, b)

    inputs = tensors(X, H0, Wx, Wh, b)
    tx, th, twx, twh, tb = inputs
    h, c, hs_t = th, torch.zeros_like(th), []
    for t in range(X.shape[0]):
        a = tx[t] @ twx + h @ twh + tb
        i, f, o = (torch.sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        c = f * c + i * torch.tanh(a[:, 3 * H :])
        h = o * torch.tanh(c)
        hs_t.append(h)
    torch_cost = (torch.stack(hs_t) ** 2).sum() + c.sum()
    torch_cost.backward()
    np.testing.assert_allclose(ours[0], torch_cost.item(), rtol=1e-12)
    for got, tensor in zip(ours[1:], inputs):
        np.testing.assert_allclose(got, tensor.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_hessian_vector_products_match_torch_double_backward():
    X, H0 = rng.normal(size=(4, 2, 3)), rng.normal(size=(2, 3))
    W, U = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)) * 0.5
    V = rng.normal(size=(3, 3))
    x, h0, w, u = sg.tensor3("x"), sg.matrix("h0"), sg.matrix("w"), sg.matrix("u")
    cost = (sg_rnn(x, h0, w, u) ** 2).sum()
    gradient_u = sg.grad(cost, u)
    hvp = sg.grad((gradient_u * sg.constant(V)).sum(), [w, u, h0])
    ours = sg.function([x, h0, w, u], hvp)(X, H0, W, U)

    tx, th, tw, tu = tensors(X, H0, W, U)
    torch_cost = (torch_rnn(tx, th, tw, tu) ** 2).sum()
    (torch_gradient_u,) = torch.autograd.grad(torch_cost, tu, create_graph=True)
    expected = torch.autograd.grad((torch_gradient_u * torch.tensor(V)).sum(), [tw, tu, th])
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-12)


def test_taps_and_going_backwards_match_torch():
    X, Y0 = rng.normal(size=(7, 2)), rng.normal(size=(2, 2))
    w = 0.4

    def step(x_tm1, x_t, y_tm2, y_tm1):
        return sg.tanh(x_tm1 * x_t + w * y_tm2 + y_tm1 * 0.5)

    x, y0 = sg.matrix("x"), sg.matrix("y0")
    ys, _ = sg.scan(
        step,
        sequences=dict(input=x, taps=[-1, 0]),
        outputs_info=dict(initial=y0, taps=[-2, -1]),
        go_backwards=True,
    )
    cost = (ys**3).sum()
    ours = sg.function([x, y0], sg.grad(cost, [x, y0]))(X, Y0)

    tx, ty0 = tensors(X, Y0)
    history = [ty0[0], ty0[1]]
    for t in range(X.shape[0] - 1, 0, -1):  # backwards: rows t and t - 1
        history.append(torch.tanh(tx[t - 1] * tx[t] + w * history[-2] + history[-1] * 0.5))
    (torch.stack(history[2:]) ** 3).sum().backward()
    np.testing.assert_allclose(ours[0], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[1], ty0.grad.numpy(), rtol=1e-10, atol=1e-12)
