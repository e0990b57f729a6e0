# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 03 · Transfer learning with VGG16 (TensorFlow)
#
# A network trained on one large task has learned features (edges, textures, shapes) that
# are useful for other tasks. **Transfer learning** reuses them: keep the trained
# convolutional base, put a new classifier (a *head*) on top, and train only what must be
# learned anew. In this lesson you will
#
# 1. build the lesson text's model, VGG16 with a new head, and count where its 40.7 million
#    parameters are,
# 2. preprocess images the way VGG16 expects,
# 3. freeze a base, extract features with it, and fine-tune its top block,
# 4. measure when transfer pays: digits with 10, 100 and 700 labels per class, from scratch
#    against a frozen base against fine-tuning,
# 5. see why VGG stops near 19 layers, and the residual connection that goes deeper.
#
# The PyTorch notebook of this lesson has the same headings, data, seeds and exercises.
#
# **Exercises** are marked *Exercise*. Each answer cell holds a function's first line and
# docstring, then `# YOUR CODE HERE` and `raise NotImplementedError()`: replace those two
# lines with your code (keep the function's name and arguments), run the test cell below
# it, and press *Validate* in the toolbar before you submit. The visible tests are a first
# check; the grader runs more, on other inputs.

# %% [markdown]
# ## Set-up
# *Helper cell*: imports, library versions, the run profile and the device. Importing
# `course_utils.tensorflow` first keeps TensorFlow's C++ log quiet.

# %%
import time
import warnings

from course_utils import tensorflow as cu  # before TensorFlow: quiets its C++ log

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow import keras

from course_utils import plots
from course_utils.checks import check_close, check_equal, check_shape, to_numpy
from course_utils.data import load_fashion_mnist, load_mnist, pad_or_resize, to_rgb
from course_utils.guards import check_from_scratch
from course_utils.profiles import current_profile, pick
from course_utils.weights import WeightsError, find_weights

assert tuple(int(v) for v in tf.__version__.split(".")[:2]) >= (2, 16), "this lesson needs TensorFlow 2.16 or newer"
assert int(keras.__version__.split(".")[0]) >= 3, "this lesson is written for Keras 3"
assert tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 26), "this lesson needs numpy 1.26 or newer"

SEED = 42
cu.seed_everything(SEED)
tf.get_logger().setLevel("ERROR")  # many small models: keep Keras' retracing notes out of the output
PROFILE = current_profile()
print(f"profile: {PROFILE}")
print(cu.device_report())

# %% [markdown]
# ## 1. What transfer learning is, and when it helps
# The lesson text's claims: a model pre-trained on a large data set such as ImageNet has
# learned features useful for a wide range of vision tasks; reusing it saves time and
# improves accuracy, *particularly when the new task has little data*. Two ways to reuse it:
#
# * **Feature extraction**: freeze the whole base and train only a new head. The base is a
#   fixed function, so its features can even be computed once and cached.
# * **Fine-tuning**: after the head has learned, unfreeze the top of the base (the most
#   task-specific layers) and train it too, with a *lower* learning rate so that the
#   pre-trained weights move a little instead of being overwritten.
#
# Section 7 checks these claims with a measurement, and finds where they hold.
#
# ## 2. VGG16: blocks, receptive field, parameters
# VGG16 (Simonyan and Zisserman, 2014) is five blocks of 3×3 convolutions ("same" padding,
# ReLU), each ending in 2×2 max pooling, then three dense layers: 13 + 3 = 16 layers with
# weights. `keras.applications.VGG16(include_top=False)` is the convolutional base.
#
# **The weights.** ImageNet weights are 59 MB (without the top) and nothing may be
# downloaded while this notebook runs, so they are used only if the file is already on this
# machine (`~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` or
# `$COURSE_WEIGHTS_DIR`), checked first and passed to Keras as a path, so that Keras never
# tries to fetch it; the check below says which path it took. Otherwise the base is randomly
# initialised (`weights=None`): the right architecture and parameter counts, not the
# learned features.

# %%
try:
    imagenet = find_weights("vgg16_imagenet_keras_notop")
    print("ImageNet weights:", imagenet.describe())
except WeightsError as missing:
    imagenet = None
    print(f"No ImageNet weights on this machine, so VGG16 is built with weights=None.\n({missing})")

vgg_base = keras.applications.VGG16(weights=str(imagenet.path) if imagenet else None, include_top=False,
                                    input_shape=(224, 224, 3))
top_params = (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)  # fc1, fc2, predictions
print(f"VGG16 with its classifier: {vgg_base.count_params() + top_params:,} parameters")

# %% [markdown]
# Each convolution sees a 3×3 window of the layer below; each pooling doubles the step
# between neighbouring units. The **receptive field** (the input pixels one unit depends
# on) grows by $(k - 1) \times \text{jump}$ per layer, where jump is the product of the
# strides so far. Two stacked 3×3 convolutions see 5×5, three see 7×7, with fewer
# parameters and more non-linearities than one large kernel: VGG's design idea.

# %%
rf, jump, block, rows = 1, 1, 1, []
params_in_block = 0
for layer in vgg_base.layers:
    if isinstance(layer, keras.layers.Conv2D):
        rf += (layer.kernel_size[0] - 1) * jump
        params_in_block += layer.count_params()
    elif isinstance(layer, keras.layers.MaxPooling2D):
        rf += (layer.pool_size[0] - 1) * jump
        jump *= layer.strides[0]
        rows.append((f"block{block}", tuple(layer.output.shape[1:]), rf, params_in_block))
        block, params_in_block = block + 1, 0
print(f"{'block':<8}{'output (H, W, C)':<20}{'receptive field':>16}{'parameters':>14}")
for name, out, field, count in rows:
    print(f"{name:<8}{str(out):<20}{field:>13}x{field:<3}{count:>13,}")
print(f"{'base':<8}{'':<20}{'':>16}{vgg_base.count_params():>14,}")
print(f"{'top':<8}{'3 dense layers':<20}{'':>16}{top_params:>14,}")

# %% [markdown]
# The 13 convolutions hold 14.7 million parameters; the three dense layers of the original
# classifier hold 123.6 million, 89% of the network. The parameters are in the dense
# layers, the computation in the convolutions.
#
# The lesson text replaces that classifier with its own head: `Flatten -> Dense(1024, relu)
# -> Dense(256, relu) -> Dense(10, softmax)`, compiled with Adam and categorical
# cross-entropy. Keras' model ends in the softmax and its loss takes probabilities; the
# PyTorch twin returns logits instead, because its loss applies the softmax itself.

# %% [markdown]
# ### Exercise 1: the lesson text's head (2 points)
# Write `build_head(feature_shape, num_classes=10)` returning a Keras model (a
# `keras.Sequential` starting with `keras.Input(feature_shape)` is simplest) that maps the
# base's output, a batch of shape `(N, *feature_shape)` with `feature_shape = (H, W, C)`, to
# `(N, num_classes)` class probabilities: `Flatten`, `Dense(1024)` with ReLU, `Dense(256)`
# with ReLU, `Dense(num_classes)` with softmax. Every layer has a bias, and every weight is
# trainable. (The whole model is compiled later.)

# %% nbgrader={"grade": false, "grade_id": "build_head", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_head(feature_shape, num_classes=10):
    """The lesson text's head: (N, H, W, C) features -> (N, num_classes) probabilities."""
    ### BEGIN SOLUTION
    return keras.Sequential([
        keras.Input(shape=tuple(feature_shape)),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "build_head_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
cu.seed_everything(0)
# (on VGG16's (7, 7, 512) features the head has 25,956,106 parameters: section 2 counts them)
head = build_head((2, 2, 512))
check_equal(cu.count_params(head), 2_363_146, name="the parameters of the head on (2, 2, 512) features")
check_shape(build_head((4, 4, 64))(tf.random.uniform((3, 4, 4, 64))), (3, 10), name="the head's output for 3 feature maps")
### BEGIN HIDDEN TESTS
cu.seed_everything(1)
head = build_head((2, 5, 3), num_classes=4)
assert isinstance(head, keras.Model), "build_head should return a Keras model"
denses = [layer for layer in head.layers if isinstance(layer, keras.layers.Dense)]
assert len(denses) == 3, f"the head should have three Dense layers, found {len(denses)}"
for layer, shape in zip(denses, [(30, 1024), (1024, 256), (256, 4)]):
    check_equal(tuple(layer.kernel.shape), shape, name="a Dense kernel's shape (in, out)")
    assert layer.use_bias, "every Dense layer should have a bias"
check_equal(cu.count_params(head, trainable_only=True), cu.count_params(head), name="the trainable parameters of the head")
x = tf.random.normal((6, 2, 5, 3), seed=2) * 3  # values far below 0 and above 6: another activation shows
_rng = np.random.default_rng(3)
for w in head.weights:  # random weights, whatever the head's initialisation (a zero last layer hides a lot)
    w.assign(_rng.normal(size=w.shape) / np.sqrt(np.prod(w.shape[:-1])))  # 1 / sqrt(fan-in) for a kernel, 1 for a bias
expected = []
for flat in (tf.reshape(x, (6, -1)), tf.reshape(tf.transpose(x, (0, 3, 1, 2)), (6, -1))):  # either flatten order
    h = tf.nn.relu(flat @ denses[0].kernel + denses[0].bias)
    h = tf.nn.relu(h @ denses[1].kernel + denses[1].bias)
    expected.append(tf.nn.softmax(h @ denses[2].kernel + denses[2].bias))
for training in (False, True):  # training=True too: no dropout or other extra layer
    got = head(x, training=training)
    check_shape(got, (6, 4), name=f"build_head((2, 5, 3), num_classes=4) on 6 feature maps (training={training})")
    error = min(float(np.max(np.abs(np.asarray(got) - np.asarray(e)))) for e in expected)
    assert error < 1e-5, (f"the head's output with training={training} differs from Flatten, Dense+ReLU, Dense+ReLU, "
                          f"Dense+softmax on its own weights by {error:.3g}: check the activations and that there is "
                          "no other layer")
check_equal(cu.count_params(build_head((1, 1, 8), num_classes=3)), 8 * 1024 + 1024 + 1024 * 256 + 256 + 256 * 3 + 3,
            name="the parameters of build_head((1, 1, 8), num_classes=3)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: freeze a base (1 point)
# Write `freeze_base(base)`: make every weight of the Keras model `base` untrainable (the
# lesson text loops over `base.layers`; setting the model's own `trainable` does the same)
# and return `base` itself. Change nothing outside `base`.

# %% nbgrader={"grade": false, "grade_id": "freeze_base", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_base(base):
    """Freeze every layer of base (trainable False); return base."""
    ### BEGIN SOLUTION
    for layer in base.layers:
        layer.trainable = False
    return base
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "freeze_base_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
small = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3)])
assert freeze_base(small) is small, "freeze_base should return the base it froze"
check_equal(cu.count_params(small, trainable_only=True), 0, name="trainable parameters left in the frozen base")
### BEGIN HIDDEN TESTS
cu.seed_everything(0)
block1 = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3), keras.layers.BatchNormalization(),
                           keras.layers.ReLU()], name="block1")  # a nested block
base = keras.Sequential([keras.Input((6, 6, 3)), block1, keras.layers.Conv2D(8, 3), keras.layers.GlobalAveragePooling2D()])
head = keras.layers.Dense(2)
inputs = keras.Input((6, 6, 3))
model = keras.Model(inputs, head(base(inputs)))
assert freeze_base(base) is base, "freeze_base should return the base it froze"
still = [w.path for w in base.trainable_weights]
assert still == [], f"these weights of the base are still trainable: {still}"
check_equal(len(model.trainable_weights), 2, name="trainable weights of the model (the head's kernel and bias)")
assert all(layer.trainable for layer in [head]), "freeze_base should not freeze anything outside the base"
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(tf.random.uniform((2, 6, 6, 3)), training=True))
grads = tape.gradient(loss, model.trainable_weights)
assert all(g is not None for g in grads), "the head should still get gradients"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: trainable and frozen parameters (2 points)
# Write `count_params_split(model)` returning the tuple `(trainable, frozen)`: the number of
# scalar weights in `model.trainable_weights` and in `model.non_trainable_weights`, as ints
# (Keras counts batch norm's moving mean and variance as non-trainable, as
# `model.summary()` shows).

# %% nbgrader={"grade": false, "grade_id": "count_params_split", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_params_split(model):
    """(trainable, frozen) numbers of weights of model."""
    ### BEGIN SOLUTION
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "count_params_split_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
model.layers[0].trainable = False
check_equal(tuple(int(v) for v in count_params_split(model)), (8, 15), name="count_params_split of a small model")
### BEGIN HIDDEN TESTS
result = count_params_split(model)
assert isinstance(result, tuple) and len(result) == 2, "count_params_split should return a tuple (trainable, frozen)"
assert all(int(v) == v for v in result), "the counts should be whole numbers"
model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(5, 3), keras.layers.BatchNormalization(),
                          keras.layers.Flatten(), keras.layers.Dense(7)])
check_equal(tuple(int(v) for v in count_params_split(model)), (140 + 10 + 567, 10),
            name="an unfrozen model with batch norm (its moving mean and variance are non-trainable)")
model.layers[0].trainable = False
model.layers[1].trainable = False
check_equal(tuple(int(v) for v in count_params_split(model)), (567, 160), name="a model with a frozen conv and batch norm")
inputs = keras.Input((6, 6, 3))
outer = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(model(inputs))))
check_equal(tuple(int(v) for v in count_params_split(outer)), (567 + 16, 160), name="a model nested in another")
### END HIDDEN TESTS

# %% [markdown]
# The lesson text's model: VGG16's base, every layer frozen, and the new head on its
# (7, 7, 512) output for 224×224 images, compiled as in the text.

# %%
freeze_base(vgg_base)
head = build_head(vgg_base.output.shape[1:])
lesson_model = keras.Model(inputs=vgg_base.input, outputs=head(vgg_base.output))
lesson_model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
trainable, frozen = count_params_split(lesson_model)
print(f"lesson model: {trainable + frozen:,} parameters, {trainable:,} trainable, {frozen:,} frozen")
assert (trainable + frozen, trainable, frozen) == (40_670_794, 25_956_106, 14_714_688)

# %% [markdown]
# **Why it is built but not trained here.** One forward pass of VGG16's base costs about
# 15.3 billion multiply-adds per 224×224 image; training costs about three times that.
# Timing one image on this machine shows what ten epochs over 7,000 images would take.
# (Without the ImageNet file the frozen base would be a *random* feature extractor anyway:
# freezing only makes sense for learned weights.) So the rest of the lesson transfers from
# the course's own small VGG-style network, with the same block pattern, on 32×32 images.

# %%
size = pick(smoke=64, standard=224)  # smoke: a smaller image, scaled up by the pixel count
probe = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
x = tf.random.uniform((1, size, size, 3))
probe(x, training=False)  # the first call builds the graph
start = time.perf_counter()
probe(x, training=False)
seconds = (time.perf_counter() - start) * (224 / size) ** 2
print(f"one 224x224 image through VGG16's base: about {seconds:.2f} s on {cu.get_device()}")
print(f"10 epochs of 7,000 images, forward and backward (x3): about {seconds * 3 * 7000 * 10 / 3600:.1f} hours")
del lesson_model, vgg_base, probe

# %% [markdown]
# ## 3. Preprocessing for VGG16
# VGG16 takes colour images of at least 32×32 pixels (five poolings halve 32 down to 1;
# Keras refuses smaller inputs). Grey 28×28 digits therefore get their grey value copied to
# three channels (`to_rgb`) and are zero-padded or resized to 32×32 or more (`pad_or_resize`).
#
# The ImageNet weights also expect the **preprocessing they were trained with**, and the two
# frameworks' weights differ:
#
# * Keras' `vgg16.preprocess_input` ("caffe" mode, from the original Caffe model): pixel
#   values 0..255, channels reordered **RGB → BGR**, and the ImageNet mean of each channel
#   subtracted, B 103.939, G 116.779, R 123.68; no scaling.
# * torchvision ("torch" mode): values scaled to [0, 1], then per RGB channel
#   $(x - \text{mean}) / \text{std}$ with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
#
# Feed one framework's weights the other's preprocessing and the features are off: the
# colours are swapped or the values are 255 times too large.

# %% [markdown]
# ### Exercise 4: VGG preprocessing from scratch (3 points)
# Write `vgg_preprocess(images, mode="caffe")` with numpy or TensorFlow operations
# (indexing, reversing an axis, arithmetic), **not** the `preprocess_input` of Keras' `vgg16`
# or of any other `keras.applications` model.
#
# * `images`: a float numpy array (N, H, W, 3), RGB channels, values 0..255 (any N, H, W);
# * `mode="caffe"`: channels reordered to BGR, then subtract 103.939 from B, 116.779 from G
#   and 123.68 from R, on the 0..255 scale;
# * `mode="torch"`: divide by 255, then per RGB channel subtract the mean (0.485, 0.456,
#   0.406) and divide by the std (0.229, 0.224, 0.225);
# * any other mode raises `ValueError`;
# * returns a new float array of the same shape; `images` is left unchanged.

# %% nbgrader={"grade": false, "grade_id": "vgg_preprocess", "locked": false, "schema_version": 3, "solution": true, "task": false}
def vgg_preprocess(images, mode="caffe"):
    """ImageNet preprocessing of RGB images (N, H, W, 3) with values 0..255."""
    ### BEGIN SOLUTION
    x = np.asarray(images, dtype=np.float32)
    if mode == "caffe":
        return x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    if mode == "torch":
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
        return (x / 255 - mean) / std
    raise ValueError(f"mode must be 'caffe' or 'torch', got {mode!r}")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "vgg_preprocess_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
pixel = np.array([200.0, 100.0, 50.0], dtype=np.float32).reshape(1, 1, 1, 3)  # one orange RGB pixel
check_close(vgg_preprocess(pixel), np.array([50 - 103.939, 100 - 116.779, 200 - 123.68]).reshape(1, 1, 1, 3),
            rtol=1e-4, atol=1e-4, name="vgg_preprocess of one orange pixel, caffe mode")
check_shape(vgg_preprocess(np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype(np.float32), mode="torch"),
            (2, 5, 4, 3), name="vgg_preprocess, torch mode")
### BEGIN HIDDEN TESTS
import sys as _sys
import types as _types

from keras import applications as _applications
from keras.applications import imagenet_utils as _imagenet_utils
from keras.applications import vgg16 as _vgg16

# every keras.applications.<module>.preprocess_input (vgg16, vgg19, resnet, densenet, ...) and the private
# helpers of the modules that define them
_keras_modules = [_module for _module in vars(_applications).values() if isinstance(_module, _types.ModuleType)]
_keras_modules += [_sys.modules.get(getattr(_module.preprocess_input, "__module__", ""))
                   for _module in _keras_modules if callable(getattr(_module, "preprocess_input", None))]
_keras_preprocessing = [getattr(_module, _k) for _module in _keras_modules if _module is not None
                        for _k in ("preprocess_input", "_preprocess_numpy_input", "_preprocess_tensor_input")
                        if callable(getattr(_module, _k, None))]
check_from_scratch(vgg_preprocess, _keras_preprocessing, name="vgg_preprocess", allowed="Use indexing and arithmetic.")
images = np.random.default_rng(3).uniform(0, 255, (3, 6, 5, 3)).astype(np.float32)  # every pixel different
saved = images.copy()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    expected_caffe = np.asarray(_vgg16.preprocess_input(images.copy()))
    expected_torch = np.asarray(_imagenet_utils.preprocess_input(images.copy(), mode="torch"))
check_close(to_numpy(vgg_preprocess(images)), expected_caffe, rtol=1e-4, atol=1e-3,
            name="vgg_preprocess caffe mode (BGR order, means subtracted on the 0..255 scale)")
check_equal(np.array_equal(images, saved), True, name="images unchanged after vgg_preprocess(images)")
check_close(to_numpy(vgg_preprocess(images, mode="torch")), expected_torch, rtol=1e-4, atol=1e-4,
            name="vgg_preprocess torch mode (RGB order, scaled to [0, 1], mean and std)")
check_equal(np.array_equal(images, saved), True, name="images unchanged after vgg_preprocess(images, mode='torch')")
check_close(to_numpy(vgg_preprocess(images[:1], "caffe")), expected_caffe[:1], rtol=1e-4, atol=1e-3,
            name="vgg_preprocess of a single image")
try:
    vgg_preprocess(images, mode="tf")
except ValueError:
    pass
else:
    raise AssertionError("vgg_preprocess(images, mode='tf') should raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# One digit made ready for VGG16: padded to 32×32 and resized to 224×224, grey copied to
# three channels, then each framework's preprocessing. A grey pixel has R = G = B, so only
# the per-channel means tell the channels apart here; on colour photographs the BGR order
# matters as much.

# %%
mnist = load_mnist()
digit = mnist.x_test[:1]
big = to_rgb(pad_or_resize(pad_or_resize(digit, 32, mode="pad"), 224))  # uint8 (1, 224, 224, 3)
rgb_255 = big.astype(np.float32)
for mode in ("caffe", "torch"):
    out = to_numpy(vgg_preprocess(rgb_255, mode=mode))
    means = ", ".join(f"{v:.2f}" for v in out.mean(axis=(0, 1, 2)))
    print(f"{mode:>6} mode: shape {out.shape}, range {out.min():.2f} .. {out.max():.2f}, channel means ({means})")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    same = np.allclose(to_numpy(vgg_preprocess(rgb_255)), keras.applications.vgg16.preprocess_input(rgb_255.copy()),
                       atol=1e-3)
print("caffe mode equals keras.applications.vgg16.preprocess_input:", same)
plots.show_images(np.concatenate([pad_or_resize(digit, 224)[..., None].repeat(3, -1), big]), ncols=2)
plt.show()

# %% [markdown]
# ## 4. The course's own pretrained network
# The course ships a network with VGG16's block pattern, pretrained by
# `datasets/build_pretrained.py` on **Fashion-MNIST** (clothes, the *source task*), saved once
# in a framework-neutral `.npz` and loaded into either framework through
# `course_utils.porting`:
#
# | block | layers | output (H, W, C) | parameters |
# |---|---|---|---|
# | input | 28×28 zero-padded to 32×32, grey in 3 channels, /255 | (32, 32, 3) | |
# | block1 | 2 × Conv 16 3×3 + ReLU, MaxPool 2×2 | (16, 16, 16) | 2,768 |
# | block2 | 2 × Conv 32 3×3 + ReLU, MaxPool 2×2 | (8, 8, 32) | 13,888 |
# | block3 | 3 × Conv 64 3×3 + ReLU, MaxPool 2×2 | (4, 4, 64) | 92,352 |
# | top | Flatten 1,024, Dropout 0.3, Dense 10 softmax | (10,) | 10,250 |
#
# The *target task* is different: handwritten digits.

# %%
found = find_weights("vgg_style_fashion")
print("course weights:", found.describe())
if imagenet is None:
    print("path taken: the course's own pretrained network (no ImageNet file on this machine)")
pretrained = cu.vgg_style_network(weights=found.path)
block_layers = [layer for layer in pretrained.layers if layer.name.startswith("block")]
print(f"{cu.count_params(pretrained):,} parameters, {sum(layer.count_params() for layer in block_layers):,} in the blocks")


def prepare(images):
    """uint8 (N, 28, 28) -> float32 (N, 32, 32, 3) in [0, 1]: padded, grey in 3 channels."""
    return cu.to_tensor_images(to_rgb(pad_or_resize(images, 32, mode="pad")))


fashion = load_fashion_mnist(source="shipped").subset(test=pick(smoke=500, standard=2000))
x_fashion = prepare(fashion.x_test)
fashion_acc = np.mean(cu.predict(pretrained, x_fashion).argmax(1) == fashion.y_test)
print(f"source task: {fashion_acc:.1%} on {len(x_fashion)} Fashion-MNIST test images")

# %% [markdown]
# What the pretrained network looks at: its first layer's 16 filters (the red channel of
# each; the grey input makes the three channels alike) and the feature maps of one digit
# after each block, smaller and more abstract block by block. The filters are edge and
# blob detectors, learned from clothes, and they respond to the strokes of a digit too:
# that is what transfers.

# %%
plots.plot_filters(cu.conv_filters(pretrained.get_layer("block1_conv1")),
                   title="block1_conv1: 16 filters learned on Fashion-MNIST")
plt.show()
one = prepare(mnist.x_test[:1])
for name in ("block1", "block2", "block3"):
    maps = cu.feature_maps(pretrained, pretrained.get_layer(f"{name}_pool"), one)[0]
    plots.plot_feature_maps(maps[..., :16], channels_last=True,
                            title=f"{name}: 16 of its {maps.shape[-1]} maps, {maps.shape[0]}x{maps.shape[1]}",
                            image=mnist.x_test[0] if name == "block1" else None)
    plt.show()

# %% [markdown]
# ## 5. The target task: digits with few labels
# The course's 10,000 MNIST digits: 7,000 for training (about 700 per class), 1,000 for
# validation, 2,000 for testing. To see when transfer pays we pretend to have only a few
# labelled digits per class.

# %%
sizes = pick(smoke=dict(val=200, test=500), standard=None)
if sizes:
    mnist = mnist.subset(**sizes)
x_train, x_val, x_test = prepare(mnist.x_train), prepare(mnist.x_val), prepare(mnist.x_test)


def labelled(per_class):
    """Indices of the first `per_class` training digits of each class (all of a class if fewer)."""
    return np.sort(np.concatenate([np.flatnonzero(mnist.y_train == c)[:per_class] for c in range(10)]))


print(mnist)
print("training digits per class:", np.bincount(mnist.y_train, minlength=10))

# %% [markdown]
# ### Exercise 5: extract features (2 points)
# With a frozen base, its output for an image never changes, so it can be computed once.
# Write `extract_features(base, images, batch_size=256)`:
#
# * `base`: a Keras model; `images`: a float numpy array (N, H, W, C);
# * run the base in **inference mode** (`training=False`: dropout off, batch norm with its
#   moving statistics; `base.predict` does this too), on at most `batch_size` images at a time,
#   in order;
# * return a numpy float32 array (N, D): each image's output flattened (Keras' H, W, C order).

# %% nbgrader={"grade": false, "grade_id": "extract_features", "locked": false, "schema_version": 3, "solution": true, "task": false}
def extract_features(base, images, batch_size=256):
    """The base's outputs for images (N, H, W, C), flattened: numpy (N, D)."""
    ### BEGIN SOLUTION
    outputs = [np.asarray(base(images[start:start + batch_size], training=False))
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs).astype(np.float32).reshape(len(images), -1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "extract_features_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
cu.seed_everything(0)
base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.MaxPool2D(2)])
features = extract_features(base, np.random.default_rng(0).uniform(size=(5, 8, 8, 3)).astype(np.float32))
assert isinstance(features, np.ndarray), f"extract_features should return a numpy array, not {type(features).__name__}"
check_shape(features, (5, 36), name="extract_features of 5 images (3x3 maps of 4 channels)")
### BEGIN HIDDEN TESTS
class Recorder(keras.layers.Layer):
    """Records the largest batch and the number of images it sees (graph mode too)."""
    def build(self, input_shape):
        self.largest = self.add_weight(shape=(), initializer="zeros", trainable=False, name="largest")
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")
    def call(self, x):
        n = tf.cast(tf.shape(x)[0], "float32")
        self.largest.assign(tf.maximum(self.largest, n))
        self.seen.assign_add(n)
        return x

cu.seed_everything(1)
recorder = Recorder()
base = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(6, 3, padding="same"),
                         keras.layers.BatchNormalization(), keras.layers.ReLU(), recorder, keras.layers.Dropout(0.5),
                         keras.layers.AveragePooling2D(2)])
bn = base.layers[1]
bn.moving_mean.assign(np.random.default_rng(2).uniform(-1, 1, 6).astype(np.float32))
bn.moving_variance.assign(np.random.default_rng(3).uniform(0.5, 2, 6).astype(np.float32))
images = np.random.default_rng(4).uniform(0, 2, (23, 5, 5, 3)).astype(np.float32)
expected = np.asarray(base(images, training=False)).reshape(23, -1)
recorder.largest.assign(0.0)
recorder.seen.assign(0.0)
moving_mean = np.asarray(bn.moving_mean).copy()
features = extract_features(base, images, batch_size=10)
assert isinstance(features, np.ndarray), f"extract_features should return a numpy array, not {type(features).__name__}"
check_shape(features, (23, 24), name="extract_features of 23 images")
check_equal(str(features.dtype), "float32", name="the features' dtype")
check_close(features, expected, rtol=1e-4, atol=1e-5,
            name="features of a base with batch norm and dropout (inference mode, training=False?)")
check_equal(np.array_equal(np.asarray(bn.moving_mean), moving_mean), True, name="batch norm's moving mean unchanged")
assert 0 < float(recorder.largest) <= 10, f"batches of at most batch_size=10 images; saw one of {float(recorder.largest):.0f}"
check_equal(int(float(recorder.seen)), 23, name="the number of images passed through the base")
features = extract_features(base, images[:7])
check_close(features, expected[:7], rtol=1e-4, atol=1e-5, name="extract_features with the default batch size")
### END HIDDEN TESTS

# %% [markdown]
# **Fast feature extraction against end-to-end training with a frozen base.** Both train the
# same new head (`Dense(10, softmax)` on the flattened 1,024 features) with the same initial
# weights and the same batches; one runs the frozen base on every batch of every epoch, the
# other runs it once. With no augmentation or dropout in the base the two compute the same
# thing, so they reach the same accuracy; only the time differs. (With data augmentation the
# features change every epoch and cannot be cached: then end-to-end it is.)

# %%
TIMING_PER_CLASS, TIMING_EPOCHS = pick(smoke=(10, 2), standard=(100, 5))
idx = labelled(TIMING_PER_CLASS)


def course_base(weights=found.path):
    """The course network's three blocks, pretrained (or random with weights=None)."""
    return cu.vgg_style_network(weights=weights, include_top=False)


def new_head(flat=False):
    """Dense(10, softmax) on the base's (4, 4, 64) output, or on the 1,024 flat features."""
    layers = [keras.Input((1024,))] if flat else [keras.Input((4, 4, 64)), keras.layers.Flatten()]
    return keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax", name="dense")])


def with_head(base, head):
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, head(base(inputs)))


def compiled(model, lr=1e-3, eager=False):
    """Compile with Adam, categorical cross-entropy and accuracy; eager=True skips tracing a graph
    (cheaper for a run of a few steps, slower for more)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=eager)
    return model


def feature_data(features, labels, shuffle=True):
    data = tf.data.Dataset.from_tensor_slices((features, cu.one_hot(labels, 10)))
    if shuffle:
        data = data.shuffle(len(features), seed=SEED, reshuffle_each_iteration=True)
    return data.batch(32 if shuffle else 512)


cu.seed_everything(SEED)
base = freeze_base(course_base())
head, flat_head = new_head(), new_head(flat=True)
flat_head.get_layer("dense").set_weights(head.get_layer("dense").get_weights())

start = time.perf_counter()
end_to_end = compiled(with_head(base, head))
cu.train(end_to_end, cu.make_loader(x_train[idx], mnist.y_train[idx], 32, shuffle=True, seed=SEED, num_classes=10),
         epochs=TIMING_EPOCHS, verbose=False)
t_end_to_end = time.perf_counter() - start

start = time.perf_counter()
f_train = extract_features(base, x_train[idx])
cu.train(compiled(flat_head), feature_data(f_train, mnist.y_train[idx]), epochs=TIMING_EPOCHS, verbose=False)
t_cached = time.perf_counter() - start

f_test = extract_features(base, x_test)
acc_end_to_end = np.mean(extract_features(end_to_end, x_test).argmax(1) == mnist.y_test)
acc_cached = np.mean(extract_features(flat_head, f_test).argmax(1) == mnist.y_test)
print(f"end to end, frozen base: {t_end_to_end:6.2f} s, test accuracy {acc_end_to_end:.2%}")
print(f"features once, then head: {t_cached:6.2f} s, test accuracy {acc_cached:.2%}  "
      f"({t_end_to_end / t_cached:.1f}x faster)")

# %% [markdown]
# ## 6. Freezing in practice: optimizers and batch norm
# **Keras reads `trainable` when the model is compiled.** Change it after `compile` (and
# after training once) and nothing changes until the model is compiled again, without any
# error:

# %%
def block3_kernel(model):
    return np.asarray(model.layers[1].get_layer("block3_conv1").kernel).copy()


cu.seed_everything(SEED)
model = compiled(with_head(freeze_base(course_base()), new_head()))
one_batch = cu.make_loader(x_train[:32], mnist.y_train[:32], 32, num_classes=10)
model.fit(one_batch, epochs=1, verbose=0, shuffle=False)
base = model.layers[1]
base.trainable = True
for layer in base.layers:  # unfreeze block3 ...
    layer.trainable = layer.name.startswith("block3_")
before = block3_kernel(model)
model.fit(one_batch, epochs=1, verbose=0, shuffle=False)  # ... but without compiling again
print("without compile: block3 changed by a step:", not np.array_equal(before, block3_kernel(model)))
compiled(model, lr=1e-4)
model.fit(one_batch, epochs=1, verbose=0, shuffle=False)
print("after compile:   block3 changed by a step:", not np.array_equal(before, block3_kernel(model)))

# %% [markdown]
# **Batch norm in a frozen base.** In Keras a `BatchNormalization` layer with
# `trainable = False` runs in inference mode, even inside `fit`: it normalises with its
# moving statistics and keeps them. (This is Keras' rule since TensorFlow 2.0, so that
# fine-tuning does not wreck the pretrained statistics.) PyTorch differs: `requires_grad =
# False` leaves a batch norm layer in training mode until the base is put in `eval()` mode.
# (VGG16 and the course's network have no batch norm; many later networks do.)

# %%
cu.seed_everything(SEED)
bn_base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                            keras.layers.ReLU()])
bn_model = keras.Sequential([bn_base, keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
bn = bn_base.layers[1]
for base_frozen in (True, False):
    bn_base.trainable = not base_frozen
    stats = np.asarray(bn.moving_mean).copy()
    bn_model(x_train[:32], training=True)  # what fit does on each batch
    moved = np.abs(np.asarray(bn.moving_mean) - stats).max()
    print(f"base {'frozen' if base_frozen else 'trainable'}: moving mean moved by {moved:.4f} in a training step")

# %% [markdown]
# ### Exercise 6: set up fine-tuning (3 points)
# Write `setup_fine_tuning(model, base, block, lr=1e-4)`. `model` contains the frozen
# `base` (a Keras model whose layer names start with their block's name, e.g. the course
# network's `block3_conv1` .. `block3_pool`) and a trainable head, and it was compiled and
# trained before. Then:
#
# * make trainable the layers of `base` whose names start with `block + "_"`, keep every other
#   layer of `base` frozen and every layer of `model` outside `base` as it is;
# * compile `model` again with `keras.optimizers.Adam(learning_rate=lr)` (Adam itself, not a
#   subclass such as `AdamW`), categorical cross-entropy on probabilities
#   (`"categorical_crossentropy"`, `"CategoricalCrossentropy"` or
#   `keras.losses.CategoricalCrossentropy()`) and the accuracy metric (`"accuracy"`, `"acc"`
#   or `keras.metrics.CategoricalAccuracy()`), and return `model`. The grader checks what
#   these settings compute, whatever their spelling.

# %% nbgrader={"grade": false, "grade_id": "setup_fine_tuning", "locked": false, "schema_version": 3, "solution": true, "task": false}
def setup_fine_tuning(model, base, block, lr=1e-4):
    """Unfreeze base's layers of block `block` and recompile model with Adam(lr); return model."""
    ### BEGIN SOLUTION
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith(f"{block}_")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "setup_fine_tuning_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
cu.seed_everything(0)
base = cu.vgg_style_network(include_top=False)
inputs = keras.Input((32, 32, 3))
model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(base(inputs))))
assert setup_fine_tuning(model, base, "block3", lr=1e-4) is model, "setup_fine_tuning should return the model"
check_equal(cu.count_params(model, trainable_only=True), 92_352 + 10_250, name="trainable parameters (block3 and the head)")
check_close(float(model.optimizer.learning_rate), 1e-4, rtol=1e-5, name="the optimizer's learning rate")
### BEGIN HIDDEN TESTS
cu.seed_everything(1)
b_in = keras.Input((8, 8, 3))
x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(b_in)
x = keras.layers.BatchNormalization(name="block1_bn")(x)
x = keras.layers.MaxPool2D(2, name="block1_pool")(x)
x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="block2_conv1")(x)
x = keras.layers.MaxPool2D(2, name="block2_pool")(x)
x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="block3_conv1")(x)
x = keras.layers.MaxPool2D(2, name="block3_pool")(x)
x = keras.layers.Conv2D(6, 1, activation="relu", name="block20_conv1")(x)  # another block whose name starts with "block2"
base = keras.Model(b_in, x, name="small_base")
head = keras.layers.Dense(3, activation="softmax", name="head")
extra = keras.layers.Dense(6, activation="relu", name="frozen_dense")  # frozen outside the base: must stay as it is
inputs = keras.Input((8, 8, 3))
model = keras.Model(inputs, head(extra(keras.layers.Flatten()(base(inputs)))))
base.trainable = False
extra.trainable = False
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(5)
x = rng.uniform(size=(16, 8, 8, 3)).astype(np.float32)
y = cu.one_hot(rng.integers(0, 3, 16), 3)
model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # trained once with the base frozen
returned = setup_fine_tuning(model, base, "block2", lr=3e-5)
assert returned is model, "setup_fine_tuning should return the model"
assert all(w.trainable for w in base.get_layer("block2_conv1").weights), "block2's layers should be trainable"
trainable_paths = {w.path for w in model.trainable_weights}
for name in ("block1_conv1", "block1_bn", "block3_conv1"):
    assert not any(w.path in trainable_paths for w in base.get_layer(name).weights), f"{name} should stay frozen"
assert not any(w.path in trainable_paths for w in base.get_layer("block20_conv1").weights), \
    "block20_conv1 should stay frozen: it belongs to block20, not block2 (names starting with block + '_')"
assert all(w.path in trainable_paths for w in base.get_layer("block2_conv1").weights), "block2_conv1 should be trainable"
assert all(w.path in trainable_paths for w in head.weights), "the head should stay trainable"
assert not any(w.path in trainable_paths for w in extra.weights), "a layer outside the base that was frozen should stay frozen"
assert type(model.optimizer) is keras.optimizers.Adam, \
    f"compile with keras.optimizers.Adam itself, not {type(model.optimizer).__name__}"
assert abs(float(model.optimizer.learning_rate) - 3e-5) < 1e-9, \
    f"the learning rate should be lr=3e-5, got {float(model.optimizer.learning_rate)}"
# The loss and the metric: what they compute on one-hot labels and probabilities, whatever their spelling.
rng_c = np.random.default_rng(6)
y_true = np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0, 2, 2, 0]]
y_true[6:] = rng_c.dirichlet(np.ones(3), size=2)  # two soft targets: cross-entropy, not KL divergence
y_pred = np.full((8, 3), 0.1, np.float32)
y_pred[np.arange(8), [0, 2, 1, 0, 1, 0, 2, 1]] = 0.8  # right on rows 0, 1, 2 and 6
expected_loss = float(np.mean(-np.sum(y_true * np.log(y_pred), axis=1)))
try:
    loss = float(model.compute_loss(x=None, y=y_true, y_pred=tf.constant(y_pred)))
except Exception as error:  # noqa: BLE001  (a loss that cannot take one-hot labels and probabilities)
    raise AssertionError(f"the compiled loss fails on one-hot labels and probabilities: {type(error).__name__}: "
                         f"{str(error)[:200]}; compile with categorical cross-entropy") from None
assert abs(loss - expected_loss) < 1e-4 * max(1.0, expected_loss), (
    f"the compiled loss gives {loss:.6f} where categorical cross-entropy on probabilities gives {expected_loss:.6f}: "
    "compile with loss='categorical_crossentropy'")
hard = np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0, 2, 2, 0]]
# (compiled again without metrics, Keras 3 keeps reporting the old ones: look at the new compile's own)
assert (model.get_compile_config() or {}).get("metrics"), "compile with metrics=['accuracy']"
model.reset_metrics()
try:
    results = model.compute_metrics(None, hard, tf.constant(y_pred), None)
except Exception as error:  # noqa: BLE001
    raise AssertionError(f"the compiled metrics fail on one-hot labels and probabilities: {type(error).__name__}: "
                         f"{str(error)[:200]}; compile with metrics=['accuracy']") from None
values = {name: float(np.asarray(value)) for name, value in results.items() if name != "loss" and np.size(value) == 1}
model.reset_metrics()
assert any(abs(value - 4 / 8) < 1e-6 for value in values.values()), (
    f"compile with metrics=['accuracy']: on 8 one-hot labels of which 4 are predicted right, the compiled metrics "
    f"give {values or 'nothing'} instead of an accuracy of 0.5")
snapshot = {layer.name: [np.asarray(w).copy() for w in layer.weights] for layer in base.layers if layer.weights}
head_before, extra_before = np.asarray(head.kernel).copy(), np.asarray(extra.kernel).copy()
model.fit(x, y, batch_size=8, epochs=1, verbose=0)
assert np.array_equal(np.asarray(extra.kernel), extra_before), "a frozen layer outside the base should not be trained"
moved = sorted(name for name, ws in snapshot.items()
               if any(not np.array_equal(np.asarray(w), old) for w, old in zip(base.get_layer(name).weights, ws)))
assert moved == ["block2_conv1"], f"training should update block2 only in the base (compiled again?); it moved {moved}"
assert not np.array_equal(np.asarray(head.kernel), head_before), "training should still update the head"
### END HIDDEN TESTS

# %% [markdown]
# ## 7. When transfer pays: from scratch, frozen base, fine-tuning
# Three ways to learn digits from $n$ labelled examples per class, all with the same
# network shape (the course's three blocks and a `Dense(10)` head), Adam, batches of 32 and
# about the same number of update steps:
#
# * **from scratch**: random weights, everything trained (learning rate 0.001);
# * **frozen base + new head**: the Fashion-MNIST base frozen, features extracted once, the
#   head trained on them (0.001); a fourth column trains the lesson text's large head
#   (1.3 million parameters on 1,024 features) instead;
# * **fine-tuning the top block**: start from the frozen run's head, unfreeze block3 with
#   `setup_fine_tuning` and train block3 and the head with a **ten times lower** rate (0.0001).
#   Blocks 1 and 2 stay frozen here too, so their output is computed once as well, and
#   block3 trains on it: the same result as running the whole network, in about half the time.

# %%
LABELS_PER_CLASS = pick(smoke=(10,), standard=(10, 100, 700))
STEPS = pick(smoke=20, standard=150, full=600)  # about this many updates per run, in whole epochs
CURVES_AT = pick(smoke=10, standard=100)
EAGER = PROFILE == "smoke"  # smoke: a few steps cost less than tracing each model's graph


def epochs_for(n):
    return max(1, round(STEPS / -(-n // 32)))


def images_data(idx):
    return cu.make_loader(x_train[idx], mnist.y_train[idx], 32, shuffle=True, seed=SEED, num_classes=10)


def test_accuracy(model, x):
    return float(np.mean(extract_features(model, x).argmax(1) == mnist.y_test))  # the probabilities, batch by batch


def top_block(weights_from):
    """block3 of a course network as a model of its own, (N, 8, 8, 32) -> (N, 4, 4, 64), same weights."""
    inputs = keras.Input((8, 8, 32))
    x = inputs
    for name in ("block3_conv1", "block3_conv2", "block3_conv3", "block3_pool"):
        layer = weights_from.get_layer(name)
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        clone.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name="block3_model")


pretrained_base = course_base()
lower_blocks = keras.Model(pretrained_base.input, pretrained_base.get_layer("block2_pool").output)
frozen_top = freeze_base(top_block(pretrained_base))
start = time.perf_counter()
needed = labelled(max(LABELS_PER_CLASS))  # the training digits any run uses
maps, features = {}, {}
for part, x in (("train", x_train[needed]), ("val", x_val), ("test", x_test)):
    # blocks 1 and 2 stay frozen in every transfer run, fine-tuning included: their output is computed once
    maps[part] = extract_features(lower_blocks, x).reshape(-1, 8, 8, 32)
    features[part] = extract_features(frozen_top, maps[part])  # the frozen base's 1,024 features
position = np.full(len(x_train), -1)
position[needed] = np.arange(len(needed))  # row of a training digit in features["train"]
print(f"features of {sum(len(f) for f in features.values()):,} digits in {time.perf_counter() - start:.1f} s")

results, curves, models = {}, {}, {}
for per_class in LABELS_PER_CLASS:
    idx = labelled(per_class)
    epochs = epochs_for(len(idx))
    with_curves = per_class == CURVES_AT
    row = {}
    # from scratch
    cu.seed_everything(SEED)
    scratch = compiled(with_head(course_base(weights=None), new_head()), eager=EAGER)
    history = cu.train(scratch, images_data(idx), cu.make_loader(x_val, mnist.y_val, 256, num_classes=10)
                       if with_curves else None, epochs=epochs, verbose=False)
    row["from scratch"] = test_accuracy(scratch, x_test)
    curves.setdefault("from scratch", history)
    # frozen base + new head, on the cached features
    cu.seed_everything(SEED)
    head = compiled(new_head(flat=True), eager=EAGER)
    history = cu.train(head, feature_data(features["train"][position[idx]], mnist.y_train[idx]),
                       feature_data(features["val"], mnist.y_val, False) if with_curves else None,
                       epochs=epochs, verbose=False)
    row["frozen + new head"] = test_accuracy(head, features["test"])
    curves.setdefault("frozen + new head", history)
    # frozen base + the lesson text's large head
    cu.seed_everything(SEED)
    big_head = compiled(build_head((1024,)), eager=EAGER)
    cu.train(big_head, feature_data(features["train"][position[idx]], mnist.y_train[idx]), epochs=epochs, verbose=False)
    row["frozen + large head"] = test_accuracy(big_head, features["test"])
    # fine-tuning block3, starting from the trained head
    cu.seed_everything(SEED)
    tuned_base, tuned_head = freeze_base(top_block(pretrained_base)), new_head()  # on block2's maps
    tuned_head.get_layer("dense").set_weights(head.get_layer("dense").get_weights())
    inputs = keras.Input((8, 8, 32))
    tuned = compiled(keras.Model(inputs, tuned_head(tuned_base(inputs))))
    setup_fine_tuning(tuned, tuned_base, "block3", lr=1e-4)
    history = cu.train(tuned, cu.make_loader(maps["train"][position[idx]], mnist.y_train[idx], 32, shuffle=True,
                                             seed=SEED, num_classes=10),
                       cu.make_loader(maps["val"], mnist.y_val, 256, num_classes=10) if with_curves else None,
                       epochs=epochs, verbose=False)
    row["fine-tuned block3"] = test_accuracy(tuned, maps["test"])
    curves.setdefault("fine-tuned block3", history)
    results[per_class] = row
    models[per_class] = {"scratch": scratch, "tuned": tuned, "tuned_base": tuned_base}
    print(f"{per_class:>4} per class ({len(idx):,} digits, {epochs} epochs): "
          + ", ".join(f"{k} {v:.1%}" for k, v in row.items()))

# %%
columns = list(next(iter(results.values())))
print(f"test accuracy on {len(mnist.y_test):,} digits (TensorFlow)")
print(f"{'labels per class':<18}" + "".join(f"{c:>22}" for c in columns))
for per_class, row in results.items():
    print(f"{per_class:<18}" + "".join(f"{row[c]:>22.1%}" for c in columns))

# %% [markdown]
# Read the table by rows, and compare it with the other framework's notebook (the numbers of
# one run in the `standard` profile on a 2-core CPU: PyTorch, 10 / 100 / 700 per class,
# from scratch 80 / 90 / 92%, frozen + new head 82 / 90 / 91%, fine-tuned 82 / 91 / 93%;
# Keras from scratch 86 / 93 / 96%, frozen 82 / 88 / 90%, fine-tuned 82 / 90 / 92%).
#
# * **The frozen features have a ceiling.** A linear head on Fashion-MNIST features reaches
#   about 80% with only 10 digits per class, and stays near 90% however many labels it gets:
#   features learned on clothes separate digits well, but not perfectly.
# * **Training from scratch keeps improving with more labels**, and overtakes the frozen base
#   somewhere between 10 and 700 per class. *Where* depends on how quickly the plain network
#   learns from scratch: Keras initialises its convolutions with Glorot's rule and trains this
#   network from scratch markedly faster than PyTorch's default initialisation, so in Keras
#   it is ahead already at 10 per class, while in PyTorch it draws level at 100 and leads at 700.
# * **Fine-tuning block3** with a ten times lower rate lifts the ceiling by a few points:
#   the top block adapts to strokes instead of fabric.
# * The lesson text's **large head** (1.3 million parameters) ends within a few points of the
#   single linear layer: with fixed features and this few update steps it neither over-fits
#   badly nor learns much more.
#
# So transfer pays when the labels are few *and* the source task's features suit the target;
# with enough labels, or a source far from the target (clothes against digits), a network
# trained from scratch catches up. ImageNet's photographs of a thousand classes give far more
# general features than our 58,000 clothes, which is why the lesson text's recipe works so
# well on photographs.
#
# The training curves (on the validation digits) at the middle size, and the confusion
# matrix of the fine-tuned network:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in curves.items():
    axes[0].plot(history["loss"], label=name)
    if "val_accuracy" in history:
        axes[1].plot(history["val_accuracy"], label=name)
axes[0].set(title=f"training loss, {CURVES_AT} digits per class", xlabel="epoch")
axes[1].set(title="validation accuracy", xlabel="epoch")
axes[0].legend()
axes[1].legend()
plt.show()
predicted = extract_features(models[CURVES_AT]["tuned"], maps["test"]).argmax(1)
plots.plot_confusion_matrix(mnist.y_test, predicted, class_names=mnist.class_names)
plt.show()

# %% [markdown]
# **What transfer does to the features.** A 2-D projection (the first two principal
# components) of the 1,024 features of test digits, coloured by class: from a randomly
# initialised base, from the base pretrained on clothes (before transfer), and from the
# base fine-tuned on digits (after). The pretrained features already group the classes;
# fine-tuning pulls them further apart.

# %%
def pca_2d(features, iterations=30):
    """The projection on the first two principal components, by power iteration with
    Gram-Schmidt (plain numpy: a full SVD of 1,000 x 1,024 features is slow on a busy CPU)."""
    centred = (features - features.mean(axis=0)).astype(np.float64)
    basis = np.random.default_rng(0).normal(size=(centred.shape[1], 2))
    for _ in range(iterations):
        basis = np.einsum("nd,nk->dk", centred, np.einsum("nd,dk->nk", centred, basis))
        first = basis[:, 0] / np.sqrt(np.sum(basis[:, 0] ** 2))
        second = basis[:, 1] - np.sum(first * basis[:, 1]) * first
        basis = np.stack([first, second / np.sqrt(np.sum(second ** 2))], axis=1)
    return np.einsum("nd,dk->nk", centred, basis)


n_show = min(1000, len(mnist.y_test))
cu.seed_everything(SEED)
panels = [("random base", extract_features(course_base(weights=None), x_test[:n_show])),
          ("pretrained on Fashion-MNIST", features["test"][:n_show]),
          (f"fine-tuned, {CURVES_AT} per class", extract_features(models[CURVES_AT]["tuned_base"], maps["test"][:n_show]))]
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, (title, panel_features) in zip(axes, panels):
    points = pca_2d(panel_features)
    scatter = ax.scatter(points[:, 0], points[:, 1], c=mnist.y_test[:n_show], cmap="tab10", s=5)
    ax.set(title=title, xticks=[], yticks=[])
fig.legend(*scatter.legend_elements(), loc="center right", title="digit")
plt.show()

# %% [markdown]
# ## 8. Why VGG stops near 19 layers: residual connections
# VGG's authors went to 16 and 19 layers; deeper plain stacks trained *worse*, even on the
# training data. Each layer multiplies the gradient by its Jacobian on the way back, so in a
# deep plain stack it shrinks (or grows) geometrically, and the early layers barely learn.
# A **residual block** (He et al., 2015, ResNet) adds its input to its output,
# $y = \mathrm{ReLU}(x + F(x))$: the identity path carries the signal and the gradient
# through unchanged, and the block only has to learn a correction $F$. Networks of 50, 101
# and 152 layers followed. The lesson text names residual connections as a key advance.

# %%
def residual_block(x, channels):
    """y = ReLU(x + conv(ReLU(conv(x)))), 3x3 "same" convolutions, channels unchanged."""
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(channels, 3, padding="same")(y)
    return keras.layers.ReLU()(keras.layers.Add()([x, y]))


def plain_block(x, channels):
    """The same two convolutions without the identity path."""
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    return keras.layers.ReLU()(keras.layers.Conv2D(channels, 3, padding="same")(y))


def deep_stack(block, depth_blocks, channels=8):
    inputs = keras.Input((14, 14, 1))
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(inputs)
    for _ in range(depth_blocks):
        x = block(x, channels)
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))


DEPTH = pick(smoke=3, standard=10)  # blocks of two convolutions: 2 * DEPTH + 2 layers with weights
RES_STEPS = pick(smoke=10, standard=150)
small = mnist.x_train[:, ::2, ::2].astype(np.float32)[..., None] / 255  # 14x14 digits
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_train_step(net, optimizer):
    """One Adam step on a batch; returns the loss and the gradient norm at the first layer."""
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True))
        grads = tape.gradient(loss, net.trainable_weights)
        optimizer.apply_gradients(zip(grads, net.trainable_weights))
        return loss, tf.norm(grads[0])
    return train_step if PROFILE == "smoke" else tf.function(train_step)  # smoke: 10 steps, not worth a trace


for block in (plain_block, residual_block):
    cu.seed_everything(SEED)
    net = deep_stack(block, DEPTH)
    train_step = make_train_step(net, keras.optimizers.Adam(1e-3))
    losses, first_grad = [], None
    for step in range(RES_STEPS):
        batch = np.random.default_rng(step).integers(0, len(small), 32)
        loss, grad_norm = train_step(small[batch], mnist.y_train[batch])
        first_grad = float(grad_norm) if first_grad is None else first_grad
        losses.append(float(loss))
    print(f"{block.__name__:>14}, {2 * DEPTH + 2} layers: gradient norm at the first layer {first_grad:.2e}, "
          f"loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f} after {RES_STEPS} steps")
    plt.plot(losses, label=block.__name__)
plt.gca().set(title=f"two stacks of {2 * DEPTH + 2} layers, 14x14 digits", xlabel="step", ylabel="training loss")
plt.legend()
plt.show()

# %% [markdown]
# The plain stack's first layer gets a gradient several orders of magnitude smaller, and its
# loss stays at chance ($\ln 10 \approx 2.30$); the residual stack of the same depth learns at once.
#
# ## Summary
# * VGG16: five blocks of 3×3 convolutions and 2×2 pooling; 14.7 million parameters in the
#   convolutions, 123.6 million in the original dense classifier. The lesson text's model
#   (frozen base, `Flatten -> 1024 -> 256 -> 10` head) has 40,670,794 parameters, 25,956,106
#   of them trainable.
# * Preprocessing must match the weights: caffe mode (BGR, ImageNet means, 0..255) for
#   Keras' file, mean/std on [0, 1] RGB for torchvision's.
# * Freeze with `trainable = False` and compile again after every change; a frozen batch
#   norm layer keeps its statistics.
# * With a frozen base, extract features once: the same result, many times faster.
# * Transfer pays when labels are few; with many labels, training from scratch catches up.
#   Fine-tune the top block with a lower learning rate once the head has learned.
# * Residual connections let gradients through deep stacks: why networks went past 19 layers.
#
# Next: lesson 04 turns from images to sequences, with recurrent networks.
