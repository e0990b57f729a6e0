"""course_utils.sequences (numpy) and the sequence helpers of course_utils.torch and
course_utils.tensorflow (same names, same behaviour), bad input included."""
import numpy as np
import pytest
import torch

from course_utils import sequences
from course_utils import tensorflow as tfu
from course_utils import torch as tu

tf, keras = tfu.tf, tfu.keras


def numpy_rnn(x, weights, h0=None):
    """States (N, T, H) of h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h), and outputs h_t W_hy + b_y."""
    h = np.zeros((x.shape[0], weights["W_hh"].shape[0])) if h0 is None else h0
    states = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ weights["W_xh"] + h @ weights["W_hh"] + weights["b_h"])
        states.append(h)
    hs = np.stack(states, axis=1)
    return hs, (hs @ weights["W_hy"] + weights["b_y"] if "W_hy" in weights else None)


# ----------------------------------------------------------------------------- adding problem


def test_adding_problem_has_two_markers_one_per_half_and_sums_them():
    x, y = sequences.adding_problem(500, 30, seed=3)
    assert x.shape == (500, 30, 2) and x.dtype == np.float32
    assert y.shape == (500, 1) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(1), rtol=1e-6)


def test_adding_problem_is_seeded_and_its_baseline_is_one_sixth():
    a, b, c = (sequences.adding_problem(50, 10, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    _, y = sequences.adding_problem(40_000, 10, seed=0)
    assert abs(np.mean((y - 1) ** 2) - sequences.ADDING_BASELINE_MSE) < 0.005
    assert abs(sequences.ADDING_BASELINE_MSE - 0.1667) < 1e-4


def test_adding_problem_markers_cover_both_halves_at_the_shortest_length():
    x, _ = sequences.adding_problem(100, 2, seed=0)
    assert (x[:, :, 1] == 1).all()  # length 2: one marker in each of the two steps


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=10, length=1), "length must be at least 2"),
    (dict(n=0, length=10), "n must be a positive integer"),
    (dict(n=10, length=2.5), "length must be a positive integer"),
])
def test_adding_problem_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sequences.adding_problem(**kwargs)


# ----------------------------------------------------------------------------- series tools


def test_truncated_bptt_chunks_continue_each_other_and_shift_targets():
    series = np.arange(103.0)  # 102 input steps: 3 streams of 34 -> 4 chunks of 8 (2 steps dropped per stream)
    x, y = sequences.truncated_bptt_chunks(series, batch_size=3, chunk_length=8)
    assert x.shape == y.shape == (4, 3, 8, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, x + 1)  # next-step targets
    np.testing.assert_array_equal(x[1:, :, 0], x[:-1, :, -1] + 1)  # chunk k + 1 continues chunk k
    np.testing.assert_array_equal(x[0, :, 0, 0], [0, 34, 68])  # contiguous streams
    np.testing.assert_array_equal(x[:, 0].reshape(-1), np.arange(32))


def test_truncated_bptt_chunks_keeps_features_of_a_2d_series():
    series = np.stack([np.arange(21.0), -np.arange(21.0)], axis=1)
    x, y = sequences.truncated_bptt_chunks(series, batch_size=2, chunk_length=5)
    assert x.shape == (2, 2, 5, 2)
    np.testing.assert_array_equal(x[..., 1], -x[..., 0])


@pytest.mark.parametrize("series, batch, chunk, message", [
    (np.arange(10.0), 4, 5, "too few"),
    (np.arange(10.0), 0, 5, "batch_size must be a positive integer"),
    (np.arange(10.0), 1, -1, "chunk_length must be a positive integer"),
    (np.zeros((4, 3, 2)), 1, 1, r"shape \(T,\) or \(T, D\)"),
])
def test_truncated_bptt_chunks_rejects_bad_input(series, batch, chunk, message):
    with pytest.raises(ValueError, match=message):
        sequences.truncated_bptt_chunks(series, batch, chunk)


def test_persistence_and_mae():
    series = np.array([1.0, 3.0, 2.0, 6.0])
    np.testing.assert_array_equal(sequences.persistence_forecast(series), [1.0, 3.0, 2.0])
    assert sequences.mae(series[1:], sequences.persistence_forecast(series)) == pytest.approx((2 + 1 + 4) / 3)
    with pytest.raises(ValueError, match="equal shapes"):
        sequences.mae(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        sequences.mae([], [])
    with pytest.raises(ValueError, match="T >= 2"):
        sequences.persistence_forecast([5.0])


# ----------------------------------------------------------------------------- weights


def test_spectral_radius_and_scaling():
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-i
    assert sequences.spectral_radius(rotation) == pytest.approx(1.0)
    assert sequences.spectral_radius(sequences.scale_to_spectral_radius(rotation, 2.5)) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="square"):
        sequences.spectral_radius(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive"):
        sequences.scale_to_spectral_radius(rotation, 0.0)
    with pytest.raises(ValueError, match="spectral radius 0"):
        sequences.scale_to_spectral_radius(np.zeros((2, 2)), 1.0)


def test_random_rnn_weights_are_seeded_and_scaled():
    w = sequences.random_rnn_weights(3, 8, 2, spectral_radius=1.3, input_scale=0.1, seed=5)
    assert {k: v.shape for k, v in w.items()} == {"W_xh": (3, 8), "W_hh": (8, 8), "b_h": (8,), "W_hy": (8, 2), "b_y": (2,)}
    assert all(v.dtype == np.float64 for v in w.values())
    assert sequences.spectral_radius(w["W_hh"]) == pytest.approx(1.3)
    assert 0.05 < w["W_xh"].std() < 0.2
    again = sequences.random_rnn_weights(3, 8, 2, spectral_radius=1.3, input_scale=0.1, seed=5)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    assert set(sequences.random_rnn_weights(3, 8)) == {"W_xh", "W_hh", "b_h"}
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        sequences.random_rnn_weights(3, 0)


# ----------------------------------------------------------------------------- framework helpers (both)


def torch_model(weights, return_sequences=False, cell="rnn"):
    model = tu.rnn_regressor(weights["W_xh"].shape[0], weights["W_hh"].shape[0], weights["W_hy"].shape[1],
                             return_sequences=return_sequences, cell=cell)
    tu.set_rnn_weights(model, weights)
    return model


def keras_model(weights, return_sequences=False, batch_size=None):
    model = tfu.rnn_regressor(weights["W_xh"].shape[0], weights["W_hh"].shape[0], weights["W_hy"].shape[1],
                              return_sequences=return_sequences, batch_size=batch_size)
    tfu.set_rnn_weights(model, weights)
    return model


@pytest.mark.parametrize("return_sequences", [False, True])
def test_rnn_regressors_with_set_weights_compute_the_equations(return_sequences):
    weights = sequences.random_rnn_weights(2, 5, 3, seed=1)
    weights["b_h"] = np.linspace(-0.5, 0.5, 5)
    weights["b_y"] = np.array([0.1, -0.2, 0.3])
    x = np.random.default_rng(0).normal(size=(4, 7, 2)).astype(np.float32)
    _, expected = numpy_rnn(x.astype(np.float64), weights)
    expected = expected if return_sequences else expected[:, -1]
    for helpers, model in ((tu, torch_model(weights, return_sequences)), (tfu, keras_model(weights, return_sequences))):
        got = helpers.predict_steps(model, x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=helpers.FRAMEWORK)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_regressors_build_lstm_and_gru(cell):
    x = np.zeros((2, 6, 3), np.float32)
    assert tu.predict_steps(tu.rnn_regressor(3, 4, 2, cell=cell), x).shape == (2, 2)
    assert tfu.predict_steps(tfu.rnn_regressor(3, 4, 2, return_sequences=True, cell=cell), x).shape == (2, 6, 2)


def test_rnn_regressor_and_set_rnn_weights_reject_bad_input():
    for helpers in (tu, tfu):
        with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru"):
            helpers.rnn_regressor(1, 4, cell="transformer")
        # simple-RNN weights for a GRU model: G = 3 gate blocks expected, one given
        with pytest.raises(ValueError, match=r"a Keras gru layer has kernel \(D, 3H\)|W_xh: the model has shape \(1, 12\)"):
            helpers.set_rnn_weights(helpers.rnn_regressor(1, 4, cell="gru"), sequences.random_rnn_weights(1, 4))
        with pytest.raises(ValueError, match="the model has shape"):
            helpers.set_rnn_weights(helpers.rnn_regressor(1, 4), sequences.random_rnn_weights(1, 5))


def numpy_stack(x, layers, bidirectional):
    """A stack of tanh RNN layers (Keras-layout triples, layer 0 forward, layer 0 backward, ...)
    in numpy: every step's features (N, T, H * directions) of the top layer."""
    directions = 2 if bidirectional else 1
    for k in range(len(layers) // directions):
        outputs = []
        for d in range(directions):
            kernel, recurrent, bias = layers[k * directions + d]
            seq = x[:, ::-1] if d else x
            hs, _ = numpy_rnn(seq, {"W_xh": kernel, "W_hh": recurrent, "b_h": bias})
            outputs.append(hs[:, ::-1] if d else hs)
        x = np.concatenate(outputs, axis=-1)
    return x


def random_stack(cell, input_size, hidden, num_layers, bidirectional, output_size, seed=0):
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    directions = 2 if bidirectional else 1
    layers = []
    for k in range(num_layers):
        inputs = input_size if k == 0 else hidden * directions
        for _ in range(directions):
            bias_shape = (2, 3 * hidden) if cell == "gru" else (gates * hidden,)
            layers.append((rng.normal(0, 0.4, (inputs, gates * hidden)), rng.normal(0, 0.4, (hidden, gates * hidden)),
                           rng.normal(0, 0.2, bias_shape)))
    return {"layers": layers, "W_hy": rng.normal(0, 0.5, (hidden * directions, output_size)),
            "b_y": rng.normal(0, 0.1, output_size)}


@pytest.mark.parametrize("return_sequences", [False, True])
def test_stacked_bidirectional_rnn_regressors_compute_the_equations(return_sequences):
    weights = random_stack("rnn", 2, 5, num_layers=2, bidirectional=True, output_size=3, seed=4)
    x = np.random.default_rng(0).normal(size=(4, 7, 2)).astype(np.float32)
    top = numpy_stack(x.astype(np.float64), weights["layers"], bidirectional=True)
    if not return_sequences:  # the forward pass ends at the last step, the backward pass at the first
        top = np.concatenate([top[:, -1, :5], top[:, 0, 5:]], axis=-1)
    expected = top @ weights["W_hy"] + weights["b_y"]
    for helpers in (tu, tfu):
        model = helpers.rnn_regressor(2, 5, 3, return_sequences, num_layers=2, bidirectional=True)
        helpers.set_rnn_weights(model, weights)
        np.testing.assert_allclose(helpers.predict_steps(model, x), expected, rtol=1e-5, atol=1e-5,
                                   err_msg=helpers.FRAMEWORK)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers, bidirectional", [(2, False), (1, True), (3, True)])
def test_stacked_and_bidirectional_models_agree_across_frameworks(cell, num_layers, bidirectional):
    weights = random_stack(cell, 3, 4, num_layers, bidirectional, output_size=2, seed=num_layers)
    x = np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32)
    for return_sequences in (False, True):
        got = {}
        for helpers in (tu, tfu):
            model = helpers.rnn_regressor(3, 4, 2, return_sequences, cell, num_layers=num_layers,
                                          bidirectional=bidirectional)
            helpers.set_rnn_weights(model, weights)
            got[helpers.FRAMEWORK] = helpers.predict_steps(model, x)
        assert got["pytorch"].shape == ((2, 6, 2) if return_sequences else (2, 2))
        np.testing.assert_allclose(got["pytorch"], got["tensorflow"], rtol=1e-5, atol=1e-5)
    assert tu.rnn_regressor(3, 4, cell=cell, num_layers=num_layers, bidirectional=bidirectional).head.in_features == \
        4 * (2 if bidirectional else 1)


def test_stateful_stacked_bidirectional_keras_model_predicts_from_a_stateless_twin():
    weights = random_stack("lstm", 1, 3, num_layers=2, bidirectional=True, output_size=1, seed=5)
    stateful = tfu.rnn_regressor(1, 3, 1, True, "lstm", batch_size=2, num_layers=2, bidirectional=True)
    stateless = tfu.rnn_regressor(1, 3, 1, True, "lstm", num_layers=2, bidirectional=True)
    for model in (stateful, stateless):
        tfu.set_rnn_weights(model, weights)
    x = np.random.default_rng(2).normal(size=(5, 8, 1)).astype(np.float32)  # 5 sequences, not the batch of 2
    stateful(x[:2])  # leaves a carried state behind, which predict_steps must neither use nor change
    def carried_states():
        return [np.asarray(v) for layer in stateful.layers[:-1]
                for direction in (layer.forward_layer, layer.backward_layer) for v in direction.states]

    carried = carried_states()
    assert len(carried) == 8 and any(np.abs(c).max() > 0 for c in carried)  # 2 layers x 2 directions x (h, c)
    np.testing.assert_allclose(tfu.predict_steps(stateful, x), tfu.predict_steps(stateless, x), rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(carried, carried_states()))


def test_rnn_regressor_batch_size_is_used_in_both_frameworks():
    weights = sequences.random_rnn_weights(1, 4, 1)
    x_chunks = np.zeros((2, 3, 5, 1), np.float32)
    model = tu.rnn_regressor(1, 4, 1, True, batch_size=4)
    tu.set_rnn_weights(model, weights)
    with pytest.raises(ValueError, match="built for batch_size=4, the chunks have batch size 3"):
        tu.train_truncated_bptt(model, x_chunks, x_chunks, verbose=False)
    assert all(layer.stateful for layer in tfu.rnn_regressor(1, 4, batch_size=4, num_layers=2).layers[:-1])
    assert not any(getattr(layer, "stateful", False) for layer in tfu.rnn_regressor(1, 4, num_layers=2).layers)
    for helpers in (tu, tfu):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            helpers.rnn_regressor(1, 4, batch_size=0)
        with pytest.raises(ValueError, match="num_layers must be a positive int"):
            helpers.rnn_regressor(1, 4, num_layers=0)


def test_set_rnn_weights_needs_one_triple_per_layer_and_direction():
    weights = random_stack("gru", 2, 3, num_layers=2, bidirectional=False, output_size=1)
    for helpers in (tu, tfu):
        model = helpers.rnn_regressor(2, 3, cell="gru", num_layers=2, bidirectional=True)
        with pytest.raises(ValueError, match="4 .*2|2 .*4"):
            helpers.set_rnn_weights(model, weights)
        with pytest.raises(ValueError, match="need 'layers' or W_xh, W_hh and b_h; missing W_hh, b_h"):
            helpers.set_rnn_weights(model, {"W_xh": np.zeros((2, 9))})


def test_make_sequence_loader_keeps_float_targets_and_is_seeded():
    x, y = sequences.adding_problem(10, 5, seed=0)
    torch_batches = list(tu.make_sequence_loader(x, y, batch_size=4))
    keras_batches = list(tfu.make_sequence_loader(x, y, batch_size=4))
    shapes = [(4, 5, 2), (4, 5, 2), (2, 5, 2)]
    assert [tuple(b[0].shape) for b in torch_batches] == [tuple(b[0].shape) for b in keras_batches] == shapes
    for (_, ty), (_, ky) in zip(torch_batches, keras_batches):
        assert ty.dtype == torch.float32 and ky.dtype == tf.float32
        np.testing.assert_array_equal(ty.cpu().numpy(), ky.numpy())
    for helpers in (tu, tfu):
        first = [np.asarray(b[1]).tolist() for b in helpers.make_sequence_loader(x, y, 4, shuffle=True, seed=1)]
        again = [np.asarray(b[1]).tolist() for b in helpers.make_sequence_loader(x, y, 4, shuffle=True, seed=1)]
        assert first == again and sorted(sum(first, [])) == sorted(y.tolist())
        with pytest.raises(ValueError, match="10 sequences, 9 targets"):
            helpers.make_sequence_loader(x, y[:9])
        with pytest.raises(ValueError, match=r"shape \(N, T, D\)"):
            helpers.make_sequence_loader(x[..., 0], y)


def carried_state_loss(weights, x_chunks, y_chunks):
    """Mean over chunks of the chunk MSE, the state carried across chunks (numpy)."""
    h, losses = None, []
    for x, y in zip(x_chunks, y_chunks):
        hs, out = numpy_rnn(x.astype(np.float64), weights, h)
        h = hs[:, -1]
        losses.append(np.mean((out - y) ** 2))
    return float(np.mean(losses))


def test_train_truncated_bptt_carries_the_state_and_resets_it_each_epoch():
    series = np.sin(np.arange(121) * 0.3)
    x_chunks, y_chunks = sequences.truncated_bptt_chunks(series, batch_size=3, chunk_length=10)
    weights = sequences.random_rnn_weights(1, 6, 1, seed=2)
    expected = carried_state_loss(weights, x_chunks, y_chunks)
    model = torch_model(weights, return_sequences=True)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    history = tu.train_truncated_bptt(model, x_chunks, y_chunks, epochs=2, optimizer=frozen, clip_norm=1.0, verbose=False)
    assert set(history) == {"loss", "epoch_time"} and len(history["loss"]) == 2
    np.testing.assert_allclose(history["loss"], [expected, expected], rtol=1e-4)
    model = keras_model(weights, return_sequences=True, batch_size=3)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    history = tfu.train_truncated_bptt(model, x_chunks, y_chunks, epochs=2, verbose=False)
    np.testing.assert_allclose(history["loss"], [expected, expected], rtol=1e-4)
    # without carrying the state (each chunk from zeros) the loss would differ
    assert abs(np.mean([carried_state_loss(weights, x[None], y[None]) for x, y in zip(x_chunks, y_chunks)]) - expected) > 1e-3


def test_train_truncated_bptt_learns_a_sine_in_both_frameworks():
    series = np.sin(np.arange(241) * 0.3)
    x_chunks, y_chunks = sequences.truncated_bptt_chunks(series, batch_size=4, chunk_length=10)
    weights = sequences.random_rnn_weights(1, 8, 1, seed=3)
    model = torch_model(weights, return_sequences=True)
    history = tu.train_truncated_bptt(model, x_chunks, y_chunks, epochs=30,
                                      optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), verbose=False)
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    model = keras_model(weights, return_sequences=True, batch_size=4)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2, global_clipnorm=1.0), loss="mse")
    history = tfu.train_truncated_bptt(model, x_chunks, y_chunks, epochs=30, verbose=False)
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    # the stateful model's forecast comes from a stateless twin with its weights
    stateless = keras_model(weights, return_sequences=True)
    stateless.set_weights(model.get_weights())
    full = series[None, :-1, None]
    np.testing.assert_allclose(tfu.predict_steps(model, full), tfu.predict_steps(stateless, full), rtol=1e-5, atol=1e-6)


def test_train_truncated_bptt_rejects_bad_input():
    x = np.zeros((2, 3, 4, 1), np.float32)
    weights = sequences.random_rnn_weights(1, 4, 1)
    with pytest.raises(ValueError, match=r"chunks \(K, B, L, D\)"):
        tu.train_truncated_bptt(torch_model(weights, True), x[0], x[0], verbose=False)
    with pytest.raises(ValueError, match=r"chunks \(K, B, L, D\)"):
        tfu.train_truncated_bptt(keras_model(weights, True, batch_size=3), x, x[:1], verbose=False)
    with pytest.raises(ValueError, match="needs a stateful model"):
        tfu.train_truncated_bptt(keras_model(weights, True), x, x, verbose=False)
