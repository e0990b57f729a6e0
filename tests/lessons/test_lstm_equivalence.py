"""Lesson 05 across frameworks: the two notebooks' own solution functions and the frameworks'
LSTM layers agree when the weights are ported between Keras' and PyTorch's layouts, the
by-hand backward pass of one step matches in both and against a numerical gradient in
float64, and the lesson's seed model computes the same probabilities in both."""

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import porting
from course_utils import tensorflow as tfu
from course_utils.checks import numerical_gradient, rel_error
from course_utils.data import load_italy_power_demand
from tests.harness import lesson_namespace

tf, keras = tfu.tf, tfu.keras
LESSON = "05_lstm"
EXERCISES = (
    "lstm_step",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_param_count",
    "init_forget_bias",
    "prepare_italy",
    "build_seed_classifier",
)
N, T, D, H = 3, 7, 2, 5


@pytest.fixture(scope="module")
def pt():
    return lesson_namespace(LESSON, "pytorch", *EXERCISES)


@pytest.fixture(scope="module")
def tfn():
    return lesson_namespace(LESSON, "tensorflow", *EXERCISES)


@pytest.fixture(scope="module")
def weights():
    """Neutral (Keras-layout) LSTM weights, float64, with a bias that is not zero anywhere."""
    rng = np.random.default_rng(5)
    return {
        "kernel": rng.normal(size=(D, 4 * H)),
        "recurrent_kernel": rng.normal(size=(H, 4 * H)) / np.sqrt(H),
        "bias": rng.normal(size=4 * H),
        "x": rng.normal(size=(N, T, D)),
        "h0": rng.normal(size=(N, H)) * 0.5,
        "c0": rng.normal(size=(N, H)),
    }


def torch_weights(w, dtype=torch.float64):
    ported = porting.rnn_keras_to_torch("lstm", w["kernel"], w["recurrent_kernel"], w["bias"])
    return [torch.tensor(ported[k], dtype=dtype) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_forward_passes_and_layers_agree_across_frameworks(pt, tfn, weights, dtype, tol):
    w = weights
    t_dtype = getattr(torch, dtype)
    x, h0, c0 = (torch.tensor(w[k], dtype=t_dtype) for k in ("x", "h0", "c0"))
    ours_pt = [a.numpy() for a in pt["lstm_forward"](x, h0, c0, *torch_weights(w, t_dtype))]
    ours_tf = [
        np.asarray(a)
        for a in tfn["lstm_forward"](*(tf.constant(w[k], dtype) for k in ("x", "h0", "c0", "kernel", "recurrent_kernel", "bias")))
    ]
    lstm = nn.LSTM(D, H, batch_first=True).to(t_dtype)
    state = porting.keras_rnn_weights_to_torch_state("lstm", [(w["kernel"], w["recurrent_kernel"], w["bias"])])
    lstm.load_state_dict({k: torch.tensor(v, dtype=t_dtype) for k, v in state.items()})
    with torch.no_grad():
        out, (h_n, c_n) = lstm(x, (h0[None], c0[None]))
    layer = keras.layers.LSTM(H, return_sequences=True, return_state=True, dtype=dtype)
    layer.build((None, None, D))
    layer.set_weights([w["kernel"], w["recurrent_kernel"], w["bias"]])
    k_out, k_h, k_c = (
        np.asarray(a) for a in layer(w["x"].astype(dtype), initial_state=[w["h0"].astype(dtype), w["c0"].astype(dtype)])
    )
    for got in (ours_pt, ours_tf, [k_out, k_h, k_c]):
        for a, b in zip(got, (out.numpy(), h_n[0].numpy(), c_n[0].numpy())):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_steps_give_the_same_gates_in_both_frameworks(pt, tfn, weights):
    w = weights
    x_t, h, c = w["x"][:, 0], w["h0"], w["c0"]
    h_pt, c_pt, gates_pt = pt["lstm_step"](*(torch.tensor(a) for a in (x_t, h, c)), *torch_weights(w))
    h_tf, c_tf, gates_tf = tfn["lstm_step"](*(tf.constant(a) for a in (x_t, h, c, w["kernel"], w["recurrent_kernel"], w["bias"])))
    for a, b in zip((h_pt, c_pt, *gates_pt), (h_tf, c_tf, *gates_tf)):
        np.testing.assert_allclose(a.numpy(), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_torch_initialised_lstm_ported_to_keras_agrees():
    torch.manual_seed(0)
    lstm = nn.LSTM(D, H, batch_first=True)  # PyTorch's own initialisation, both biases non-zero
    kernel, recurrent, bias = porting.rnn_torch_to_keras(
        "lstm", lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    )
    layer = keras.layers.LSTM(H, return_sequences=True)
    layer.build((None, None, D))
    layer.set_weights([kernel, recurrent, bias])
    x = np.random.default_rng(1).normal(size=(N, T, D)).astype(np.float32)
    with torch.no_grad():
        expected = lstm(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_step_backward_agrees_across_frameworks_and_with_a_numerical_gradient(pt, tfn, weights):
    w = weights
    rng = np.random.default_rng(9)
    dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    x_t, h_prev, c_prev = w["x"][:, 0], w["h0"], w["c0"]
    weight_ih, weight_hh, bias_ih, _ = torch_weights(w)
    g_pt = pt["lstm_step_backward"](*(torch.tensor(a) for a in (dh, dc, x_t, h_prev, c_prev)), weight_ih, weight_hh, bias_ih)
    g_tf = tfn["lstm_step_backward"](
        *(tf.constant(a) for a in (dh, dc, x_t, h_prev, c_prev, w["kernel"], w["recurrent_kernel"], w["bias"]))
    )
    pairs = {"x": "x", "h_prev": "h_prev", "c_prev": "c_prev", "bias": "bias"}
    for k_pt, k_tf in pairs.items():
        assert rel_error(g_pt[k_pt], np.asarray(g_tf[k_tf])) < 1e-10, k_pt
    assert rel_error(g_pt["weight_ih"].numpy().T, np.asarray(g_tf["kernel"])) < 1e-10
    assert rel_error(g_pt["weight_hh"].numpy().T, np.asarray(g_tf["recurrent_kernel"])) < 1e-10

    def loss(kernel, recurrent_kernel, bias, x_t, h_prev, c_prev):
        h, c, _ = tfn["lstm_step"](*(tf.constant(a) for a in (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)))
        return float(np.sum(dh * np.asarray(h)) + np.sum(dc * np.asarray(c)))

    point = {
        "kernel": w["kernel"],
        "recurrent_kernel": w["recurrent_kernel"],
        "bias": w["bias"],
        "x_t": x_t,
        "h_prev": h_prev,
        "c_prev": c_prev,
    }
    names = {
        "kernel": "kernel",
        "recurrent_kernel": "recurrent_kernel",
        "bias": "bias",
        "x_t": "x",
        "h_prev": "h_prev",
        "c_prev": "c_prev",
    }
    for name, key in names.items():
        numerical = numerical_gradient(lambda v, name=name: loss(**{**point, name: v}), point[name])
        assert rel_error(np.asarray(g_tf[key]), numerical) < 1e-6, f"{name}: {rel_error(np.asarray(g_tf[key]), numerical):.1e}"


def test_parameter_counts_differ_by_the_second_bias(pt, tfn):
    assert pt["lstm_param_count"](1, 128) == 67201
    assert tfn["lstm_param_count"](1, 128) == 66689
    for d, h, o in [(3, 5, 2), (12, 32, 1)]:
        assert pt["lstm_param_count"](d, h, o) - tfn["lstm_param_count"](d, h, o) == 4 * h


def test_forget_bias_initialisation_means_the_same_in_both(pt, tfn):
    torch.manual_seed(3)
    lstm = pt["init_forget_bias"](nn.LSTM(D, H, batch_first=True), 1.0)
    _, _, bias = porting.rnn_torch_to_keras("lstm", lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    layer = keras.layers.LSTM(H, unit_forget_bias=False)
    layer.build((None, None, D))
    tfn["init_forget_bias"](layer, 1.0)
    np.testing.assert_allclose(bias[H : 2 * H], np.ones(H), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.cell.bias)[H : 2 * H], np.ones(H))
    default = keras.layers.LSTM(H)  # Keras' unit_forget_bias=True is the same initialisation
    default.build((None, None, D))
    np.testing.assert_allclose(np.asarray(default.cell.bias), np.asarray(layer.cell.bias))


def test_data_preparation_is_the_same_in_both(pt, tfn):
    data = load_italy_power_demand()
    a, b = pt["prepare_italy"](data), tfn["prepare_italy"](data)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])


def test_seed_models_compute_the_same_probabilities(pt, tfn):
    k_model = tfn["build_seed_classifier"](24, 16)
    model, _, _ = pt["build_seed_classifier"](24, 16)
    kernel, recurrent, bias, dense_kernel, dense_bias = k_model.get_weights()
    lstm = next(m for m in model.modules() if isinstance(m, nn.LSTM))
    head = next(m for m in model.modules() if isinstance(m, nn.Linear))
    state = porting.rnn_keras_to_torch("lstm", kernel, recurrent, bias)
    lstm.load_state_dict({f"{k}_l0": torch.from_numpy(v) for k, v in state.items()})
    head.load_state_dict(
        {"weight": torch.from_numpy(porting.dense_kernel_keras_to_torch(dense_kernel)), "bias": torch.from_numpy(dense_bias)}
    )
    x = np.random.default_rng(2).normal(size=(6, 24, 1)).astype(np.float32)
    with torch.no_grad():
        probabilities = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(probabilities, np.asarray(k_model(x)), rtol=1e-5, atol=1e-6)
