"""course_utils.porting: every conversion between Keras' and PyTorch's layouts, in both
directions, makes the two frameworks' layers compute the same function (float32, random
weights and inputs), and a negative control per conversion shows that the unconverted
(un-transposed, un-reordered, un-permuted) weights do not. Bad shapes raise clear errors."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import porting
from course_utils import tensorflow as tfu

tf, keras = tfu.tf, tfu.keras
TOL = {"rtol": 1e-5, "atol": 1e-5}  # float32
N, T, D, H = 3, 5, 4, 6
TORCH_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
KERAS_RNN = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def rng(seed=0):
    return np.random.default_rng(seed)


def randomise(keras_object, seed=0, scale=0.5):
    """Random normal weights everywhere, biases included (Keras initialises them to 0)."""
    r = rng(seed)
    keras_object.set_weights([(r.normal(size=w.shape) * scale).astype(np.float32) for w in keras_object.get_weights()])


def load_torch(module, arrays):
    with torch.no_grad():
        for p, w in zip(module.parameters(), arrays, strict=True):
            p.copy_(torch.from_numpy(np.asarray(w, dtype=np.float32)))


def torch_out(module, x):
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


def assert_differs(a, b):
    """A negative control: far outside the float32 tolerance of the positive tests."""
    assert np.abs(a - b).max() > 1e-2, f"expected different outputs, largest difference {np.abs(a - b).max():.2e}"


# ----------------------------------------------------------------------------- dense and conv


def test_dense_both_directions_and_untransposed_control():
    x = rng(1).normal(size=(N, 6)).astype(np.float32)
    layer = keras.layers.Dense(6)
    layer.build((None, 6))
    randomise(layer)
    kernel, bias = layer.get_weights()
    linear = nn.Linear(6, 6)
    load_torch(linear, [porting.dense_kernel_keras_to_torch(kernel), bias])
    np.testing.assert_allclose(torch_out(linear, x), layer(x).numpy(), **TOL)
    load_torch(linear, [kernel, bias])  # square: the unconverted kernel fits, and is wrong
    assert_differs(torch_out(linear, x), layer(x).numpy())

    torch.manual_seed(0)
    linear = nn.Linear(6, 6)
    layer.set_weights([porting.dense_kernel_torch_to_keras(linear.weight), linear.bias.detach().numpy()])
    np.testing.assert_allclose(layer(x).numpy(), torch_out(linear, x), **TOL)


def test_conv_both_directions_and_reshaped_control():
    x = rng(1).normal(size=(N, 7, 7, 3)).astype(np.float32)
    x_t = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    layer = keras.layers.Conv2D(4, 3)
    layer.build((None, 7, 7, 3))
    randomise(layer)
    kernel, bias = layer.get_weights()
    conv = nn.Conv2d(3, 4, 3)
    load_torch(conv, [porting.conv_kernel_keras_to_torch(kernel), bias])
    np.testing.assert_allclose(torch_out(conv, x_t).transpose(0, 2, 3, 1), layer(x).numpy(), **TOL)
    load_torch(conv, [kernel.reshape(4, 3, 3, 3), bias])  # the right shape, not the right layout
    assert_differs(torch_out(conv, x_t).transpose(0, 2, 3, 1), layer(x).numpy())

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    layer.set_weights([porting.conv_kernel_torch_to_keras(conv.weight), conv.bias.detach().numpy()])
    np.testing.assert_allclose(layer(x).numpy(), torch_out(conv, x_t).transpose(0, 2, 3, 1), **TOL)


def test_single_kernels_round_trip_and_reject_bad_shapes():
    r = rng(1)
    kernel = r.normal(size=(3, 3, 2, 4))
    assert np.array_equal(porting.conv_kernel_torch_to_keras(porting.conv_kernel_keras_to_torch(kernel)), kernel)
    dense = r.normal(size=(5 * 5 * 3, 7))
    back = porting.dense_kernel_torch_to_keras(porting.dense_kernel_keras_to_torch(dense, (5, 5, 3)), (5, 5, 3))
    assert np.array_equal(back, dense)
    with pytest.raises(ValueError, match="4-D"):
        porting.conv_kernel_keras_to_torch(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"4-D \(C_out, C_in, kH, kW\)"):
        porting.conv_kernel_torch_to_keras(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="has 75 features but the kernel has 74 inputs"):
        porting.dense_kernel_keras_to_torch(np.zeros((74, 2)), (5, 5, 3))
    with pytest.raises(ValueError, match=r"2-D \(out, in\)"):
        porting.dense_kernel_torch_to_keras(np.zeros(4))


# ----------------------------------------------------------------------------- a VGG-style stack

IMAGE = (8, 8, 3)
FLAT = (2, 2, 6)  # two blocks of "same" convs and 2x2 pooling: 8 -> 4 -> 2, 6 channels


def keras_vgg():
    return keras.Sequential([
        keras.Input(IMAGE),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.MaxPool2D(2),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.MaxPool2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="relu"),
        keras.layers.Dense(3),
    ])


def torch_vgg():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(24, 10), nn.ReLU(), nn.Linear(10, 3),
    )


@pytest.fixture(scope="module")
def images():
    x = rng(2).random((N, *IMAGE)).astype(np.float32)
    return x, np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def test_vgg_stack_keras_to_torch_permutes_the_flatten_and_the_control_differs(images):
    x, x_t = images
    k_model, t_model = keras_vgg(), torch_vgg()
    randomise(k_model, scale=0.3)
    expected = k_model(x).numpy()
    weights = k_model.get_weights()
    load_torch(t_model, porting.keras_sequential_weights_to_torch(weights, flatten_from=FLAT))
    np.testing.assert_allclose(torch_out(t_model, x_t), expected, **TOL)
    # control: each layer converted, but the first dense layer's rows left in Keras' (H, W, C) order
    unpermuted = [porting.conv_kernel_keras_to_torch(w) if w.ndim == 4 else w.T if w.ndim == 2 else w for w in weights]
    load_torch(t_model, unpermuted)
    assert_differs(torch_out(t_model, x_t), expected)


def test_vgg_stack_torch_to_keras_and_back(images):
    x, x_t = images
    torch.manual_seed(0)
    k_model, t_model = keras_vgg(), torch_vgg()
    k_weights = porting.torch_sequential_weights_to_keras(list(t_model.parameters()), flatten_from=FLAT)
    k_model.set_weights(k_weights)
    np.testing.assert_allclose(k_model(x).numpy(), torch_out(t_model, x_t), **TOL)
    for ported, original in zip(porting.keras_sequential_weights_to_torch(k_weights, FLAT), t_model.parameters(), strict=True):
        np.testing.assert_array_equal(ported, original.detach().numpy())


def test_vgg_stack_through_the_neutral_npz_file(images, tmp_path):
    x, x_t = images
    source = keras_vgg()
    randomise(source, seed=3, scale=0.3)
    path = tmp_path / "vgg.npz"
    porting.save_sequential_npz(path, source.get_weights(), FLAT, input_shape=IMAGE, class_names=np.array(["a", "b", "c"]))
    with np.load(path) as data:
        assert data["flatten_from"].tolist() == list(FLAT) and data["input_shape"].tolist() == list(IMAGE)
        assert data["weights_000"].shape == (3, 3, 3, 4)
    k_model, t_model = keras_vgg(), torch_vgg()
    k_model.set_weights(porting.load_sequential_npz(path, "keras"))
    load_torch(t_model, porting.load_sequential_npz(path, "torch"))
    np.testing.assert_allclose(k_model(x).numpy(), source(x).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(torch_out(t_model, x_t), source(x).numpy(), **TOL)
    with pytest.raises(ValueError, match="layout must be"):
        porting.load_sequential_npz(path, "jax")
    with pytest.raises(ValueError, match="reserved"):
        porting.save_sequential_npz(tmp_path / "bad.npz", source.get_weights(), FLAT, weights_000=np.zeros(1))


def test_vgg_stack_rejects_bad_input():
    weights = keras_vgg().get_weights()
    with pytest.raises(ValueError, match=r"give flatten_from=\(H, W, C\)"):
        porting.keras_sequential_weights_to_torch(weights)
    with pytest.raises(ValueError, match="C=5 but the last conv layer has 6 channels"):
        porting.keras_sequential_weights_to_torch(weights, flatten_from=(2, 2, 5))
    with pytest.raises(ValueError, match="has 60 features but the kernel has 24 inputs"):
        porting.keras_sequential_weights_to_torch(weights, flatten_from=(2, 5, 6))
    with pytest.raises(ValueError, match=r"array 0 has shape \(4,\).*no batch norm"):
        porting.keras_sequential_weights_to_torch([np.zeros(4)] + weights)
    with pytest.raises(ValueError, match=r"array 1 should be the bias \(4,\)"):
        porting.torch_sequential_weights_to_keras([np.zeros((4, 3, 3, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match="no weights"):
        porting.keras_sequential_weights_to_torch([])
    # a dense layer after a 1x1 map (or global pooling) needs no flatten_from
    assert porting.keras_sequential_weights_to_torch([np.zeros((3, 3, 2, 5)), np.zeros((5, 4))])[1].shape == (4, 5)


# ----------------------------------------------------------------------------- recurrent layers, one layer


def keras_layer(kind, units=H, inputs=D, **kwargs):
    layer = KERAS_RNN[kind](units, return_sequences=True, **kwargs)
    layer.build((None, None, inputs))
    return layer


@pytest.fixture(scope="module")
def sequence():
    return rng(4).normal(size=(N, T, D)).astype(np.float32)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_layer_keras_to_torch_and_the_unconverted_control(kind, sequence):
    layer = keras_layer(kind)
    randomise(layer, seed=5)  # non-zero biases: a GRU's recurrent bias must stay separate
    expected = layer(sequence).numpy()
    ported = porting.rnn_keras_to_torch(kind, *layer.get_weights())
    g = GATES[kind]
    assert ported["weight_ih"].shape == (g * H, D) and ported["weight_hh"].shape == (g * H, H)
    module = TORCH_RNN[kind](D, H, batch_first=True)
    load_torch(module, [ported[name] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])
    np.testing.assert_allclose(torch_out(module, sequence), expected, **TOL)

    kernel, recurrent, bias = layer.get_weights()
    raw_bias = (bias[0], bias[1]) if kind == "gru" else (bias, np.zeros_like(bias))
    load_torch(module, [kernel.reshape(g * H, D), recurrent.reshape(g * H, H), *raw_bias])  # reshaped, not transposed
    assert_differs(torch_out(module, sequence), expected)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_layer_torch_to_keras(kind, sequence):
    torch.manual_seed(1)
    module = TORCH_RNN[kind](D, H, batch_first=True)  # PyTorch's initialisation: both biases non-zero
    weights = porting.rnn_torch_to_keras(kind, module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0,
                                         module.bias_hh_l0)
    layer = keras_layer(kind)
    layer.set_weights(list(weights))
    np.testing.assert_allclose(layer(sequence).numpy(), torch_out(module, sequence), **TOL)
    back = porting.rnn_keras_to_torch(kind, *weights)
    np.testing.assert_allclose(back["weight_ih"], module.weight_ih_l0.detach().numpy())
    if kind == "gru":  # a GRU's biases come back exactly; the others only as their sum
        np.testing.assert_array_equal(back["bias_hh"], module.bias_hh_l0.detach().numpy())


def test_lstm_control_dropping_torchs_second_bias_differs(sequence):
    torch.manual_seed(2)
    module = nn.LSTM(D, H, batch_first=True)
    kernel, recurrent, _ = porting.rnn_torch_to_keras("lstm", *(p.detach() for p in module.parameters()))
    layer = keras_layer("lstm")
    layer.set_weights([kernel, recurrent, module.bias_ih_l0.detach().numpy()])  # bias_hh forgotten
    assert_differs(layer(sequence).numpy(), torch_out(module, sequence))


def test_gru_controls_without_gate_reordering_or_with_summed_biases_differ(sequence):
    layer = keras_layer("gru")
    randomise(layer, seed=6)
    expected = layer(sequence).numpy()
    kernel, recurrent, bias = layer.get_weights()
    module = nn.GRU(D, H, batch_first=True)
    load_torch(module, [kernel.T, recurrent.T, bias[0], bias[1]])  # transposed, gates left z, r, h
    assert_differs(torch_out(module, sequence), expected)
    ported = porting.rnn_keras_to_torch("gru", kernel, recurrent, bias)
    load_torch(module, [ported["weight_ih"], ported["weight_hh"], ported["bias_ih"] + ported["bias_hh"],
                        np.zeros(3 * H)])  # reordered, but the two biases merged as for an LSTM
    assert_differs(torch_out(module, sequence), expected)


def test_keras_gru_with_reset_after_false_is_refused():
    layer = keras_layer("gru", reset_after=False)
    with pytest.raises(ValueError, match="reset_after=False.*cannot represent"):
        porting.rnn_keras_to_torch("gru", *layer.get_weights())
    with pytest.raises(ValueError, match="reset_after=False"):
        porting.keras_rnn_weights_to_torch_state("gru", [layer.get_weights()])


def test_recurrent_conversions_reject_bad_shapes():
    r = rng(0)
    kernel, recurrent, bias = r.normal(size=(D, 4 * H)), r.normal(size=(H, 4 * H)), np.zeros(4 * H)
    with pytest.raises(ValueError, match="kind must be one of"):
        porting.rnn_keras_to_torch("lstmm", kernel, recurrent, bias)
    expected = r"kernel \(D, 4H\), recurrent_kernel \(H, 4H\) and bias \(4H,\); got \(4, 24\), \(5, 24\)"
    with pytest.raises(ValueError, match=expected):
        porting.rnn_keras_to_torch("lstm", kernel, recurrent[:5], bias)
    with pytest.raises(ValueError, match=r"kernel \(D, 3H\), recurrent_kernel \(H, 3H\) and bias \(2, 3H\)"):
        porting.rnn_keras_to_torch("gru", kernel, recurrent, bias)  # LSTM weights given as a GRU's
    with pytest.raises(ValueError, match=r"kernel \(D, H\), recurrent_kernel \(H, H\) and bias \(H,\)"):
        porting.rnn_keras_to_torch("rnn", kernel[:, :H], recurrent[:, :H], bias)
    with pytest.raises(ValueError, match=r"weight_ih \(4H, D\), weight_hh \(4H, H\)"):
        porting.rnn_torch_to_keras("lstm", kernel, recurrent, bias, bias)  # Keras layout given as PyTorch's
    with pytest.raises(ValueError, match=r"weight_ih \(H, D\)"):
        porting.rnn_torch_to_keras("rnn", np.zeros(4), np.zeros((4, 4)), np.zeros(4), np.zeros(4))


# ----------------------------------------------------------------------------- stacked and bidirectional


def keras_stack(kind, num_layers, bidirectional, inputs):
    model = keras.Sequential([keras.Input((None, inputs))])
    for _ in range(num_layers):
        layer = KERAS_RNN[kind](H, return_sequences=True)
        model.add(keras.layers.Bidirectional(layer) if bidirectional else layer)
    return model


def group(flat):
    return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["stacked", "stacked bidirectional"])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_two_layer_stack_keras_to_torch_and_the_misordered_control(kind, bidirectional):
    inputs = H  # layer 0 takes D = H inputs, so that misordered layers still fit
    x = rng(7).normal(size=(N, T, inputs)).astype(np.float32)
    model = keras_stack(kind, 2, bidirectional, inputs)
    randomise(model, seed=8)
    expected = model(x).numpy()
    flat = model.get_weights()
    state = porting.keras_rnn_weights_to_torch_state(kind, flat, num_layers=2, bidirectional=bidirectional)
    module = TORCH_RNN[kind](inputs, H, num_layers=2, bidirectional=bidirectional, batch_first=True)
    assert set(state) == set(module.state_dict())
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    np.testing.assert_allclose(torch_out(module, x), expected, **TOL)
    assert porting.keras_rnn_weights_to_torch_state(kind, group(flat), 2, bidirectional).keys() == state.keys()

    tuples = group(flat)
    # control: layer 0's two directions swapped (bidirectional), or the two layers swapped (stacked)
    misordered = [tuples[1], tuples[0], *tuples[2:]] if bidirectional else tuples[::-1]
    state = porting.keras_rnn_weights_to_torch_state(kind, misordered, num_layers=2, bidirectional=bidirectional)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    assert_differs(torch_out(module, x), expected)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["stacked", "stacked bidirectional"])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_two_layer_stack_torch_to_keras(kind, bidirectional, sequence):
    torch.manual_seed(3)
    module = TORCH_RNN[kind](D, H, num_layers=2, bidirectional=bidirectional, batch_first=True)
    tuples = porting.torch_state_to_keras_rnn_weights(kind, module.state_dict(), num_layers=2, bidirectional=bidirectional)
    assert len(tuples) == (4 if bidirectional else 2)
    model = keras_stack(kind, 2, bidirectional, D)
    model.set_weights([w for t in tuples for w in t])
    np.testing.assert_allclose(model(sequence).numpy(), torch_out(module, sequence), **TOL)
    # and back: the same function again (the biases of rnn and lstm come back summed)
    state = porting.keras_rnn_weights_to_torch_state(kind, tuples, 2, bidirectional)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    np.testing.assert_allclose(torch_out(module, sequence), model(sequence).numpy(), **TOL)


def test_a_prefixed_state_dict_round_trips():
    torch.manual_seed(4)

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(D, H, batch_first=True), nn.Linear(H, 1)

    model = Regressor()
    tuples = porting.torch_state_to_keras_rnn_weights("gru", model.state_dict(), prefix="rnn.")
    state = porting.keras_rnn_weights_to_torch_state("gru", tuples, prefix="rnn.")
    for name, value in state.items():
        np.testing.assert_array_equal(value, model.state_dict()[name].numpy())


def test_stack_conversions_reject_bad_counts_names_and_shapes():
    lstm = keras_layer("lstm").get_weights()
    with pytest.raises(ValueError, match=r"num_layers=2, bidirectional=True needs 4 .* groups.*got 2"):
        porting.keras_rnn_weights_to_torch_state("lstm", [lstm, lstm], num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match="three arrays per layer and direction; got 4"):
        porting.keras_rnn_weights_to_torch_state("lstm", [*lstm, lstm[0]])
    with pytest.raises(ValueError, match="layer 1 takes 4 inputs; stacked on layers of 6 units it needs 6"):
        porting.keras_rnn_weights_to_torch_state("lstm", [lstm, lstm], num_layers=2)
    with pytest.raises(ValueError, match="layer 1 has 3 units but layer 0 has 6"):
        porting.keras_rnn_weights_to_torch_state("lstm", [lstm, keras_layer("lstm", units=3, inputs=H).get_weights()], 2)
    with pytest.raises(ValueError, match=r"layer 0 backward: a Keras lstm layer has kernel \(D, 4H\)"):
        porting.keras_rnn_weights_to_torch_state("lstm", [lstm, keras_layer("gru").get_weights()], bidirectional=True)
    state = nn.LSTM(D, H, num_layers=2, bidirectional=True).state_dict()
    with pytest.raises(ValueError, match="the state has 'weight_ih_l0_reverse', but num_layers=2 and bidirectional=False"):
        porting.torch_state_to_keras_rnn_weights("lstm", state, num_layers=2)
    with pytest.raises(ValueError, match="num_layers=1"):
        porting.torch_state_to_keras_rnn_weights("lstm", state, bidirectional=True)
    with pytest.raises(ValueError, match=r"the state lacks \['weight_ih_l2'"):
        porting.torch_state_to_keras_rnn_weights("lstm", nn.LSTM(D, H, num_layers=2).state_dict(), num_layers=3)
    with pytest.raises(ValueError, match="lacks.*a layer with biases"):
        porting.torch_state_to_keras_rnn_weights("lstm", nn.LSTM(D, H, bias=False).state_dict())
    with pytest.raises(ValueError, match=r"layer 0: a PyTorch gru layer has weight_ih \(3H, D\)"):
        porting.torch_state_to_keras_rnn_weights("gru", nn.LSTM(D, H).state_dict())


def test_porting_imports_neither_framework():
    import subprocess
    import sys

    code = ("import sys, course_utils.porting, course_utils.checks, course_utils.sequences; "
            "print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
