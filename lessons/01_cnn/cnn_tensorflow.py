# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 01 · Convolutional neural networks (TensorFlow)
#
# A convolutional neural network (CNN) learns small filters that slide over an image and
# respond to local patterns: edges first, then strokes and shapes built from edges. In this
# lesson you will
#
# 1. compute the size of a convolution's output,
# 2. write a convolution yourself and check it against TensorFlow's,
# 3. apply hand-made edge filters, ReLU and max pooling to a real digit,
# 4. build the lesson's CNN, train it on real MNIST digits and read what it learned.
#
# The PyTorch notebook of this lesson has the same headings, data, seeds and exercises:
# open them side by side to see both frameworks do the same thing.
#
# **Exercises** are marked *Exercise*. Each answer cell holds a function's first line and
# docstring, then `# YOUR CODE HERE` and `raise NotImplementedError()`: replace those two
# lines with your code (keep the function's name and arguments), run the test cell below
# it, and press *Validate* in the toolbar before you submit. The visible tests are a first
# check; the grader runs more, on other inputs.

# %% [markdown]
# ## Set-up
# *Helper cell*: imports, library versions, the run profile and the device. The profile
# (`COURSE_PROFILE` = `smoke`, `standard` or `full`) sets how much data and training the
# notebook uses: `standard` suits a laptop CPU, `full` a GPU. Importing `course_utils.tensorflow`
# first keeps TensorFlow's C++ log quiet.

# %%
import time
import warnings

from course_utils import tensorflow as cu  # before TensorFlow: quiets its C++ log

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow import keras

from course_utils import plots
from course_utils.checks import check_close, check_equal, check_shape, rel_error, to_numpy
from course_utils.data import load_mnist
from course_utils.profiles import current_profile, pick

assert tuple(int(v) for v in tf.__version__.split(".")[:2]) >= (2, 16), "this lesson needs TensorFlow 2.16 or newer"
assert int(keras.__version__.split(".")[0]) >= 3, "this lesson is written for Keras 3"
assert tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 26), "this lesson needs numpy 1.26 or newer"

SEED = 42
cu.seed_everything(SEED)
PROFILE = current_profile()
print(f"profile: {PROFILE}")
print(cu.device_report())

# %% [markdown]
# ## 1. Why convolutions suit images
# A dense layer connects every input pixel to every unit. For a 28×28 image and 128 units
# that is 784 × 128 + 128 = 100,480 weights, and the layer has no idea that neighbouring
# pixels belong together: shift the digit by one pixel and, to the dense layer, it is a
# different input.
#
# A convolutional layer instead learns a few small **filters** (kernels), say 32 filters of
# 3×3, and slides each over the whole image. Three ideas follow:
#
# * **Local connectivity**: each output looks at a small neighbourhood (its *receptive field*).
# * **Weight sharing**: the same filter is used at every position, so the layer has only
#   32 × (3 × 3 × 1) + 32 = 320 parameters, whatever the image size.
# * **Translation equivariance**: shift the input and the feature map shifts with it; a
#   detector for a stroke works wherever the stroke is.
#
# Stacking layers grows the receptive field, so later layers combine edges into strokes
# and strokes into digits: the *hierarchy of features* that makes CNNs work on images.

# %%
dense_params = 28 * 28 * 128 + 128
conv_params = 32 * (3 * 3 * 1) + 32
print(f"dense 784 -> 128: {dense_params:,} parameters; conv 32 filters 3x3: {conv_params:,} parameters")

# %% [markdown]
# ## 2. The data: real handwritten digits
# The course ships 10,000 real MNIST digits (see `datasets/README.md`), split once, stratified
# by class, into 7,000 for training, 1,000 for validation and 2,000 for testing. The `smoke`
# profile uses a slice of each so that the notebook runs in seconds.

# %%
mnist = load_mnist()
sizes = pick(smoke=dict(train=1000, val=200, test=500), standard=None, full=None)
if sizes:
    mnist = mnist.subset(**sizes)
print(mnist)
plots.show_images(mnist.x_train[:20], mnist.y_train[:20], class_names=mnist.class_names)
plt.show()

# %% [markdown]
# ## 3. Convolution, stride, padding and channels
# What deep-learning libraries call *convolution* is, strictly, **cross-correlation**: the
# kernel $w$ slides over the input $x$ without being flipped,
#
# $$ y[i, j] = b + \sum_{u=0}^{k_H-1}\sum_{v=0}^{k_W-1}\sum_{c} x[i s + u,\; j s + v,\; c]\; w[u, v, c]. $$
#
# (The convolution of signal processing flips the kernel first. Since the kernel is
# learned, the network simply learns the flipped one; nothing is lost.)
#
# * **Stride** $s$: how far the kernel moves between outputs. Stride 2 halves the map.
# * **Padding** $p$: zeros added around the border, so that the map need not shrink ("same"
#   padding for a 3×3 kernel at stride 1 is $p = 1$: 28×28 in, 28×28 out). Padding does
#   *not* make border pixels count as much as the rest: with a 3×3 kernel and $p = 1$ on a
#   28×28 image, a corner pixel lies in 4 of the output's windows, any other border pixel
#   in 6 and an interior pixel in 9 (the cell below counts them). Padding only stops the
#   border from being cut away.
# * **Channels**: a colour image has 3 input channels, a feature map has one per filter.
#   Each filter spans *all* input channels and produces *one* output channel; a layer with
#   $F$ filters turns $C$ channels into $F$.
#
# Along each spatial axis an input of size $n$ gives an output of size
#
# $$ n_\text{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$
#
# **"Same" padding with a stride.** Keras layers and `tf.nn.conv2d` take a padding *mode*,
# not a number: `"valid"` (no padding, $p = 0$) or `"same"`, which means an output of
# $\lceil n / s \rceil$ whatever the kernel. `"same"` adds
# $P = \max((n_\text{out} - 1)s + k - n,\ 0)$ zeros in all, $\lfloor P/2 \rfloor$ before
# (top, left) and the rest after (bottom, right), so the padding is *asymmetric* when $P$
# is odd: for $n = 28$, $k = 3$, $s = 2$ the output is 14 and $P = 1$, no zero on top and
# one at the bottom. PyTorch's `padding=1` at stride 2 also gives 14 but puts one zero on
# *each* side, so its windows sit one pixel higher and further left: the same size, other
# numbers (and PyTorch's `padding="same"` refuses a stride). The PyTorch equivalent of
# Keras' "same" here is `F.pad(x, (0, 1, 0, 1))` followed by a convolution without
# padding. This matters when weights are ported from one framework to the other.

# %%
ones = tf.ones((1, 28, 28, 1))
coverage = tf.nn.conv2d(ones, tf.ones((3, 3, 1, 1)), 1, "SAME")[0, :, :, 0]  # windows per pixel
print(f"3x3 windows covering a pixel (28x28, padding 1): corner {coverage[0, 0]:.0f}, "
      f"border {coverage[0, 10]:.0f}, interior {coverage[10, 10]:.0f}")


def same_padding(n, k, s):
    """Keras' padding="same": (output size, zeros before, zeros after) along one axis."""
    n_out = -(-n // s)  # ceil(n / s)
    total = max((n_out - 1) * s + k - n, 0)
    return n_out, total // 2, total - total // 2


for n, k, s in [(28, 3, 1), (28, 3, 2), (27, 3, 2), (28, 4, 1)]:
    n_out, before, after = same_padding(n, k, s)
    print(f"'same', n={n}, k={k}, s={s}: output {n_out}, {before} zero(s) before, {after} after")
x, w = tf.random.normal((1, 28, 28, 1), seed=0), tf.random.normal((3, 3, 1, 1), seed=1)
same = tf.nn.conv2d(x, w, 2, "SAME")
bottom_right = tf.nn.conv2d(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]), w, 2, "VALID")  # 0 before, 1 after
symmetric = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), w, 2, "VALID")     # PyTorch's padding=1
print(f"'same' at stride 2: shape {tuple(same.shape)}; equals padding (0, 1): "
      f"{bool(tf.reduce_all(tf.abs(same - bottom_right) < 1e-5))}; equals padding (1, 1) of shape "
      f"{tuple(symmetric.shape)}: {bool(tf.reduce_all(tf.abs(same - symmetric) < 1e-5))}")
print("Conv2D(32, 3, strides=2, padding='same') on 28x28:",
      tuple(keras.layers.Conv2D(32, 3, strides=2, padding="same")(tf.zeros((1, 28, 28, 1))).shape))

# %% [markdown]
# ### Exercise 1: the output size (2 points)
# Write `conv_output_size(size, kernel_size, stride=1, padding=0)` returning the output
# length along one axis, as an `int` (a Python or numpy integer, not a float such as
# `26.0`). Padding is added on *both* sides: $p$ zeros before and $p$ after.

# %% nbgrader={"grade": false, "grade_id": "conv_output_size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv_output_size(size, kernel_size, stride=1, padding=0):
    """Output length of a convolution (or pooling) along one axis.

    size: input length n; kernel_size: k; stride: s; padding: p zeros on each side.
    """
    ### BEGIN SOLUTION
    return (size + 2 * padding - kernel_size) // stride + 1
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv_output_size_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_equal(conv_output_size(28, 3), 26, name="conv_output_size(28, 3)")
check_equal(conv_output_size(28, 3, padding=1), 28, name="conv_output_size(28, 3, padding=1)")
check_equal(conv_output_size(28, 2, stride=2), 14, name="conv_output_size(28, 2, stride=2)")
### BEGIN HIDDEN TESTS
import numbers
for args, expected in [((7, 3, 2, 0), 3), ((7, 3, 2, 1), 4), ((6, 3, 2, 0), 2), ((32, 5, 1, 2), 32),
                       ((5, 5, 1, 0), 1), ((10, 3, 3, 1), 4), ((224, 7, 2, 3), 112), ((1, 1, 1, 0), 1),
                       ((9, 4, 3, 0), 2), ((13, 2, 2, 0), 6)]:
    result = conv_output_size(*args)
    assert isinstance(result, numbers.Integral) and not isinstance(result, bool), \
        f"conv_output_size{args} should return an int, got {result!r} of type {type(result).__name__}"
    check_equal(int(result), expected, name=f"conv_output_size{args}")
check_equal(conv_output_size(9, 3, padding=2, stride=2), 6, name="conv_output_size(9, 3, padding=2, stride=2) (keywords)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: convolution from scratch (4 points)
# Write `conv2d(x, kernel, bias=None, stride=1, padding=0)` from scratch: with TensorFlow
# tensor operations (slicing, `tf.pad`, arithmetic, `tf.einsum`, `tf.tensordot`,
# `tf.matmul`, `tf.reduce_sum`, `tf.image.extract_patches`, ...) or numpy, but **no
# built-in convolution**: not `tf.nn.conv2d`, `tf.nn.convolution`, the other `tf.nn`
# convolutions (1-D, 3-D, depthwise, separable, atrous, transposed), `tf.raw_ops.Conv2D`,
# `keras.layers.Conv2D` or any other Keras convolution layer, or `keras.ops.conv` and its
# relatives, however you reach them (an alias, an import under another name, a layer made
# elsewhere). The grader reads your function's code, and the code of the helpers it
# calls, for them, and refuses dynamic look-ups (`eval`, `exec`, `getattr`, `importlib`)
# in this answer. Here `padding` is a number of zeros, as in PyTorch, not Keras' mode.
#
# * `x`: (N, H, W, C) input batch (TensorFlow's channels-last layout)
# * `kernel`: (kH, kW, C, F), one kernel per output channel, spanning all input channels
#   (the layout of a Keras `Conv2D` kernel)
# * `bias`: (F,) or `None`
# * `stride` and `padding`: ints, the same along both axes; `padding` zeros on every side
# * returns (N, H_out, W_out, F), with the sizes of Exercise 1
#
# Hint: loop over the kernel's kH × kW offsets, not over pixels. For offset (u, v) the
# input values that meet `kernel[u, v]` form a strided slice of the padded input.

# %% nbgrader={"grade": false, "grade_id": "conv2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv2d(x, kernel, bias=None, stride=1, padding=0):
    """Cross-correlation as in keras.layers.Conv2D. x: (N, H, W, C); kernel: (kH, kW, C, F);
    bias: (F,) or None. Returns (N, H_out, W_out, F)."""
    ### BEGIN SOLUTION
    x = tf.convert_to_tensor(x)
    kernel = tf.convert_to_tensor(kernel, dtype=x.dtype)
    n, h, w, c = x.shape
    kh, kw, c_k, f = kernel.shape
    assert c == c_k, f"x has {c} channels but the kernels expect {c_k}"
    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    out = tf.zeros((n, h_out, w_out, f), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            patch = x[:, u:u + stride * h_out:stride, v:v + stride * w_out:stride, :]
            out += tf.einsum("nhwc,cf->nhwf", patch, kernel[u, v])
    if bias is not None:
        out += tf.reshape(tf.cast(bias, x.dtype), (1, 1, 1, f))
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv2d_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
from course_utils.guards import check_from_scratch

BUILT_IN_CONVOLUTIONS = [tf.nn.conv1d, tf.nn.conv2d, tf.nn.conv3d, tf.nn.convolution, tf.nn.depthwise_conv2d,
                         tf.nn.separable_conv2d, tf.nn.atrous_conv2d, tf.nn.conv2d_transpose, tf.nn.conv_transpose,
                         tf.raw_ops.Conv2D, tf.compat.v1.nn.conv2d, tf.compat.v1.nn.convolution,
                         keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv2DTranspose,
                         keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                         keras.ops.conv, keras.ops.conv_transpose, keras.ops.depthwise_conv, keras.ops.separable_conv]
check_from_scratch(conv2d, BUILT_IN_CONVOLUTIONS, name="conv2d",
                   allowed="Use tensor operations (slicing, tf.pad, einsum, matmul, extract_patches): no built-in convolution.")


def _reference(x, kernel, bias, stride, padding):
    """The built-in convolution after padding zeros on every side (tf.nn.conv2d's "VALID" mode)."""
    padded = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    out = tf.nn.conv2d(padded, kernel, stride, "VALID")
    return out if bias is None else out + bias


rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(2, 7, 7, 3)), tf.float32)
kernel, bias = tf.constant(rng.normal(size=(3, 3, 3, 4)), tf.float32), tf.constant(rng.normal(size=4), tf.float32)
expected = _reference(x, kernel, bias, 1, 0)
out = conv2d(x, kernel, bias)
check_shape(out, (2, 5, 5, 4), name="conv2d(x, kernel, bias)")
check_close(out, expected, rtol=1e-4, atol=1e-5, name="conv2d(x, kernel, bias)")
expected = _reference(x, kernel, bias, 2, 1)
out = conv2d(x, kernel, bias, stride=2, padding=1)  # (7 + 2 - 3) // 2 + 1 = 4
check_shape(out, (2, 4, 4, 4), name="conv2d(x, kernel, bias, stride=2, padding=1)")
check_close(out, expected, rtol=1e-4, atol=1e-5, name="conv2d(x, kernel, bias, stride=2, padding=1)")
### BEGIN HIDDEN TESTS
from tensorflow.python.ops import gen_nn_ops, nn_ops  # noqa: E402  (the functions behind tf.nn)

check_from_scratch(conv2d, BUILT_IN_CONVOLUTIONS + [gen_nn_ops.conv2d, nn_ops.conv2d, nn_ops.conv2d_v2, nn_ops.convolution,
                                                    nn_ops.convolution_v2, tf.nn.conv1d_transpose, tf.nn.conv3d_transpose,
                                                    keras.layers.Conv1DTranspose, keras.layers.Conv3DTranspose,
                                                    keras.layers.SeparableConv1D, keras.layers.DepthwiseConv1D],
                   name="conv2d", allowed="Use tensor operations: no built-in convolution.")
rng = np.random.default_rng(1)
cases = [  # (x shape, kernel shape, stride, padding, with bias)
    ((2, 7, 7, 3), (3, 3, 3, 4), 2, 1, True),     # stride and padding
    ((1, 8, 5, 2), (3, 2, 2, 3), 1, 0, True),     # non-square input and kernel
    ((1, 9, 6, 2), (3, 2, 2, 3), 2, 1, True),     # non-square with stride and padding: H and W apart
    ((2, 6, 11, 2), (2, 4, 2, 2), 3, 2, True),    # wide input, stride 3, padding 2
    ((3, 6, 6, 1), (3, 3, 1, 2), 1, 2, False),    # no bias, padding wider than 1
    ((1, 9, 9, 3), (4, 4, 3, 5), 3, 1, True),     # even kernel, stride 3 (floor in the size)
    ((2, 5, 5, 1), (5, 5, 1, 1), 1, 0, True),     # kernel as large as the input
    ((1, 4, 4, 1), (1, 1, 1, 1), 1, 0, True),     # a 1x1 kernel, one channel, one filter
    ((2, 10, 10, 2), (2, 2, 2, 3), 4, 0, True),   # stride larger than the kernel: pixels skipped
]
for xs, ks, s, p, with_bias in cases:
    x = tf.constant(rng.normal(size=xs), tf.float32)
    kernel = tf.constant(rng.normal(size=ks), tf.float32)
    bias = tf.constant(rng.normal(size=ks[-1]), tf.float32) if with_bias else None
    expected = _reference(x, kernel, bias, s, p)
    got = conv2d(x, kernel, bias, stride=s, padding=p)
    check_close(got, expected, rtol=1e-4, atol=1e-4, name=f"conv2d with x {xs}, kernel {ks}, stride {s}, padding {p}")
x = tf.constant(rng.normal(size=(1, 6, 6, 2)), tf.float32)
kernel, bias = tf.constant(rng.normal(size=(3, 3, 2, 3)), tf.float32), tf.constant(rng.normal(size=3), tf.float32)
check_close(conv2d(x, kernel, bias, 2, 1), _reference(x, kernel, bias, 2, 1), rtol=1e-4, atol=1e-4,
            name="conv2d(x, kernel, bias, 2, 1) with positional stride and padding")
# A single bright pixel and an asymmetric kernel: a flipped kernel shows up here.
x = np.zeros((1, 5, 5, 1), np.float32)
x[0, 2, 2, 0] = 1.0
kernel = tf.reshape(tf.range(9.0), (3, 3, 1, 1))
check_close(conv2d(tf.constant(x), kernel), _reference(tf.constant(x), kernel, None, 1, 0),
            name="conv2d of a single pixel (is the kernel flipped?)")
# A bright border and padding 1: the zeros go on every side, not on one side only.
x = np.zeros((1, 4, 4, 1), np.float32)
x[0, 0, :] = x[0, -1, :] = x[0, :, 0] = x[0, :, -1] = 1.0
check_close(conv2d(tf.constant(x), kernel, padding=1), _reference(tf.constant(x), kernel, None, 1, 1),
            name="conv2d of a bright border, padding 1")
### END HIDDEN TESTS

# %% [markdown]
# Your convolution agrees with TensorFlow's. How much slower is it? TensorFlow's
# convolution calls an optimised kernel (Eigen or oneDNN on a CPU, cuDNN on a GPU); ours
# makes kH × kW passes over the input.

# %%
x = tf.constant(mnist.x_train[:256, :, :, None] / 255.0, tf.float32)
kernel = tf.random.normal((3, 3, 1, 32))
for name, fn in [("ours", lambda: conv2d(x, kernel)), ("tf.nn.conv2d", lambda: tf.nn.conv2d(x, kernel, 1, "VALID"))]:
    start = time.perf_counter()
    for _ in range(5):
        fn()
    print(f"{name:>12}: {(time.perf_counter() - start) / 5 * 1e3:.1f} ms for 256 digits, 32 filters")
print("relative error:", rel_error(conv2d(x, kernel), tf.nn.conv2d(x, kernel, 1, "VALID")))

# %% [markdown]
# ## 4. Edge filters, ReLU and pooling on a real digit
# Before any learning, a hand-made filter shows what a convolution does. The Sobel kernels
# respond to horizontal change (vertical edges) and vertical change (horizontal edges).
# Where the stroke goes from dark to bright the response is positive, where it goes back it
# is negative.
#
# **ReLU**, $\max(0, z)$, keeps the positive responses and zeroes the rest: it is the
# non-linearity that lets stacked layers model more than one linear map would.
#
# **Max pooling** with a 2×2 window and stride 2 keeps the largest value of each window:
# the map halves in each direction, the strongest responses survive, and a small shift of
# the digit barely changes the result.

# %%
sobel_x = tf.constant([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
edge_filters = tf.stack([sobel_x, tf.transpose(sobel_x)], axis=-1)[:, :, None, :]  # (3, 3, 1, 2)
digit = tf.constant(mnist.x_train[:1, :, :, None] / 255.0, tf.float32)  # (1, 28, 28, 1)
edges = conv2d(digit, edge_filters, padding=1)  # (1, 28, 28, 2)
rectified = tf.nn.relu(edges)
pooled = tf.nn.max_pool2d(rectified, ksize=2, strides=2, padding="VALID")  # (1, 14, 14, 2)

panels = [("digit", digit[0, :, :, 0]), ("vertical edges", edges[0, :, :, 0]), ("horizontal edges", edges[0, :, :, 1]),
          ("ReLU(vertical)", rectified[0, :, :, 0]), ("ReLU(horizontal)", rectified[0, :, :, 1]),
          ("max-pooled 2x2", pooled[0, :, :, 0])]
fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6))
for ax, (title, image) in zip(axes, panels):
    image = to_numpy(image)
    bound = np.abs(image).max() or 1.0
    ax.imshow(image, cmap="gray" if title == "digit" else "bwr", vmin=-bound if title != "digit" else 0, vmax=bound)
    ax.set_title(f"{title}\n{image.shape[0]}x{image.shape[1]}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 5. The lesson's CNN
# The network of the lesson text:
#
# | layer | output (TensorFlow: N, H, W, C) | parameters |
# |---|---|---|
# | input | (N, 28, 28, 1) | 0 |
# | Conv2D, 32 filters 3×3, ReLU | (N, 26, 26, 32) | 32·(9·1) + 32 = 320 |
# | MaxPool2D 2×2 | (N, 13, 13, 32) | 0 |
# | Flatten | (N, 5408) | 0 |
# | Dense 128, ReLU | (N, 128) | 5408·128 + 128 = 692,352 |
# | Dense 10, softmax | (N, 10) | 128·10 + 10 = 1,290 |
#
# 693,962 parameters, almost all in the first dense layer. The model ends in a softmax, so
# it outputs probabilities, and is trained with *categorical cross-entropy* on one-hot
# labels. (PyTorch's twin returns raw scores and lets `nn.CrossEntropyLoss` apply the
# softmax: the same model and the same loss.)
#
# Keras 3 declares the input with `keras.Input(shape=(28, 28, 1))`; the lesson text's
# `input_shape=` argument of the first layer still works but is deprecated.

# %% [markdown]
# ### Exercise 3: build the model (3 points)
# Return the network above as a compiled Keras model: a `keras.Sequential` is the
# simplest; a functional model, a `keras.Model` subclass or nested models are just as
# good, and so are separate `ReLU`/`Activation`/`Softmax` layers. Exactly these layers,
# with biases, and nothing else (no dropout, no normalisation, no noise, no regularizer,
# no other activation): `Conv2D` with 32 filters of 3×3 (stride 1, no padding) and ReLU,
# `MaxPool2D` 2×2, `Flatten`, `Dense` 128 with ReLU, `Dense` 10 with softmax. The grader
# runs your model with `training=False` and `training=True`, on small and on large inputs,
# and compares its output with that computation on the model's own weights.
#
# Compile it with
# * the optimizer `keras.optimizers.Adam` itself (`"adam"` or an `Adam(...)` object, any
#   learning rate; not another optimizer, and not a subclass of Adam such as `AdamW`),
# * categorical cross-entropy on probabilities, averaged over the batch (Keras' default):
#   `"categorical_crossentropy"`, `"CategoricalCrossentropy"`,
#   `keras.losses.CategoricalCrossentropy()` or `keras.losses.categorical_crossentropy`
#   all do; not `from_logits=True`, label smoothing, or the sparse loss, which expects
#   integer labels where we give one-hot ones,
# * the accuracy metric on one-hot labels: `"accuracy"`, `"acc"`, `"categorical_accuracy"`
#   or `keras.metrics.CategoricalAccuracy()` (`keras.metrics.Accuracy()` compares the
#   probabilities with the labels for exact equality: not what we want).
#
# The grader checks what these settings compute, whatever their spelling.

# %% nbgrader={"grade": false, "grade_id": "build_cnn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_cnn():
    """The lesson's CNN, compiled: (N, 28, 28, 1) images -> (N, 10) class probabilities."""
    ### BEGIN SOLUTION
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(filters=32, kernel_size=3, activation="relu"),
        keras.layers.MaxPool2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(units=128, activation="relu"),
        keras.layers.Dense(units=10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "build_cnn_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
cu.seed_everything(0)
with warnings.catch_warnings():  # a deprecation warning is not an error
    warnings.simplefilter("ignore")
    model = build_cnn()
check_shape(model(tf.random.uniform((5, 28, 28, 1))), (5, 10), name="the model's output for 5 images")
check_equal(model.count_params(), 693_962, name="the number of parameters")
assert getattr(model, "compiled", False), "compile the model in build_cnn (optimizer, loss and metrics)"
### BEGIN HIDDEN TESTS
assert isinstance(model, keras.Model), "build_cnn should return a Keras model"


def _all_layers(layer):
    """Every layer inside a model, nested models included (their own layers, not the models)."""
    found = []
    for inner in getattr(layer, "layers", []):
        found.extend(_all_layers(inner) if getattr(inner, "layers", None) else [inner])
    return found


layers = _all_layers(model)
convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
denses = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
assert len(convs) == 1, f"the model should have one Conv2D layer, found {len(convs)}"
assert len(denses) == 2, f"the model should have two Dense layers, found {len(denses)}"
conv = convs[0]
check_equal(tuple(conv.kernel.shape), (3, 3, 1, 32), name="the Conv2D kernel's shape")
assert tuple(conv.strides) == (1, 1) and conv.padding == "valid" and tuple(conv.dilation_rate) == (1, 1), \
    "the Conv2D layer should have stride 1, no padding and no dilation"
assert conv.use_bias and all(d.use_bias for d in denses), "every layer should have a bias"
check_equal(tuple(denses[0].kernel.shape), (5408, 128), name="the first Dense kernel's shape")
check_equal(tuple(denses[1].kernel.shape), (128, 10), name="the second Dense kernel's shape")


def _expected_probabilities(x):
    """conv -> ReLU -> max pool 2x2 -> flatten -> Dense -> ReLU -> Dense -> softmax with the model's weights;
    the flatten in Keras' (H, W, C) order and, the same network, in channels-first order."""
    h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x, conv.kernel, 1, "VALID") + conv.bias), 2, 2, "VALID")
    flats = (tf.reshape(h, (len(x), -1)), tf.reshape(tf.transpose(h, (0, 3, 1, 2)), (len(x), -1)))
    return [tf.nn.softmax(tf.nn.relu(flat @ denses[0].kernel + denses[0].bias) @ denses[1].kernel + denses[1].bias)
            for flat in flats]


rng = np.random.default_rng(5)
for w in model.weights:  # random weights, whatever the model's initialisation (a zero last layer would hide a lot)
    w.assign(rng.normal(size=w.shape) / np.sqrt(np.prod(w.shape[:-1])))  # 1 / sqrt(fan-in) for a kernel, 1 for a bias
inputs = {"images in [-0.5, 1.5]": rng.uniform(-0.5, 1.5, size=(4, 28, 28, 1)).astype(np.float32),
          "large inputs (activations far above 6 and below 0)": (rng.normal(size=(4, 28, 28, 1)) * 60).astype(np.float32),
          "a single image": rng.uniform(size=(1, 28, 28, 1)).astype(np.float32)}
for training in (False, True):
    for what, x in inputs.items():
        candidates = _expected_probabilities(x)  # the reference first, then the model on a copy of x
        got = model(x.copy(), training=training)
        check_shape(got, (len(x), 10), name=f"the model's output for {what}")
        errors = [float(np.max(np.abs(np.asarray(got) - np.asarray(e)))) for e in candidates]
        assert min(errors) < 1e-5, (
            f"the model's output for {what} with training={training} differs from conv -> ReLU -> max pool 2x2 -> "
            f"flatten -> Dense -> ReLU -> Dense -> softmax on its own weights (largest difference {min(errors):.3g}): "
            "check the activations, the pooling, and that there is no other layer (dropout, noise)")
assert not model.losses, "the model should add no loss of its own (no regularizer, no activity regularization)"

assert type(model.optimizer) is keras.optimizers.Adam, \
    f"compile the model with the Adam optimizer (keras.optimizers.Adam), not {type(model.optimizer).__name__}"
# The loss: what it computes on soft targets (which also tells cross-entropy from KL divergence).
y_true = rng.dirichlet(np.ones(10), size=6).astype(np.float32)
y_true[:3] = np.eye(10, dtype=np.float32)[[2, 7, 0]]
y_pred = rng.dirichlet(np.ones(10), size=6).astype(np.float32)
y_pred[:3] = 0.01
y_pred[[0, 1, 2], [2, 7, 0]] = 0.91  # confident and right: label smoothing would cost much here
expected_loss = float(np.mean(-np.sum(y_true * np.log(y_pred), axis=1)))
try:
    loss = float(model.compute_loss(x=None, y=y_true, y_pred=tf.constant(y_pred)))
except Exception as error:  # noqa: BLE001  (a loss that cannot take one-hot labels and probabilities)
    raise AssertionError(f"the compiled loss fails on one-hot labels and probabilities: {type(error).__name__}: "
                         f"{str(error)[:200]}; compile with categorical cross-entropy") from None
assert abs(loss - expected_loss) < 1e-4 * max(1.0, expected_loss), (
    f"the compiled loss gives {loss:.6f} where categorical cross-entropy on probabilities, averaged over the batch, "
    f"gives {expected_loss:.6f}: compile with loss='categorical_crossentropy' (not from logits, no label smoothing)")
# The metric: accuracy on one-hot labels, told apart from top-k, binary and exact-match accuracy.
labels = np.arange(8) % 10
y_true = np.eye(10, dtype=np.float32)[labels]
y_pred = np.full((8, 10), 0.02, np.float32)
for row, label in enumerate(labels):
    y_pred[row, (label + (0 if row < 3 else 1)) % 10] = 0.6   # right for 3 of 8 rows, else the true class second
    y_pred[row, label] = max(y_pred[row, label], 0.2)
y_pred /= y_pred.sum(axis=1, keepdims=True)
model.reset_metrics()
try:
    results = model.compute_metrics(None, y_true, tf.constant(y_pred), None)
except Exception as error:  # noqa: BLE001
    raise AssertionError(f"the compiled metrics fail on one-hot labels and probabilities: {type(error).__name__}: "
                         f"{str(error)[:200]}; compile with metrics=['accuracy']") from None
values = {name: float(np.asarray(value)) for name, value in results.items() if name != "loss" and np.size(value) == 1}
model.reset_metrics()
assert any(abs(value - 3 / 8) < 1e-6 for value in values.values()), (
    f"compile the model with metrics=['accuracy']: on 8 one-hot labels of which 3 are predicted right, the compiled "
    f"metrics give {values or 'nothing'} instead of an accuracy of 0.375")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Training
# Adam with its default learning rate 0.001, categorical cross-entropy, batches of 32
# (Keras' default), and a held-out validation set to watch for over-fitting.
#
# Three additions of ours, not of the lesson text, because we train on 7,000 digits rather
# than MNIST's usual 60,000 and want every last fraction of a percent:
#
# * each training batch is **augmented** with small random rotations, shifts and zooms:
#   new digits for free (the validation and test digits are left alone);
# * **label smoothing** 0.1: the target puts 0.91 on the true class and 0.01 on each other,
#   so the model is not pushed towards ever more confident, over-fitted answers;
# * the **learning rate decays** by 10% per epoch so that the last epochs settle.
#
# The model is exactly the lesson's; each addition is one line to remove if you want to
# see what it buys. (With label smoothing the loss cannot fall to zero: even a perfect
# model pays for the 0.01s it is asked to give the wrong classes, so watch the accuracy.)
#
# **Where this notebook departs from the lesson text's code.** The lesson text trains with
# `model.fit(X_train, y_train, validation_data=(X_test, y_test), epochs=10)`. We change two
# things. *Epochs*: `EPOCHS` comes from the profile (1 in `smoke`, so that grading takes
# seconds; 20 in `standard`; 30 in `full`), because an epoch of our 7,000 augmented digits
# is about a ninth of an epoch of MNIST's 60,000, so the model needs more of them.
# *Validation*: we watch a separate validation split (the 1,000 digits of section 2) and
# touch the test set once, at the end. Validating on the test set, as the lesson text does,
# lets the test digits steer our choices (when to stop, which settings to keep), and the
# test accuracy then overestimates how the model does on digits it has never seen. (We
# also compile the model again here, with label smoothing, after the exercise's plain
# compile.)

# %%
EPOCHS = pick(smoke=1, standard=20, full=30)
cu.seed_everything(SEED)
model = build_cnn()
train_data = cu.make_loader(mnist.x_train, mnist.y_train, batch_size=32, shuffle=True, seed=SEED,
                            augment=cu.random_affine(degrees=10, shift=0.1, scale=0.1), num_classes=10)
val_data = cu.make_loader(mnist.x_val, mnist.y_val, batch_size=256, num_classes=10)
test_data = cu.make_loader(mnist.x_test, mnist.y_test, batch_size=256, num_classes=10)
model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
              loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
decay = keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.9 ** epoch)
history = cu.train(model, train_data, val_data, epochs=EPOCHS, callbacks=[decay])
print(f"{np.mean(history['epoch_time']):.1f} s per epoch on {cu.get_device()}")

# %%
plots.plot_history(history)
plt.show()
test_metrics = cu.evaluate(model, test_data)
print(f"test accuracy: {test_metrics['accuracy']:.2%} on {len(mnist.y_test)} digits (test loss {test_metrics['loss']:.4f})")

# %% [markdown]
# ## 7. Predictions and mistakes
# The model gives 10 probabilities per image; the predicted class is the index of the
# largest. Predict with `training=False` (what `model.predict` and `model(x)` do by
# default): layers such as dropout and batch normalisation (lesson 02) behave differently
# in training and at inference.

# %% [markdown]
# ### Exercise 4: predicted classes (2 points)
# Write `predict_classes(model, images)` returning the predicted class of each image as a
# numpy array (`np.ndarray`, not a tensor) of integers (an integer dtype, not floats),
# shape (N,), also for a single image (N = 1). `images` is a float array (N, 28, 28, 1);
# predict in inference mode.

# %% nbgrader={"grade": false, "grade_id": "predict_classes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def predict_classes(model, images):
    """Predicted class per image: images (N, H, W, 1) float -> numpy int (N,)."""
    ### BEGIN SOLUTION
    probabilities = model(images, training=False)
    return np.argmax(np.asarray(probabilities), axis=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "predict_classes_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
def FixedScores(scores):
    """A stand-in model: image i of numbered_images gets the scores of row i (its one lit pixel
    picks that row of the dense layer's kernel; the large bias makes rescaled images score otherwise)."""
    scores = np.asarray(scores, np.float32)
    classes = scores.shape[1]
    bias = np.linspace(-30.0, 30.0, classes, dtype=np.float32)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(classes)])
    kernel = np.zeros((28 * 28, classes), np.float32)
    kernel[:len(scores)] = scores - bias
    model.layers[-1].kernel.assign(kernel)
    model.layers[-1].bias.assign(bias)
    return model

def numbered_images(n):
    """n blank images, image i with a 1 at pixel (0, i) of its first row."""
    images = np.zeros((n, 28, 28, 1), np.float32)
    images[np.arange(n), 0, np.arange(n), 0] = 1.0
    return images

scores = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0], [-2.0, -3.0, -1.0]])
predicted = predict_classes(FixedScores(scores), numbered_images(3))
assert isinstance(predicted, np.ndarray), f"predict_classes should return a numpy array, not {type(predicted).__name__}"
assert np.issubdtype(predicted.dtype, np.integer), f"predict_classes should return integers, not {predicted.dtype}"
check_equal(predicted, np.array([1, 0, 2]), name="predict_classes")
### BEGIN HIDDEN TESTS
scores = np.random.default_rng(3).normal(size=(10, 10)) * 3  # square: the class axis cannot be told by shape
predicted = predict_classes(FixedScores(scores), numbered_images(10))
assert isinstance(predicted, np.ndarray) and np.issubdtype(predicted.dtype, np.integer), \
    f"predict_classes should return a numpy array of integers, not {type(predicted).__name__} {predicted.dtype}"
check_shape(predicted, (10,), name="predict_classes for 10 images")
check_equal(predicted.astype(np.int64), scores.argmax(axis=1), name="predict_classes for 10 images")
single = predict_classes(FixedScores(scores[4:5]), numbered_images(1))
assert isinstance(single, np.ndarray) and np.issubdtype(single.dtype, np.integer), \
    "predict_classes should return a numpy array of integers for one image too"
check_equal(single.astype(np.int64), scores[4:5].argmax(axis=1), name="predict_classes for a single image")
# A model with dropout: predictions must come from inference mode and be repeatable.
cu.seed_everything(3)
dropout_model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10),
                                  keras.layers.Dropout(0.5)])
dropout_model.layers[1].bias.assign(np.random.default_rng(5).normal(size=10) * 0.5)  # rescaled images score otherwise
images = np.random.default_rng(4).uniform(size=(64, 28, 28, 1)).astype(np.float32)
expected = np.argmax(np.asarray(dropout_model(images, training=False)), axis=1)
check_equal(np.asarray(predict_classes(dropout_model, images)).astype(np.int64), expected,
            name="predict_classes on a model with dropout (is it predicting with training=False?)")
### END HIDDEN TESTS

# %%
test_images = cu.to_tensor_images(mnist.x_test)
predicted = np.concatenate([predict_classes(model, test_images[i:i + 512]) for i in range(0, len(test_images), 512)])
print(f"test accuracy from predict_classes: {np.mean(predicted == mnist.y_test):.2%}")
plots.plot_confusion_matrix(mnist.y_test, predicted, class_names=mnist.class_names)
plt.show()
plots.show_misclassified(mnist.x_test, mnist.y_test, predicted, class_names=mnist.class_names, n=20)
plt.show()

# %% [markdown]
# Read the confusion matrix by rows: row *i* spreads the test digits of class *i* over the
# predicted classes, so the off-diagonal cells show which digits the model mixes up. Many
# misclassified digits are ones a person would hesitate over too; some are plain mistakes
# that more data or a deeper network would fix.
#
# ## 8. What the network learned
# The first layer's 32 filters, each 3×3. Many look like the edge detectors of section 4:
# dark on one side, bright on the other, at various angles.

# %%
first_conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
plots.plot_filters(cu.conv_filters(first_conv), title="the 32 learned 3x3 filters (blue negative, red positive)")
plt.show()

# %% [markdown]
# ### Exercise 5: feature maps (2 points)
# Write `first_conv_feature_maps(model, images)`: the output of the model's first `Conv2D`
# layer, after its ReLU (our `Conv2D` applies the ReLU itself), shape (N, 26, 26, 32) for
# our model, as the model computes it when it runs on `images`. The layer's input is
# whatever the model feeds it: a model may rescale or normalise the images first, so
# applying the layer to the raw images is not the same. Find the first `Conv2D` among
# `model.layers` rather than assuming it is `model.layers[0]`, and read its output during
# a forward pass (`cu.feature_maps(model, layer, images)` does it with a probe model from
# the model's input to the layer's output).

# %% nbgrader={"grade": false, "grade_id": "first_conv_feature_maps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def first_conv_feature_maps(model, images):
    """Output of the first Conv2D layer: images (N, H, W, C) float -> (N, H_out, W_out, F)."""
    ### BEGIN SOLUTION
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    return cu.feature_maps(model, conv, images)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "first_conv_feature_maps_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
cu.seed_everything(0)
reference = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.MaxPool2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
images = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
maps = first_conv_feature_maps(reference, images)
check_shape(maps, (3, 26, 26, 32), name="first_conv_feature_maps")
### BEGIN HIDDEN TESTS
conv = reference.layers[0]
expected = tf.nn.relu(tf.nn.conv2d(images, conv.kernel, 1, "VALID") + conv.bias)
check_close(maps, expected, rtol=1e-4, atol=1e-5, name="first_conv_feature_maps (after the ReLU, before pooling)")
# A functional model whose first layer is not the convolution, with two convolutions.
inputs = keras.Input((28, 28, 1))
h = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)
h = keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="conv_a")(h)
h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(h)
net = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(h)))
conv_a = net.get_layer("conv_a")
expected = tf.nn.relu(tf.nn.conv2d(images * 2.0 - 1.0, conv_a.kernel, 1, "SAME") + conv_a.bias)
check_close(first_conv_feature_maps(net, images), expected, rtol=1e-4, atol=1e-5,
            name="first_conv_feature_maps of a functional model with two convolutions")
### END HIDDEN TESTS

# %%
digit_index = int(np.flatnonzero(mnist.y_test == 7)[0])
digit = cu.to_tensor_images(mnist.x_test[digit_index:digit_index + 1])
plots.show_images(mnist.x_test[digit_index:digit_index + 1], mnist.y_test[digit_index:digit_index + 1], ncols=1)
plt.show()
plots.plot_feature_maps(to_numpy(first_conv_feature_maps(model, digit))[0], channels_last=True,
                        title="the 32 feature maps of one digit after conv + ReLU")
plt.show()

# %% [markdown]
# Each map lights up where its filter's pattern occurs: some trace the left edges of the
# strokes, some the right, some the top or the ends. The next layers read these maps, not
# the pixels.
#
# ## Summary
# * A convolution slides small shared filters over the image (cross-correlation, no flip);
#   its output size is $\lfloor (n + 2p - k)/s \rfloor + 1$ per axis.
# * ReLU keeps positive responses; max pooling halves the maps and keeps the strongest.
# * The lesson's CNN has 693,962 parameters, 99.8% of them in the dense layer after the
#   flatten, which is why later architectures pool harder or end with global pooling
#   (lesson 02).
# * Keras' softmax + categorical cross-entropy is PyTorch's logits + `nn.CrossEntropyLoss`.
#
# Next: lesson 02 compares max, average, Lp, stochastic and global pooling, and adds
# dropout and batch normalisation.
