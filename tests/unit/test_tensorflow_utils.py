import numpy as np
import pytest

from course_utils import tensorflow as cu

tf, keras = cu.tf, cu.keras


def tiny_model():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 8, 8), np.uint8)
    for i, label in enumerate(y):
        x[i, 1 + 2 * label] = 255
    return x, y


def test_get_device_and_report(monkeypatch):
    expected = "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    assert cu.get_device() == expected
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert cu.get_device() == "/CPU:0"
    assert "TensorFlow" in cu.device_report()


def test_seed_everything_is_deterministic_by_default_on_the_cpu_only(monkeypatch):
    from tensorflow.python.framework.config import disable_op_determinism, is_op_determinism_enabled

    try:
        cu.seed_everything(0)
        assert is_op_determinism_enabled() == (cu.get_device() == "/CPU:0")
        cu.seed_everything(0, deterministic=False)
        assert not is_op_determinism_enabled()
        monkeypatch.setenv("COURSE_DEVICE", "cpu")
        cu.seed_everything(0)
        assert is_op_determinism_enabled()
    finally:
        disable_op_determinism()


def test_seed_everything_makes_runs_repeatable():
    cu.seed_everything(3)
    a = tf.random.uniform((3,)).numpy(), np.random.rand(3)
    cu.seed_everything(3)
    b = tf.random.uniform((3,)).numpy(), np.random.rand(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_make_loader_layout_one_hot_and_errors():
    x, y = tiny_data(10)
    xb, yb = next(iter(cu.make_loader(x, y, batch_size=4, num_classes=3)))
    assert xb.shape == (4, 8, 8, 1) and xb.dtype == tf.float32 and float(tf.reduce_max(xb)) == 1.0
    assert yb.shape == (4, 3) and np.allclose(yb.numpy().sum(axis=1), 1)
    _, yb = next(iter(cu.make_loader(x, y, batch_size=4)))
    assert yb.dtype == tf.int64
    with pytest.raises(ValueError, match="10 images, 9 labels"):
        cu.make_loader(x, y[:9])


def test_random_affine_is_per_image():
    x = np.zeros((8, 28, 28, 1), np.float32)
    x[:, 10:18, 12:16] = 1.0
    out = np.asarray(cu.random_affine()(x, training=True))
    assert out.shape == x.shape and not np.allclose(out[0], out[1])
    assert np.allclose(np.asarray(cu.random_affine()(x, training=False)), x)


def test_train_history_matches_the_pytorch_format_and_learns():
    cu.seed_everything(0)
    x, y = tiny_data(120)
    model = tiny_model()
    history = cu.train(model, cu.make_loader(x, y, 16, shuffle=True, num_classes=3),
                       cu.make_loader(x, y, 64, num_classes=3), epochs=8, verbose=False)
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"}
    assert all(len(history[k]) == 8 for k in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"))
    assert history["loss"][-1] < history["loss"][0] / 2
    assert cu.evaluate(model, cu.make_loader(x, y, 64, num_classes=3))["accuracy"] > 0.9


def test_predict_feature_maps_filters_and_count():
    model = tiny_model()
    x, _ = tiny_data(5)
    probabilities = cu.predict(model, x)
    assert probabilities.shape == (5, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    maps = cu.feature_maps(model, model.layers[0], x)
    assert maps.shape == (5, 6, 6, 4) and maps.min() >= 0
    assert cu.conv_filters(model.layers[0]).shape == (4, 1, 3, 3)
    assert cu.count_params(model) == 4 * 9 + 4 + 144 * 3 + 3
    with pytest.raises(ValueError, match="is not a layer of model"):
        cu.feature_maps(model, keras.layers.Dense(2), x)


def test_predict_gives_probabilities_from_a_softmax_model_or_from_logits():
    model = tiny_model()
    x, _ = tiny_data(5)
    expected = np.asarray(model(cu.to_tensor_images(x)))
    np.testing.assert_allclose(cu.predict(model, x), expected, rtol=1e-5, atol=1e-7)  # already softmax
    logits = keras.Sequential([keras.Input((8, 8, 1)), *model.layers[:-1], keras.layers.Dense(3)])
    logits.layers[-1].set_weights(model.layers[-1].get_weights())
    np.testing.assert_allclose(cu.predict(logits, x), expected, rtol=1e-5, atol=1e-7)
    softmax_layer = keras.Sequential([logits, keras.layers.Softmax()])
    np.testing.assert_allclose(cu.predict(softmax_layer, x), expected, rtol=1e-5, atol=1e-7)


def test_to_tensor_images_and_make_loader_take_colour():
    from course_utils import data

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (6, 28, 28, 3), dtype=np.uint8)
    x = cu.to_tensor_images(colour)
    assert x.shape == (6, 28, 28, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x * 255, colour, rtol=1e-6)
    big = data.to_rgb(data.pad_or_resize(tiny_data(6)[0], 32))  # what VGG16 needs: 3 channels, 32x32
    xb, yb = next(iter(cu.make_loader(big, np.arange(6) % 3, batch_size=4, num_classes=3)))
    assert tuple(xb.shape) == (4, 32, 32, 3) and tuple(yb.shape) == (4, 3)
    assert cu.to_tensor_images(np.zeros((2, 5, 5), np.float32)).shape == (2, 5, 5, 1)
    with pytest.raises(ValueError, match=r"C 1 or 3"):
        cu.to_tensor_images(np.zeros((2, 5, 5, 4), np.uint8))
    with pytest.raises(ValueError, match=r"float images should be \(N, H, W, C\)"):
        cu.to_tensor_images(np.zeros((5, 5), np.float32))


def test_numpy_resize_matches_tensorflow_bilinear():
    from course_utils import data

    images = np.random.default_rng(1).random((2, 9, 7, 3)).astype(np.float32)
    for size in ((32, 32), (4, 5)):
        theirs = np.asarray(tf.image.resize(images, size, method="bilinear", antialias=False))
        np.testing.assert_allclose(data.pad_or_resize(images, size), theirs, rtol=1e-5, atol=1e-6)


def test_tf32_is_allowed_only_inside_training():
    enabled = tf.config.experimental.tensor_float_32_execution_enabled
    before = enabled()
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(enabled())

    cu.get_device()
    x, y = tiny_data(8)
    cu.train(tiny_model(), cu.make_loader(x, y, 4, num_classes=3), epochs=1, verbose=False, callbacks=[Record()])
    assert seen and all(seen) and enabled() == before
    with cu.tf32(False):
        assert not enabled()
    assert enabled() == before
