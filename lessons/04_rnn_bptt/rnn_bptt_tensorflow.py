# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 04 · Recurrent networks and backpropagation through time (TensorFlow)
#
# A recurrent neural network (RNN) reads a sequence one step at a time and keeps a
# **hidden state**, a vector that summarises what it has seen so far. The same weights
# are used at every step, so one small network handles sequences of any length. In this
# lesson you will
#
# 1. write an RNN step and a forward pass over a sequence, and check them against Keras' `SimpleRNN`,
# 2. derive and write **backpropagation through time** (BPTT) by hand, and check it against
#    `tf.GradientTape` and a numerical gradient,
# 3. measure how gradients **vanish or explode** over time steps, and why,
# 4. write **gradient clipping** and watch it save a training run that blows up,
# 5. train with **truncated BPTT** on a real series, the yearly sunspot numbers, and beat the
#    persistence forecast,
# 6. find where a simple RNN stops learning: the **adding problem** at growing lengths.
#
# The PyTorch notebook of this lesson has the same headings, data, seeds and exercises:
# open them side by side to see both frameworks do the same thing.
#
# **Exercises** are marked *Exercise*. In each answer cell, replace the lines
# `# YOUR CODE HERE` and `raise NotImplementedError()` with your code, run the test cell
# below it, and press *Validate* in the toolbar before you submit. The visible tests are a first check; the grader runs
# more.

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

from course_utils import sequences
from course_utils.checks import check_close, check_shape, numerical_gradient, rel_error, to_numpy
from course_utils.data import load_sunspots
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
# ## 1. Sequences, hidden state and recurrence
# A sequence is an ordered list of inputs $x_1, x_2, \dots, x_T$: the yearly sunspot
# numbers, the words of a sentence, the frames of a recording. What matters is often not
# one input but how it relates to the earlier ones. A recurrent network carries a
# **hidden state** $h_t$ from step to step and updates it with each new input:
#
# $$ h_t = \tanh\left(x_t W_{xh} + h_{t-1} W_{hh} + b\right), \qquad y_t = h_t W_{hy} + b_y .$$
#
# * $W_{xh}$ (D × H) reads the input, $W_{hh}$ (H × H) carries the past forward, and the
#   same $W_{xh}, W_{hh}, b$ serve every step: **weight sharing in time**, as a convolution
#   shares its filter in space.
# * $h_0$ is the initial state, usually zeros. The state is the network's only memory.
# * This feedback of the state into the next step is the **recurrence**.
#
# Drawn step by step, the network becomes a deep feed-forward network with one layer per
# time step, all layers sharing their weights: this is the **unrolled** network,
#
# $$ h_0 \xrightarrow{x_1} h_1 \xrightarrow{x_2} h_2 \xrightarrow{x_3} \cdots \xrightarrow{x_T} h_T , $$
#
# and it is what we differentiate in section 2. Keras' `SimpleRNN` computes exactly this,
# with its `kernel` $W_{xh}$, `recurrent_kernel` $W_{hh}$ and `bias` $b$. A batch of
# sequences is a tensor (N, T, D): N sequences, T steps, D features per step, and the
# states of a batch are rows: $x_t$ (N, D), $h_t$ (N, H).

# %% [markdown]
# ### Exercise 1: one RNN step (2 points)
# Write `rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias)` returning $h_t$ **from
# scratch**, with TensorFlow operations (matrix products, `tf.tanh`), in the layout of
# `SimpleRNN`'s weights. Keras' recurrent layers and cells (`SimpleRNN`, `SimpleRNNCell`,
# `keras.layers.RNN`) and `keras.backend.rnn` are what we check against, so the tests
# refuse them.
#
# * `x_t`: (N, D) the inputs at this step; `h_prev`: (N, H) the previous state
# * `kernel`: (D, H), `recurrent_kernel`: (H, H), `bias`: (H,)
# * returns (N, H), in the inputs' dtype

# %% nbgrader={"grade": false, "grade_id": "rnn_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    """One step of a tanh RNN: x_t (N, D), h_prev (N, H), kernel (D, H), recurrent_kernel (H, H),
    bias (H,) -> h_t (N, H)."""
    ### BEGIN SOLUTION
    return tf.tanh(tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "rnn_step_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
def _rnn_cell(d, h, dtype="float32", seed=0):
    """A built SimpleRNNCell with a random non-zero bias."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = keras.layers.SimpleRNNCell(h, dtype=dtype, seed=seed)
        cell.build((None, d))
    cell.bias.assign(np.random.default_rng(seed).normal(size=h))
    return cell

cell = _rnn_cell(3, 4)
rng = np.random.default_rng(0)
x_t, h_prev = tf.constant(rng.normal(size=(2, 3)), tf.float32), tf.constant(rng.normal(size=(2, 4)), tf.float32)
expected = cell(x_t, [h_prev])[0]  # the reference first: the answer gets the cell's own variables
h_t = rnn_step(x_t, h_prev, cell.kernel, cell.recurrent_kernel, cell.bias)
check_shape(h_t, (2, 4), name="rnn_step")
check_close(h_t, expected, rtol=1e-5, atol=1e-6, name="rnn_step against keras.layers.SimpleRNNCell")
import keras.src.backend as _keras_backend

from course_utils.guards import check_from_scratch
# tf.function objects are checked through the Python function they wrap
for _f in [rnn_step, *(v for v in list(globals().values()) if isinstance(v, tf.types.experimental.PolymorphicFunction))]:
    check_from_scratch(getattr(_f, "python_function", _f), [keras.layers.RNN, keras.layers.SimpleRNN,
                                                            keras.layers.SimpleRNNCell, keras.backend.rnn,
                                                            _keras_backend.rnn, tf.compat.v1],
                       name="rnn_step", allowed="Use matrix products and tf.tanh.")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
for n, d, h in [(5, 2, 3), (1, 6, 6), (4, 1, 7)]:
    cell = _rnn_cell(d, h, "float64", seed=n)
    cell.recurrent_kernel.assign(rng.normal(size=(h, h)) * 3.0)  # large, non-symmetric: a transposed kernel or a missing tanh shows
    x_t, h_prev = tf.constant(rng.normal(size=(n, d))), tf.constant(rng.normal(size=(n, h)))
    expected = cell(x_t, [h_prev])[0]
    got = rnn_step(x_t, h_prev, cell.kernel, cell.recurrent_kernel, cell.bias)
    check_close(got, expected, rtol=1e-6, atol=1e-8, name=f"rnn_step with N={n}, D={d}, H={h}")
    assert got.dtype == tf.float64, f"rnn_step should keep the inputs' dtype float64, got {got.dtype}"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: the forward pass over a sequence (3 points)
# Write `rnn_forward(x, h0, kernel, recurrent_kernel, bias)`: loop over the T steps (you may
# call your `rnn_step`), carrying the state, and return **all** the states $h_1, \dots, h_T$
# stacked along the time axis.
#
# Write it from scratch, as in Exercise 1 (no `SimpleRNN`, `SimpleRNNCell` or
# `keras.backend.rnn`; `tf.scan` is fine).
#
# * `x`: (N, T, D); `h0`: (N, H), one row per sequence (Keras' layout for a state, the same
#   as Exercise 5's)
# * returns (N, T, H), in the inputs' dtype: `out[:, t]` is $h_{t+1}$ (the state *after*
#   reading `x[:, t]`), what `SimpleRNN(..., return_sequences=True)` returns.

# %% nbgrader={"grade": false, "grade_id": "rnn_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    """All hidden states of a tanh RNN: x (N, T, D), h0 (N, H) -> (N, T, H)."""
    ### BEGIN SOLUTION
    h, states = h0, []
    for t in range(x.shape[1]):
        h = tf.tanh(tf.matmul(x[:, t], kernel) + tf.matmul(h, recurrent_kernel) + bias)  # rnn_step(...)
        states.append(h)
    return tf.stack(states, axis=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "rnn_forward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
def _simple_rnn(d, h, dtype="float32", seed=0, recurrent_scale=1.0):
    """A built SimpleRNN layer (all states returned) with a random non-zero bias."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.SimpleRNN(h, return_sequences=True, dtype=dtype, seed=seed)
        layer.build((None, None, d))
    layer.cell.bias.assign(np.random.default_rng(seed).normal(size=h))
    layer.cell.recurrent_kernel.assign(layer.cell.recurrent_kernel * recurrent_scale)
    return layer

layer = _simple_rnn(3, 4)
x, h0 = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 3)), tf.float32), tf.zeros((2, 4))
expected = layer(x)
out = rnn_forward(x, h0, layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)
check_shape(out, (2, 5, 4), name="rnn_forward")
check_close(out, expected, rtol=1e-5, atol=1e-6, name="rnn_forward against keras.layers.SimpleRNN")
import keras.src.backend as _keras_backend

from course_utils.guards import check_from_scratch
# tf.function objects are checked through the Python function they wrap
for _f in [rnn_forward, *(v for v in list(globals().values()) if isinstance(v, tf.types.experimental.PolymorphicFunction))]:
    check_from_scratch(getattr(_f, "python_function", _f), [keras.layers.RNN, keras.layers.SimpleRNN,
                                                            keras.layers.SimpleRNNCell, keras.backend.rnn,
                                                            _keras_backend.rnn, tf.compat.v1],
                       name="rnn_forward", allowed="Loop over the steps with matrix products and tf.tanh (or your rnn_step).")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(2)
for n, t, d, h in [(3, 7, 2, 5), (4, 4, 3, 4), (2, 1, 3, 3), (1, 12, 1, 6)]:  # N == T, T == 1, N == 1
    layer = _simple_rnn(d, h, "float64", seed=t, recurrent_scale=2.0)
    x, h0 = tf.constant(rng.normal(size=(n, t, d))), tf.constant(rng.normal(size=(n, h)))  # a non-zero h0 must be used
    expected = layer(x, initial_state=h0)
    got = rnn_forward(x, h0, layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)
    check_shape(got, (n, t, h), name=f"rnn_forward for N={n}, T={t}, D={d}, H={h}")
    check_close(got, expected, rtol=1e-6, atol=1e-8,
                name=f"rnn_forward for N={n}, T={t} (is the state carried? are h_1..h_T returned, batch first?)")
    assert got.dtype == tf.float64, f"rnn_forward should keep the inputs' dtype float64, got {got.dtype}"
### END HIDDEN TESTS

# %% [markdown]
# The course keeps recurrent weights in one neutral layout, that of the equations above
# and of Keras (`course_utils.sequences`). `random_rnn_weights` draws them from a seed, so
# both notebooks of this lesson start from the *same* network (the PyTorch notebook ports
# them into `nn.RNN` with `course_utils.porting`). Our forward pass, `SimpleRNN` and a loop of
# `SimpleRNNCell` steps agree, and print the same numbers as the PyTorch notebook.

# %%
rng = np.random.default_rng(SEED)
x_np = rng.normal(size=(2, 6, 3))
weights = sequences.random_rnn_weights(input_size=3, hidden_size=4, seed=SEED)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    rnn = keras.layers.SimpleRNN(4, return_sequences=True, return_state=True)
    rnn.build((None, None, 3))
    cell = keras.layers.SimpleRNNCell(4)
    cell.build((None, 3))
rnn.set_weights([weights["W_xh"], weights["W_hh"], weights["b_h"]])
cell.set_weights(rnn.get_weights())
x = tf.constant(x_np, tf.float32)
h0 = tf.zeros((2, 4))

ours = rnn_forward(x, h0, rnn.cell.kernel, rnn.cell.recurrent_kernel, rnn.cell.bias)
builtin, h_last = rnn(x)
h = h0
for t in range(x.shape[1]):
    h = cell(x[:, t], [h])[0]
print("ours vs SimpleRNN, relative error:", rel_error(ours, builtin))
print("SimpleRNNCell loop vs SimpleRNN's final state, relative error:", rel_error(h, h_last))
print("h_T of the first sequence:", np.round(to_numpy(builtin[0, -1]), 5))

# %% [markdown]
# ## 2. Backpropagation through time
# Training needs the gradient of a loss with respect to the shared weights. Take a loss
# that adds up a term per step, $L = \sum_t \ell_t(y_t)$. In the unrolled network $h_t$
# influences the loss in two ways: directly through its output $y_t$, and through every
# later state. So the gradient flowing into $h_t$ has two parts,
#
# $$ \delta_t \equiv \frac{\partial L}{\partial h_t}
#    = \underbrace{\frac{\partial \ell_t}{\partial h_t}}_{\text{from } y_t}
#    + \delta_{t+1}\,\frac{\partial h_{t+1}}{\partial h_t},
#    \qquad \delta_{T+1} = 0 ,$$
#
# and it is computed **backwards in time**, from $t = T$ down to 1. With the
# pre-activation $a_t = x_t W_{xh} + h_{t-1} W_{hh} + b$ and $h_t = \tanh(a_t)$:
#
# * $\partial L/\partial a_t = \delta_t \odot (1 - h_t^2)$: the **derivative of tanh**,
#   elementwise;
# * one step back: $\delta_{t+1} \,\partial h_{t+1}/\partial h_t$ becomes, for a batch of rows,
#   $(\partial L/\partial a_{t+1})\, W_{hh}^\top$;
# * the weights are shared, so their gradients are **sums over all time steps** (and over
#   the batch):
#
# $$ \frac{\partial L}{\partial W_{xh}} = \sum_t x_t^\top \frac{\partial L}{\partial a_t} ,\qquad
#    \frac{\partial L}{\partial W_{hh}} = \sum_t h_{t-1}^\top \frac{\partial L}{\partial a_t} ,\qquad
#    \frac{\partial L}{\partial b} = \sum_{t}\sum_{n} \frac{\partial L}{\partial a_t} ,\qquad
#    \frac{\partial L}{\partial h_0} = \frac{\partial L}{\partial a_1}\, W_{hh}^\top. $$
#
# Note $h_{t-1}$, not $h_t$, in the recurrent gradient: $W_{hh}$ multiplies the *previous*
# state. This is backpropagation through time: ordinary backpropagation on the unrolled
# network, with the shared weights' gradients summed over its copies.

# %% [markdown]
# ### Exercise 3: BPTT by hand (4 points)
# Write `rnn_backward(dh_out, x, h0, hs, recurrent_kernel)` for the RNN of Exercise 2, with
# TensorFlow operations and **without automatic differentiation**: no `tf.GradientTape`,
# `tf.gradients` or anything from `tf.autodiff`, no numerical gradient; the tests refuse them.
#
# * `dh_out`: (N, T, H), $\partial \ell_t / \partial h_t$, the gradient reaching each
#   state from its own output only (the direct part)
# * `x`: (N, T, D), `h0`: (N, H), `hs`: (N, T, H) the states $h_1 \dots h_T$ of the forward
#   pass, `recurrent_kernel`: (H, H)
# * returns a dict of gradients: `"kernel"` (D, H), `"recurrent_kernel"` (H, H), `"bias"`
#   (H,), `"h0"` (N, H), and `"dh"` (N, T, H), the **total** $\delta_t = \partial L/\partial
#   h_t$ (direct part plus what flows back from later steps), which section 3 plots.
#
# TensorFlow tensors cannot be assigned into: collect per-step results in a list and
# `tf.stack` them.

# %% nbgrader={"grade": false, "grade_id": "rnn_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    """BPTT for h_t = tanh(x_t K + h_{t-1} R + b). dh_out, hs: (N, T, H); x: (N, T, D); h0: (N, H);
    recurrent_kernel R: (H, H). Returns {"kernel", "recurrent_kernel", "bias", "h0", "dh"}."""
    ### BEGIN SOLUTION
    steps = hs.shape[1]
    d_kernel = d_recurrent = d_bias = 0.0
    dh = [None] * steps
    from_later = tf.zeros_like(h0)  # dL/dh_t arriving from step t + 1
    for t in reversed(range(steps)):
        dh[t] = dh_out[:, t] + from_later
        da = dh[t] * (1 - hs[:, t] ** 2)  # through the tanh
        h_prev = hs[:, t - 1] if t > 0 else h0
        d_kernel += tf.matmul(x[:, t], da, transpose_a=True)
        d_recurrent += tf.matmul(h_prev, da, transpose_a=True)
        d_bias += tf.reduce_sum(da, axis=0)
        from_later = tf.matmul(da, recurrent_kernel, transpose_b=True)
    return {"kernel": d_kernel, "recurrent_kernel": d_recurrent, "bias": d_bias, "h0": from_later,
            "dh": tf.stack(dh, axis=1)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "rnn_backward_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
from course_utils.checks import numerical_gradient as _numerical_gradient
from course_utils.guards import check_from_scratch


def _reference_bptt(dh_out, x, h0, kernel, recurrent_kernel, bias):
    """The reference: tf.GradientTape through a SimpleRNN holding these weights, for the loss
    sum(dh_out * hs). The total dL/dh_t is the direct part plus the gradient of the later terms
    with respect to the state a run of the layer from step t + 1 starts from."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.SimpleRNN(kernel.shape[1], return_sequences=True, dtype=x.dtype.name)
        layer.build((None, None, kernel.shape[0]))
    layer.set_weights([kernel.numpy(), recurrent_kernel.numpy(), bias.numpy()])
    with tf.GradientTape() as tape:
        tape.watch(h0)
        hs = layer(x, initial_state=h0)
        loss = tf.reduce_sum(dh_out * hs)
    g = tape.gradient(loss, [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias, h0])
    dh = [dh_out[:, t] for t in range(x.shape[1])]
    for t in range(x.shape[1] - 1):
        h_t = hs[:, t]
        with tf.GradientTape() as tape:
            tape.watch(h_t)
            later = layer(x[:, t + 1:], initial_state=h_t)
            loss = tf.reduce_sum(dh_out[:, t + 1:] * later)
        dh[t] = dh[t] + tape.gradient(loss, h_t)
    return hs, {"kernel": g[0], "recurrent_kernel": g[1], "bias": g[2], "h0": g[3], "dh": tf.stack(dh, axis=1)}


# tf.function objects are checked through the Python function they wrap
for _f in [rnn_backward, *(v for v in list(globals().values()) if isinstance(v, tf.types.experimental.PolymorphicFunction))]:
    check_from_scratch(getattr(_f, "python_function", _f), [tf.GradientTape, tf.GradientTape.gradient, tf.gradients,
                                                            tf.autodiff, tf.autodiff.ForwardAccumulator, tf.compat.v1,
                                                            _numerical_gradient],
                       name="rnn_backward", allowed="Compute the gradients by hand with TensorFlow operations.")
rng = np.random.default_rng(0)
N, T, D, H = 2, 4, 3, 5
x, h0 = tf.constant(rng.normal(size=(N, T, D))), tf.constant(rng.normal(size=(N, H)))
kernel, recurrent_kernel, bias = (tf.constant(rng.normal(size=(D, H))), tf.constant(rng.normal(size=(H, H)) * 0.5),
                                  tf.constant(rng.normal(size=H)))
dh_out = tf.constant(rng.normal(size=(N, T, H)))
hs, expected = _reference_bptt(dh_out, x, h0, kernel, recurrent_kernel, bias)
got = rnn_backward(dh_out, x, h0, hs, recurrent_kernel)
for key in ("kernel", "recurrent_kernel", "bias", "h0", "dh"):
    check_close(got[key], expected[key], rtol=1e-5, atol=1e-6, name=f"rnn_backward(...)[{key!r}]")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(3)
cases = [(3, 6, 2, 4, "random"), (4, 4, 4, 4, "random"), (2, 1, 3, 3, "random"), (1, 8, 1, 6, "last step only"),
         (3, 5, 2, 4, "first step only"), (2, 7, 3, 5, "large weights"), (5, 3, 2, 2, "float32")]
for n, t, d, h, where in cases:
    dtype = tf.float32 if where == "float32" else tf.float64
    x, h0 = tf.constant(rng.normal(size=(n, t, d)), dtype), tf.constant(rng.normal(size=(n, h)), dtype)
    kernel, bias = tf.constant(rng.normal(size=(d, h)), dtype), tf.constant(rng.normal(size=h) * 0.3, dtype)
    scale = 2.0 if where == "large weights" else 0.8
    recurrent_kernel = tf.constant(rng.normal(size=(h, h)) * scale, dtype)  # not symmetric: R and R^T differ
    dh_np = rng.normal(size=(n, t, h))
    if where == "last step only":  # the gradient must travel back through all the steps
        dh_np[:, :-1] = 0
    if where == "first step only":  # nothing flows back from later steps
        dh_np[:, 1:] = 0
    dh_out = tf.constant(dh_np, dtype)
    hs, expected = _reference_bptt(dh_out, x, h0, kernel, recurrent_kernel, bias)
    got = rnn_backward(dh_out, x, h0, hs, recurrent_kernel)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == tf.float32 else {"rtol": 1e-6, "atol": 1e-8}
    for key, shape in [("kernel", (d, h)), ("recurrent_kernel", (h, h)), ("bias", (h,)), ("h0", (n, h)), ("dh", (n, t, h))]:
        assert key in got, f"rnn_backward should return a dict with the key {key!r}"
        check_shape(got[key], shape, name=f"rnn_backward(...)[{key!r}]")
        check_close(got[key], expected[key], **tol,
                    name=f"rnn_backward(...)[{key!r}] for N={n}, T={t}, D={d}, H={h}, loss on the {where}")
### END HIDDEN TESTS

# %% [markdown]
# Now the whole model of section 1, output layer and loss included, in float64:
# $y_t = h_t W_{hy} + b_y$ and $L = \frac{1}{2N}\sum_{n,t} \lVert y_t - \text{target}_t \rVert^2$.
# The output layer's part is ordinary backpropagation: $\partial L/\partial y_t = (y_t -
# \text{target}_t)/N$, which gives $\partial L/\partial W_{hy}$, $\partial L/\partial b_y$
# and the direct part $\partial \ell_t/\partial h_t = (\partial L/\partial y_t)\, W_{hy}^\top$
# that `rnn_backward` takes. We check every gradient two ways: against `tf.GradientTape`,
# and against a **numerical gradient**, $\big(L(\theta + \epsilon) - L(\theta - \epsilon)\big) /
# 2\epsilon$ for each entry (`numerical_gradient` of `course_utils.checks`, which takes the
# loss as a function of one parameter), which needs no calculus at all. In float64 both
# should agree with ours to a relative error far below $10^{-6}$.

# %%
rng = np.random.default_rng(SEED)
N, T, D, H, OUT = 3, 6, 2, 5, 2
params = {  # numpy float64 arrays
    "kernel": rng.normal(size=(D, H)), "recurrent_kernel": rng.normal(size=(H, H)) * 0.7, "bias": rng.normal(size=H) * 0.1,
    "h0": rng.normal(size=(N, H)) * 0.5, "output_kernel": rng.normal(size=(H, OUT)), "output_bias": rng.normal(size=OUT),
}
x = tf.constant(rng.normal(size=(N, T, D)))
targets = tf.constant(rng.normal(size=(N, T, OUT)))


def model_loss(p):
    """Forward pass of RNN + output layer and the loss, for tensors (or numpy arrays) p."""
    p = {k: tf.convert_to_tensor(v) for k, v in p.items()}
    hs = rnn_forward(x, p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"])
    y = hs @ p["output_kernel"] + p["output_bias"]
    return tf.reduce_sum((y - targets) ** 2) / (2 * N), hs, y


# by hand: the output layer, then BPTT
loss, hs, y = model_loss(params)
dy = (y - targets) / N
by_hand = rnn_backward(dy @ tf.transpose(params["output_kernel"]), x, tf.constant(params["h0"]), hs,
                       tf.constant(params["recurrent_kernel"]))
by_hand["output_kernel"] = tf.einsum("nto,nth->ho", dy, hs)
by_hand["output_bias"] = tf.reduce_sum(dy, axis=(0, 1))

# automatic differentiation
variables = {k: tf.Variable(v) for k, v in params.items()}
with tf.GradientTape() as tape:
    tape_loss = model_loss(variables)[0]
tape_grads = dict(zip(variables, tape.gradient(tape_loss, list(variables.values()))))


def loss_of(name):
    """The loss as a function of one parameter alone (an array of its shape), the others fixed."""
    return lambda value: float(model_loss({**params, name: value})[0])


print(f"{'parameter':>16}  {'vs GradientTape':>15}  {'vs numerical':>12}")
for name in params:
    numerical = numerical_gradient(loss_of(name), params[name])
    print(f"{name:>16}  {rel_error(by_hand[name], tape_grads[name]):15.2e}  {rel_error(by_hand[name], numerical):12.2e}")

# %% [markdown]
# ## 3. Vanishing and exploding gradients
# Unroll the recursion for $\delta_t$ with a loss on the last step only: the gradient
# reaching step $t$ is the last one multiplied by one **Jacobian per step** in between. With
# the gradient as a row vector and $J_k = \partial h_k/\partial h_{k-1}$ (written for one
# sequence with $h_k$ a column vector, as in most texts; $W_{hh}$ is still the matrix of
# section 1, so its transpose appears),
#
# $$ \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_T}\, J_T\, J_{T-1} \cdots J_{t+1},\qquad
#    J_k = \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}\!\big(1 - h_k^2\big)\, W_{hh}^\top: $$
#
# the Jacobian of the last step comes first, next to $\partial L/\partial h_T$, the one of
# step $t+1$ last. How big can such a product get?
#
# * **A sufficient condition for vanishing** (Pascanu, Mikolov and Bengio, 2013): each
#   $J_k$ stretches a vector by at most $\sigma_{\max}(W_{hh})$, the **largest singular
#   value** of $W_{hh}$ (tanh's derivative $1 - h_k^2 \le 1$ can only shrink it further). If
#   $\sigma_{\max} < 1$, then $\lVert \partial L/\partial h_t \rVert \le
#   \sigma_{\max}^{T-t}\, \lVert \partial L/\partial h_T \rVert$: the gradient decays
#   **exponentially** with the distance $T - t$, it **vanishes**, and the first steps of a
#   long sequence receive no learning signal. (So $\sigma_{\max} > 1$ is necessary for it
#   to explode.)
# * **The spectral radius** $\rho(W_{hh})$, the largest $|\lambda|$, is what governs *long*
#   products in the near-linear regime (small states, $J_k \approx W_{hh}^\top$): the size
#   of $W_{hh}^n$ grows or shrinks like $\rho^n$ as $n$ grows. Below 1 the gradient
#   eventually vanishes; above 1 (states away from saturation) it grows exponentially: it
#   **explodes**, and one update can throw the weights far away. But $\rho \le
#   \sigma_{\max}$, and a non-symmetric $W_{hh}$ with $\rho < 1$ can still stretch a vector
#   in one step, or over a few: the bound of the first point does not hold for $\rho$.
#
# Only near 1 does a signal survive many steps, and a tanh RNN cannot stay there by itself.
#
# We measure it: 100 steps, the same random $W_{hh}$ scaled to several spectral radii,
# small inputs so that the states stay in tanh's near-linear range, and your
# `rnn_backward` to get $\lVert \partial L/\partial h_t \rVert$ at every step. First
# both numbers of each $W_{hh}$: the largest singular value is well above the spectral
# radius (about 1.6 times it for this matrix).

# %%
STEPS, HIDDEN = 100, 32
RADII = [0.5, 0.9, 1.0, 1.1, 1.5, 3.0]
for radius in RADII:
    W = sequences.random_rnn_weights(1, HIDDEN, spectral_radius=radius, input_scale=0.1, seed=SEED)["W_hh"]
    print(f"spectral radius {np.abs(np.linalg.eigvals(W)).max():.2f}, "
          f"largest singular value {np.linalg.svd(W, compute_uv=False)[0]:.2f}")
x_long = tf.constant(np.random.default_rng(SEED).normal(size=(16, STEPS, 1)))
readout = tf.constant(np.random.default_rng(SEED + 1).normal(size=HIDDEN))
grad_norms = {}
for radius in RADII:
    w = sequences.random_rnn_weights(1, HIDDEN, spectral_radius=radius, input_scale=0.1, seed=SEED)
    kernel, recurrent_kernel, bias = (tf.constant(w[k]) for k in ("W_xh", "W_hh", "b_h"))
    h0 = tf.zeros((16, HIDDEN), tf.float64)
    hs = rnn_forward(x_long, h0, kernel, recurrent_kernel, bias)
    dh_out = tf.concat([tf.zeros_like(hs[:, :-1]), tf.broadcast_to(readout, (16, 1, HIDDEN))], axis=1)  # loss on h_T only
    grad_norms[radius] = to_numpy(tf.reduce_mean(tf.norm(rnn_backward(dh_out, x_long, h0, hs, recurrent_kernel)["dh"], axis=2), axis=0))

fig, ax = plt.subplots(figsize=(7, 4))
for radius, norms in grad_norms.items():
    ax.semilogy(np.arange(1, STEPS + 1), norms, label=f"spectral radius {radius}")
ax.set_xlabel("time step t")
ax.set_ylabel("mean ||dL/dh_t||")
ax.set_title("gradient reaching each step from a loss at t = 100")
ax.legend()
plt.show()
for radius, norms in grad_norms.items():
    gain = (norms[0] / norms[-1]) ** (1 / (STEPS - 1))
    print(f"spectral radius {radius}: ||dL/dh_1|| / ||dL/dh_100|| = {norms[0] / norms[-1]:9.2e}, per step x{gain:.3f}")

# %% [markdown]
# Read the plot from right to left, the way the gradient travels. At radius 0.5 the largest
# singular value (0.82) is below 1 too, and the bound guarantees the decay. At 0.9 it is
# 1.47: no guarantee from the bound, yet over many steps the spectral radius wins. Below 1
# the gradient falls by a roughly constant factor per step: after 100 steps nothing is left, so the network
# cannot learn that something early in the sequence mattered. At 1 it survives, slowly
# nibbled at by tanh's derivative $1 - h_k^2 < 1$; just above 1 it grows. Far above 1 (3
# here) the states move chaotically and the gradient reaching the first steps is many
# orders of magnitude larger: it **explodes**.
#
# The radius 1.5 shows that "above 1" is not the whole story. The spectral radius
# describes the Jacobian at $h = 0$; a state that grows is squashed by the tanh, and here
# the network settles into a state where the factors $1 - h_k^2$ shrink each Jacobian
# enough for the gradient to vanish again. What decides is the typical size of the
# Jacobians along the actual trajectory, printed above as the factor per step. (With large
# inputs the states saturate, $1 - h_k^2 \approx 0$, and the gradient vanishes whatever
# the weights.) LSTMs and GRUs (lessons 05 and 06) fix the vanishing side with an additive
# memory path; the exploding side has a simpler fix: clipping.

# %% [markdown]
# ## 4. Gradient clipping
# When the gradient explodes, its *direction* is still useful; only its size is absurd.
# Clipping limits the size of the update:
#
# * **by value**: clamp every entry to $[-c, c]$. Simple, but it changes the gradient's
#   direction (big entries are cut, small ones are not).
# * **by global norm**: treat all gradients of the model as one long vector $g$, with
#   $\lVert g \rVert = \sqrt{\sum_i \lVert g_i \rVert^2}$ over all tensors $g_i$; if
#   $\lVert g \rVert > c$, scale **every** tensor by $c / \lVert g \rVert$. The direction is
#   kept, and a small gradient is left alone. This is `tf.clip_by_global_norm`, and the
#   Keras optimizers' `global_clipnorm=` argument.
#
# Clipping each tensor by its own norm is a third option, and a different one: it changes
# the relative sizes of the tensors' gradients, so the direction changes too. Beware: that
# is what the Keras optimizers' **`clipnorm=`** does (per variable); `clipvalue=` clips by
# value. For the global norm use `global_clipnorm=`.

# %% [markdown]
# ### Exercise 4: clipping by global norm (3 points)
# Write `clip_by_global_norm(grads, max_norm)`: `grads` is a list of tensors of any shapes
# (float32 or float64); return `(clipped, total_norm)`, a list of tensors of the same shapes
# and dtypes and the global norm **before** clipping (a tensor or a float), like
# `tf.clip_by_global_norm`. Write the scaling yourself: TensorFlow's clipping functions
# (`tf.clip_by_global_norm`, `tf.clip_by_norm`) are refused; a norm function (`tf.norm`,
# `tf.linalg.global_norm`) is fine. When the global norm is at most `max_norm`, the
# gradients come back unchanged (all-zero gradients included).

# %% nbgrader={"grade": false, "grade_id": "clip_by_global_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def clip_by_global_norm(grads, max_norm):
    """grads: list of tensors -> (list of tensors scaled by min(1, max_norm / global norm), global norm)."""
    ### BEGIN SOLUTION
    grads = [tf.convert_to_tensor(g) for g in grads]
    total_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.cast(g, tf.float64) ** 2) for g in grads]))
    scale = max_norm / tf.maximum(total_norm, max_norm)
    return [g * tf.cast(scale, g.dtype) for g in grads], total_norm
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "clip_by_global_norm_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
grads = [tf.constant([3.0, 0.0]), tf.constant([[0.0], [4.0]])]  # global norm 5
clipped, total = clip_by_global_norm(grads, 1.0)
check_close(total, 5.0, name="the global norm of [3, 0] and [[0], [4]]")
check_close(clipped[0], [0.6, 0.0], name="the first clipped tensor")
check_close(clipped[1], [[0.0], [0.8]], name="the second clipped tensor")
from course_utils.guards import check_from_scratch
# tf.function objects are checked through the Python function they wrap
for _f in [clip_by_global_norm, *(v for v in list(globals().values()) if isinstance(v, tf.types.experimental.PolymorphicFunction))]:
    check_from_scratch(getattr(_f, "python_function", _f), [tf.clip_by_global_norm, tf.clip_by_norm, tf.compat.v1],
                       name="clip_by_global_norm", allowed="Compute the scale and multiply the tensors by it.")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(4)
def _tensor(*shape, scale=1.0):
    return tf.constant(rng.normal(size=shape) * scale, tf.float32)

cases = [
    ([_tensor(4, 3, scale=2), _tensor(3), _tensor(2, 2, 2)], 1.0),   # clipped
    ([_tensor(5, scale=0.1), _tensor(2, 3, scale=0.1)], 10.0),       # below the threshold: unchanged
    ([tf.fill((3,), 0.4), tf.fill((4,), 0.4)], 1.0),                 # each tensor below 1, together above
    ([_tensor(6, scale=100)], 2.5),                                   # a single tensor
    ([tf.zeros(3), tf.zeros((2, 2))], 1.0),                           # all zero
    ([tf.constant([3.0, 4.0])], 5.0),                                 # exactly at the threshold
    ([tf.constant(rng.normal(size=(3, 2)) * 3), tf.constant(rng.normal(size=4))], 0.5),  # float64
]
for grads, max_norm in cases:
    expected, expected_total = tf.clip_by_global_norm(grads, max_norm)
    clipped, total = clip_by_global_norm(grads, max_norm)
    check_close(float(total), float(expected_total), rtol=1e-5, atol=1e-6,
                name=f"the global norm (before clipping) of tensors of shapes {[tuple(g.shape) for g in grads]}")
    assert len(clipped) == len(grads), f"clip_by_global_norm should return {len(grads)} tensors, got {len(clipped)}"
    for i, (c, e) in enumerate(zip(clipped, expected)):
        check_shape(c, tuple(e.shape), name=f"clipped tensor {i}")
        assert tf.convert_to_tensor(c).dtype == e.dtype, f"clipped tensor {i} should keep its dtype {e.dtype.name}"
        check_close(c, e, rtol=1e-5, atol=1e-6, name=f"clipped tensor {i} (max_norm={max_norm}, global norm {float(expected_total):.3g})")
### END HIDDEN TESTS

# %% [markdown]
# Ours against TensorFlow's clipping functions on the same gradients: `tf.clip_by_global_norm`,
# `tf.clip_by_norm` per tensor (what `clipnorm=` does) and `tf.clip_by_value`. Only the
# global norm keeps the gradient's direction: the cosine similarity of the others with the
# original drops below 1.

# %%
rng = np.random.default_rng(SEED)
raw = [tf.constant(rng.normal(size=(3, 4)) * 5, tf.float32), tf.constant(rng.normal(size=4) * 0.1, tf.float32)]
ours, norm_before = clip_by_global_norm(raw, max_norm=1.0)
tf_clipped, tf_norm = tf.clip_by_global_norm(raw, 1.0)
print(f"global norm {float(norm_before):.4f} (TensorFlow: {float(tf_norm):.4f}); relative error of the clipped "
      f"gradients: {max(rel_error(o, t) for o, t in zip(ours, tf_clipped)):.1e}")
flat = lambda tensors: tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)  # noqa: E731
for name, clipped in [("global norm", ours), ("per tensor", [tf.clip_by_norm(g, 1.0) for g in raw]),
                      ("by value", [tf.clip_by_value(g, -1.0, 1.0) for g in raw])]:
    cosine = tf.reduce_sum(flat(clipped) * flat(raw)) / (tf.norm(flat(clipped)) * tf.norm(flat(raw)))
    print(f"clip {name:>11}: norm {float(tf.norm(flat(clipped))):.3f}, cosine with the raw gradient {float(cosine):.4f}")

# %% [markdown]
# **Clipping in training.** A tanh RNN whose $W_{hh}$ starts with spectral radius 3 and
# plain SGD with learning rate 0.1, on the adding problem of section 6 with 20 steps. The
# global gradient norm at the start is several hundred; one unclipped step throws
# the weights so far that the loss explodes and soon becomes `nan`. The same run with the
# optimizer's `global_clipnorm=1.0` stays stable. Both runs start from the same weights,
# `random_rnn_weights(..., spectral_radius=3.0, seed=SEED)`, as in the PyTorch notebook.
# (PyTorch's `nn.RNN` has two bias vectors that would both learn; the PyTorch notebook
# freezes the second at zero, so that every training run there trains this same network
# with its one bias.)

# %%
DEMO_EPOCHS = pick(smoke=3, standard=10, full=10)
x_demo, y_demo = sequences.adding_problem(pick(smoke=300, standard=1000, full=1000), 20, seed=SEED)
x_demo_val, y_demo_val = sequences.adding_problem(500, 20, seed=SEED + 1)
demo_weights = sequences.random_rnn_weights(2, 32, 1, spectral_radius=3.0, seed=SEED)

model = cu.rnn_regressor(2, 32)
cu.set_rnn_weights(model, demo_weights)
with tf.GradientTape() as tape:
    start_loss = tf.reduce_mean((model(x_demo[:50]) - y_demo[:50]) ** 2)
print(f"global gradient norm at the start: {float(tf.linalg.global_norm(tape.gradient(start_loss, model.trainable_weights))):.3g}")

demo = {}
for clip in (None, 1.0):
    cu.seed_everything(SEED)
    model = cu.rnn_regressor(2, 32)
    cu.set_rnn_weights(model, demo_weights)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, global_clipnorm=clip), loss="mse")
    demo[clip] = cu.train(model, cu.make_sequence_loader(x_demo, y_demo, batch_size=50),
                          cu.make_sequence_loader(x_demo_val, y_demo_val, batch_size=500), epochs=DEMO_EPOCHS, verbose=False)
    print(f"global_clipnorm={clip}: validation MSE per epoch", np.array2string(np.array(demo[clip]["val_loss"]), precision=3))

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for clip, label in [(None, "no clipping"), (1.0, "global norm clipped to 1")]:
    losses = np.array(demo[clip]["val_loss"])
    epochs = np.arange(1, len(losses) + 1)
    finite = np.isfinite(losses)
    ax.semilogy(epochs[finite], losses[finite], "o-", label=label)
    if not finite.all():
        ax.axvline(epochs[~finite][0], color="red", linestyle=":", label=f"no clipping: nan from epoch {epochs[~finite][0]}")
ax.axhline(sequences.ADDING_BASELINE_MSE, color="gray", linestyle="--", label="always predict 1")
ax.set_xlabel("epoch")
ax.set_ylabel("validation MSE")
ax.set_title("SGD on an RNN with spectral radius 3")
ax.legend()
plt.show()

# %% [markdown]
# Clipping keeps the run alive; it does not make this badly scaled network a good one (its
# states are saturated, so the validation loss hovers near the baseline). In practice one
# clips *and* starts from a sensible spectral radius, as the next sections do: every
# training run below clips the global norm to 1.
#
# ## 5. Truncated BPTT on a real series: sunspots
# The course ships the yearly mean sunspot numbers from 1700 to 2008 (public domain,
# from the statsmodels package; see `datasets/README.md`). statsmodels ships only this
# *yearly* series, not a monthly one, so that is what we use: 309 values with the famous
# cycle of about 11 years. We forecast one year ahead and keep the last 50 years
# (1959-2008) for testing.
#
# **Why truncate?** Full BPTT through a sequence of length $T$ stores all $T$ states and
# makes one update per pass. On a long series (years of hourly data, a whole book) that is
# too slow and too much memory. **Truncated BPTT** cuts the series into chunks of $L$ steps:
#
# 1. run the RNN over a chunk, starting from the state the previous chunk ended in
#    (the state is **carried**: in the forward pass the network still sees everything its
#    stream has read since the stream began);
# 2. backpropagate through this chunk only: the state handed to the next chunk is
#    **cut** from the graph (`tf.stop_gradient`), so gradients flow back at most $L$ steps;
# 3. update the weights, and go on with the next chunk.
#
# `sequences.truncated_bptt_chunks` lays the series out for this: B parallel streams, cut
# into chunks so that chunk $k+1$ of each stream continues chunk $k$; the targets are the
# inputs shifted by one step. The streams are consecutive pieces of the one series: the
# first starts at its beginning, each later one starts mid-series from a zero state, so it
# does not see the years before its start, and its first predictions lack that context.

# %%
years, sunspots = load_sunspots()
TEST_YEARS = 50
print(f"{len(years)} years, {years[0]}-{years[-1]}; training up to {years[-TEST_YEARS - 1]}, testing {years[-TEST_YEARS]}-{years[-1]}")
fig, ax = plt.subplots(figsize=(10, 3))
ax.plot(years[:-TEST_YEARS], sunspots[:-TEST_YEARS], label="training")
ax.plot(years[-TEST_YEARS:], sunspots[-TEST_YEARS:], label="test (held out)")
ax.set_xlabel("year")
ax.set_ylabel("mean sunspot number")
ax.legend()
plt.show()

mean, std = sunspots[:-TEST_YEARS].mean(), sunspots[:-TEST_YEARS].std()  # statistics of the training years only
scaled = (sunspots - mean) / std
x_chunks, y_chunks = sequences.truncated_bptt_chunks(scaled[:-TEST_YEARS], batch_size=4, chunk_length=16)
print("chunks (K, B, L, D):", x_chunks.shape, "- chunk 1 of stream 0 continues chunk 0:",
      bool(x_chunks[1, 0, 0, 0] == y_chunks[0, 0, -1, 0]))

# %% [markdown]
# ### Exercise 5: carry the state, cut the graph (3 points)
# Write `forward_in_chunks(layer, x, chunk_length, h0=None)`: run a Keras
# `SimpleRNN(H, return_sequences=True, return_state=True)` over x (N, T, D) one chunk of
# `chunk_length` steps at a time: steps `0 .. L-1`, then `L .. 2L-1`, and so on (the last
# chunk may be shorter). Each chunk starts from the final state of the previous one, **cut
# from the graph** with `tf.stop_gradient`; the first starts from `h0` (`None` means zeros,
# as for the layer; cutting `h0` as well is fine). States have Keras' layout **(N, H)**.
# Call the layer as `outputs, state = layer(chunk, initial_state=state)`. Return
# `(outputs, h_last)`: all chunks' outputs concatenated along time, (N, T, H), and the final
# state, (N, H).
#
# The outputs are then exactly those of one pass over the whole sequence, but a loss on
# one chunk sends gradients only into that chunk's inputs (and into the weights through
# that chunk's steps): the test checks the gradients too, against truncated BPTT done right.

# %% nbgrader={"grade": false, "grade_id": "forward_in_chunks", "locked": false, "schema_version": 3, "solution": true, "task": false}
def forward_in_chunks(layer, x, chunk_length, h0=None):
    """Truncated-BPTT forward pass of a SimpleRNN(return_sequences=True, return_state=True):
    x (N, T, D) -> (outputs (N, T, H), h_last (N, H))."""
    ### BEGIN SOLUTION
    outputs, h = [], h0
    for start in range(0, x.shape[1], chunk_length):
        out, h = layer(x[:, start:start + chunk_length], initial_state=h)
        outputs.append(out)
        h = tf.stop_gradient(h)  # carry the state, cut the graph
    return tf.concat(outputs, axis=1), h
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "forward_in_chunks_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
def _stateful_rnn(d, h, dtype="float32", seed=0, recurrent_scale=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.SimpleRNN(h, return_sequences=True, return_state=True, dtype=dtype, seed=seed)
        layer.build((None, None, d))
    layer.cell.bias.assign(np.random.default_rng(seed).normal(size=h) * 0.5)
    layer.cell.recurrent_kernel.assign(layer.cell.recurrent_kernel * recurrent_scale)
    return layer

layer = _stateful_rnn(2, 3)
x = tf.constant(np.random.default_rng(0).normal(size=(4, 12, 2)), tf.float32)
full_outputs, full_h = layer(x)
with tf.GradientTape() as tape:
    tape.watch(x)
    outputs, h_last = forward_in_chunks(layer, x, 4)
    last_chunk_loss = tf.reduce_sum(outputs[:, 8:])
check_shape(outputs, (4, 12, 3), name="the outputs of forward_in_chunks")
check_close(outputs, full_outputs, rtol=1e-5, atol=1e-6, name="the outputs (is the state carried from chunk to chunk?)")
check_shape(h_last, (4, 3), name="h_last (Keras' layout (N, H))")
check_close(h_last, full_h, rtol=1e-5, atol=1e-6, name="h_last")
# the key idea: a loss on the last chunk (steps 8-11) reaches its own inputs, none before
x_grad = tape.gradient(last_chunk_loss, x)
assert x_grad is not None and bool(tf.reduce_all(tf.reduce_sum(tf.abs(x_grad[:, 8:]), axis=(0, 2)) > 0)), \
    "a loss on the last chunk must send gradients into each of that chunk's inputs"
check_close(x_grad[:, :8], np.zeros((4, 8, 2)),
            name="the gradient reaching the inputs of the first two chunks (is the state cut between chunks?)")
### BEGIN HIDDEN TESTS
def _truncated_reference(layer, x, chunk_length, h0):
    """Truncated BPTT done right: each chunk run from the true state at its start, cut
    (h0 itself for the first chunk)."""
    states = tf.stop_gradient(layer(x, initial_state=h0)[0])
    outputs = []
    for start in range(0, x.shape[1], chunk_length):
        h = h0 if start == 0 else states[:, start - 1]
        outputs.append(layer(x[:, start:start + chunk_length], initial_state=h)[0])
    return tf.concat(outputs, axis=1)


def _gradients(fn, layer, x, chunk_length, h0, weights):
    """Gradients of sum(weights * outputs) for the inputs and the layer's weights."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(weights * fn(layer, x, chunk_length, h0))
    return tape.gradient(loss, [x, *layer.trainable_weights])


def _chunked_outputs(layer, x, chunk_length, h0):
    return forward_in_chunks(layer, x, chunk_length, h0)[0]


rng = np.random.default_rng(5)
for n, t, d, h, chunk, start in [(3, 10, 2, 4, 4, "h0"), (2, 9, 3, 3, 3, "h0"), (2, 5, 1, 2, 8, "h0"),
                                 (1, 7, 2, 3, 1, "h0"), (3, 6, 2, 3, 6, "h0"), (2, 11, 2, 4, 5, "zeros"),
                                 (4, 8, 3, 5, 2, "zeros")]:
    layer = _stateful_rnn(d, h, "float64", seed=t, recurrent_scale=1.5)  # gradients that reach far back are large enough to see
    x = tf.constant(rng.normal(size=(n, t, d)))
    h0 = tf.constant(rng.normal(size=(n, h))) if start == "h0" else None
    expected_out, expected_h = layer(x, initial_state=h0)
    got_out, got_h = forward_in_chunks(layer, x, chunk, h0)
    what = f"T={t}, chunk_length={chunk}, h0={'given' if h0 is not None else 'None'}"
    check_shape(got_out, (n, t, h), name=f"the outputs for {what}")
    check_close(got_out, expected_out, rtol=1e-6, atol=1e-8,
                name=f"the outputs for {what} (state carried? last chunk kept? h0 used?)")
    check_shape(got_h, (n, h), name=f"h_last for {what} (Keras' layout (N, H))")
    check_close(got_h, expected_h, rtol=1e-6, atol=1e-8, name=f"h_last for {what}")
    weights = tf.constant(rng.normal(size=(n, t, h)))
    expected_grads = _gradients(_truncated_reference, layer, x, chunk, h0, weights)
    got_grads = _gradients(_chunked_outputs, layer, x, chunk, h0, weights)
    names = ["the inputs x"] + [f"the layer's {w.name}" for w in layer.trainable_weights]
    for name, g, e in zip(names, got_grads, expected_grads):
        assert g is not None, f"no gradient reaches {name} ({what})"
        check_close(g, e, rtol=1e-6, atol=1e-8,
                    name=f"the gradient of a loss on all outputs for {name} ({what}: is the graph cut exactly "
                         f"between chunks, every L steps from the start, and nowhere else?)")
### END HIDDEN TESTS

# %% [markdown]
# In Keras, truncated BPTT is what a **stateful** recurrent layer does:
# `cu.rnn_regressor(..., batch_size=4)` builds one (`SimpleRNN(stateful=True)` with a fixed
# batch size), which keeps its final state after each batch as the initial state of the next
# batch. `cu.train_truncated_bptt` fits it on the chunks in order, one chunk per step,
# without shuffling, and resets the states at the start of each epoch; each step is its own
# gradient computation, so the graph is cut between chunks, as in your function. A 16-unit
# RNN, one-step-ahead targets, Adam with learning rate 0.003 and `global_clipnorm=1.0`. The
# network starts from `random_rnn_weights(..., seed=SEED)`, as in the PyTorch notebook.

# %%
SUN_EPOCHS = pick(smoke=20, standard=100, full=100)
cu.seed_everything(SEED)
sun_model = cu.rnn_regressor(1, 16, return_sequences=True, batch_size=4)
cu.set_rnn_weights(sun_model, sequences.random_rnn_weights(1, 16, 1, seed=SEED))
sun_model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3, global_clipnorm=1.0), loss="mse")
sun_history = cu.train_truncated_bptt(sun_model, x_chunks, y_chunks, epochs=SUN_EPOCHS)
print(f"{np.mean(sun_history['epoch_time']) * 1e3:.0f} ms per epoch; last training MSE {sun_history['loss'][-1]:.4f} (standardised units)")

# %% [markdown]
# **Forecasting the held-out years.** Run the trained RNN over the whole series from a zero
# state; its output at year $t$ is the forecast for year $t+1$, made from the true values up
# to year $t$. The **persistence** forecast, "next year = this year", is the baseline any
# forecaster must beat. We compare both by the mean absolute error (MAE) over the 50 test
# years, in sunspots. (`cu.predict_steps` copies the stateful model into a stateless twin
# that takes a batch of one whole series.)

# %%
forecast = cu.predict_steps(sun_model, scaled[None, :-1, None])[0, :, 0] * std + mean  # forecast[t] is for year t + 1
truth = sunspots[-TEST_YEARS:]
rnn_mae = sequences.mae(truth, forecast[-TEST_YEARS:])
persistence_mae = sequences.mae(truth, sequences.persistence_forecast(sunspots)[-TEST_YEARS:])
print(f"MAE over {years[-TEST_YEARS]}-{years[-1]}: RNN {rnn_mae:.2f}, persistence {persistence_mae:.2f} sunspots")

fig, axes = plt.subplots(1, 2, figsize=(13, 3.5), gridspec_kw={"width_ratios": [1, 2.5]})
axes[0].plot(sun_history["loss"])
axes[0].set_yscale("log")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("training MSE (standardised)")
axes[1].plot(years[-TEST_YEARS:], truth, "k.-", label="truth")
axes[1].plot(years[-TEST_YEARS:], forecast[-TEST_YEARS:], label=f"RNN, MAE {rnn_mae:.1f}")
axes[1].plot(years[-TEST_YEARS:], sunspots[-TEST_YEARS - 1:-1], ":", label=f"persistence, MAE {persistence_mae:.1f}")
axes[1].set_xlabel("year")
axes[1].set_ylabel("sunspots")
axes[1].set_title("one-year-ahead forecasts on the held-out years")
axes[1].legend()
plt.show()

# %% [markdown]
# Persistence is always one year late: it predicts the peak a year after it happened. The
# RNN has learned the shape of the cycle from its state (where in the cycle are we, how
# fast is it rising), so it anticipates the turns, although it still under- or overshoots
# the height of a peak it has not seen before. (Train it much longer and its training
# loss keeps falling while its test error rises: with 258 training years it begins to
# memorise them. 100 epochs, or a validation period for early stopping, avoid that.)
#
# ## 6. The adding problem: where a simple RNN stops
# The adding problem (Hochreiter and Schmidhuber, 1997) tests long memory directly. We use
# the variant of Le, Jaitly and Hinton (2015), not the original one (values in [-1, 1], the
# markers among the first steps, a rescaled target). Each step carries two numbers: a
# random value in [0, 1) and a marker, which is 1 at exactly two steps, one placed at
# random in each half of the sequence. The target is the **sum of the two marked
# values**. To solve it the network must notice the first marked value, keep it in its
# state for up to $T$ steps, and add the second. Always answering 1 (the mean) gives an MSE
# of 1/6 ≈ 0.167: anything above that has learned nothing.

# %%
x_show, y_show = sequences.adding_problem(1, 20, seed=SEED)
fig, ax = plt.subplots(figsize=(8, 2.5))
ax.bar(np.arange(20), x_show[0, :, 0], color=np.where(x_show[0, :, 1] == 1, "tab:red", "tab:gray"))
ax.set_xlabel("time step")
ax.set_ylabel("value")
ax.set_title(f"one sequence of length 20: the red values are marked; target = {y_show[0, 0]:.3f}")
plt.show()

# %% [markdown]
# The same 32-unit RNN for every length, starting from the same weights (spectral radius
# 0.9), Adam with learning rate 0.003, the global norm clipped to 1, and the same number of
# updates; we report the MSE on 1,000 fresh validation sequences after each epoch.

# %%
LENGTHS = pick(smoke=[10, 50], standard=[10, 25, 50, 100], full=[10, 25, 50, 100, 200, 400])
ADD_TRAIN = pick(smoke=300, standard=3000, full=10000)
ADD_EPOCHS = pick(smoke=2, standard=20, full=50)
adding = {}
for length in LENGTHS:
    x_train, y_train = sequences.adding_problem(ADD_TRAIN, length, seed=SEED)
    x_val, y_val = sequences.adding_problem(1000, length, seed=SEED + 1)
    cu.seed_everything(SEED)
    model = cu.rnn_regressor(2, 32)
    cu.set_rnn_weights(model, sequences.random_rnn_weights(2, 32, 1, spectral_radius=0.9, seed=SEED))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3, global_clipnorm=1.0), loss="mse")
    start = time.perf_counter()
    history = cu.train(model, cu.make_sequence_loader(x_train, y_train, batch_size=64, shuffle=True, seed=SEED),
                       cu.make_sequence_loader(x_val, y_val, batch_size=1000), epochs=ADD_EPOCHS, verbose=False)
    adding[length] = history["val_loss"]
    print(f"length {length:4d}: final validation MSE {adding[length][-1]:.4f} ({time.perf_counter() - start:.1f} s)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for length, losses in adding.items():
    axes[0].plot(np.arange(1, len(losses) + 1), losses, "o-", label=f"T = {length}")
finals = [losses[-1] for losses in adding.values()]
axes[1].plot(LENGTHS, finals, "o-", label="simple RNN")
for ax in axes:
    ax.axhline(sequences.ADDING_BASELINE_MSE, color="gray", linestyle="--", label="always predict 1 (0.167)")
    ax.set_yscale("log")
    ax.set_ylabel("validation MSE")
    ax.legend()
axes[0].set_xlabel("epoch")
axes[0].xaxis.get_major_locator().set_params(integer=True)
axes[1].set_xscale("log")
axes[1].set_xlabel("sequence length T")
axes[1].set_title("final validation MSE against the length")
plt.show()
print("| length | final validation MSE |\n|---|---|")
for length, final in zip(LENGTHS, finals):
    print(f"| {length} | {final:.4f} |")

# %% [markdown]
# At short lengths the RNN solves the task: its error falls far below the baseline. As the
# sequences grow, the first marked value lies further from the loss, the gradient that
# should teach the network to remember it vanishes on the way (section 3), and the error
# stays at the baseline of 0.167: the network has learned to answer "about 1". More epochs
# push the limit out a little, not away. This is the motivation for the LSTM (lesson 05)
# and the GRU (lesson 06), whose gated, additive state lets gradients cross hundreds of
# steps; the course's helpers (`cu.rnn_regressor(..., cell="lstm")`) are ready for them.
#
# ## Summary
# * An RNN applies the same step $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$ at every
#   time step; unrolled, it is a deep network with shared weights.
# * BPTT is backpropagation on the unrolled network: the gradient into $h_t$ is its own
#   output's plus the one flowing back from $h_{t+1}$ through the tanh's derivative and
#   $W_{hh}$; the shared weights' gradients are sums over time.
# * The gradient reaching an early step is a product of Jacobians $J_T \cdots J_{t+1}$: a
#   largest singular value of $W_{hh}$ below 1 guarantees that it vanishes; over long
#   distances in the near-linear regime the spectral radius decides whether it vanishes or
#   explodes exponentially, and saturation shrinks it further.
# * Clipping by global norm bounds the update and keeps its direction
#   (`tf.clip_by_global_norm`, `global_clipnorm=`; `clipnorm=` clips each variable
#   separately); it stops explosions, not vanishing.
# * Truncated BPTT carries the state across chunks and cuts the graph between them (a
#   stateful Keras layer): a long series at the cost of short backward passes. On the
#   sunspots the RNN beats the persistence forecast.
# * On the adding problem a simple RNN learns short dependencies and fails on long ones.
#
# Next: lesson 05 replaces the tanh cell with the LSTM's gates and cell state.
