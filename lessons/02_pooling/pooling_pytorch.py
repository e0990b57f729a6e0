# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 02 · Pooling, dropout and batch normalisation (PyTorch)
#
# Lesson 01's CNN had one convolution, one max pooling and a dense layer holding 99.8% of
# its parameters. This lesson looks at the layers that sit between convolutions and make
# deeper networks small, robust and trainable:
#
# 1. max and average pooling, forward and backward, written by you;
# 2. Lp pooling and stochastic pooling as layers of your own;
# 3. global pooling, and what it does to the parameter count;
# 4. dropout and batch normalisation from scratch, checked against PyTorch's layers, and
#    batch normalisation's backward pass by hand;
# 5. an experiment on Fashion-MNIST that measures what each choice buys.
#
# The TensorFlow notebook of this lesson has the same headings, data, seeds and exercises.
# In each answer cell, replace the two lines `# YOUR CODE HERE` and
# `raise NotImplementedError()` with your code, run the test cell below it, and press
# *Validate* before you submit. Each exercise says what you may use. "From scratch" means
# with tensor operations: the tests read your answer's code (and the helpers it calls) for
# the built-in it replaces, so an alias or a wrapper does not hide it.

# %% [markdown]
# ## Set-up
# *Helper cell*: imports, versions, profile and device.

# %%

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from course_utils import plots
from course_utils import torch as cu
from course_utils.checks import check_close, check_equal, check_shape, numerical_gradient, rel_error, to_numpy
from course_utils.data import load_fashion_mnist
from course_utils.guards import check_from_scratch
from course_utils.profiles import current_profile, pick

assert tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4), "this lesson needs PyTorch 2.4 or newer"
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
def conv_stack(pool_layer=lambda: nn.MaxPool2d(2), batchnorm=False):
    """Two conv blocks: (N, 1, 28, 28) -> (N, 32, 7, 7)."""
    layers = []
    for c_in, c_out in [(1, 16), (16, 32)]:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1)]
        layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
        layers += [nn.ReLU(), pool_layer()]
    return nn.Sequential(*layers)


flatten_head = nn.Sequential(conv_stack(), nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
gap_head = nn.Sequential(conv_stack(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
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
# darkened by zeros that were never there. That is the only behaviour of Keras'
# `AveragePooling2D`, but **not PyTorch's default**: `F.avg_pool2d` and `nn.AvgPool2d` count
# the padded zeros (`count_include_pad=True`) unless you pass `count_include_pad=False`.

# %% [markdown]
# ### Exercise 1: `pool2d` (3 points)
# Write `pool2d(x, size, stride=None, padding=0, mode="max")` for `mode` `"max"` or `"avg"`,
# with tensor operations (slicing, `F.pad`, `unfold`, `torch.stack`, `amax`, `sum`, ...). Not
# allowed: any pooling function or layer of PyTorch (`F.max_pool2d`, `F.avg_pool2d`,
# `torch.max_pool2d`, `nn.MaxPool2d`, adaptive pooling, ...).
#
# * `x`: (N, C, H, W); returns (N, C, H_out, W_out)
# * `stride=None` means `stride = size`
# * max: padded cells are $-\infty$; avg: padded cells are not counted

# %% nbgrader={"grade": false, "grade_id": "pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pool2d(x, size, stride=None, padding=0, mode="max"):
    """Max or average pooling per channel. x: (N, C, H, W) -> (N, C, H_out, W_out)."""
    ### BEGIN SOLUTION
    if mode not in ("max", "avg"):
        raise ValueError(f"mode should be 'max' or 'avg', not {mode!r}")
    stride = stride or size
    n, c, h, w = x.shape
    h_out = (h + 2 * padding - size) // stride + 1
    w_out = (w + 2 * padding - size) // stride + 1
    fill = float("-inf") if mode == "max" else 0.0
    xp = F.pad(x, (padding, padding, padding, padding), value=fill)
    real = F.pad(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device), (padding, padding, padding, padding))

    def windows(t):  # (size*size, ..., h_out, w_out): every offset of the window
        return torch.stack([t[:, :, u:u + stride * h_out:stride, v:v + stride * w_out:stride]
                            for u in range(size) for v in range(size)])

    if mode == "max":
        return windows(xp).amax(dim=0)
    return windows(xp).sum(dim=0) / windows(real).sum(dim=0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pool2d_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_builtin_pooling = [torch._C, torch.ops] + [getattr(m, k) for m in (torch, F, nn) for k in dir(m)
                                            if "pool" in k.lower() and callable(getattr(m, k))]
check_from_scratch(pool2d, _builtin_pooling, name="pool2d",
                   allowed="Use tensor operations (slicing, F.pad, unfold, stack, amax, sum), no pooling function or layer.")
x = torch.arange(16.0).view(1, 1, 4, 4)
check_equal(pool2d(x, 2), torch.tensor([[[[5.0, 7.0], [13.0, 15.0]]]]), name="pool2d(x, 2) (max)")
check_close(pool2d(x, 2, mode="avg"), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]), name="pool2d(x, 2, mode='avg')")
### BEGIN HIDDEN TESTS
torch.manual_seed(0)
for shape, size, stride, padding in [((2, 3, 6, 6), 2, None, 0), ((1, 2, 7, 5), 3, 2, 1), ((2, 1, 8, 8), 3, 1, 1),
                                     ((1, 2, 5, 5), 2, 2, 1), ((1, 1, 9, 7), 4, 3, 2)]:
    x = torch.randn(*shape)  # negative values too: zero padding would win a max
    expected_max = F.max_pool2d(x, size, stride or size, padding)  # the references first, then pool2d on copies
    expected_avg = F.avg_pool2d(x, size, stride or size, padding, count_include_pad=False)
    check_close(pool2d(x.clone(), size, stride, padding, mode="max"), expected_max,
                name=f"max pool2d of {shape}, size {size}, stride {stride}, padding {padding}")
    check_close(pool2d(x.clone(), size, stride, padding, mode="avg"), expected_avg, rtol=1e-5, atol=1e-6,
                name=f"avg pool2d of {shape}, size {size}, stride {stride}, padding {padding} (padding not counted)")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Max pooling backward
# Max pooling passes on one value per window, so in the backward pass the upstream gradient
# of each output goes to the single input that was the maximum (its *arg-max*) and every
# other input of the window gets zero. Two details decide whether an implementation is right:
#
# * **ties**: when several cells share the maximum, only one of them was passed on, so only
#   one receives the gradient (PyTorch and TensorFlow pick the first in row-major order);
# * **overlapping windows** (stride < size): one input can be the maximum of several windows,
#   and its gradients from each of them add up.

# %% [markdown]
# ### Exercise 2: `max_pool2d_backward` (3 points)
# Write `max_pool2d_backward(dout, x, size, stride=None)` returning `dx`, the gradient of the
# loss with respect to `x`, for max pooling without padding.
#
# * `x`: (N, C, H, W), the forward input; `dout`: (N, C, H_out, W_out), the upstream gradient
# * each window's gradient goes to the first maximum in row-major order (the first cell of
#   the window's top row that holds the maximum, else of the next row, ...); overlapping
#   windows accumulate
# * by hand, with tensor operations (`argmax`, `amax`, `scatter_`, indexing, loops over the
#   windows, ...). Not allowed: autograd (`.backward()`, `torch.autograd`, `torch.func`;
#   the tests call your function under `torch.no_grad()`), `numerical_gradient`, and
#   PyTorch's pooling functions and layers.

# %% nbgrader={"grade": false, "grade_id": "max_pool2d_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool2d_backward(dout, x, size, stride=None):
    """Gradient of max pooling. dout: (N, C, H_out, W_out), x: (N, C, H, W) -> dx: (N, C, H, W)."""
    ### BEGIN SOLUTION
    stride = stride or size
    n, c, h_out, w_out = dout.shape
    dx = torch.zeros_like(x)
    for i in range(h_out):
        for j in range(w_out):
            rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
            window = x[:, :, rows, cols].reshape(n, c, size * size)
            first_max = window.argmax(dim=2, keepdim=True)  # argmax returns the first of tied maxima
            grad = torch.zeros_like(window).scatter_(2, first_max, dout[:, :, i:i + 1, j].reshape(n, c, 1))
            dx[:, :, rows, cols] += grad.view(n, c, size, size)
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "max_pool2d_backward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_autograd = [torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward, torch.autograd.functional,
             torch.autograd.forward_ad, torch.autograd.Function, torch.func, torch.enable_grad, torch.set_grad_enabled,
             torch.Tensor.requires_grad_, numerical_gradient, torch._C, torch.ops]
_builtin_pooling = [getattr(m, k) for m in (torch, F, nn) for k in dir(m) if "pool" in k.lower() and callable(getattr(m, k))]
check_from_scratch(max_pool2d_backward, _autograd + _builtin_pooling, name="max_pool2d_backward",
                   allowed="Route each window's gradient by hand with tensor operations (argmax, scatter_, indexing).")
# Called under torch.no_grad(), here and below: the gradient must come by hand, not from autograd.
x = torch.tensor([[[[1.0, 6.0, 2.0, 0.0], [5.0, 3.0, 7.0, 4.0], [9.0, 8.0, 0.0, 1.0], [2.0, 4.0, 3.0, 5.0]]]])
dout = torch.tensor([[[[10.0, 20.0], [30.0, 40.0]]]])
with torch.no_grad():
    dx = max_pool2d_backward(dout, x, 2)
check_shape(dx, (1, 1, 4, 4), name="max_pool2d_backward(dout, x, 2)")
check_equal(dx, torch.tensor([[[[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0], [30.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 40.0]]]]),
            name="max_pool2d_backward(dout, x, 2): each window's gradient on its maximum (6, 7, 9, 5)")
x = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 8.0]]]])  # 9 is the maximum of all four windows
with torch.no_grad():
    dx = max_pool2d_backward(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), x, 2, stride=1)
check_equal(dx, torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]]]]),
            name="max_pool2d_backward with size 2, stride 1 (overlapping windows add up at the shared maximum)")
### BEGIN HIDDEN TESTS
def _autograd_max_pool_grad(x, dout, size, stride=None):
    x = x.clone().requires_grad_(True)
    F.max_pool2d(x, size, stride or size).backward(dout)
    return x.grad

torch.manual_seed(1)
for shape, size, stride, dtype in [((1, 2, 7, 7), 3, 2, torch.float64), ((2, 1, 5, 6), 2, 1, torch.float64),
                                   ((1, 1, 6, 6), 3, 3, torch.float64), ((1, 1, 5, 5), 2, None, torch.float64),
                                   ((2, 3, 6, 4), 2, None, torch.float32), ((1, 2, 8, 5), 4, 2, torch.float32)]:
    x = torch.randn(*shape, dtype=dtype)
    out_shape = F.max_pool2d(x, size, stride or size).shape
    dout = torch.randn(*out_shape, dtype=dtype)
    expected = _autograd_max_pool_grad(x, dout, size, stride)  # the reference first, then the answer on copies
    with torch.no_grad():
        got = max_pool2d_backward(dout.clone(), x.clone(), size, stride)
    check_close(got, expected,
                name=f"max_pool2d_backward for x {shape}, size {size}, stride {stride} (overlapping windows add up)")
# Ties: the gradient goes to the FIRST maximum in row-major order, never to a later one or to several.
x = torch.tensor([[1.0, 3.0, 0.0, 2.0], [3.0, 0.0, 2.0, 2.0], [5.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]])
x = torch.stack([x, x.flip(1)]).unsqueeze(0)  # (1, 2, 4, 4): the second channel mirrored left-right
dout = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 2, 2, 2)
expected = torch.tensor([[[[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
                          [[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
with torch.no_grad():
    dx = max_pool2d_backward(dout, x, 2)
check_equal(dx, expected, name="max_pool2d_backward with tied maxima (the first in row-major order gets the gradient)")
x = torch.tensor([[[[0.0, 1.0, 4.0, 0.0], [4.0, 2.0, 3.0, 4.0], [1.0, 4.0, 0.0, 4.0]]]])  # one 3x3 window, ties
with torch.no_grad():
    dx = max_pool2d_backward(torch.tensor([[[[5.0]]]]), x, 3)
check_equal(dx, torch.tensor([[[[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]),
            name="max_pool2d_backward of a 3x3 window whose maximum 4 appears three times (the last column is dropped)")
x = torch.tensor([[[[2.0, 2.0, 1.0], [2.0, 2.0, 1.0], [0.0, 0.0, 0.0]]]])  # overlapping windows with ties
with torch.no_grad():
    dx = max_pool2d_backward(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), x, 2, 1)
check_equal(dx, torch.tensor([[[[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]]),
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
torch.manual_seed(2)
x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
dout = torch.randn(1, 2, 2, 2, dtype=torch.float64)
loss = lambda a: (F.max_pool2d(torch.from_numpy(a), 3, 3) * dout).sum().item()  # a: float64 numpy, x's shape  # noqa: E731
numeric = numerical_gradient(loss, x)
analytic = max_pool2d_backward(dout, x, 3)
print(f"relative error, analytic vs numerical gradient: {rel_error(analytic, numeric):.2e}")

# %% [markdown]
# ## 5. Lp pooling
# Lp pooling takes the $p$-norm of each window,
# $$ y = \Big(\sum_{i \in \text{window}} x_i^{\,p}\Big)^{1/p}, $$
# for non-negative inputs (they follow a ReLU). $p = 1$ gives the window's **sum** (average
# pooling times the window size); as $p$ grows, the largest value dominates and $y$ tends to
# the **maximum**. $p = 2$ (the root of the sum of squares) was used in early CNNs and in
# models of complex cells in the visual cortex. PyTorch has it as `nn.LPPool2d`.
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
# Complete the module: `forward` returns the sum-form $p$-norm of each `size`×`size` window
# with the given stride (default: `size`), no padding, for non-negative `x` of shape
# (N, C, H, W) and any $p \ge 1$. You may use any tensor operation, `F.avg_pool2d` and
# `F.max_pool2d` included, but not `nn.LPPool2d` or `F.lp_pool2d`.
#
# Two numerical traps, both tested:
#
# * **large $p$**: $x^p$ underflows. In float32, $0.1^{64} = 10^{-64}$ is below the smallest
#   number (about $10^{-45}$), so a window of 0.1's would come out 0. Scale by the
#   window's maximum $m$: $y = m \big(\sum_i (x_i/m)^p\big)^{1/p}$, where the sum lies
#   between 1 and the number of cells. `x.unfold(2, size, stride).unfold(3, size, stride)`
#   gives every window, shape (N, C, H_out, W_out, size, size).
# * **windows of zeros** (common after a ReLU): $m = 0$, and the derivative of $s^{1/p}$
#   at $s = 0$ is infinite, which turns the gradients into NaN. Return 0 there with a
#   gradient of 0: replace $m$ and the sum by 1 in those windows before dividing and taking
#   the root (`torch.where(m > 0, m, 1)`), and select the output with
#   `torch.where(m > 0, ..., 0)`. A tiny floor instead (`s.clamp_min(1e-30)` before the
#   root) is not exact: with $p = 64$ the window 0.3, 0.2, 0.1, 0.05 would give 0.34
#   instead of 0.30.

# %% nbgrader={"grade": false, "grade_id": "lp_pool", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LpPool2D(nn.Module):
    """Lp pooling: (N, C, H, W) -> (N, C, H_out, W_out), y = (sum of x^p over the window)^(1/p)."""

    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size

    def forward(self, x):
        ### BEGIN SOLUTION
        windows = x.unfold(2, self.size, self.stride).unfold(3, self.size, self.stride)  # (N, C, Ho, Wo, k, k)
        m = windows.amax(dim=(-2, -1))
        nonzero = m > 0
        m_safe = torch.where(nonzero, m, torch.ones_like(m))
        s = (windows / m_safe[..., None, None]).pow(self.p).sum(dim=(-2, -1))  # between 1 and k*k: no underflow
        s_safe = torch.where(nonzero, s, torch.ones_like(s))  # a finite gradient in windows of zeros
        return torch.where(nonzero, m_safe * s_safe.pow(1.0 / self.p), torch.zeros_like(m))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lp_pool_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(LpPool2D, [nn.LPPool1d, nn.LPPool2d, nn.LPPool3d, F.lp_pool1d, F.lp_pool2d, F.lp_pool3d],
                   name="LpPool2D", allowed="Write the p-norm of the windows with tensor operations.")
x = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]]]])
check_close(LpPool2D(2, 2)(x), torch.tensor([[[[5.0]]]]), name="LpPool2D(2, 2) of a window 3, 4, 0, 0")
torch.manual_seed(0)
x = torch.rand(2, 3, 6, 6)
expected = nn.LPPool2d(2, 2)(x)  # the reference first, then LpPool2D on a copy
check_close(LpPool2D(2, 2)(x.clone()), expected, rtol=1e-5, name="LpPool2D(2, 2)")
x = torch.tensor([[[[0.3, 0.2], [0.1, 0.05]]]])
check_close(LpPool2D(64, 2)(x), torch.tensor([[[[0.3]]]]), rtol=1e-5, atol=0,
            name="LpPool2D(64, 2) of a window 0.3, 0.2, 0.1, 0.05 in float32")
### BEGIN HIDDEN TESTS
def _reference_lp(x, p, size, stride):  # in float64, scaled by each window's maximum
    w = x.double().unfold(2, size, stride).unfold(3, size, stride)
    m = w.amax(dim=(-2, -1))
    s = (w / torch.where(m > 0, m, 1.0)[..., None, None]).pow(p).sum(dim=(-2, -1))
    return torch.where(m > 0, m * s.pow(1.0 / p), 0.0)

torch.manual_seed(1)
x = torch.rand(2, 3, 7, 7) * 3
for p, size, stride in [(3, 2, None), (2, 3, 2), (1.5, 2, 1), (4, 3, 3)]:
    expected = nn.LPPool2d(p, size, stride)(x)
    check_close(LpPool2D(p, size, stride)(x.clone()), expected, rtol=1e-4, atol=1e-5,
                name=f"LpPool2D(p={p}, size={size}, stride={stride})")
expected = F.avg_pool2d(x, 2) * 4
check_close(LpPool2D(1, 2)(x.clone()), expected, rtol=1e-5, name="LpPool2D with p=1 (the window sum)")
expected = nn.LPPool2d(2, 2)(x.double())
check_close(LpPool2D(2, 2)(x.double()), expected, rtol=1e-10, atol=1e-12, name="LpPool2D in float64")
# Large p, in float32: exact, also where x^p underflows.
x = torch.rand(2, 3, 8, 8) * 3
x[0, 0, :2, :2] = torch.tensor([[0.1, 0.1], [0.05, 0.0]])
x[0, 1, :2, :2] = torch.tensor([[0.02, 0.01], [0.03, 0.0]])
x[1, 2, 4:6, 2:4] = torch.tensor([[0.3, 0.2], [0.1, 0.05]])
x[1, 0] = torch.rand(8, 8) * 0.2
for p, size, stride in [(64, 2, None), (32, 2, None), (40, 3, 1), (16, 3, 3)]:
    expected = _reference_lp(x, p, size, stride or size)
    check_close(LpPool2D(p, size, stride)(x.clone()), expected, rtol=2e-5, atol=1e-30,
                name=f"LpPool2D(p={p}, size={size}, stride={stride}) in float32, with windows of small values")
# Windows of zeros, for small and large p: 0, with a finite gradient of 0.
for p in (2, 64):
    out = LpPool2D(p, 2)(torch.zeros(1, 1, 4, 4))
    assert not torch.isnan(out).any(), f"LpPool2D(p={p}) of zeros gives NaN"
    check_equal(out, torch.zeros(1, 1, 2, 2), name=f"LpPool2D(p={p}) of zeros")
    x = torch.cat([torch.zeros(1, 1, 2, 4), torch.rand(1, 1, 2, 4) + 0.1], dim=2).requires_grad_(True)
    LpPool2D(p, 2)(x).sum().backward()
    assert torch.isfinite(x.grad).all(), f"the gradient of LpPool2D(p={p}) is NaN or infinite where a window is all zeros"
    check_close(x.grad[0, 0, :2], torch.zeros(2, 4), name=f"the gradient of LpPool2D(p={p}) in windows of zeros")
# The gradient elsewhere (overlapping windows, float64) is nn.LPPool2d's.
x = (torch.rand(1, 2, 5, 5, dtype=torch.float64) + 0.1).requires_grad_(True)
nn.LPPool2d(3, 2, 1)(x).sum().backward()  # the reference first
expected, x.grad = x.grad, None
LpPool2D(3, 2, 1)(x).sum().backward()
check_close(x.grad, expected, rtol=1e-8, atol=1e-10, name="the gradient of LpPool2D(p=3, size=2, stride=1)")
### END HIDDEN TESTS

# %% [markdown]
# How $p$ moves Lp pooling between sum and max, on one window of four values:

# %%
window = torch.tensor([[[[0.2, 0.5], [0.9, 0.4]]]])
ps = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32]
values = [LpPool2D(p, 2)(window).item() for p in ps]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(ps, values, "o-", label="Lp pooling")
ax.axhline(window.sum().item(), color="C1", ls="--", label="sum (p = 1)")
ax.axhline(window.max().item(), color="C2", ls="--", label="max (p → ∞)")
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
# windows (stride = size, no padding), `x` (N, C, H, W) non-negative.
#
# * training: the sampled value of each window, choosing cell $i$ (row-major order) as the
#   first whose cumulative probability exceeds `u` (strictly: a cell of probability 0 is
#   never chosen); `u` (N, C, H_out, W_out) in [0, 1), drawn with `torch.rand` when `None`,
#   a new independent draw for every window (every example, channel and position) at every
#   call
# * inference: $\sum_i p_i a_i$
# * windows of zeros give 0 in both modes (no NaN)

# %% nbgrader={"grade": false, "grade_id": "stochastic_pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stochastic_pool2d(x, size, training, u=None):
    """Stochastic pooling. x: (N, C, H, W) >= 0 -> (N, C, H // size, W // size)."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    h_out, w_out = h // size, w // size
    windows = (x[:, :, :h_out * size, :w_out * size]
               .reshape(n, c, h_out, size, w_out, size)
               .permute(0, 1, 2, 4, 3, 5)
               .reshape(n, c, h_out, w_out, size * size))           # row-major cells of each window
    total = windows.sum(dim=-1, keepdim=True)
    probs = torch.where(total > 0, windows / total.clamp_min(1e-12), torch.zeros_like(windows))
    if not training:
        return (probs * windows).sum(dim=-1)
    if u is None:
        u = torch.rand(n, c, h_out, w_out, dtype=x.dtype, device=x.device)
    chosen = (probs.cumsum(dim=-1) <= u.unsqueeze(-1)).sum(dim=-1, keepdim=True).clamp(max=size * size - 1)
    return windows.gather(-1, chosen).squeeze(-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "stochastic_pool2d_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
x = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]]])  # probabilities 0.25, 0.75, 0, 0
check_close(stochastic_pool2d(x, 2, training=False), torch.tensor([[[[2.5]]]]), name="inference on the window 1, 3, 0, 0")
check_equal(stochastic_pool2d(x, 2, training=True, u=torch.tensor([[[[0.1]]]])), torch.tensor([[[[1.0]]]]),
            name="training with u = 0.1 (the first cell's cumulative probability 0.25 exceeds it)")
check_equal(stochastic_pool2d(x, 2, training=True, u=torch.tensor([[[[0.5]]]])), torch.tensor([[[[3.0]]]]),
            name="training with u = 0.5")
### BEGIN HIDDEN TESTS
def _reference_stochastic(x, size, training, u):
    n, c, h, w = x.shape
    ho, wo = h // size, w // size
    win = x[:, :, :ho * size, :wo * size].reshape(n, c, ho, size, wo, size).permute(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, -1)
    tot = win.sum(-1, keepdim=True)
    pr = torch.where(tot > 0, win / tot.clamp_min(1e-12), torch.zeros_like(win))
    if not training:
        return (pr * win).sum(-1)
    idx = (pr.cumsum(-1) <= u.unsqueeze(-1)).sum(-1, keepdim=True).clamp(max=size * size - 1)
    return win.gather(-1, idx).squeeze(-1)

torch.manual_seed(5)
x = torch.relu(torch.randn(2, 3, 7, 6, dtype=torch.float64))  # odd sizes: the last row is dropped
u = torch.rand(2, 3, 3, 3, dtype=torch.float64)
expected = [_reference_stochastic(x, 2, True, u), _reference_stochastic(x, 2, False, None),  # the references first,
            _reference_stochastic(x, 3, True, u[:, :, :2, :2])]                              # then the answer on copies
check_close(stochastic_pool2d(x.clone(), 2, True, u.clone()), expected[0], name="training output with given draws u")
check_close(stochastic_pool2d(x.clone(), 2, False), expected[1], name="inference output")
check_close(stochastic_pool2d(x.clone(), 3, True, u[:, :, :2, :2].clone()), expected[2], name="training output with 3x3 windows")
# Every training output is one of its window's values.
x = torch.relu(torch.randn(4, 2, 8, 8))
windows = x.reshape(4, 2, 4, 2, 4, 2).permute(0, 1, 2, 4, 3, 5).reshape(4, 2, 4, 4, 4).clone()
out = stochastic_pool2d(x, 2, True)
assert bool((windows == out.unsqueeze(-1)).any(-1).all()), "every training output must be a value of its window"
# The average over many draws approaches the inference output.
x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]).expand(1, 20_000, 2, 2).contiguous()
mean = stochastic_pool2d(x, 2, True).mean()
check_close(mean, torch.tensor(3.0), atol=0.05, name="the mean of 20,000 training draws (the expected value is 3.0)")
check_close(stochastic_pool2d(x[:, :1], 2, False), torch.tensor([[[[3.0]]]]), name="inference on 1, 2, 3, 4")
# u exactly on a cumulative probability, and u = 0: "exceeds" is strict, a cell of probability 0 never wins.
x = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]], [[[0.0, 1.0], [3.0, 0.0]]]])  # cumulative 0.25, 1, 1, 1 and 0, 0.25, 1, 1
check_equal(stochastic_pool2d(x, 2, True, torch.tensor([0.25, 0.0]).view(2, 1, 1, 1)), torch.tensor([3.0, 1.0]).view(2, 1, 1, 1),
            name="training with u = 0.25 on the window 1, 3, 0, 0 and u = 0 on 0, 1, 3, 0")
check_equal(stochastic_pool2d(x, 2, True, torch.tensor([0.75, 0.25]).view(2, 1, 1, 1)), torch.tensor([3.0, 3.0]).view(2, 1, 1, 1),
            name="training with u = 0.75 on the window 1, 3, 0, 0 and u = 0.25 on 0, 1, 3, 0")
# Without u: one independent draw per window, at every call. 4,096 windows 1, 2, 3, 4 (probabilities 0.1 to 0.4).
torch.manual_seed(7)
x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).repeat(8, 8, 8, 8)  # (8, 8, 16, 16)
first, second = stochastic_pool2d(x, 2, True), stochastic_pool2d(x, 2, True)
for value, prob in zip((1.0, 2.0, 3.0, 4.0), (0.1, 0.2, 0.3, 0.4)):
    share = (first == value).double().mean().item()
    assert abs(share - prob) < 0.04, f"the value {value} was chosen in {share:.1%} of the windows, expected {prob:.0%}"
# Independent draws agree in sum(p_i^2) = 30% of the windows; a draw shared along an axis, or repeated, in all of them.
for what, (a, b) in {"two successive calls": (first, second), "neighbouring windows in a row": (first[..., 1:], first[..., :-1]),
                     "neighbouring windows in a column": (first[:, :, 1:], first[:, :, :-1]),
                     "neighbouring channels": (first[:, 1:], first[:, :-1]), "neighbouring examples": (first[1:], first[:-1])}.items():
    same = (a == b).double().mean().item()
    assert 0.2 < same < 0.4, (f"{what} chose the same value in {same:.0%} of the windows; independent draws agree in "
                              "about 30%: draw a new u for every window at every call")
# Windows of zeros.
zeros = torch.zeros(1, 1, 4, 4)
for training in (True, False):
    out = stochastic_pool2d(zeros, 2, training)
    assert not torch.isnan(out).any(), f"a window of zeros gives NaN (training={training})"
    check_equal(out, torch.zeros(1, 1, 2, 2), name=f"windows of zeros (training={training})")
check_equal(stochastic_pool2d(x[:, :3], 2, False), stochastic_pool2d(x[:, :3], 2, False), name="inference twice")
### END HIDDEN TESTS

# %% [markdown]
# The layer around the function: sampling in training, the weighted average in `eval()` mode.

# %%
class StochasticPool2D(nn.Module):
    """Stochastic pooling of non-negative maps: (N, C, H, W) -> (N, C, H // size, W // size)."""

    def __init__(self, size=2):
        super().__init__()
        self.size = size

    def forward(self, x):
        return stochastic_pool2d(x, self.size, self.training)


torch.manual_seed(0)
window = torch.tensor([[[[0.2, 0.5], [0.9, 0.4]]]]).expand(1, 5000, 2, 2)
draws = stochastic_pool2d(window, 2, training=True).flatten()
cells = window[0, 0].flatten()
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(4), [(draws == v).float().mean().item() for v in cells], label="sampled, 5,000 draws")
ax.plot(range(4), (cells / cells.sum()).tolist(), "o", color="C1", label="p_i = a_i / Σ a_j")
ax.set_xticks(range(4), [f"a={v:.1f}" for v in cells.tolist()])
ax.set_ylabel("how often chosen")
ax.legend()
plt.show()

# %% [markdown]
# ## 7. Global pooling, and every pooling on one image
# **Global average pooling** averages each whole map to one number, **global max pooling**
# keeps each map's maximum: (N, C, H, W) becomes (N, C). Used instead of a flatten, they make
# the head independent of the image size and almost free of parameters (section 1).
#
# Below, a real image goes through one convolution with four hand-made filters (edges in two
# directions, a blur, a spot detector) and a ReLU, and then through each pooling type.

# %%
image = cu.to_tensor_images(fashion.x_test[:1])  # (1, 1, 28, 28)
filters = torch.tensor([
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
    [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]],
]).unsqueeze(1) / 4
maps = F.relu(F.conv2d(image, filters, padding=1))  # (1, 4, 28, 28)
pooled = {
    "max": F.max_pool2d(maps, 2), "average": F.avg_pool2d(maps, 2), "L2": LpPool2D(2, 2)(maps),
    "L3": LpPool2D(3, 2)(maps), "stochastic (train)": stochastic_pool2d(maps, 2, True),
    "stochastic (eval)": stochastic_pool2d(maps, 2, False),
}
fig, axes = plt.subplots(len(filters), len(pooled) + 1, figsize=(1.6 * (len(pooled) + 1), 1.7 * len(filters)))
for row in range(len(filters)):
    for col, (name, tensor) in enumerate([("feature map", maps), *pooled.items()]):
        axes[row, col].imshow(to_numpy(tensor[0, row]), cmap="magma")
        axes[row, col].axis("off")
        if row == 0:
            axes[row, col].set_title(f"{name}\n{tuple(tensor.shape[-2:])}", fontsize=8)
plt.show()
print("global average per map:", to_numpy(maps.mean(dim=(2, 3)))[0].round(3))
print("global max per map:    ", to_numpy(maps.amax(dim=(2, 3)))[0].round(3))

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
# $1/(1-p)$ at training time, and inference is then the identity (this is what PyTorch and
# Keras do).

# %% [markdown]
# ### Exercise 5: `dropout` (2 points)
# Write `dropout(x, p, training)`: in training, zero each element independently with
# probability `p` and scale the others by `1 / (1 - p)`; at inference return `x` unchanged.
# `p = 1` drops everything (return zeros, not NaN).
#
# * independently: a new random draw for every element at every call (not one mask shared
#   by a row or a map, not the same mask each call, not a fixed number of dropped elements)
# * with random numbers and tensor operations (`torch.rand_like`, `torch.bernoulli`, ...).
#   Not allowed: PyTorch's dropout functions and layers (`F.dropout`, `nn.Dropout`,
#   `torch.dropout`, ...).

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dropout(x, p, training):
    """Inverted dropout. x: any shape; p: the probability of dropping an element."""
    ### BEGIN SOLUTION
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep / (1 - p)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dropout_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(dropout, [torch._C, torch.ops] + [getattr(m, k) for m in (torch, F, nn) for k in dir(m)
                                                     if "dropout" in k.lower() and callable(getattr(m, k))],
                   name="dropout", allowed="Draw the mask yourself (torch.rand_like, torch.bernoulli).")
torch.manual_seed(0)
x = torch.ones(1000, 100)  # each call below gets a copy: dropout may work in place
check_equal(dropout(x.clone(), 0.5, training=False), x, name="dropout at inference")
out = dropout(x.clone(), 0.5, training=True)
check_shape(out, (1000, 100), name="dropout(x, 0.5, training=True)")
assert abs((out == 0).float().mean().item() - 0.5) < 0.02, "about half the elements should be dropped for p = 0.5"
check_close(out[out != 0], torch.full_like(out[out != 0], 2.0), name="the kept elements for p = 0.5 (scaled by 1 / (1 - p) = 2)")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
for p in (0.2, 0.7):
    out = dropout(x.clone(), p, training=True)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.02, f"with p = {p}, {dropped:.3f} of the elements were dropped"
    check_close(out[out != 0], torch.full_like(out[out != 0], 1 / (1 - p)), rtol=1e-5,
                name=f"the kept elements for p = {p} (scaled by 1 / (1 - p))")
    check_close(out.mean(), torch.tensor(1.0), atol=0.02, name=f"the mean after dropout with p = {p}")
x = torch.randn(50, 40)
check_equal(dropout(x.clone(), 0.3, training=False), x, name="dropout at inference (random x)")
check_equal(dropout(x.clone(), 0.0, training=True), x, name="dropout with p = 0 in training")
out = dropout(x.clone(), 1.0, training=True)
assert not torch.isnan(out).any(), "p = 1 gives NaN"
check_equal(out, torch.zeros_like(x), name="dropout with p = 1 in training")
x = torch.rand(300, 40) + 0.5
out = dropout(x.clone(), 0.3, training=True)
check_close(out[out != 0], x[out != 0] / 0.7, rtol=1e-5, name="the kept elements of a random x for p = 0.3 (x / (1 - p))")
# Independence: between neighbours along every axis and between successive calls (they agree half the time for p = 0.5).
torch.manual_seed(2)
x = torch.ones(40, 30, 20)
first, second = dropout(x.clone(), 0.5, True) == 0, dropout(x.clone(), 0.5, True) == 0
for what, (a, b) in {"two successive calls": (first, second), "neighbours along axis 0": (first[1:], first[:-1]),
                     "neighbours along axis 1": (first[:, 1:], first[:, :-1]),
                     "neighbours along axis 2": (first[:, :, 1:], first[:, :, :-1])}.items():
    same = (a == b).double().mean().item()
    assert 0.45 < same < 0.55, (f"{what} were both dropped or both kept in {same:.0%} of the elements; independent draws "
                                "agree in 50% for p = 0.5: draw a new mask for every element at every call")
# The number dropped varies like a binomial (variance n p (1 - p) = 5 for 20 elements): per call and per row.
counts = torch.tensor([float((dropout(torch.ones(20), 0.5, True) == 0).sum()) for _ in range(300)])
assert 3.0 < counts.var().item() < 7.5, (f"the number of dropped elements among 20 varies with variance {counts.var().item():.2f} "
                                         "over 300 calls, expected about 5: drop each element independently")
counts = (dropout(torch.ones(2000, 20), 0.5, True) == 0).sum(dim=1).double()
assert 3.0 < counts.var().item() < 7.5, (f"the number of dropped elements per row of 20 varies with variance "
                                         f"{counts.var().item():.2f}, expected about 5: drop each element independently")
# Same statistics as PyTorch's layer in both modes.
layer = nn.Dropout(0.4)
layer.train()
theirs = (layer(torch.ones(200_000)) == 0).float().mean().item()
ours = (dropout(torch.ones(200_000), 0.4, True) == 0).float().mean().item()
assert abs(theirs - ours) < 0.01, f"nn.Dropout drops {theirs:.3f}, dropout {ours:.3f}"
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
# updates **running averages** of them; at **inference** it uses the running averages, so
# the output of an example no longer depends on the others. The two frameworks write the
# update differently:
#
# | | PyTorch `BatchNorm2d` | Keras `BatchNormalization` |
# |---|---|---|
# | update | $r \leftarrow (1 - m)\,r + m\,\text{batch}$, $m = 0.1$ | $r \leftarrow m\,r + (1 - m)\,\text{batch}$, $m = 0.99$ |
# | variance stored | *unbiased* batch variance ($n - 1$) | biased batch variance ($n$) |
# | $\epsilon$ | $10^{-5}$ | $10^{-3}$ |
#
# PyTorch's `momentum=0.1` is Keras' `momentum=0.9`; Keras' default 0.99 forgets more slowly.

# %% [markdown]
# ### Exercise 6: `batch_norm` (3 points)
# Write `batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1,
# eps=1e-5)` with PyTorch's conventions, for `x` (N, C, H, W) and per-channel parameters
# and statistics of shape (C,). Return `(y, new_running_mean, new_running_var)`: in training
# normalise with the batch statistics and return updated running statistics; at inference
# normalise with the running statistics and return them unchanged. Do not modify the inputs.
# Use tensor operations (`mean`, `var`, `sqrt`, ...), not PyTorch's normalisation functions
# and layers (`F.batch_norm`, `nn.BatchNorm2d`, `F.instance_norm`, `F.layer_norm`, ...).

# %% nbgrader={"grade": false, "grade_id": "batch_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch normalisation per channel. x: (N, C, H, W); gamma, beta, running_*: (C,).
    Returns (y (N, C, H, W), new_running_mean (C,), new_running_var (C,))."""
    ### BEGIN SOLUTION
    if training:
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        n = x.numel() // x.shape[1]
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var, new_mean, new_var = running_mean, running_var, running_mean, running_var
    shape = (1, -1, 1, 1)
    x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    return gamma.view(shape) * x_hat + beta.view(shape), new_mean, new_var
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "batch_norm_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_builtin_norms = [torch._C, torch.ops] + [getattr(m, k) for m in (torch, F, nn) for k in dir(m)
                                          if ("_norm" in k or "Norm" in k) and callable(getattr(m, k))]
check_from_scratch(batch_norm, _builtin_norms, name="batch_norm", allowed="Use tensor operations (mean, var, sqrt).")
torch.manual_seed(0)
x = torch.randn(8, 3, 5, 5) * 2 + 1
gamma, beta = torch.ones(3), torch.zeros(3)
y, _, _ = batch_norm(x, gamma, beta, torch.zeros(3), torch.ones(3), training=True)
check_shape(y, (8, 3, 5, 5), name="batch_norm output")
check_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, name="the per-channel mean after batch_norm in training")
# One channel, four values 1, 2, 3, 6: batch mean 3, biased variance 3.5, unbiased variance 14/3.
x = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64).view(4, 1, 1, 1)
gamma, beta = torch.tensor([2.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
y, new_mean, new_var = batch_norm(x, gamma, beta, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                                  training=True, momentum=0.1, eps=1e-5)
check_close(y.flatten(), 2 * (x.flatten() - 3) / (3.5 + 1e-5) ** 0.5 + 1, name="training output (biased batch variance 3.5)")
check_close(new_mean, torch.tensor([0.9 * 0 + 0.1 * 3.0]), name="the new running mean, (1 - 0.1) * 0 + 0.1 * 3")
check_close(new_var, torch.tensor([0.9 * 1 + 0.1 * 14 / 3]), name="the new running variance, (1 - 0.1) * 1 + 0.1 * 14/3")
y, same_mean, same_var = batch_norm(x, gamma, beta, torch.tensor([1.0], dtype=torch.float64),
                                    torch.tensor([0.25], dtype=torch.float64), training=False, eps=1e-5)
check_close(y.flatten(), 2 * (x.flatten() - 1) / (0.25 + 1e-5) ** 0.5 + 1,
            name="inference output with running mean 1 and running variance 0.25 (not the batch's statistics)")
check_close(same_var, torch.tensor([0.25]), name="the running variance after inference (unchanged)")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
for shape, momentum, eps in [((8, 3, 5, 5), 0.1, 1e-5), ((4, 2, 3, 6), 0.3, 1e-3), ((16, 4, 2, 2), 0.01, 1e-5)]:
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 2
    c = shape[1]
    gamma, beta = torch.rand(c, dtype=torch.float64) + 0.5, torch.randn(c, dtype=torch.float64)
    mean0, var0 = torch.randn(c, dtype=torch.float64), torch.rand(c, dtype=torch.float64) + 0.5
    layer = nn.BatchNorm2d(c, eps=eps, momentum=momentum).double()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        layer.running_mean.copy_(mean0)
        layer.running_var.copy_(var0)
    saved = (x.clone(), mean0.clone(), var0.clone())
    layer.train()
    with torch.no_grad():
        expected = layer(x)
    y, new_mean, new_var = batch_norm(x, gamma, beta, mean0, var0, True, momentum, eps)
    check_close(y, expected, rtol=1e-6, atol=1e-8, name=f"training output for {shape} (batch statistics, biased variance)")
    check_close(new_mean, layer.running_mean, rtol=1e-6, atol=1e-10, name=f"the new running mean (momentum {momentum})")
    check_close(new_var, layer.running_var, rtol=1e-6, atol=1e-10,
                name=f"the new running variance (PyTorch stores the unbiased batch variance, momentum {momentum})")
    for before, after, what in zip(saved, (x, mean0, var0), ("x", "running_mean", "running_var")):
        check_equal(after, before, name=f"{what} after batch_norm (the inputs must not change)")
    layer.eval()
    with torch.no_grad():
        expected = layer(x)
    y, same_mean, same_var = batch_norm(x, gamma, beta, layer.running_mean, layer.running_var, False, momentum, eps)
    check_close(y, expected, rtol=1e-6, atol=1e-8, name=f"inference output for {shape} (running statistics)")
    check_close(same_mean, layer.running_mean, name="the running mean after inference (unchanged)")
    check_close(same_var, layer.running_var, name="the running variance after inference (unchanged)")
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
# Write `batch_norm_backward(dout, x, gamma, eps=1e-5)` returning `(dx, dgamma, dbeta)`, the
# gradients of $L = \sum \text{dout} \cdot y$ for batch normalisation in **training** mode
# (batch mean and biased variance, as in `batch_norm`'s training branch).
#
# * `x`, `dout`: (N, C, H, W); `gamma`: (C,); returns `dx` (N, C, H, W), `dgamma` and
#   `dbeta` (C,), all in the dtype of `x` (float32 or float64)
# * by hand, with tensor operations. Not allowed: autograd (`.backward()`,
#   `torch.autograd`, `torch.func`; the tests call your function under `torch.no_grad()`),
#   `numerical_gradient`, and PyTorch's normalisation functions and layers.

# %% nbgrader={"grade": false, "grade_id": "batch_norm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batch_norm_backward(dout, x, gamma, eps=1e-5):
    """Gradients of training-mode batch normalisation. dout, x: (N, C, H, W); gamma: (C,).
    Returns (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    ### BEGIN SOLUTION
    axes, shape = (0, 2, 3), (1, -1, 1, 1)
    m = x.numel() // x.shape[1]
    mean = x.mean(dim=axes, keepdim=True)
    inv_std = 1.0 / torch.sqrt(x.var(dim=axes, unbiased=False, keepdim=True) + eps)
    x_hat = (x - mean) * inv_std
    dbeta = dout.sum(dim=axes)
    dgamma = (dout * x_hat).sum(dim=axes)
    dx = gamma.view(shape) * inv_std / m * (m * dout - dbeta.view(shape) - x_hat * dgamma.view(shape))
    return dx, dgamma, dbeta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "batch_norm_backward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
_autograd = [torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward, torch.autograd.functional,
             torch.autograd.forward_ad, torch.autograd.Function, torch.func, torch.enable_grad, torch.set_grad_enabled,
             torch.Tensor.requires_grad_, numerical_gradient, torch._C, torch.ops]
_builtin_norms = [getattr(m, k) for m in (torch, F, nn) for k in dir(m) if ("_norm" in k or "Norm" in k) and callable(getattr(m, k))]
check_from_scratch(batch_norm_backward, _autograd + _builtin_norms, name="batch_norm_backward",
                   allowed="Compute the gradients by hand with tensor operations.")


def autograd_batch_norm_grads(dout, x, gamma, eps):
    """The reference: autograd through PyTorch's own batch norm in training mode."""
    x, gamma = x.clone().requires_grad_(True), gamma.clone().requires_grad_(True)
    beta = torch.zeros_like(gamma, requires_grad=True)
    (F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps) * dout).sum().backward()
    return x.grad, gamma.grad, beta.grad


torch.manual_seed(0)
x = torch.randn(4, 3, 5, 2, dtype=torch.float64) * 2 + 1
dout, gamma = torch.randn(4, 3, 5, 2, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
reference = autograd_batch_norm_grads(dout, x, gamma, 1e-5)  # the reference first, then the answer on copies
with torch.no_grad():  # the gradients must come by hand, not from autograd
    got = batch_norm_backward(dout.clone(), x.clone(), gamma.clone())
assert isinstance(got, tuple) and len(got) == 3, "batch_norm_backward should return a tuple (dx, dgamma, dbeta)"
for value, expected, shape, what in zip(got, reference, [(4, 3, 5, 2), (3,), (3,)],
                                        ("dx", "dgamma", "dbeta")):
    check_shape(value, shape, name=f"batch_norm_backward(...) {what}")
    check_close(value, expected, rtol=1e-7, atol=1e-9, name=f"batch_norm_backward(...) {what} against autograd")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
cases = [((2, 1, 1, 1), 1e-5, "two values per channel (biased against unbiased variance differ by 2x)"),
         ((3, 4, 2, 5), 1e-5, "C, H and W all different"), ((5, 2, 3, 3), 0.5, "a large eps"),
         ((2, 3, 4, 1), 1e-3, "a channel of nearly constant values"), ((6, 5, 3, 2), 1e-5, "float32")]
for shape, eps, what in cases:
    dtype = torch.float32 if what == "float32" else torch.float64
    x = torch.randn(*shape, dtype=dtype) * 3 + torch.randn(1, shape[1], 1, 1, dtype=dtype)
    if what.startswith("a channel"):
        x[:, 1] = 2.0 + 0.01 * torch.randn(shape[0], *shape[2:], dtype=dtype)
    dout = torch.randn(*shape, dtype=dtype) + torch.randn(1, shape[1], 1, 1, dtype=dtype)  # a non-zero mean per channel
    gamma = torch.randn(shape[1], dtype=dtype)  # negative scales too
    reference = autograd_batch_norm_grads(dout, x, gamma, eps)
    with torch.no_grad():
        got = batch_norm_backward(dout.clone(), x.clone(), gamma.clone(), eps)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-9)
    for value, expected, what_grad in zip(got, reference, ("dx", "dgamma", "dbeta")):
        check_shape(value, expected.shape, name=f"batch_norm_backward {what_grad} for x {shape}")
        assert value.dtype == dtype, f"batch_norm_backward {what_grad} should be {dtype}, got {value.dtype}"
        check_close(value, expected, **tol, name=f"batch_norm_backward {what_grad} for x {shape}, eps {eps} ({what})")
# An upstream gradient that is constant per channel moves y by a constant: dx = 0 (the mean's path cancels it).
x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
with torch.no_grad():
    dx, dgamma, dbeta = batch_norm_backward(torch.ones_like(x) * torch.tensor([1.5, -2.0], dtype=torch.float64).view(1, 2, 1, 1),
                                            x, torch.tensor([0.7, 1.3], dtype=torch.float64))
check_close(dx, torch.zeros_like(x), atol=1e-10, name="dx for an upstream gradient constant per channel")
check_close(dbeta, torch.tensor([1.5 * 36, -2.0 * 36]), name="dbeta for an upstream gradient constant per channel")
# A numerical gradient of L = sum(dout * y), y from PyTorch's batch norm, in float64, for x, gamma and beta.
x, dout = torch.randn(3, 2, 2, 2, dtype=torch.float64), torch.randn(3, 2, 2, 2, dtype=torch.float64)
gamma, beta = torch.tensor([1.7, -0.6], dtype=torch.float64), torch.tensor([0.3, 0.1], dtype=torch.float64)
def _loss(a, g, b):
    return float((F.batch_norm(torch.from_numpy(a), None, None, torch.from_numpy(g), torch.from_numpy(b), training=True,
                               eps=1e-5) * dout).sum())
numeric = (numerical_gradient(lambda a: _loss(a, gamma.numpy(), beta.numpy()), x),
           numerical_gradient(lambda g: _loss(x.numpy(), g, beta.numpy()), gamma),
           numerical_gradient(lambda b: _loss(x.numpy(), gamma.numpy(), b), beta))
with torch.no_grad():
    got = batch_norm_backward(dout, x, gamma, 1e-5)
for value, expected, what in zip(got, numeric, ("dx", "dgamma", "dbeta")):
    check_close(value, expected, rtol=1e-5, atol=1e-7, name=f"batch_norm_backward {what} against the numerical gradient")
### END HIDDEN TESTS

# %% [markdown]
# Both checks in float64, side by side: autograd through PyTorch's batch norm, and the
# numerical gradient, which needs no calculus at all.

# %%
torch.manual_seed(3)
x, dout = torch.randn(4, 2, 3, 3, dtype=torch.float64) * 2 + 1, torch.randn(4, 2, 3, 3, dtype=torch.float64)
gamma = torch.tensor([1.5, -0.5], dtype=torch.float64)
dx, dgamma, dbeta = batch_norm_backward(dout, x, gamma)
numeric_dx = numerical_gradient(
    lambda a: float((F.batch_norm(torch.from_numpy(a), None, None, gamma, None, training=True) * dout).sum()), x)
print(f"dx:     relative error against autograd {rel_error(dx, autograd_batch_norm_grads(dout, x, gamma, 1e-5)[0]):.2e}, "
      f"against the numerical gradient {rel_error(dx, numeric_dx):.2e}")
print(f"dgamma: relative error against autograd {rel_error(dgamma, autograd_batch_norm_grads(dout, x, gamma, 1e-5)[1]):.2e}")

# %% [markdown]
# ## 10. Experiment: what each choice buys
# One small CNN (section 1's two conv blocks), trained on the same Fashion-MNIST images with
# the same seed, changing one thing at a time: the pooling (max, average, L2, L3, stochastic),
# the head (global average pooling instead of flatten + dense), and dropout (0.5 before the
# classifier) and batch normalisation (after each convolution) on the max-pooling network.
# The Lp and stochastic layers are yours, from the exercises.
#
# The two notebooks train the same networks with two differences that the frameworks
# impose: the running variance of batch norm (PyTorch stores the unbiased batch variance,
# Keras the biased one; with at least $n = 64 \cdot 14 \cdot 14$ values per channel they
# differ by less than 0.01%, and only at inference) and the initialisation of the layers (Keras' Glorot
# uniform against PyTorch's Kaiming uniform), so the same seed does not give the same
# weights. Batch norm's momentum (0.1 here, 0.9 in Keras' convention) and $\epsilon$
# ($10^{-5}$) are the same in both.

# %%
POOLS = {"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2), "L2": lambda: LpPool2D(2, 2),
         "L3": lambda: LpPool2D(3, 2), "stochastic": lambda: StochasticPool2D(2)}


def build_net(pool="max", head="flatten", dropout_rate=0.0, batchnorm=False):
    """The experiment's CNN: (N, 1, 28, 28) -> (N, 10) logits."""
    layers = [conv_stack(POOLS[pool], batchnorm)]
    if head == "gap":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout_rate), nn.Linear(32, 10)]
    else:
        layers += [nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout_rate), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


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
#   validation curves; **batch normalisation** speeds up early training markedly.
#
# ## Summary
# * Pooling shrinks maps, adds tolerance to small shifts and has no parameters; its backward
#   pass routes each window's gradient to the arg-max (max) or spreads it evenly (average).
# * Lp pooling spans sum (p = 1) to max (p → ∞); stochastic pooling samples in proportion to
#   the activations and averages at inference.
# * Global pooling replaces a flatten + dense head with almost no parameters.
# * Inverted dropout scales at training time; batch norm uses batch statistics in training
#   and running averages at inference, with momentum conventions that differ between
#   PyTorch (0.1, unbiased running variance) and Keras (0.99, biased). In training its
#   gradient flows through the batch mean and variance as well as directly.
