"""Lesson 06 across frameworks: a Keras GRU and an nn.GRU with ported weights compute the same
function (one layer, stacked, bidirectional, masked against packed), and the two notebooks'
own solutions (gru_step, port_gru_weights, count_rnn_params, last_valid_state,
char_windows) agree with each other and with both frameworks' layers."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils import porting
from course_utils import tensorflow as tfu
from tests.harness import lesson_namespace

tf, keras = tfu.tf, tfu.keras
LESSON = "06_gru"
EXERCISES = ("gru_step", "port_gru_weights", "count_rnn_params", "last_valid_state", "char_windows")


@pytest.fixture(scope="module")
def torch_ns():
    return lesson_namespace(LESSON, "pytorch", *EXERCISES)


@pytest.fixture(scope="module")
def keras_ns():
    return lesson_namespace(LESSON, "tensorflow", *EXERCISES)


def gru_weights(d, h, seed):
    """Keras-layout GRU weights (reset_after=True), float64, non-zero biases."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d, 3 * h)) / np.sqrt(d), rng.normal(size=(h, 3 * h)) / np.sqrt(h), rng.normal(size=(2, 3 * h))


def keras_stack(layers, d, h, num_layers=1, bidirectional=False, dtype="float32"):
    """Stacked (bidirectional) Keras GRUs returning all outputs; ``layers`` ordered as in porting."""
    model_layers = []
    for _ in range(num_layers):
        gru = keras.layers.GRU(h, return_sequences=True, dtype=dtype)
        model_layers.append(keras.layers.Bidirectional(gru, dtype=dtype) if bidirectional else gru)
    model = keras.Sequential([keras.Input((None, d), dtype=dtype), *model_layers])
    model.set_weights([np.asarray(a, dtype) for triple in layers for a in triple])
    return model


def torch_stack(layers, d, h, num_layers=1, bidirectional=False, dtype=torch.float32):
    gru = nn.GRU(d, h, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).to(dtype)
    state = porting.keras_rnn_weights_to_torch_state("gru", layers, num_layers, bidirectional)
    gru.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in state.items()})
    return gru


def layer_weights(d, h, num_layers, bidirectional, seed):
    layers, inputs = [], d
    for k in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            layers.append(gru_weights(inputs, h, seed + 10 * k + direction))
        inputs = h * (2 if bidirectional else 1)
    return layers


@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("dtype, tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_keras_and_torch_grus_with_ported_weights_agree(num_layers, bidirectional, dtype, tol):
    d, h = 5, 6
    layers = layer_weights(d, h, num_layers, bidirectional, seed=1)
    x = np.random.default_rng(2).normal(size=(4, 9, d)).astype(dtype)
    keras_out = keras_stack(layers, d, h, num_layers, bidirectional, dtype)(x).numpy()
    with torch.no_grad():
        torch_out = torch_stack(layers, d, h, num_layers, bidirectional, getattr(torch, dtype))(torch.from_numpy(x))[0]
    np.testing.assert_allclose(keras_out, torch_out.numpy(), rtol=tol, atol=tol)


def test_porting_without_reordering_the_gates_computes_something_else():
    kernel, recurrent, bias = (a.astype(np.float32) for a in gru_weights(12, 64, seed=42))
    x = np.random.default_rng(42).normal(size=(8, 29, 12)).astype(np.float32)
    expected = keras_stack([(kernel, recurrent, bias)], 12, 64)(x).numpy()
    naive = nn.GRU(12, 64, batch_first=True)
    naive.load_state_dict({"weight_ih_l0": torch.from_numpy(kernel.T.copy()),
                           "weight_hh_l0": torch.from_numpy(recurrent.T.copy()),
                           "bias_ih_l0": torch.from_numpy(bias[0].copy()), "bias_hh_l0": torch.from_numpy(bias[1].copy())})
    with torch.no_grad():
        wrong = naive(torch.from_numpy(x))[0].numpy()
        right = torch_stack([(kernel, recurrent, bias)], 12, 64)(torch.from_numpy(x))[0].numpy()
    assert np.abs(right - expected).max() < 1e-5
    assert np.abs(wrong - expected).max() > 0.1


def test_the_notebooks_gru_steps_agree_with_both_layers(torch_ns, keras_ns):
    d, h, steps = 3, 5, 7
    kernel, recurrent, bias = gru_weights(d, h, seed=3)
    x = np.random.default_rng(4).normal(size=(2, steps, d))
    h0 = np.random.default_rng(5).normal(size=(2, h))
    torch_layer = torch_stack([(kernel, recurrent, bias)], d, h, dtype=torch.float64)
    keras_layer = keras.layers.GRU(h, return_sequences=True, dtype="float64")
    keras_layer.build((None, None, d))
    keras_layer.set_weights([kernel, recurrent, bias])
    with torch.no_grad():
        torch_out = torch_layer(torch.from_numpy(x), torch.from_numpy(h0)[None])[0].numpy()
    keras_out = keras_layer(x, initial_state=h0).numpy()
    t_state, k_state = torch.from_numpy(h0), tf.constant(h0)
    w = [getattr(torch_layer, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    for t in range(steps):
        with torch.no_grad():
            t_state = torch_ns["gru_step"](torch.from_numpy(x[:, t]), t_state, *w)
        k_state = keras_ns["gru_step"](tf.constant(x[:, t]), k_state, tf.constant(kernel), tf.constant(recurrent),
                                       tf.constant(bias))
        np.testing.assert_allclose(t_state.numpy(), k_state.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(t_state.numpy(), torch_out[:, t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(k_state.numpy(), keras_out[:, t], rtol=1e-10, atol=1e-12)


def test_the_notebooks_ports_are_inverse_and_match_the_course_porting(torch_ns, keras_ns):
    for d, h in [(4, 3), (1, 7)]:
        keras_weights = gru_weights(d, h, seed=d * h)
        state = torch_ns["port_gru_weights"](*keras_weights)
        reference = porting.rnn_keras_to_torch("gru", *keras_weights)
        for name, value in reference.items():
            np.testing.assert_array_equal(state[f"{name}_l0"].numpy(), value)
        back = keras_ns["port_gru_weights"](*(state[f"{n}_l0"].numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        for got, original in zip(back, keras_weights):
            np.testing.assert_array_equal(np.asarray(got), original)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_the_notebooks_parameter_counts_match_both_frameworks(torch_ns, keras_ns, kind):
    torch_layers = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
    keras_layers = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
    for d, h, num_layers, bi in [(12, 64, 1, False), (3, 5, 2, True), (7, 4, 3, False)]:
        expected_torch = sum(p.numel() for p in torch_layers[kind](d, h, num_layers=num_layers, bidirectional=bi).parameters())
        stack = [keras.Input((None, d))]
        for k in range(num_layers):
            layer = keras_layers[kind](h, return_sequences=k < num_layers - 1)
            stack.append(keras.layers.Bidirectional(layer) if bi else layer)
        expected_keras = keras.Sequential(stack).count_params()
        for ns in (torch_ns, keras_ns):
            assert ns["count_rnn_params"](kind, d, h, num_layers, bi, framework="pytorch") == expected_torch
            assert ns["count_rnn_params"](kind, d, h, num_layers, bi, framework="keras") == expected_keras


def test_packed_and_masked_bidirectional_grus_give_the_same_last_valid_state(torch_ns, keras_ns):
    d, h = 3, 4
    layers = layer_weights(d, h, 1, True, seed=7)
    lengths = np.array([6, 2, 9, 4, 1])
    x = np.random.default_rng(8).normal(size=(5, 9, d)) * (np.arange(9)[None, :, None] < lengths[:, None, None])
    gru = torch_stack(layers, d, h, bidirectional=True, dtype=torch.float64)
    with torch.no_grad():
        packed, h_n = gru(pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True,
                                               enforce_sorted=False))
        torch_out, _ = pad_packed_sequence(packed, batch_first=True, total_length=9)
    keras_layer = keras.layers.Bidirectional(keras.layers.GRU(h, return_sequences=True, dtype="float64"), dtype="float64")
    keras_layer.build((None, None, d))
    keras_layer.set_weights([a for triple in layers for a in triple])
    keras_out = keras_layer(x, mask=tf.constant(np.arange(9)[None, :] < lengths[:, None]))
    from_torch = torch_ns["last_valid_state"](torch_out, torch.from_numpy(lengths), bidirectional=True).numpy()
    from_keras = keras_ns["last_valid_state"](keras_out, lengths, bidirectional=True).numpy()
    np.testing.assert_allclose(from_torch, torch.cat([h_n[0], h_n[1]], dim=1).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(from_keras, from_torch, rtol=1e-10, atol=1e-12)
    naive = torch_out[:, -1].numpy()
    assert np.abs(naive - from_torch).max() > 0.1  # out[:, -1] is a different thing


def test_the_notebooks_character_windows_agree(torch_ns, keras_ns):
    ids = np.random.default_rng(0).integers(0, 75, size=1001)
    for length in (1, 7, 100, 1000):
        a, b = torch_ns["char_windows"](ids, length), keras_ns["char_windows"](ids, length)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a[0][:, 1:], a[1][:, :-1])  # the targets are the inputs shifted by one
