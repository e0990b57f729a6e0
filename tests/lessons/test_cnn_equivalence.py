"""The lesson models are the same function in both frameworks: with the same weights,
ported between NHWC and NCHW layouts (flatten order included), they agree."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import porting
from course_utils import tensorflow as tfu
from course_utils.data import load_mnist

tf, keras = tfu.tf, tfu.keras


def keras_cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPool2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def torch_cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(5408, 128), nn.ReLU(), nn.Linear(128, 10))


def port_keras_to_torch(k_model, t_model, permute_flatten=True):
    conv, dense1, dense2 = (layer for layer in k_model.layers if layer.weights)
    with torch.no_grad():
        t_model[0].weight.copy_(torch.from_numpy(porting.conv_kernel_keras_to_torch(conv.kernel.numpy())))
        t_model[0].bias.copy_(torch.from_numpy(conv.bias.numpy()))
        flat = (13, 13, 32) if permute_flatten else None
        t_model[4].weight.copy_(torch.from_numpy(porting.dense_kernel_keras_to_torch(dense1.kernel.numpy(), flat)))
        t_model[4].bias.copy_(torch.from_numpy(dense1.bias.numpy()))
        t_model[6].weight.copy_(torch.from_numpy(porting.dense_kernel_keras_to_torch(dense2.kernel.numpy())))
        t_model[6].bias.copy_(torch.from_numpy(dense2.bias.numpy()))


@pytest.fixture(scope="module")
def digits():
    return load_mnist().x_test[:64]


def test_both_frameworks_count_693962_parameters():
    assert keras_cnn().count_params() == 693_962
    assert sum(p.numel() for p in torch_cnn().parameters()) == 693_962


def test_ported_weights_give_the_same_probabilities(digits):
    tfu.seed_everything(0)
    k_model, t_model = keras_cnn(), torch_cnn()
    port_keras_to_torch(k_model, t_model)
    k_out = k_model(digits[..., None].astype(np.float32) / 255, training=False).numpy()
    with torch.no_grad():
        t_out = torch.softmax(t_model(torch.from_numpy(digits[:, None].astype(np.float32) / 255)), dim=1).numpy()
    np.testing.assert_allclose(t_out, k_out, rtol=1e-4, atol=1e-6)
    assert (t_out.argmax(1) == k_out.argmax(1)).all()


def test_without_the_flatten_permutation_the_outputs_differ(digits):
    tfu.seed_everything(0)
    k_model, t_model = keras_cnn(), torch_cnn()
    port_keras_to_torch(k_model, t_model, permute_flatten=False)
    k_out = k_model(digits[..., None].astype(np.float32) / 255, training=False).numpy()
    with torch.no_grad():
        t_out = torch.softmax(t_model(torch.from_numpy(digits[:, None].astype(np.float32) / 255)), dim=1).numpy()
    assert np.abs(t_out - k_out).max() > 1e-3


def test_built_in_convolutions_agree_across_layouts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 7, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 2, 3, 5)).astype(np.float32)
    k_out = tf.nn.conv2d(x, kernel, 2, "VALID").numpy()
    weight = torch.from_numpy(porting.conv_kernel_keras_to_torch(kernel))
    t_out = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), weight, stride=2).numpy()
    np.testing.assert_allclose(t_out.transpose(0, 2, 3, 1), k_out, rtol=1e-4, atol=1e-5)


def test_porting_round_trips_and_rejects_bad_shapes():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 2, 4))
    assert np.array_equal(porting.conv_kernel_torch_to_keras(porting.conv_kernel_keras_to_torch(kernel)), kernel)
    dense = rng.normal(size=(5 * 5 * 3, 7))
    back = porting.dense_kernel_torch_to_keras(porting.dense_kernel_keras_to_torch(dense, (5, 5, 3)), (5, 5, 3))
    assert np.array_equal(back, dense)
    with pytest.raises(ValueError, match="4-D"):
        porting.conv_kernel_keras_to_torch(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="has 75 features but the kernel has 74 inputs"):
        porting.dense_kernel_keras_to_torch(np.zeros((74, 2)), (5, 5, 3))
