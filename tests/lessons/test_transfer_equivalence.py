"""Lesson 03 is the same in both frameworks: the course's pretrained VGG-style network, loaded
from the one shipped ``datasets/vgg_style_fashion.npz`` into Keras and into PyTorch, gives the
same features and the same probabilities for the same images; the lessons' own ``build_head``
(with ported weights) and ``vgg_preprocess`` agree across layouts; the lesson text's model has
the same parameter counts in both."""
import numpy as np
import pytest
import torch

from course_utils import porting
from course_utils import tensorflow as tfu
from course_utils import torch as tu
from course_utils.data import load_fashion_mnist, load_mnist, pad_or_resize, to_rgb
from course_utils.weights import find_weights
from tests.harness import lesson_namespace

tf, keras = tfu.tf, tfu.keras
LESSON = "03_transfer_vgg16"


@pytest.fixture(scope="module")
def weights_path():
    found = find_weights("vgg_style_fashion")
    assert found.source == "shipped" and found.checksum.startswith("sha256:")
    return found.path


def prepare(images):
    """uint8 (N, 28, 28) -> float32 (N, 32, 32, 3) in [0, 1], as the notebooks do."""
    return to_rgb(pad_or_resize(images, 32, mode="pad")).astype(np.float32) / 255


@pytest.fixture(scope="module")
def digits():
    return prepare(load_mnist().x_test[:64])


def test_the_shipped_file_is_small_and_complete(weights_path):
    assert weights_path.stat().st_size < 1_000_000
    with np.load(weights_path) as data:
        assert tuple(data["input_shape"]) == (32, 32, 3) and tuple(data["flatten_from"]) == (4, 4, 64)
        assert len(data["class_names"]) == 10
    keras_layout = porting.load_sequential_npz(weights_path, layout="keras")
    torch_layout = porting.load_sequential_npz(weights_path, layout="torch")
    assert len(keras_layout) == len(torch_layout) == 16
    assert sum(w.size for w in keras_layout) == 119_258
    back = porting.torch_sequential_weights_to_keras(torch_layout, flatten_from=(4, 4, 64))
    assert all(np.array_equal(a, b) for a, b in zip(back, keras_layout))


def test_both_frameworks_give_the_same_features(weights_path, digits):
    k_base = tfu.vgg_style_network(weights=weights_path, include_top=False)
    t_base = tu.vgg_style_network(weights=weights_path, include_top=False).eval()
    k_features = np.asarray(k_base(digits, training=False))                       # (N, 4, 4, 64)
    with torch.no_grad():
        t_features = t_base(torch.from_numpy(digits.transpose(0, 3, 1, 2))).numpy()  # (N, 64, 4, 4)
    assert k_features.shape == (64, 4, 4, 64)
    assert np.abs(k_features).max() > 0.1  # the features are not all zero
    np.testing.assert_allclose(t_features.transpose(0, 2, 3, 1), k_features, rtol=1e-4, atol=1e-5)


def test_both_frameworks_give_the_same_probabilities(weights_path, digits):
    k_model = tfu.vgg_style_network(weights=weights_path)
    t_model = tu.vgg_style_network(weights=weights_path).eval()
    k_out = np.asarray(k_model(digits, training=False))
    with torch.no_grad():
        t_out = torch.softmax(t_model(torch.from_numpy(digits.transpose(0, 3, 1, 2))), dim=1).numpy()
    np.testing.assert_allclose(t_out, k_out, rtol=1e-4, atol=1e-6)
    assert (t_out.argmax(1) == k_out.argmax(1)).all()


def test_the_network_was_pretrained_on_fashion_mnist(weights_path):
    fashion = load_fashion_mnist(source="shipped").subset(test=500)
    x = prepare(fashion.x_test)
    t_model = tu.vgg_style_network(weights=weights_path).eval()
    with torch.no_grad():
        t_acc = (t_model(torch.from_numpy(x.transpose(0, 3, 1, 2))).argmax(1).numpy() == fashion.y_test).mean()
    k_acc = (np.asarray(tfu.vgg_style_network(weights=weights_path)(x, training=False)).argmax(1) == fashion.y_test).mean()
    assert t_acc == k_acc and t_acc > 0.8, (t_acc, k_acc)
    untrained = tu.vgg_style_network().eval()
    with torch.no_grad():
        chance = (untrained(torch.from_numpy(x.transpose(0, 3, 1, 2))).argmax(1).numpy() == fashion.y_test).mean()
    assert chance < 0.3


@pytest.fixture(scope="module")
def lessons():
    cells = ("build_head", "freeze_base", "count_params_split", "vgg_preprocess")
    return {"tensorflow": lesson_namespace(LESSON, "tensorflow", *cells),
            "pytorch": lesson_namespace(LESSON, "pytorch", *cells)}


def test_the_lesson_model_has_the_same_counts_in_both(lessons):
    import torchvision
    tf_ns, pt_ns = lessons["tensorflow"], lessons["pytorch"]
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    tf_ns["freeze_base"](vgg)
    model = keras.Model(vgg.input, tf_ns["build_head"](vgg.output.shape[1:])(vgg.output))
    base = pt_ns["freeze_base"](torchvision.models.vgg16(weights=None).features)
    t_model = torch.nn.Sequential(base, pt_ns["build_head"]((512, 7, 7)))
    expected = (25_956_106, 14_714_688)
    assert tuple(tf_ns["count_params_split"](model)) == expected
    assert tuple(pt_ns["count_params_split"](t_model)) == expected


def test_the_heads_agree_with_ported_weights(lessons):
    tfu.seed_everything(0)
    k_head = lessons["tensorflow"]["build_head"]((4, 4, 64))
    t_head = lessons["pytorch"]["build_head"]((64, 4, 4)).eval()
    k_weights = k_head.get_weights()
    t_params = porting.keras_sequential_weights_to_torch(k_weights)
    t_params[0] = porting.dense_kernel_keras_to_torch(k_weights[0], flattened_from=(4, 4, 64))
    with torch.no_grad():
        for p, w in zip(t_head.parameters(), t_params):
            p.copy_(torch.from_numpy(w))
    x = np.random.default_rng(0).normal(size=(5, 4, 4, 64)).astype(np.float32)
    k_out = np.asarray(k_head(x, training=False))
    with torch.no_grad():
        t_out = torch.softmax(t_head(torch.from_numpy(x.transpose(0, 3, 1, 2))), dim=1).numpy()
    np.testing.assert_allclose(t_out, k_out, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_the_preprocessing_agrees_across_layouts(lessons, mode):
    images = np.random.default_rng(1).uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    k_out = np.asarray(lessons["tensorflow"]["vgg_preprocess"](images.copy(), mode=mode))
    t_out = lessons["pytorch"]["vgg_preprocess"](torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), mode=mode)
    np.testing.assert_allclose(t_out.numpy().transpose(0, 2, 3, 1), k_out, rtol=1e-5, atol=1e-4)
    with tfu._quiet_native_stderr():
        reference = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode=mode)
    np.testing.assert_allclose(k_out, np.asarray(reference), rtol=1e-5, atol=1e-4)
