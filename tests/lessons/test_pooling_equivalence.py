"""Lesson 02 across frameworks: the lesson's Lp and stochastic pooling (its solution code,
run from the notebooks) and the frameworks' batch normalisation agree between TensorFlow and
PyTorch, once layouts (NHWC against NCHW) and conventions are translated."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import tensorflow as tfu
from tests.harness import lesson_namespace

tf, keras = tfu.tf, tfu.keras


@pytest.fixture(scope="module")
def lessons():
    return (lesson_namespace("02_pooling", "pytorch", "lp_pool", "stochastic_pool2d", "batch_norm_backward"),
            lesson_namespace("02_pooling", "tensorflow", "lp_pool", "stochastic_pool2d", "batch_norm_backward"))


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def nhwc(t):
    return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


@pytest.mark.parametrize("p,size,stride", [(2, 2, None), (3, 2, None), (2, 3, 2)])
def test_lp_pooling_agrees_with_pytorch_in_both_frameworks(lessons, p, size, stride):
    torch_ns, tf_ns = lessons
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    reference = nhwc(nn.LPPool2d(p, size, stride)(nchw(x)))
    np.testing.assert_allclose(nhwc(torch_ns["LpPool2D"](p, size, stride)(nchw(x))), reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tf_ns["LpPool2D"](p, size, stride)(x)), reference, rtol=1e-5, atol=1e-6)


def test_lp_pooling_agrees_at_large_p_and_on_windows_of_zeros(lessons):
    torch_ns, tf_ns = lessons
    x = np.random.default_rng(3).uniform(size=(1, 6, 6, 2)).astype(np.float32) * 0.2
    x[0, :2, :2, 0] = 0  # a window of zeros
    x[0, 2:4, :2, 1] = [[0.3, 0.2], [0.1, 0.05]]
    theirs = np.asarray(tf_ns["LpPool2D"](64, 2)(x))
    np.testing.assert_allclose(nhwc(torch_ns["LpPool2D"](64, 2)(nchw(x))), theirs, rtol=1e-6, atol=0)
    assert theirs[0, 0, 0, 0] == 0 and abs(theirs[0, 1, 0, 1] - 0.3) < 1e-6


def test_batch_norm_backward_agrees_between_frameworks(lessons):
    torch_ns, tf_ns = lessons
    rng = np.random.default_rng(4)
    x, dout = rng.normal(size=(3, 4, 5, 2)) * 2 + 1, rng.normal(size=(3, 4, 5, 2))
    gamma = np.array([1.3, -0.4])
    theirs = tf_ns["batch_norm_backward"](tf.constant(dout), tf.constant(x), tf.constant(gamma), 1e-5)
    with torch.no_grad():
        ours = torch_ns["batch_norm_backward"](nchw(dout), nchw(x), torch.from_numpy(gamma), 1e-5)
    np.testing.assert_allclose(nhwc(ours[0]), np.asarray(theirs[0]), rtol=1e-10, atol=1e-12)
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a.numpy(), np.asarray(b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [2, 3])
def test_stochastic_pooling_agrees_at_inference_and_with_the_same_draws(lessons, size):
    torch_ns, tf_ns = lessons
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=(2, 9, 8, 3)), 0)
    x[0, :size, :size, 0] = 0  # one window of zeros
    u = rng.uniform(size=(2, 9 // size, 8 // size, 3))
    for training in (False, True):
        theirs = np.asarray(tf_ns["stochastic_pool2d"](tf.constant(x), size, training, tf.constant(u)))
        ours = nhwc(torch_ns["stochastic_pool2d"](nchw(x), size, training, nchw(u)))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert theirs[0, 0, 0, 0] == 0


def test_batch_norm_agrees_with_ported_parameters_and_statistics():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5, 5, 4)).astype(np.float32) * 2 + 1
    gamma, beta = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.normal(size=4).astype(np.float32)
    mean, var = rng.normal(size=4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    k_layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)  # Keras 0.9 = PyTorch 0.1
    k_layer.build(x.shape)
    k_layer.set_weights([gamma, beta, mean, var])
    t_layer = nn.BatchNorm2d(4, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        for name, value in zip(("weight", "bias", "running_mean", "running_var"), (gamma, beta, mean, var)):
            getattr(t_layer, name).copy_(torch.from_numpy(value))
    t_layer.eval()
    np.testing.assert_allclose(nhwc(t_layer(nchw(x))), np.asarray(k_layer(x, training=False)), rtol=1e-5, atol=1e-5)
    t_layer.train()
    np.testing.assert_allclose(nhwc(t_layer(nchw(x))), np.asarray(k_layer(x, training=True)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(t_layer.running_mean.numpy(), np.asarray(k_layer.moving_mean), rtol=1e-5, atol=1e-6)
    # The one remaining difference: PyTorch stores the unbiased batch variance, Keras the biased one.
    n = x.size // x.shape[-1]
    batch_var = x.reshape(-1, 4).var(axis=0)
    np.testing.assert_allclose(t_layer.running_var.numpy() - np.asarray(k_layer.moving_variance),
                               0.1 * batch_var * (n / (n - 1) - 1), rtol=1e-3, atol=1e-6)
