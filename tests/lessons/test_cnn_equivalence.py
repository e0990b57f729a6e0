"""Lesson 01's model is the same function in both frameworks: the lesson's own ``build_cnn``
(its solution cell, run from each notebook), with the same weights ported between NHWC and
NCHW layouts (flatten order included), gives the same probabilities."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import porting
from course_utils import tensorflow as tfu
from course_utils.data import load_mnist
from tests.harness import lesson_namespace

tf, keras = tfu.tf, tfu.keras


@pytest.fixture(scope="module")
def builders():
    return (lesson_namespace("01_cnn", "tensorflow", "build_cnn")["build_cnn"],
            lesson_namespace("01_cnn", "pytorch", "build_cnn")["build_cnn"])


def port_keras_to_torch(k_model, t_model, permute_flatten=True):
    """Copy the Keras model's Conv2D and Dense weights into the PyTorch model's Conv2d and
    Linear layers, in order (the lesson's CNN: one conv, a flatten of (13, 13, 32), two dense)."""
    conv, dense1, dense2 = (layer for layer in k_model.layers if layer.weights)
    t_conv, t_dense1, t_dense2 = (m for m in t_model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    flat = (13, 13, 32) if permute_flatten else None
    with torch.no_grad():
        t_conv.weight.copy_(torch.from_numpy(porting.conv_kernel_keras_to_torch(conv.kernel.numpy())))
        t_conv.bias.copy_(torch.from_numpy(conv.bias.numpy()))
        t_dense1.weight.copy_(torch.from_numpy(porting.dense_kernel_keras_to_torch(dense1.kernel.numpy(), flat)))
        t_dense1.bias.copy_(torch.from_numpy(dense1.bias.numpy()))
        t_dense2.weight.copy_(torch.from_numpy(porting.dense_kernel_keras_to_torch(dense2.kernel.numpy())))
        t_dense2.bias.copy_(torch.from_numpy(dense2.bias.numpy()))


def outputs(builders, digits, permute_flatten=True):
    """(Keras probabilities, PyTorch softmax of logits) of the two lesson models, same weights."""
    build_keras, build_torch = builders
    tfu.seed_everything(0)
    k_model, t_model = build_keras(), build_torch()
    port_keras_to_torch(k_model, t_model, permute_flatten)
    k_out = k_model(digits[..., None].astype(np.float32) / 255, training=False).numpy()
    t_model.eval()
    with torch.no_grad():
        t_out = torch.softmax(t_model(torch.from_numpy(digits[:, None].astype(np.float32) / 255)), dim=1).numpy()
    return k_out, t_out


@pytest.fixture(scope="module")
def digits():
    return load_mnist().x_test[:64]


def test_both_frameworks_count_693962_parameters(builders):
    build_keras, build_torch = builders
    assert build_keras().count_params() == 693_962
    assert sum(p.numel() for p in build_torch().parameters()) == 693_962


def test_ported_weights_give_the_same_probabilities(builders, digits):
    k_out, t_out = outputs(builders, digits)
    np.testing.assert_allclose(t_out, k_out, rtol=1e-4, atol=1e-6)
    assert (t_out.argmax(1) == k_out.argmax(1)).all()


def test_without_the_flatten_permutation_the_outputs_differ(builders, digits):
    k_out, t_out = outputs(builders, digits, permute_flatten=False)
    assert np.abs(t_out - k_out).max() > 1e-3


def test_built_in_convolutions_agree_across_layouts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 7, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 2, 3, 5)).astype(np.float32)
    k_out = tf.nn.conv2d(x, kernel, 2, "VALID").numpy()
    weight = torch.from_numpy(porting.conv_kernel_keras_to_torch(kernel))
    t_out = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), weight, stride=2).numpy()
    np.testing.assert_allclose(t_out.transpose(0, 2, 3, 1), k_out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,k,s", [(28, 3, 2), (27, 3, 2), (28, 4, 1), (9, 3, 3)])
def test_keras_same_padding_is_torch_with_the_extra_zero_after(n, k, s):
    """What section 3 teaches: Keras' padding="same" gives ceil(n / s) and pads floor(P/2) zeros
    before, the rest after; PyTorch gets it with F.pad, and its symmetric padding differs."""
    rng = np.random.default_rng(n + k + s)
    x = rng.normal(size=(1, n, n, 2)).astype(np.float32)
    kernel = rng.normal(size=(k, k, 2, 3)).astype(np.float32)
    k_out = tf.nn.conv2d(x, kernel, s, "SAME").numpy()
    n_out = -(-n // s)
    total = max((n_out - 1) * s + k - n, 0)
    before, after = total // 2, total - total // 2
    assert k_out.shape == (1, n_out, n_out, 3)
    t_x = torch.nn.functional.pad(torch.from_numpy(x.transpose(0, 3, 1, 2)), (before, after, before, after))
    weight = torch.from_numpy(porting.conv_kernel_keras_to_torch(kernel))
    t_out = torch.nn.functional.conv2d(t_x, weight, stride=s).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(t_out, k_out, rtol=1e-4, atol=1e-4)
    if before != after:  # PyTorch's symmetric padding: the same size here or not, never the same numbers
        symmetric = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), weight, stride=s,
                                               padding=(before + after + 1) // 2).numpy().transpose(0, 2, 3, 1)
        assert symmetric.shape != k_out.shape or np.abs(symmetric - k_out).max() > 1e-3
