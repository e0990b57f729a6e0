# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 02 · Pooling, dropout and batch normalisation (TensorFlow)
#
# Lesson 01's CNN had one convolution, one max pooling and a dense layer holding 99.8% of
# its parameters. This lesson looks at the layers that sit between convolutions and make
# deeper networks small, robust and trainable:
#
# 1. max and average pooling, forward and backward, written by you;
# 2. Lp pooling and stochastic pooling as layers of your own;
# 3. global pooling, and what it does to the parameter count;
# 4. dropout and batch normalisation from scratch, checked against Keras' layers, and
#    batch normalisation's backward pass by hand;
# 5. an experiment on Fashion-MNIST that measures what each choice buys.
#
# The PyTorch notebook of this lesson has the same headings, data, seeds and exercises.
# In each answer cell, replace the two lines `# YOUR CODE HERE` and
# `raise NotImplementedError()` with your code, run the test cell below it, and press
# *Validate* before you submit. Each exercise says what you may use. "From scratch" means
# with tensor operations: the tests read your answer's code (and the helpers it calls) for
# the built-in it replaces, so an alias or a wrapper does not hide it.

# %% [markdown]
# ## Set-up
# *Helper cell*: imports, versions, profile and device.

# %%

from course_utils import tensorflow as cu  # before TensorFlow: quiets its C++ log

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow import keras

from course_utils import plots
from course_utils.checks import check_close, check_equal, check_shape, numerical_gradient, rel_error, to_numpy
from course_utils.data import load_fashion_mnist
from course_utils.guards import check_from_scratch
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
# ## 1. Why pool?
# A pooling layer summarises each small window of a feature map by one number: its maximum,
# its average, or something in between. With 2×2 windows and stride 2 it
#
# * **shrinks the maps** fourfold, so later layers cost a quarter as much;
# * makes the features **tolerant of small shifts**: a stroke that moves by one pixel mostly
#   stays in the same window, so the pooled value barely changes (*local translation
#   invariance*);
# * **grows the receptive field** of the layers after it, which then see more of the image;
# * has **no parameters**, and cuts the parameters of any dense layer that follows.
#
# The last point is easiest to see in numbers. Below, the same two-convolution network gets
# two different heads: flattening the 32 maps of 7×7 into a dense layer, or **global average
# pooling** (one average per map) followed by the classifier.

# %%
def conv_stack(pool_layer=lambda: keras.layers.MaxPool2D(2), batchnorm=False):
    """Two conv blocks as a list of layers: (N, 28, 28, 1) -> (N, 7, 7, 32)."""
    layers = []
    for filters in (16, 32):
        layers += [keras.layers.Conv2D(filters, 3, padding="same")]
        # momentum 0.9 and epsilon 1e-5 are PyTorch's defaults: see the note in section 10
        layers += [keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)] if batchnorm else []
        layers += [keras.layers.ReLU(), pool_layer()]
    return layers


flatten_head = keras.Sequential([keras.Input((28, 28, 1)), *conv_stack(), keras.layers.Flatten(),
                                 keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
gap_head = keras.Sequential([keras.Input((28, 28, 1)), *conv_stack(), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(10)])
print(f"flatten + dense head: {cu.count_params(flatten_head):,} parameters")
print(f"global average head:  {cu.count_params(gap_head):,} parameters")

# %% [markdown]
# The convolutions hold 4,800 parameters in both; the flatten head adds 202,122 more, the
# global-average head 330. Whether the smaller model is as accurate is what section 10
# measures.
#
# ## 2. The data: Fashion-MNIST
# Ten classes of clothing photographed at 28×28 in grey: harder than digits, since a shirt, a
# pullover and a coat share their outline. The course ships the 10,000 test images and a
# stratified 12,000 of the training images; with Debian's `dataset-fashion-mnist` installed
# the loader uses all 60,000.

# %%
fashion = load_fashion_mnist()
sizes = pick(smoke=dict(train=512, val=256, test=512), standard=dict(train=6_000, val=1_000, test=5_000), full=None)
if sizes:
    fashion = fashion.subset(**sizes)
print(fashion)
plots.show_images(fashion.x_train[:20], fashion.y_train[:20], class_names=fashion.class_names)
plt.show()

# %% [markdown]
# ## 3. Max and average pooling from scratch
# A pooling layer slides a window of `size`×`size` with a stride (by default the window
# size, so windows do not overlap) over each channel separately. With padding $p$ the map is
# first extended by $p$ cells on each side, and the output size follows lesson 01's
# formula $\lfloor (n + 2p - k)/s \rfloor + 1$.
#
# Padding needs care. For **max** pooling the added cells must never win, so they count as
# $-\infty$ (zero would beat every negative value). For **average** pooling we divide each
# window's sum by the number of *real* cells in it, not by `size`², so the borders are not
# darkened by zeros that were never there. That is what Keras' `AveragePooling2D(padding="same")`
# does, but **not PyTorch's default**: `F.avg_pool2d` and `nn.AvgPool2d` count the padded
# zeros (`count_include_pad=True`) unless given `count_include_pad=False`.

# %% [markdown]
# ### Exercise 1: `pool2d` (3 points)
# Write `pool2d(x, size, stride=None, padding=0, mode="max")` for `mode` `"max"` or `"avg"`,
# with tensor operations (slicing, `tf.pad`, `tf.stack`, `tf.reduce_max`, `tf.reduce_sum`,
# `tf.image.extract_patches`, ...). Not allowed: any pooling function or layer of TensorFlow
# or Keras (`tf.nn.max_pool2d`, `tf.nn.avg_pool2d`, `tf.nn.pool`, `keras.ops.max_pool`,
# `keras.layers.MaxPool2D`, ...).
#
# * `x`: (N, H, W, C); returns (N, H_out, W_out, C)
# * `stride=None` means `stride = size`
# * max: padded cells are $-\infty$; avg: padded cells are not counted

# %% nbgrader={"grade": false, "grade_id": "pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pool2d(x, size, stride=None, padding=0, mode="max"):
    """Max or average pooling per channel. x: (N, H, W, C) -> (N, H_out, W_out, C)."""
    ### BEGIN SOLUTION
    if mode not in ("max", "avg"):
        raise ValueError(f"mode should be 'max' or 'avg', not {mode!r}")
    stride = stride or size
    x = tf.convert_to_tensor(x)
    _, h, w, _ = x.shape
    h_out = (h + 2 * padding - size) // stride + 1
    w_out = (w + 2 * padding - size) // stride + 1
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    fill = float("-inf") if mode == "max" else 0.0
    xp = tf.pad(x, pads, constant_values=fill)
    real = tf.pad(tf.ones((1, h, w, 1), x.dtype), pads)

    def windows(t):  # (size*size, ..., h_out, w_out, ...): every offset of the window
        return tf.stack([t[:, u:u + stride * h_out:stride, v:v + stride * w_out:stride, :]
                         for u in range(size) for v in range(size)])

    if mode == "max":
        return tf.reduce_max(windows(xp), axis=0)
    return tf.reduce_sum(windows(xp), axis=0) / tf.reduce_sum(windows(real), axis=0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pool2d_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_builtin_pooling = [tf.raw_ops, tf.compat] + [getattr(m, k) for m in (tf.nn, keras.layers, keras.ops) for k in dir(m)
                                              if "pool" in k.lower() and callable(getattr(m, k))]
check_from_scratch(pool2d, _builtin_pooling, name="pool2d",
                   allowed="Use tensor operations (slicing, tf.pad, tf.stack, tf.reduce_max), no pooling function or layer.")
x = tf.reshape(tf.range(16.0), (1, 4, 4, 1))
check_equal(pool2d(x, 2), np.array([5.0, 7.0, 13.0, 15.0]).reshape(1, 2, 2, 1), name="pool2d(x, 2) (max)")
check_close(pool2d(x, 2, mode="avg"), np.array([2.5, 4.5, 10.5, 12.5]).reshape(1, 2, 2, 1), name="pool2d(x, 2, mode='avg')")
### BEGIN HIDDEN TESTS
def _reference_pool(x, size, stride, padding, mode):
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    if mode == "max":
        return tf.nn.max_pool2d(tf.pad(x, pads, constant_values=float("-inf")), size, stride, "VALID")
    total = tf.nn.avg_pool2d(tf.pad(x, pads), size, stride, "VALID")
    count = tf.nn.avg_pool2d(tf.pad(tf.ones_like(x), pads), size, stride, "VALID")
    return total / count

rng = np.random.default_rng(0)
for shape, size, stride, padding in [((2, 6, 6, 3), 2, None, 0), ((1, 7, 5, 2), 3, 2, 1), ((2, 8, 8, 1), 3, 1, 1),
                                     ((1, 5, 5, 2), 2, 2, 1), ((1, 9, 7, 1), 4, 3, 2)]:
    x = tf.constant(rng.normal(size=shape), tf.float32)  # negative values too: zero padding would win a max
    for mode in ("max", "avg"):
        check_close(pool2d(x, size, stride, padding, mode=mode), _reference_pool(x, size, stride or size, padding, mode),
                    rtol=1e-5, atol=1e-6,
                    name=f"{mode} pool2d of {shape}, size {size}, stride {stride}, padding {padding} (padding not counted)")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Max pooling backward
# Max pooling passes on one value per window, so in the backward pass the upstream gradient
# of each output goes to the single input that was the maximum (its *arg-max*) and every
# other input of the window gets zero. Two details decide whether an implementation is right:
#
# * **ties**: when several cells share the maximum, only one of them was passed on, so only
#   one receives the gradient (here: the first in row-major order);
# * **overlapping windows** (stride < size): one input can be the maximum of several windows,
#   and its gradients from each of them add up.

# %% [markdown]
# ### Exercise 2: `max_pool2d_backward` (3 points)
# Write `max_pool2d_backward(dout, x, size, stride=None)` returning `dx`, the gradient of the
# loss with respect to `x`, for max pooling without padding.
#
# * `x`: (N, H, W, C), the forward input; `dout`: (N, H_out, W_out, C), the upstream gradient
# * each window's gradient goes to the first maximum in row-major order (the first cell of
#   the window's top row that holds the maximum, else of the next row, ...); overlapping
#   windows accumulate
# * by hand, with tensor operations (`tf.reduce_max`, `tf.argmax`, `tf.cumsum`, `tf.pad`,
#   `tf.tensor_scatter_nd_add`, loops over the windows, ...). Not allowed: automatic
#   differentiation (`tf.GradientTape`, `tf.gradients`, `tf.autodiff`), `numerical_gradient`,
#   and TensorFlow's and Keras' pooling functions and layers.

# %% nbgrader={"grade": false, "grade_id": "max_pool2d_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool2d_backward(dout, x, size, stride=None):
    """Gradient of max pooling. dout: (N, H_out, W_out, C), x: (N, H, W, C) -> dx: (N, H, W, C)."""
    ### BEGIN SOLUTION
    stride = stride or size
    x, dout = tf.convert_to_tensor(x), tf.convert_to_tensor(dout, dtype=x.dtype)
    n, h, w, c = x.shape
    _, h_out, w_out, _ = dout.shape
    dx = tf.zeros_like(x)
    for i in range(h_out):
        for j in range(w_out):
            top, left = i * stride, j * stride
            window = tf.reshape(x[:, top:top + size, left:left + size, :], (n, size * size, c))
            is_max = tf.cast(window == tf.reduce_max(window, axis=1, keepdims=True), x.dtype)
            first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)  # only the first tied maximum
            grad = tf.reshape(first_max * dout[:, i:i + 1, j, :], (n, size, size, c))
            dx += tf.pad(grad, [[0, 0], [top, h - top - size], [left, w - left - size], [0, 0]])
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "max_pool2d_backward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_autodiff = [tf.GradientTape, tf.gradients, tf.autodiff, tf.custom_gradient, tf.recompute_grad, tf.test,
             tf.compat.v1.gradients, numerical_gradient, tf.raw_ops, tf.compat]
_builtin_pooling = [getattr(m, k) for m in (tf.nn, keras.layers, keras.ops) for k in dir(m)
                    if "pool" in k.lower() and callable(getattr(m, k))]
check_from_scratch(max_pool2d_backward, _autodiff + _builtin_pooling, name="max_pool2d_backward",
                   allowed="Route each window's gradient by hand with tensor operations (reduce_max, cumsum, pad).")
def _image(rows):  # one (H, W) map as a (1, H, W, 1) float32 tensor
    return tf.constant(np.array(rows, np.float32)[None, :, :, None])

x = _image([[1.0, 6.0, 2.0, 0.0], [5.0, 3.0, 7.0, 4.0], [9.0, 8.0, 0.0, 1.0], [2.0, 4.0, 3.0, 5.0]])
dx = max_pool2d_backward(_image([[10.0, 20.0], [30.0, 40.0]]), x, 2)
check_shape(dx, (1, 4, 4, 1), name="max_pool2d_backward(dout, x, 2)")
check_equal(dx, _image([[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0], [30.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 40.0]]),
            name="max_pool2d_backward(dout, x, 2): each window's gradient on its maximum (6, 7, 9, 5)")
x = _image([[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 8.0]])  # 9 is the maximum of all four windows
check_equal(max_pool2d_backward(_image([[1.0, 2.0], [3.0, 4.0]]), x, 2, stride=1),
            _image([[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]]),
            name="max_pool2d_backward with size 2, stride 1 (overlapping windows add up at the shared maximum)")
### BEGIN HIDDEN TESTS
def _autograd_max_pool_grad(x, dout, size, stride=None):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = tf.nn.max_pool2d(x, size, stride or size, "VALID")
    return tape.gradient(out, x, output_gradients=dout)

rng = np.random.default_rng(1)
for shape, size, stride, dtype in [((1, 7, 7, 2), 3, 2, tf.float64), ((2, 5, 6, 1), 2, 1, tf.float64),
                                   ((1, 6, 6, 1), 3, 3, tf.float64), ((1, 5, 5, 1), 2, None, tf.float64),
                                   ((2, 6, 4, 3), 2, None, tf.float32), ((1, 8, 5, 2), 4, 2, tf.float32)]:
    x = tf.constant(rng.normal(size=shape), dtype)
    out_shape = tf.nn.max_pool2d(x, size, stride or size, "VALID").shape
    dout = tf.constant(rng.normal(size=out_shape), dtype)
    check_close(max_pool2d_backward(dout, x, size, stride), _autograd_max_pool_grad(x, dout, size, stride),
                name=f"max_pool2d_backward for x {shape}, size {size}, stride {stride} (overlapping windows add up)")
# Ties: the gradient goes to the FIRST maximum in row-major order, never to a later one or to several.
a = np.array([[1.0, 3.0, 0.0, 2.0], [3.0, 0.0, 2.0, 2.0], [5.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]], np.float32)
x = tf.constant(np.stack([a, a[:, ::-1]], axis=-1)[None])  # (1, 4, 4, 2): the second channel mirrored left-right
dout = tf.constant(np.tile(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[None, :, :, None], (1, 1, 1, 2)))
expected = np.stack([[[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
                     [[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]], axis=-1)
check_equal(max_pool2d_backward(dout, x, 2), expected[None].astype(np.float32),
            name="max_pool2d_backward with tied maxima (the first in row-major order gets the gradient)")
x = _image([[0.0, 1.0, 4.0, 0.0], [4.0, 2.0, 3.0, 4.0], [1.0, 4.0, 0.0, 4.0]])  # one 3x3 window, ties
check_equal(max_pool2d_backward(_image([[5.0]]), x, 3), _image([[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]),
            name="max_pool2d_backward of a 3x3 window whose maximum 4 appears three times (the last column is dropped)")
x = _image([[2.0, 2.0, 1.0], [2.0, 2.0, 1.0], [0.0, 0.0, 0.0]])  # overlapping windows with ties
check_equal(max_pool2d_backward(_image([[1.0, 2.0], [3.0, 4.0]]), x, 2, 1), _image([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]),
            name="max_pool2d_backward with size 2, stride 1 and tied maxima")
### END HIDDEN TESTS

# %% [markdown]
# A **numerical gradient check** confirms the derivation independently of any framework:
# nudge each input by $\pm \epsilon$, see how $L = \sum_{ij} \text{dout}_{ij} \cdot \text{out}_{ij}$
# changes, and compare the slope $\big(L(x + \epsilon) - L(x - \epsilon)\big) / 2\epsilon$ with
# `dx`. `numerical_gradient(f, x)` from `course_utils.checks` does this for every entry of
# `x` in float64, for any `f` that maps an array of `x`'s shape to a number. Without ties
# the two agree to about $10^{-9}$ or better.

# %%
rng = np.random.default_rng(2)
x = rng.normal(size=(1, 6, 6, 2))
dout = rng.normal(size=(1, 2, 2, 2))
# tf.constant keeps float64: TensorFlow may turn a numpy float64 argument of tf.nn.max_pool2d into float32
loss = lambda t: float(tf.reduce_sum(tf.nn.max_pool2d(tf.constant(t), 3, 3, "VALID") * dout))  # noqa: E731
numeric = numerical_gradient(loss, x)
analytic = max_pool2d_backward(tf.constant(dout), tf.constant(x), 3)
print(f"relative error, analytic vs numerical gradient: {rel_error(analytic, numeric):.2e}")

# %% [markdown]
# ## 5. Lp pooling
# Lp pooling takes the $p$-norm of each window,
# $$ y = \Big(\sum_{i \in \text{window}} x_i^{\,p}\Big)^{1/p}, $$
# for non-negative inputs (they follow a ReLU). $p = 1$ gives the window's **sum** (average
# pooling times the window size); as $p$ grows, the largest value dominates and $y$ tends to
# the **maximum**. $p = 2$ (the root of the sum of squares) was used in early CNNs and in
# models of complex cells in the visual cortex. PyTorch has it as `nn.LPPool2d`; Keras has no
# such layer, so we write one.
#
# The literature has more than one Lp pooling. This lesson uses the **sum form** above,
# PyTorch's. The **mean form** $\big(\frac{1}{k}\sum_i x_i^{\,p}\big)^{1/p}$ over the $k$
# cells (a power mean) runs from the *average* at $p = 1$ to the maximum; the
# **Gaussian-weighted form** $\big(\sum_i w_i x_i^{\,p}\big)^{1/p}$ weights the cells near
# the window's centre more (Sermanet et al., 2012). They differ by a factor: on a window
# of $k$ equal values $a$, the sum form gives $k^{1/p} a$, so a 2×2 L2 pooling **doubles**
# a flat map (L3: ×1.59) where max and average pooling keep $a$. The experiment in section
# 10 compares poolings in one network, so its L2 and L3 rows also feed larger activations to
# the layers after them.

# %% [markdown]
# ### Exercise 3: an `LpPool2D` layer (2 points)
# Complete the Keras layer: `call` returns the sum-form $p$-norm of each `size`×`size` window
# with the given stride (default: `size`), no padding, for non-negative `x` of shape
# (N, H, W, C) and any $p \ge 1$. You may use any tensor operation, `tf.nn.avg_pool2d` and
# `tf.nn.max_pool2d` included (TensorFlow has no Lp pooling to forbid). The batch size may
# be unknown while Keras traces the layer.
#
# Two numerical traps, both tested:
#
# * **large $p$**: $x^p$ underflows. In float32, $0.1^{64} = 10^{-64}$ is below the smallest
#   number (about $10^{-45}$), so a window of 0.1's would come out 0. Scale by the
#   window's maximum $m$: $y = m \big(\sum_i (x_i/m)^p\big)^{1/p}$, where the sum lies
#   between 1 and the number of cells. Stacking the `size`² strided slices
#   `x[:, u:u + stride * H_out:stride, v:v + stride * W_out:stride, :]` (one per offset
#   `u, v` in the window) gives every window.
# * **windows of zeros** (common after a ReLU): $m = 0$, and the derivative of $s^{1/p}$
#   at $s = 0$ is infinite, which turns the gradients into NaN. Return 0 there with a
#   gradient of 0: replace $m$ and the sum by 1 in those windows before dividing and taking
#   the root (`tf.where(m > 0, m, 1)`), and select the output with
#   `tf.where(m > 0, ..., 0)`. A tiny floor instead (`tf.maximum(s, 1e-30)` before the
#   root) is not exact: with $p = 64$ the window 0.3, 0.2, 0.1, 0.05 would give 0.34
#   instead of 0.30.

# %% nbgrader={"grade": false, "grade_id": "lp_pool", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LpPool2D(keras.layers.Layer):
    """Lp pooling: (N, H, W, C) -> (N, H_out, W_out, C), y = (sum of x^p over the window)^(1/p)."""

    def __init__(self, p, size, stride=None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.size, self.stride = float(p), size, stride or size

    def call(self, x):
        ### BEGIN SOLUTION
        x = tf.convert_to_tensor(x)
        _, h, w, _ = x.shape
        size, stride = self.size, self.stride
        h_out, w_out = (h - size) // stride + 1, (w - size) // stride + 1
        windows = tf.stack([x[:, u:u + stride * h_out:stride, v:v + stride * w_out:stride, :]
                            for u in range(size) for v in range(size)], axis=-1)  # (N, Ho, Wo, C, k*k)
        m = tf.reduce_max(windows, axis=-1)
        nonzero = m > 0
        m_safe = tf.where(nonzero, m, tf.ones_like(m))
        s = tf.reduce_sum(tf.pow(windows / m_safe[..., None], self.p), axis=-1)  # between 1 and k*k: no underflow
        s_safe = tf.where(nonzero, s, tf.ones_like(s))  # a finite gradient in windows of zeros
        return tf.where(nonzero, m_safe * tf.pow(s_safe, 1.0 / self.p), tf.zeros_like(m))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lp_pool_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
x = tf.reshape(tf.constant([3.0, 4.0, 0.0, 0.0]), (1, 2, 2, 1))
check_close(LpPool2D(2, 2)(x), np.array([5.0]).reshape(1, 1, 1, 1), name="LpPool2D(2, 2) of a window 3, 4, 0, 0")
x = tf.reshape(tf.constant([0.3, 0.2, 0.1, 0.05]), (1, 2, 2, 1))
check_close(LpPool2D(64, 2)(x), np.full((1, 1, 1, 1), 0.3), rtol=1e-5, atol=0,
            name="LpPool2D(64, 2) of a window 0.3, 0.2, 0.1, 0.05 in float32")
### BEGIN HIDDEN TESTS
def _reference_lp(x, p, size, stride):  # in float64, scaled by each window's maximum
    x = to_numpy(x).astype(np.float64)
    n, h, w, c = x.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            win = x[:, i * stride:i * stride + size, j * stride:j * stride + size]
            m = win.max(axis=(1, 2))
            safe = np.where(m > 0, m, 1.0)
            out[:, i, j] = np.where(m > 0, safe * ((win / safe[:, None, None]) ** p).sum(axis=(1, 2)) ** (1 / p), 0.0)
    return out

rng = np.random.default_rng(1)
x = tf.constant(rng.uniform(size=(2, 7, 7, 3)) * 3, tf.float32)
for p, size, stride in [(2, 2, None), (3, 2, None), (2, 3, 2), (1.5, 2, 1), (4, 3, 3)]:
    check_close(LpPool2D(p, size, stride)(x), _reference_lp(x, p, size, stride or size), rtol=1e-4, atol=1e-5,
                name=f"LpPool2D(p={p}, size={size}, stride={stride})")
check_close(LpPool2D(1, 2)(x), tf.nn.avg_pool2d(x, 2, 2, "VALID") * 4, rtol=1e-5, name="LpPool2D with p=1 (the window sum)")
x64 = tf.cast(x, tf.float64)
check_close(LpPool2D(2, 2, dtype="float64")(x64), _reference_lp(x64, 2, 2, 2), rtol=1e-10, atol=1e-12,
            name="LpPool2D(2, 2, dtype='float64') in float64")
# Large p, in float32: exact, also where x^p underflows.
x = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32) * 3
x[0, :2, :2, 0] = [[0.1, 0.1], [0.05, 0.0]]
x[0, :2, :2, 1] = [[0.02, 0.01], [0.03, 0.0]]
x[1, 4:6, 2:4, 2] = [[0.3, 0.2], [0.1, 0.05]]
x[1, :, :, 0] = rng.uniform(size=(8, 8)) * 0.2
x = tf.constant(x)
for p, size, stride in [(64, 2, None), (32, 2, None), (40, 3, 1), (16, 3, 3)]:
    check_close(LpPool2D(p, size, stride)(x), _reference_lp(x, p, size, stride or size), rtol=2e-5, atol=1e-30,
                name=f"LpPool2D(p={p}, size={size}, stride={stride}) in float32, with windows of small values")
# Windows of zeros, for small and large p: 0, with a finite gradient of 0.
for p in (2, 64):
    out = to_numpy(LpPool2D(p, 2)(tf.zeros((1, 4, 4, 1))))
    assert not np.isnan(out).any(), f"LpPool2D(p={p}) of zeros gives NaN"
    check_equal(out, np.zeros((1, 2, 2, 1), np.float32), name=f"LpPool2D(p={p}) of zeros")
    x = tf.Variable(np.concatenate([np.zeros((1, 2, 4, 1)), rng.uniform(size=(1, 2, 4, 1)) + 0.1], axis=1).astype(np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(LpPool2D(p, 2)(x))
    grad = to_numpy(tape.gradient(total, x))
    assert np.isfinite(grad).all(), f"the gradient of LpPool2D(p={p}) is NaN or infinite where a window is all zeros"
    check_close(grad[0, :2], np.zeros((2, 4, 1)), name=f"the gradient of LpPool2D(p={p}) in windows of zeros")
# The gradient elsewhere (overlapping windows, float64) against the derivative of the p-norm, sum of (x / y)^(p - 1).
x = tf.Variable(rng.uniform(size=(1, 5, 5, 2)) + 0.1)
xv = to_numpy(x).copy()  # the input's values before the layer runs
with tf.GradientTape() as tape:
    y = LpPool2D(3, 2, 1, dtype="float64")(x)  # a Keras layer computes in float32 unless told otherwise
    total = tf.reduce_sum(y)
grad = to_numpy(tape.gradient(total, x))
yv, expected = to_numpy(y), np.zeros((1, 5, 5, 2))
for i in range(4):
    for j in range(4):
        expected[:, i:i + 2, j:j + 2] += (xv[:, i:i + 2, j:j + 2] / yv[:, i:i + 1, j:j + 1]) ** 2
check_close(grad, expected, rtol=1e-8, atol=1e-10, name="the gradient of LpPool2D(p=3, size=2, stride=1)")
### END HIDDEN TESTS

# %% [markdown]
# How $p$ moves Lp pooling between sum and max, on one window of four values:

# %%
window = tf.reshape(tf.constant([0.2, 0.5, 0.9, 0.4]), (1, 2, 2, 1))
ps = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32]
values = [float(tf.squeeze(LpPool2D(p, 2)(window))) for p in ps]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(ps, values, "o-", label="Lp pooling")
ax.axhline(float(tf.reduce_sum(window)), color="C1", ls="--", label="sum (p = 1)")
ax.axhline(float(tf.reduce_max(window)), color="C2", ls="--", label="max (p → ∞)")
ax.set_xscale("log")
ax.set_xlabel("p")
ax.set_ylabel("pooled value")
ax.legend()
plt.show()

# %% [markdown]
# ## 6. Stochastic pooling
# Stochastic pooling (Zeiler and Fergus, 2013) picks one activation per window **at random**,
# with probability proportional to its value: in a window $a_1, \dots, a_k \ge 0$ the cell
# $i$ is chosen with $p_i = a_i / \sum_j a_j$. Strong activations usually win, as in max
# pooling, but not always, which acts as a regulariser like dropout. At inference it is
# deterministic and uses the **probability-weighted average** $\sum_i p_i a_i$, the expected
# value of the training output. A window of zeros has no probabilities; its output is 0.
#
# To sample, draw $u \sim U[0, 1)$ and take the first cell (in row-major order) whose
# cumulative probability exceeds $u$. Passing the draws $u$ in makes the layer testable and
# identical across frameworks.

# %% [markdown]
# ### Exercise 4: `stochastic_pool2d` (3 points)
# Write `stochastic_pool2d(x, size, training, u=None)` for non-overlapping `size`×`size`
# windows (stride = size, no padding), `x` (N, H, W, C) non-negative. The batch size may be
# unknown while Keras traces the layer: take it from `tf.shape(x)`.
#
# * training: the sampled value of each window, choosing cell $i$ (row-major order) as the
#   first whose cumulative probability exceeds `u` (strictly: a cell of probability 0 is
#   never chosen); `u` (N, H_out, W_out, C) in [0, 1), drawn with `tf.random.uniform` when
#   `None`, a new independent draw for every window (every example, channel and position)
#   at every call
# * inference: $\sum_i p_i a_i$
# * windows of zeros give 0 in both modes (no NaN)

# %% nbgrader={"grade": false, "grade_id": "stochastic_pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stochastic_pool2d(x, size, training, u=None):
    """Stochastic pooling. x: (N, H, W, C) >= 0 -> (N, H // size, W // size, C)."""
    ### BEGIN SOLUTION
    x = tf.convert_to_tensor(x)
    n = tf.shape(x)[0]
    _, h, w, c = x.shape
    h_out, w_out = h // size, w // size
    windows = tf.reshape(x[:, :h_out * size, :w_out * size, :], (n, h_out, size, w_out, size, c))
    windows = tf.reshape(tf.transpose(windows, (0, 1, 3, 5, 2, 4)), (n, h_out, w_out, c, size * size))
    total = tf.reduce_sum(windows, axis=-1, keepdims=True)
    probs = tf.where(total > 0, windows / tf.maximum(total, 1e-12), tf.zeros_like(windows))
    if not training:
        return tf.reduce_sum(probs * windows, axis=-1)
    if u is None:
        u = tf.random.uniform((n, h_out, w_out, c), dtype=x.dtype)
    below = tf.cast(tf.cumsum(probs, axis=-1) <= tf.cast(u, x.dtype)[..., None], tf.int32)
    chosen = tf.minimum(tf.reduce_sum(below, axis=-1), size * size - 1)
    return tf.reduce_sum(windows * tf.one_hot(chosen, size * size, dtype=x.dtype), axis=-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "stochastic_pool2d_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
x = tf.reshape(tf.constant([1.0, 3.0, 0.0, 0.0]), (1, 2, 2, 1))  # probabilities 0.25, 0.75, 0, 0
check_close(stochastic_pool2d(x, 2, training=False), np.full((1, 1, 1, 1), 2.5), name="inference on the window 1, 3, 0, 0")
check_equal(stochastic_pool2d(x, 2, training=True, u=tf.fill((1, 1, 1, 1), 0.1)), np.full((1, 1, 1, 1), 1.0, np.float32),
            name="training with u = 0.1 (the first cell's cumulative probability 0.25 exceeds it)")
check_equal(stochastic_pool2d(x, 2, training=True, u=tf.fill((1, 1, 1, 1), 0.5)), np.full((1, 1, 1, 1), 3.0, np.float32),
            name="training with u = 0.5")
### BEGIN HIDDEN TESTS
def _reference_stochastic(x, size, training, u):
    x = to_numpy(x).astype(np.float64)
    n, h, w, c = x.shape
    ho, wo = h // size, w // size
    win = x[:, :ho * size, :wo * size].reshape(n, ho, size, wo, size, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, ho, wo, c, -1)
    tot = win.sum(-1, keepdims=True)
    pr = np.where(tot > 0, win / np.maximum(tot, 1e-12), 0.0)
    if not training:
        return (pr * win).sum(-1)
    idx = np.minimum((pr.cumsum(-1) <= to_numpy(u)[..., None]).sum(-1), size * size - 1)
    return np.take_along_axis(win, idx[..., None], -1)[..., 0]

rng = np.random.default_rng(5)
x = tf.constant(np.maximum(rng.normal(size=(2, 7, 6, 3)), 0), tf.float64)  # odd sizes: the last row is dropped
u = tf.constant(rng.uniform(size=(2, 3, 3, 3)), tf.float64)
check_close(stochastic_pool2d(x, 2, True, u), _reference_stochastic(x, 2, True, u), name="training output with given draws u")
check_close(stochastic_pool2d(x, 2, False), _reference_stochastic(x, 2, False, None), name="inference output")
check_close(stochastic_pool2d(x, 3, True, u[:, :2, :2]), _reference_stochastic(x, 3, True, u[:, :2, :2]),
            name="training output with 3x3 windows")
# Every training output is one of its window's values.
x = tf.constant(np.maximum(rng.normal(size=(4, 8, 8, 2)), 0), tf.float32)
out = to_numpy(stochastic_pool2d(x, 2, True))
windows = to_numpy(x).reshape(4, 4, 2, 4, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(4, 4, 4, 2, 4)
assert (windows == out[..., None]).any(-1).all(), "every training output must be a value of its window"
# The average over many draws approaches the inference output.
x = tf.tile(tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0]), (1, 2, 2, 1)), (1, 1, 1, 20_000))
check_close(tf.reduce_mean(stochastic_pool2d(x, 2, True)), 3.0, atol=0.05,
            name="the mean of 20,000 training draws (the expected value is 3.0)")
check_close(stochastic_pool2d(x[..., :1], 2, False), np.full((1, 1, 1, 1), 3.0), name="inference on 1, 2, 3, 4")
# u exactly on a cumulative probability, and u = 0: "exceeds" is strict, a cell of probability 0 never wins.
x = tf.constant(np.array([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 1.0], [3.0, 0.0]]], np.float32)[..., None])  # cumulative 0.25, 1 and 0, 0.25, 1
check_equal(stochastic_pool2d(x, 2, True, tf.reshape(tf.constant([0.25, 0.0]), (2, 1, 1, 1))), np.array([3.0, 1.0]).reshape(2, 1, 1, 1),
            name="training with u = 0.25 on the window 1, 3, 0, 0 and u = 0 on 0, 1, 3, 0")
check_equal(stochastic_pool2d(x, 2, True, tf.reshape(tf.constant([0.75, 0.25]), (2, 1, 1, 1))), np.array([3.0, 3.0]).reshape(2, 1, 1, 1),
            name="training with u = 0.75 on the window 1, 3, 0, 0 and u = 0.25 on 0, 1, 3, 0")
# Without u: one independent draw per window, at every call. 4,096 windows 1, 2, 3, 4 (probabilities 0.1 to 0.4).
cu.seed_everything(7)
x = tf.tile(tf.constant([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None], (8, 8, 8, 8))  # (8, 16, 16, 8)
first, second = to_numpy(stochastic_pool2d(x, 2, True)), to_numpy(stochastic_pool2d(x, 2, True))
for value, prob in zip((1.0, 2.0, 3.0, 4.0), (0.1, 0.2, 0.3, 0.4)):
    share = (first == value).mean()
    assert abs(share - prob) < 0.04, f"the value {value} was chosen in {share:.1%} of the windows, expected {prob:.0%}"
# Independent draws agree in sum(p_i^2) = 30% of the windows; a draw shared along an axis, or repeated, in all of them.
for what, (a, b) in {"two successive calls": (first, second), "neighbouring windows in a row": (first[:, :, 1:], first[:, :, :-1]),
                     "neighbouring windows in a column": (first[:, 1:], first[:, :-1]),
                     "neighbouring channels": (first[..., 1:], first[..., :-1]), "neighbouring examples": (first[1:], first[:-1])}.items():
    same = (a == b).mean()
    assert 0.2 < same < 0.4, (f"{what} chose the same value in {same:.0%} of the windows; independent draws agree in "
                              "about 30%: draw a new u for every window at every call")
# Windows of zeros.
for training in (True, False):
    out = to_numpy(stochastic_pool2d(tf.zeros((1, 4, 4, 1)), 2, training))
    assert not np.isnan(out).any(), f"a window of zeros gives NaN (training={training})"
    check_equal(out, np.zeros((1, 2, 2, 1), np.float32), name=f"windows of zeros (training={training})")
# Inside a traced Keras layer, where the batch size is unknown.
traced = tf.function(lambda t: stochastic_pool2d(t, 2, True), input_signature=[tf.TensorSpec((None, 4, 4, 1), tf.float32)])
check_shape(traced(tf.ones((3, 4, 4, 1))), (3, 2, 2, 1), name="stochastic_pool2d traced with an unknown batch size")
### END HIDDEN TESTS

# %% [markdown]
# The layer around the function: sampling in training, the weighted average at inference.

# %%
class StochasticPool2D(keras.layers.Layer):
    """Stochastic pooling of non-negative maps: (N, H, W, C) -> (N, H // size, W // size, C)."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x, training=None):
        return stochastic_pool2d(x, self.size, bool(training))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, h // self.size, w // self.size, c)


cu.seed_everything(0)
window = tf.tile(tf.reshape(tf.constant([0.2, 0.5, 0.9, 0.4]), (1, 2, 2, 1)), (1, 1, 1, 5000))
draws = to_numpy(stochastic_pool2d(window, 2, training=True)).ravel()
cells = np.array([0.2, 0.5, 0.9, 0.4], np.float32)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(4), [(draws == v).mean() for v in cells], label="sampled, 5,000 draws")
ax.plot(range(4), cells / cells.sum(), "o", color="C1", label="p_i = a_i / Σ a_j")
ax.set_xticks(range(4), [f"a={v:.1f}" for v in cells])
ax.set_ylabel("how often chosen")
ax.legend()
plt.show()

# %% [markdown]
# ## 7. Global pooling, and every pooling on one image
# **Global average pooling** averages each whole map to one number, **global max pooling**
# keeps each map's maximum: (N, H, W, C) becomes (N, C). Used instead of a flatten, they make
# the head independent of the image size and almost free of parameters (section 1).
#
# Below, a real image goes through one convolution with four hand-made filters (edges in two
# directions, a blur, a spot detector) and a ReLU, and then through each pooling type.

# %%
image = cu.to_tensor_images(fashion.x_test[:1])  # (1, 28, 28, 1)
filters = np.array([
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
    [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]],
], np.float32).transpose(1, 2, 0)[:, :, None, :] / 4  # (3, 3, 1, 4)
maps = tf.nn.relu(tf.nn.conv2d(image, filters, 1, "SAME"))  # (1, 28, 28, 4)
pooled = {
    "max": tf.nn.max_pool2d(maps, 2, 2, "VALID"), "average": tf.nn.avg_pool2d(maps, 2, 2, "VALID"),
    "L2": LpPool2D(2, 2)(maps), "L3": LpPool2D(3, 2)(maps), "stochastic (train)": stochastic_pool2d(maps, 2, True),
    "stochastic (eval)": stochastic_pool2d(maps, 2, False),
}
fig, axes = plt.subplots(filters.shape[-1], len(pooled) + 1, figsize=(1.6 * (len(pooled) + 1), 1.7 * filters.shape[-1]))
for row in range(filters.shape[-1]):
    for col, (name, tensor) in enumerate([("feature map", maps), *pooled.items()]):
        axes[row, col].imshow(to_numpy(tensor)[0, :, :, row], cmap="magma")
        axes[row, col].axis("off")
        if row == 0:
            axes[row, col].set_title(f"{name}\n{tuple(tensor.shape[1:3])}", fontsize=8)
plt.show()
print("global average per map:", to_numpy(keras.layers.GlobalAveragePooling2D()(maps))[0].round(3))
print("global max per map:    ", to_numpy(keras.layers.GlobalMaxPooling2D()(maps))[0].round(3))

# %% [markdown]
# Max pooling keeps the sharp strokes, average pooling blurs them, Lp pooling lies in
# between (closer to max as p grows), and stochastic pooling in training looks like a noisy
# max pooling.
#
# ## 8. Dropout
# Dropout (Srivastava et al., 2014) zeroes each activation with probability $p$ during
# training, so no unit can rely on a particular other unit being there; the network behaves
# like an average of many thinned networks. At inference nothing is dropped. To keep the
# expected activation the same in both modes, **inverted dropout** scales the survivors by
# $1/(1-p)$ at training time, and inference is then the identity (this is what Keras and
# PyTorch do).

# %% [markdown]
# ### Exercise 5: `dropout` (2 points)
# Write `dropout(x, p, training)`: in training, zero each element independently with
# probability `p` and scale the others by `1 / (1 - p)`; at inference return `x` unchanged.
# `p = 1` drops everything (return zeros, not NaN).
#
# * independently: a new random draw for every element at every call (not one mask shared
#   by a row or a map, not the same mask each call, not a fixed number of dropped elements)
# * with random numbers and tensor operations (`tf.random.uniform`, ...). Not allowed:
#   the dropout functions and layers of TensorFlow and Keras (`tf.nn.dropout`,
#   `keras.layers.Dropout`, `keras.random.dropout`, ...).

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dropout(x, p, training):
    """Inverted dropout. x: any shape; p: the probability of dropping an element."""
    ### BEGIN SOLUTION
    x = tf.convert_to_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return tf.zeros_like(x)
    keep = tf.cast(tf.random.uniform(tf.shape(x)) >= p, x.dtype)
    return x * keep / (1 - p)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dropout_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(dropout, [tf.raw_ops, tf.compat] + [getattr(m, k) for m in (tf.nn, tf.nn.experimental, keras.layers, keras.random,
                                                                             keras.ops) for k in dir(m)
                                                     if "dropout" in k.lower() and callable(getattr(m, k))],
                   name="dropout", allowed="Draw the mask yourself (tf.random.uniform).")
cu.seed_everything(0)
x = tf.ones((1000, 100))
check_equal(dropout(x, 0.5, training=False), x, name="dropout at inference")
out = to_numpy(dropout(x, 0.5, training=True))
check_shape(out, (1000, 100), name="dropout(x, 0.5, training=True)")
assert abs((out == 0).mean() - 0.5) < 0.02, "about half the elements should be dropped for p = 0.5"
check_close(out[out != 0], np.full((out != 0).sum(), 2.0), name="the kept elements for p = 0.5 (scaled by 1 / (1 - p) = 2)")
### BEGIN HIDDEN TESTS
cu.seed_everything(1)
for p in (0.2, 0.7):
    out = to_numpy(dropout(x, p, training=True))
    dropped = (out == 0).mean()
    assert abs(dropped - p) < 0.02, f"with p = {p}, {dropped:.3f} of the elements were dropped"
    check_close(out[out != 0], np.full((out != 0).sum(), 1 / (1 - p)), rtol=1e-5,
                name=f"the kept elements for p = {p} (scaled by 1 / (1 - p))")
    check_close(out.mean(), 1.0, atol=0.02, name=f"the mean after dropout with p = {p}")
x = tf.random.normal((50, 40))
check_equal(dropout(x, 0.3, training=False), x, name="dropout at inference (random x)")
check_equal(dropout(x, 0.0, training=True), x, name="dropout with p = 0 in training")
out = to_numpy(dropout(x, 1.0, training=True))
assert not np.isnan(out).any(), "p = 1 gives NaN"
check_equal(out, np.zeros((50, 40), np.float32), name="dropout with p = 1 in training")
x = tf.constant(np.random.default_rng(3).uniform(size=(300, 40)) + 0.5, tf.float32)
out = to_numpy(dropout(x, 0.3, training=True))
check_close(out[out != 0], to_numpy(x)[out != 0] / 0.7, rtol=1e-5, name="the kept elements of a random x for p = 0.3 (x / (1 - p))")
# Independence: between neighbours along every axis and between successive calls (they agree half the time for p = 0.5).
cu.seed_everything(2)
x = tf.ones((40, 30, 20))
first, second = to_numpy(dropout(x, 0.5, True)) == 0, to_numpy(dropout(x, 0.5, True)) == 0
for what, (a, b) in {"two successive calls": (first, second), "neighbours along axis 0": (first[1:], first[:-1]),
                     "neighbours along axis 1": (first[:, 1:], first[:, :-1]),
                     "neighbours along axis 2": (first[:, :, 1:], first[:, :, :-1])}.items():
    same = (a == b).mean()
    assert 0.45 < same < 0.55, (f"{what} were both dropped or both kept in {same:.0%} of the elements; independent draws "
                                "agree in 50% for p = 0.5: draw a new mask for every element at every call")
# The number dropped varies like a binomial (variance n p (1 - p) = 5 for 20 elements): per call and per row.
counts = np.array([(to_numpy(dropout(tf.ones(20), 0.5, True)) == 0).sum() for _ in range(300)], np.float64)
assert 3.0 < counts.var(ddof=1) < 7.5, (f"the number of dropped elements among 20 varies with variance {counts.var(ddof=1):.2f} "
                                        "over 300 calls, expected about 5: drop each element independently")
counts = (to_numpy(dropout(tf.ones((2000, 20)), 0.5, True)) == 0).sum(axis=1).astype(np.float64)
assert 3.0 < counts.var(ddof=1) < 7.5, (f"the number of dropped elements per row of 20 varies with variance "
                                        f"{counts.var(ddof=1):.2f}, expected about 5: drop each element independently")
# Same statistics as Keras' layer in both modes.
layer = keras.layers.Dropout(0.4)
theirs = (to_numpy(layer(tf.ones(200_000), training=True)) == 0).mean()
ours = (to_numpy(dropout(tf.ones(200_000), 0.4, True)) == 0).mean()
assert abs(theirs - ours) < 0.01, f"keras.layers.Dropout drops {theirs:.3f}, dropout {ours:.3f}"
check_equal(layer(x, training=False), dropout(x, 0.4, False), name="dropout at inference against keras.layers.Dropout")
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Batch normalisation
# Batch normalisation (Ioffe and Szegedy, 2015) normalises each channel of a layer's output
# over the batch (and, in a CNN, over all positions), then rescales it with two learned
# parameters per channel:
# $$ \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta . $$
# It keeps activations in a range where gradients flow, allows larger learning rates, and
# regularises a little (each example's output depends on its batch).
#
# In **training** it uses the batch's mean and its *biased* variance (divided by $n$), and
# updates **moving averages** of them; at **inference** it uses the moving averages, so the
# output of an example no longer depends on the others. The two frameworks write the update
# differently:
#
# | | Keras `BatchNormalization` | PyTorch `BatchNorm2d` |
# |---|---|---|
# | update | $r \leftarrow m\,r + (1 - m)\,\text{batch}$, $m = 0.99$ | $r \leftarrow (1 - m)\,r + m\,\text{batch}$, $m = 0.1$ |
# | variance stored | biased batch variance ($n$) | *unbiased* batch variance ($n - 1$) |
# | $\epsilon$ | $10^{-3}$ | $10^{-5}$ |
#
# Keras' `momentum=0.9` is PyTorch's `momentum=0.1`; Keras' default 0.99 forgets more slowly.

# %% [markdown]
# ### Exercise 6: `batch_norm` (3 points)
# Write `batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99,
# eps=1e-3)` with Keras' conventions, for `x` (N, H, W, C) and per-channel parameters and
# statistics of shape (C,). Return `(y, new_moving_mean, new_moving_var)`: in training
# normalise with the batch statistics and return updated moving statistics; at inference
# normalise with the moving statistics and return them unchanged. Use tensor operations
# (`tf.reduce_mean`, `tf.nn.moments`, `tf.sqrt`, ...), not the normalisation functions and
# layers of TensorFlow and Keras (`tf.nn.batch_normalization`, `keras.layers.BatchNormalization`,
# `keras.ops.batch_normalization`, ...).

# %% nbgrader={"grade": false, "grade_id": "batch_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99, eps=1e-3):
    """Batch normalisation per channel. x: (N, H, W, C); gamma, beta, moving_*: (C,).
    Returns (y (N, H, W, C), new_moving_mean (C,), new_moving_var (C,))."""
    ### BEGIN SOLUTION
    x = tf.convert_to_tensor(x)
    if training:
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])  # the biased variance
        new_mean = momentum * moving_mean + (1 - momentum) * mean
        new_var = momentum * moving_var + (1 - momentum) * var
    else:
        mean, var, new_mean, new_var = moving_mean, moving_var, moving_mean, moving_var
    x_hat = (x - mean) / tf.sqrt(var + eps)
    return gamma * x_hat + beta, new_mean, new_var
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "batch_norm_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_builtin_norms = [tf.raw_ops, tf.compat] + [getattr(m, k) for m in (tf.nn, keras.layers, keras.ops) for k in dir(m)
                                            if ("normaliz" in k.lower() or "batch_norm" in k) and callable(getattr(m, k))]
check_from_scratch(batch_norm, _builtin_norms, name="batch_norm", allowed="Use tensor operations (reduce_mean, moments, sqrt).")
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(8, 5, 5, 3)) * 2 + 1, tf.float32)
y, _, _ = batch_norm(x, tf.ones(3), tf.zeros(3), tf.zeros(3), tf.ones(3), training=True)
check_shape(y, (8, 5, 5, 3), name="batch_norm output")
check_close(tf.reduce_mean(y, axis=[0, 1, 2]), np.zeros(3), atol=1e-5, name="the per-channel mean after batch_norm in training")
# One channel, four values 1, 2, 3, 6: batch mean 3, biased variance 3.5.
x = tf.reshape(tf.constant([1.0, 2.0, 3.0, 6.0], tf.float64), (4, 1, 1, 1))
gamma, beta = tf.constant([2.0], tf.float64), tf.constant([1.0], tf.float64)
y, new_mean, new_var = batch_norm(x, gamma, beta, tf.zeros(1, tf.float64), tf.ones(1, tf.float64), training=True,
                                  momentum=0.99, eps=1e-3)
check_close(tf.reshape(y, [-1]), 2 * (np.array([1.0, 2.0, 3.0, 6.0]) - 3) / (3.5 + 1e-3) ** 0.5 + 1,
            name="training output (biased batch variance 3.5)")
check_close(new_mean, [0.99 * 0 + 0.01 * 3.0], name="the new moving mean, 0.99 * 0 + (1 - 0.99) * 3")
check_close(new_var, [0.99 * 1 + 0.01 * 3.5], name="the new moving variance, 0.99 * 1 + (1 - 0.99) * 3.5")
y, same_mean, same_var = batch_norm(x, gamma, beta, tf.constant([1.0], tf.float64), tf.constant([0.25], tf.float64),
                                    training=False, eps=1e-3)
check_close(tf.reshape(y, [-1]), 2 * (np.array([1.0, 2.0, 3.0, 6.0]) - 1) / (0.25 + 1e-3) ** 0.5 + 1,
            name="inference output with moving mean 1 and moving variance 0.25 (not the batch's statistics)")
check_close(same_var, [0.25], name="the moving variance after inference (unchanged)")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
for shape, momentum, eps in [((8, 5, 5, 3), 0.99, 1e-3), ((4, 3, 6, 2), 0.7, 1e-5), ((16, 2, 2, 4), 0.9, 1e-3)]:
    c = shape[-1]
    x = tf.constant(rng.normal(size=shape) * 3 + 2, tf.float64)
    gamma, beta = tf.constant(rng.uniform(size=c) + 0.5, tf.float64), tf.constant(rng.normal(size=c), tf.float64)
    mean0, var0 = tf.constant(rng.normal(size=c), tf.float64), tf.constant(rng.uniform(size=c) + 0.5, tf.float64)
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=eps, dtype="float64")
    layer.build(shape)
    layer.set_weights([to_numpy(gamma), to_numpy(beta), to_numpy(mean0), to_numpy(var0)])
    expected = layer(x, training=True)
    y, new_mean, new_var = batch_norm(x, gamma, beta, mean0, var0, True, momentum, eps)
    check_close(y, expected, rtol=1e-6, atol=1e-8, name=f"training output for {shape} (batch statistics, biased variance)")
    check_close(new_mean, layer.moving_mean, rtol=1e-6, atol=1e-10, name=f"the new moving mean (momentum {momentum})")
    check_close(new_var, layer.moving_variance, rtol=1e-6, atol=1e-10,
                name=f"the new moving variance (Keras stores the biased batch variance, momentum {momentum})")
    expected = layer(x, training=False)
    y, same_mean, same_var = batch_norm(x, gamma, beta, layer.moving_mean, layer.moving_variance, False, momentum, eps)
    check_close(y, expected, rtol=1e-6, atol=1e-8, name=f"inference output for {shape} (moving statistics)")
    check_close(same_mean, layer.moving_mean, name="the moving mean after inference (unchanged)")
    check_close(same_var, layer.moving_variance, name="the moving variance after inference (unchanged)")
### END HIDDEN TESTS

# %% [markdown]
# ### Batch normalisation backward
# In training, every output of a channel depends on every input of that channel through the
# batch mean $\mu$ and variance $\sigma^2$, so the gradient of $x_i$ has three paths: the
# direct one through $\hat x_i$, one through $\mu$ and one through $\sigma^2$. With
# $m = N \cdot H \cdot W$ values per channel, $\delta_i = \partial L / \partial y_i$ the
# upstream gradient and every sum over the $m$ values of one channel:
#
# $$ \frac{\partial L}{\partial \beta} = \sum_i \delta_i, \qquad
#    \frac{\partial L}{\partial \gamma} = \sum_i \delta_i \hat x_i, \qquad
#    \frac{\partial L}{\partial \hat x_i} = \gamma\, \delta_i, $$
# $$ \frac{\partial L}{\partial \sigma^2} = -\frac{1}{2} (\sigma^2 + \epsilon)^{-3/2}
#    \sum_i \frac{\partial L}{\partial \hat x_i} (x_i - \mu), \qquad
#    \frac{\partial L}{\partial \mu} = -\frac{1}{\sqrt{\sigma^2 + \epsilon}}
#    \sum_i \frac{\partial L}{\partial \hat x_i}
#    \;\; \Big(\text{plus } \frac{\partial L}{\partial \sigma^2} \cdot
#    \frac{-2}{m} \sum_i (x_i - \mu) = 0\Big), $$
# $$ \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial \hat x_i}
#    \frac{1}{\sqrt{\sigma^2 + \epsilon}}
#    + \frac{\partial L}{\partial \sigma^2} \frac{2 (x_i - \mu)}{m}
#    + \frac{\partial L}{\partial \mu} \frac{1}{m} . $$
#
# Dropping the last two terms (treating $\mu$ and $\sigma^2$ as constants) is the classic
# mistake: it is the gradient at *inference*, not in training. The three terms can be
# gathered into one line; try it once the test passes.

# %% [markdown]
# ### Exercise 7: `batch_norm_backward` (3 points)
# Write `batch_norm_backward(dout, x, gamma, eps=1e-3)` returning `(dx, dgamma, dbeta)`, the
# gradients of $L = \sum \text{dout} \cdot y$ for batch normalisation in **training** mode
# (batch mean and biased variance, as in `batch_norm`'s training branch).
#
# * `x`, `dout`: (N, H, W, C); `gamma`: (C,); returns `dx` (N, H, W, C), `dgamma` and
#   `dbeta` (C,), all in the dtype of `x` (float32 or float64)
# * by hand, with tensor operations. Not allowed: automatic differentiation
#   (`tf.GradientTape`, `tf.gradients`, `tf.autodiff`), `numerical_gradient`, and the
#   normalisation functions and layers of TensorFlow and Keras.

# %% nbgrader={"grade": false, "grade_id": "batch_norm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batch_norm_backward(dout, x, gamma, eps=1e-3):
    """Gradients of training-mode batch normalisation. dout, x: (N, H, W, C); gamma: (C,).
    Returns (dx (N, H, W, C), dgamma (C,), dbeta (C,))."""
    ### BEGIN SOLUTION
    x = tf.convert_to_tensor(x)
    dout, gamma = tf.cast(dout, x.dtype), tf.cast(gamma, x.dtype)
    axes = [0, 1, 2]
    m = tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype)
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)  # the biased variance
    inv_std = 1.0 / tf.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    dbeta = tf.reduce_sum(dout, axis=axes)
    dgamma = tf.reduce_sum(dout * x_hat, axis=axes)
    dx = gamma * inv_std / m * (m * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "batch_norm_backward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_autodiff = [tf.GradientTape, tf.gradients, tf.autodiff, tf.custom_gradient, tf.recompute_grad, tf.test,
             tf.compat.v1.gradients, numerical_gradient, tf.raw_ops, tf.compat]
_builtin_norms = [getattr(m, k) for m in (tf.nn, keras.layers, keras.ops) for k in dir(m)
                  if ("normaliz" in k.lower() or "batch_norm" in k) and callable(getattr(m, k))]
check_from_scratch(batch_norm_backward, _autodiff + _builtin_norms, name="batch_norm_backward",
                   allowed="Compute the gradients by hand with tensor operations.")


def autograd_batch_norm_grads(dout, x, gamma, eps):
    """The reference: GradientTape through TensorFlow's own batch normalisation in training mode."""
    x, gamma = tf.Variable(x), tf.Variable(gamma)
    beta = tf.Variable(tf.zeros_like(gamma))
    with tf.GradientTape() as tape:
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        loss = tf.reduce_sum(tf.nn.batch_normalization(x, mean, var, beta, gamma, eps) * dout)
    return tape.gradient(loss, [x, gamma, beta])


rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(4, 5, 2, 3)) * 2 + 1)
dout, gamma = tf.constant(rng.normal(size=(4, 5, 2, 3))), tf.constant(rng.uniform(size=3) + 0.5)
got = batch_norm_backward(dout, x, gamma)
assert isinstance(got, tuple) and len(got) == 3, "batch_norm_backward should return a tuple (dx, dgamma, dbeta)"
for value, expected, shape, what in zip(got, autograd_batch_norm_grads(dout, x, gamma, 1e-3), [(4, 5, 2, 3), (3,), (3,)],
                                        ("dx", "dgamma", "dbeta")):
    check_shape(value, shape, name=f"batch_norm_backward(...) {what}")
    check_close(value, expected, rtol=1e-7, atol=1e-9, name=f"batch_norm_backward(...) {what} against GradientTape")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
cases = [((2, 1, 1, 1), 1e-5, "two values per channel (biased against unbiased variance differ by 2x)"),
         ((3, 2, 5, 4), 1e-5, "H, W and C all different"), ((5, 3, 3, 2), 0.5, "a large eps"),
         ((2, 4, 1, 3), 1e-3, "a channel of nearly constant values"), ((6, 3, 2, 5), 1e-5, "float32")]
for shape, eps, what in cases:
    dtype = tf.float32 if what == "float32" else tf.float64
    x = rng.normal(size=shape) * 3 + rng.normal(size=(1, 1, 1, shape[-1]))
    if what.startswith("a channel"):
        x[..., 1] = 2.0 + 0.01 * rng.normal(size=shape[:-1])
    x = tf.constant(x, dtype)
    dout = tf.constant(rng.normal(size=shape) + rng.normal(size=(1, 1, 1, shape[-1])), dtype)  # a non-zero mean per channel
    gamma = tf.constant(rng.normal(size=shape[-1]), dtype)  # negative scales too
    got = batch_norm_backward(dout, x, gamma, eps)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == tf.float32 else dict(rtol=1e-7, atol=1e-9)
    for value, expected, what_grad in zip(got, autograd_batch_norm_grads(dout, x, gamma, eps), ("dx", "dgamma", "dbeta")):
        check_shape(value, expected.shape, name=f"batch_norm_backward {what_grad} for x {shape}")
        assert value.dtype == dtype, f"batch_norm_backward {what_grad} should be {dtype.name}, got {value.dtype}"
        check_close(value, expected, **tol, name=f"batch_norm_backward {what_grad} for x {shape}, eps {eps} ({what})")
# An upstream gradient that is constant per channel moves y by a constant: dx = 0 (the mean's path cancels it).
x = tf.constant(rng.normal(size=(4, 3, 3, 2)))
dx, dgamma, dbeta = batch_norm_backward(tf.ones_like(x) * tf.constant([1.5, -2.0], tf.float64), x, tf.constant([0.7, 1.3], tf.float64))
check_close(dx, np.zeros((4, 3, 3, 2)), atol=1e-10, name="dx for an upstream gradient constant per channel")
check_close(dbeta, np.array([1.5 * 36, -2.0 * 36]), name="dbeta for an upstream gradient constant per channel")
# A numerical gradient of L = sum(dout * y), y from TensorFlow's batch normalisation, in float64, for x, gamma and beta.
x, dout = rng.normal(size=(3, 2, 2, 2)), rng.normal(size=(3, 2, 2, 2))
gamma, beta = np.array([1.7, -0.6]), np.array([0.3, 0.1])
def _loss(a, g, b):
    a = tf.constant(a)
    mean, var = tf.nn.moments(a, axes=[0, 1, 2])
    return float(tf.reduce_sum(tf.nn.batch_normalization(a, mean, var, tf.constant(b), tf.constant(g), 1e-3) * dout))
numeric = (numerical_gradient(lambda a: _loss(a, gamma, beta), x), numerical_gradient(lambda g: _loss(x, g, beta), gamma),
           numerical_gradient(lambda b: _loss(x, gamma, b), beta))
got = batch_norm_backward(tf.constant(dout), tf.constant(x), tf.constant(gamma), 1e-3)
for value, expected, what in zip(got, numeric, ("dx", "dgamma", "dbeta")):
    check_close(value, expected, rtol=1e-5, atol=1e-7, name=f"batch_norm_backward {what} against the numerical gradient")
### END HIDDEN TESTS

# %% [markdown]
# Both checks in float64, side by side: GradientTape through TensorFlow's batch
# normalisation, and the numerical gradient, which needs no calculus at all.

# %%
rng = np.random.default_rng(3)
x, dout = rng.normal(size=(4, 3, 3, 2)) * 2 + 1, rng.normal(size=(4, 3, 3, 2))
gamma = np.array([1.5, -0.5])
dx, dgamma, dbeta = batch_norm_backward(tf.constant(dout), tf.constant(x), tf.constant(gamma))
tape_dx, tape_dgamma, _ = autograd_batch_norm_grads(tf.constant(dout), tf.constant(x), tf.constant(gamma), 1e-3)


def bn_loss(a):
    mean, var = tf.nn.moments(tf.constant(a), axes=[0, 1, 2])
    return float(tf.reduce_sum(tf.nn.batch_normalization(tf.constant(a), mean, var, None, tf.constant(gamma), 1e-3) * dout))


numeric_dx = numerical_gradient(bn_loss, x)
print(f"dx:     relative error against GradientTape {rel_error(dx, tape_dx):.2e}, "
      f"against the numerical gradient {rel_error(dx, numeric_dx):.2e}")
print(f"dgamma: relative error against GradientTape {rel_error(dgamma, tape_dgamma):.2e}")

# %% [markdown]
# ## 10. Experiment: what each choice buys
# One small CNN (section 1's two conv blocks), trained on the same Fashion-MNIST images with
# the same seed, changing one thing at a time: the pooling (max, average, L2, L3, stochastic),
# the head (global average pooling instead of flatten + dense), and dropout (0.5 before the
# classifier) and batch normalisation (after each convolution) on the max-pooling network.
# The Lp and stochastic layers are yours, from the exercises.
#
# The batch-norm layers use `momentum=0.9` and `epsilon=1e-5`, PyTorch's defaults, so that
# both notebooks train the same networks, but for two differences that the frameworks
# impose: the moving variance (Keras stores the biased batch variance, PyTorch the
# unbiased one; with at least $n = 64 \cdot 14 \cdot 14$ values per channel they differ by
# less than 0.01%, and only at inference) and the initialisation of the layers (Keras'
# Glorot uniform against PyTorch's Kaiming uniform), so the same seed does not give the
# same weights. With Keras' default 0.99 the moving averages follow the changing
# weights too slowly for a run this short: measured with the `standard` profile, the two
# batch-norm rows then scored 55% and 58% test accuracy, against 87% and 83% with 0.9,
# although their training accuracy was as good. A short training run with batch norm
# wants the faster momentum, or more epochs.

# %%
POOLS = {"max": lambda: keras.layers.MaxPool2D(2), "avg": lambda: keras.layers.AveragePooling2D(2),
         "L2": lambda: LpPool2D(2, 2), "L3": lambda: LpPool2D(3, 2), "stochastic": lambda: StochasticPool2D(2)}


def build_net(pool="max", head="flatten", dropout_rate=0.0, batchnorm=False):
    """The experiment's CNN, compiled: (N, 28, 28, 1) -> (N, 10) logits."""
    layers = [keras.Input((28, 28, 1)), *conv_stack(POOLS[pool], batchnorm)]
    if head == "gap":
        layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(dropout_rate), keras.layers.Dense(10)]
    else:
        layers += [keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(dropout_rate),
                   keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


RUNS = {
    "max": dict(pool="max"), "avg": dict(pool="avg"), "L2": dict(pool="L2"), "L3": dict(pool="L3"),
    "stochastic": dict(pool="stochastic"), "max, GAP head": dict(pool="max", head="gap"),
    "max + dropout": dict(pool="max", dropout_rate=0.5), "max + batch norm": dict(pool="max", batchnorm=True),
    "max + BN + dropout": dict(pool="max", batchnorm=True, dropout_rate=0.5),
}
if PROFILE == "smoke":  # every pooling, head and regulariser still runs, in five networks instead of nine
    RUNS = {name: RUNS[name] for name in ("avg", "L3", "stochastic", "max, GAP head", "max + BN + dropout")}
EPOCHS = pick(smoke=1, standard=3, full=15)
train_data = cu.make_loader(fashion.x_train, fashion.y_train, batch_size=64, shuffle=True, seed=SEED)
val_data = cu.make_loader(fashion.x_val, fashion.y_val, batch_size=512)
test_data = cu.make_loader(fashion.x_test, fashion.y_test, batch_size=512)

results, histories = [], {}
for name, options in RUNS.items():
    cu.seed_everything(SEED)
    net = build_net(**options)
    histories[name] = cu.train(net, train_data, val_data, epochs=EPOCHS, verbose=False)
    test = cu.evaluate(net, test_data)
    results.append((name, cu.count_params(net), np.mean(histories[name]["epoch_time"]), test["accuracy"]))
    print(f"{name:>20}: test accuracy {test['accuracy']:.2%}")

# %%
print(f"{'network':>20} | {'parameters':>10} | {'time / epoch':>12} | {'test accuracy':>13}")
print("-" * 64)
for name, params, seconds, accuracy in results:
    print(f"{name:>20} | {params:>10,} | {seconds:>10.2f} s | {accuracy:>13.2%}")
plots.plot_history({name: histories[name] for name in ("max", "avg", "L2", "stochastic", "max, GAP head")
                    if name in histories},
                   metrics=("loss", "accuracy"))
plt.show()
plots.plot_history({name: histories[name] for name in ("max", "max + dropout", "max + batch norm", "max + BN + dropout")
                    if name in histories},
                   metrics=("loss", "accuracy"))
plt.show()

# %% [markdown]
# How to read the table (the numbers depend on the profile: `standard` trains each network
# for 3 epochs on 6,000 images, `full` for 15 on all of them; with so little training, a
# difference of a percent or two between two rows is within the noise of the seed):
#
# * **Max against average** pooling: max usually wins a little on images whose features are
#   sharp strokes and edges; L2 and L3 land between them. The sum-form L2 and L3 poolings
#   also scale their outputs (a flat 2×2 window: ×2 and ×1.59 per pooling, ×4 and ×2.5
#   after both blocks), so their rows compare a pooling *and* a larger input to the dense
#   layers; the mean form, or a normalisation after the pooling, would separate the two.
# * **Stochastic pooling** learns more slowly (its training outputs are noisy) and pays off
#   only with longer training, when its regularisation matters.
# * The **global-average head** has hundreds of times fewer parameters; with only two conv
#   layers it is less accurate, since 32 averages say little about *where* things are.
#   Deeper networks with many channels close that gap: a global-average head is the mark of
#   Network-in-Network (Lin et al., 2013), GoogLeNet and ResNet, while VGG (lesson 03) still
#   ends in a flatten and large dense layers.
# * **Dropout** slows the fall of the training loss and narrows the gap between training and
#   validation curves; **batch normalisation** speeds up early training markedly. (Keras'
#   batch norm also counts its moving statistics as parameters: 2 × 48 more than PyTorch.)
#
# ## Summary
# * Pooling shrinks maps, adds tolerance to small shifts and has no parameters; its backward
#   pass routes each window's gradient to the arg-max (max) or spreads it evenly (average).
# * Lp pooling spans sum (p = 1) to max (p → ∞); stochastic pooling samples in proportion to
#   the activations and averages at inference.
# * Global pooling replaces a flatten + dense head with almost no parameters.
# * Inverted dropout scales at training time; batch norm uses batch statistics in training
#   and moving averages at inference, with momentum conventions that differ between Keras
#   (0.99, biased moving variance) and PyTorch (0.1, unbiased running variance). In training
#   its gradient flows through the batch mean and variance as well as directly.
