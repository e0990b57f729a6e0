"""Lesson 04 across frameworks: a simple RNN with the same weights (ported between Keras'
and PyTorch's layouts) gives the same outputs, and a by-hand BPTT written here in numpy
matches both frameworks' automatic differentiation and a numerical gradient in float64."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import porting, sequences
from course_utils import tensorflow as tfu
from course_utils.checks import numerical_gradient, rel_error

tf, keras = tfu.tf, tfu.keras
N, T, D, H = 3, 7, 2, 5


def numpy_forward(x, h0, kernel, recurrent_kernel, bias):
    """States (N, T, H) of h_t = tanh(x_t K + h_{t-1} R + b)."""
    h, states = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        states.append(h)
    return np.stack(states, axis=1)


def numpy_bptt(dh_out, x, h0, hs, recurrent_kernel):
    """The reference BPTT for the loss sum(dh_out * hs), in the Keras layout:
    {"kernel" (D, H), "recurrent_kernel" (H, H), "bias" (H,), "h0" (N, H)}."""
    grads = {"kernel": np.zeros((x.shape[2], hs.shape[2])), "recurrent_kernel": np.zeros_like(recurrent_kernel),
             "bias": np.zeros(hs.shape[2])}
    from_later = np.zeros_like(h0)
    for t in reversed(range(hs.shape[1])):
        da = (dh_out[:, t] + from_later) * (1 - hs[:, t] ** 2)
        h_prev = hs[:, t - 1] if t > 0 else h0
        grads["kernel"] += x[:, t].T @ da
        grads["recurrent_kernel"] += h_prev.T @ da
        grads["bias"] += da.sum(axis=0)
        from_later = da @ recurrent_kernel.T
    grads["h0"] = from_later
    return grads


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    weights = sequences.random_rnn_weights(D, H, spectral_radius=0.9, seed=4)
    weights["b_h"] = rng.normal(size=H) * 0.3
    return {"x": rng.normal(size=(N, T, D)), "h0": rng.normal(size=(N, H)) * 0.5, "dh_out": rng.normal(size=(N, T, H)),
            "kernel": weights["W_xh"], "recurrent_kernel": weights["W_hh"], "bias": weights["b_h"]}


def keras_rnn(p, dtype):
    layer = keras.layers.SimpleRNN(H, return_sequences=True, dtype=dtype)
    layer.build((None, None, D))
    layer.set_weights([p["kernel"], p["recurrent_kernel"], p["bias"]])
    return layer


def torch_rnn(p, dtype):
    rnn = nn.RNN(D, H, batch_first=True).to(dtype)
    state = porting.keras_rnn_weights_to_torch_state("rnn", [(p["kernel"], p["recurrent_kernel"], p["bias"])])
    rnn.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in state.items()})
    return rnn


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_simple_rnn_with_ported_weights_agrees_across_frameworks(problem, dtype, tol):
    keras_out = keras_rnn(problem, dtype)(problem["x"].astype(dtype), initial_state=problem["h0"].astype(dtype)).numpy()
    t_dtype = getattr(torch, dtype)
    with torch.no_grad():
        torch_out = torch_rnn(problem, t_dtype)(torch.tensor(problem["x"], dtype=t_dtype),
                                                torch.tensor(problem["h0"][None], dtype=t_dtype))[0].numpy()
    expected = numpy_forward(problem["x"], problem["h0"], problem["kernel"], problem["recurrent_kernel"], problem["bias"])
    np.testing.assert_allclose(keras_out, torch_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(torch_out, expected, rtol=tol, atol=tol)


def test_torch_initialised_rnn_ported_to_keras_agrees():
    torch.manual_seed(0)
    rnn = nn.RNN(D, H, batch_first=True)  # PyTorch's own initialisation, both biases non-zero
    kernel, recurrent, bias = porting.rnn_torch_to_keras("rnn", rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0,
                                                         rnn.bias_hh_l0)
    layer = keras.layers.SimpleRNN(H, return_sequences=True)
    layer.build((None, None, D))
    layer.set_weights([kernel, recurrent, bias])
    x = np.random.default_rng(1).normal(size=(N, T, D)).astype(np.float32)
    with torch.no_grad():
        expected = rnn(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_course_regressors_from_the_same_weights_agree_across_frameworks():
    from course_utils import torch as tu

    weights = sequences.random_rnn_weights(2, 16, 1, spectral_radius=1.2, seed=9)
    x, _ = sequences.adding_problem(8, 30, seed=0)
    t_model, k_model = tu.rnn_regressor(2, 16), tfu.rnn_regressor(2, 16)
    tu.set_rnn_weights(t_model, weights)
    tfu.set_rnn_weights(k_model, weights)
    np.testing.assert_allclose(tu.predict_steps(t_model, x), tfu.predict_steps(k_model, x), rtol=1e-5, atol=1e-5)


def torch_autograd(p):
    leaves = {k: torch.tensor(p[k], requires_grad=True) for k in ("kernel", "recurrent_kernel", "bias", "h0")}
    h, states = leaves["h0"], []
    x = torch.tensor(p["x"])
    for t in range(T):
        h = torch.tanh(x[:, t] @ leaves["kernel"] + h @ leaves["recurrent_kernel"] + leaves["bias"])
        states.append(h)
    (torch.tensor(p["dh_out"]) * torch.stack(states, dim=1)).sum().backward()
    return {k: v.grad.numpy() for k, v in leaves.items()}


def torch_builtin_autograd(p):
    """The same gradients from nn.RNN itself, moved back to the Keras layout."""
    rnn = torch_rnn(p, torch.float64)
    h0 = torch.tensor(p["h0"][None], requires_grad=True)
    out, _ = rnn(torch.tensor(p["x"]), h0)
    (torch.tensor(p["dh_out"]) * out).sum().backward()
    return {"kernel": rnn.weight_ih_l0.grad.numpy().T, "recurrent_kernel": rnn.weight_hh_l0.grad.numpy().T,
            "bias": rnn.bias_ih_l0.grad.numpy(), "h0": h0.grad.numpy()[0]}


def keras_builtin_tape(p):
    layer = keras_rnn(p, "float64")
    h0 = tf.Variable(p["h0"])
    with tf.GradientTape() as tape:
        out = layer(tf.constant(p["x"]), initial_state=h0)
        loss = tf.reduce_sum(tf.constant(p["dh_out"]) * out)
    grads = tape.gradient(loss, [*layer.weights, h0])
    return dict(zip(("kernel", "recurrent_kernel", "bias", "h0"), (g.numpy() for g in grads)))


@pytest.mark.parametrize("reference", [torch_autograd, torch_builtin_autograd, keras_builtin_tape],
                         ids=["torch autograd", "nn.RNN autograd", "keras SimpleRNN GradientTape"])
def test_by_hand_bptt_matches_automatic_differentiation_in_float64(problem, reference):
    hs = numpy_forward(problem["x"], problem["h0"], problem["kernel"], problem["recurrent_kernel"], problem["bias"])
    by_hand = numpy_bptt(problem["dh_out"], problem["x"], problem["h0"], hs, problem["recurrent_kernel"])
    for name, grad in reference(problem).items():
        assert rel_error(by_hand[name], grad) < 1e-6, f"{name}: relative error {rel_error(by_hand[name], grad):.2e}"


def test_by_hand_bptt_matches_a_numerical_gradient(problem):
    p = problem
    hs = numpy_forward(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"])
    by_hand = numpy_bptt(p["dh_out"], p["x"], p["h0"], hs, p["recurrent_kernel"])

    def loss_of(name):
        """The loss as a function of one argument, the others fixed."""
        def loss(value):
            q = {**p, name: value}
            return float(np.sum(p["dh_out"] * numpy_forward(q["x"], q["h0"], q["kernel"], q["recurrent_kernel"], q["bias"])))
        return loss

    for name in ("kernel", "recurrent_kernel", "bias", "h0"):
        numerical = numerical_gradient(loss_of(name), p[name])
        assert rel_error(by_hand[name], numerical) < 1e-6, f"{name}: relative error {rel_error(by_hand[name], numerical):.2e}"


def test_a_bptt_without_the_tanh_derivative_is_caught(problem):
    """The comparison above can fail: dropping (1 - h^2) gives gradients far from autograd's."""
    hs = numpy_forward(problem["x"], problem["h0"], problem["kernel"], problem["recurrent_kernel"], problem["bias"])
    wrong = numpy_bptt(problem["dh_out"], problem["x"], problem["h0"], np.zeros_like(hs), problem["recurrent_kernel"])
    assert rel_error(wrong["kernel"], torch_autograd(problem)["kernel"]) > 1e-2
