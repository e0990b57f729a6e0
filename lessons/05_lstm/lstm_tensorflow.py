# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 05 · Long short-term memory (TensorFlow)
#
# Lesson 04 ended with a simple RNN that cannot learn the adding problem once the two
# numbers to add lie more than a few dozen steps apart: the gradient that should teach it
# to remember vanishes on the way back. The **long short-term memory** (LSTM, Hochreiter
# and Schmidhuber, 1997) fixes this with a second state, the **memory cell**, which is
# changed only by adding and by gated forgetting. In this lesson you will
#
# 1. write an LSTM step and a forward pass from scratch, and check them against Keras'
#    `LSTM` with the same weights (and learn the order of its gates),
# 2. see the cell state's additive path in the gradient: the LSTM against the simple RNN,
# 3. derive the backward pass of one LSTM step by hand, and check it against
#    `tf.GradientTape` and a numerical gradient,
# 4. count an LSTM's parameters, and see why PyTorch has more than Keras,
# 5. measure what the **forget-gate bias** does on the adding problem, and look at the gates
#    and the cell of a trained LSTM on one sequence,
# 6. train the lesson's LSTM classifier on a real data set, the ItalyPowerDemand series,
# 7. time the fused (cuDNN) kernel against the from-scratch cell.
#
# The PyTorch notebook of this lesson has the same headings, data, seeds and exercises:
# open them side by side to see both frameworks do the same thing.
#
# **Exercises** are marked *Exercise*. Write your code between the lines the stubs show,
# delete `raise NotImplementedError()`, run the test cell below it, and press *Validate*
# in the toolbar before you submit. The visible tests are a first check; the grader runs
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
from course_utils.checks import check_close, check_equal, check_shape, numerical_gradient, rel_error, to_numpy
from course_utils.data import load_italy_power_demand
from course_utils.guards import check_from_scratch
from course_utils.plots import plot_confusion_matrix
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
# ## 1. Gates and the memory cell
# A simple RNN overwrites its whole state at every step, $h_t = \tanh(x_t W + h_{t-1} U + b)$,
# and the gradient travelling back through it is multiplied by the tanh's derivative and
# $U$ once per step. An LSTM keeps a second vector, the **cell state** $c_t$, and three
# **gates**, vectors of numbers between 0 and 1 that decide, unit by unit, what happens to
# it. From the input $x_t$ and the previous output $h_{t-1}$ it computes, with $\sigma$ the
# logistic sigmoid,
#
# $$
# \begin{aligned}
# i_t &= \sigma(x_t W_i + h_{t-1} U_i + b_i) && \text{input gate: how much of the candidate to write}\\
# f_t &= \sigma(x_t W_f + h_{t-1} U_f + b_f) && \text{forget gate: how much of the old cell to keep}\\
# g_t &= \tanh(x_t W_g + h_{t-1} U_g + b_g) && \text{the candidate values}\\
# o_t &= \sigma(x_t W_o + h_{t-1} U_o + b_o) && \text{output gate: how much of the cell to show}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t && \text{the memory cell}\\
# h_t &= o_t \odot \tanh(c_t) && \text{the output (the hidden state)}
# \end{aligned}
# $$
#
# The cell is updated by **adding** new content and by **multiplying** by the forget gate,
# with no weight matrix and no squashing in between: $\partial c_t / \partial c_{t-1} =
# \operatorname{diag}(f_t)$. When the forget gate is near 1, the cell carries a value, and
# its gradient, across many steps unchanged. That is the whole trick; section 2 measures it.
#
# **One matrix product for all four.** The four pre-activations use the same inputs, so
# the weights are stacked: Keras' `LSTM` keeps a `kernel` (D, 4H) and a `recurrent_kernel`
# (H, 4H), whose columns are the blocks $W_i, W_f, W_g, W_o$ (and $U_i, \dots, U_o$) **in the
# order i, f, g, o** (Keras calls $g$ "c"), and one `bias` (4H,). With batches as rows, one
# step is
#
# $$ z = x_t K + h_{t-1} R + b \quad (N, 4H), \qquad z = [\,z_i \mid z_f \mid z_g \mid z_o\,], $$
#
# and the gates are the activations of the four column blocks of $z$. PyTorch uses the same
# order (with the matrices transposed and two bias vectors; section 4 counts what the second
# one costs). Other sources do not: CS231n's assignment and some papers order the blocks i,
# f, o, g, and weights copied between conventions without reordering give a network that
# runs and computes nonsense.

# %% [markdown]
# ### Exercise 1: one LSTM step (3 points)
# Write `lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)` with TensorFlow
# operations (matrix products, `tf.sigmoid`, `tf.tanh`, slicing or `tf.split`), in the
# layout of Keras' `LSTMCell`; **not** with `keras.layers.LSTM`, `LSTMCell`, `RNN` or
# TensorFlow's raw LSTM ops.
#
# * `x_t`: (N, D); `h_prev`, `c_prev`: (N, H)
# * `kernel`: (D, 4H), `recurrent_kernel`: (H, 4H), `bias`: (4H,), gate blocks in the order i, f, g, o
# * returns `(h_t, c_t, gates)`: $h_t$ and $c_t$ (N, H) and `gates`, the tuple of the four
#   activated gates `(i, f, g, o)`, each (N, H); everything in the inputs' dtype (float32
#   or float64).

# %% nbgrader={"grade": false, "grade_id": "lstm_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    """One LSTM step: x_t (N, D), h_prev and c_prev (N, H), kernel (D, 4H), recurrent_kernel (H, 4H),
    bias (4H,), gates i, f, g, o -> (h_t (N, H), c_t (N, H), (i, f, g, o) each (N, H))."""
    ### BEGIN SOLUTION
    z = tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias
    z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)
    i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g), tf.sigmoid(z_o)
    c_t = f * c_prev + i * g
    h_t = o * tf.tanh(c_t)
    return h_t, c_t, (i, f, g, o)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lstm_step_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(lstm_step, [keras.layers.LSTM, keras.layers.LSTMCell, keras.layers.RNN, tf.raw_ops.LSTMBlockCell,
                               tf.raw_ops.BlockLSTM, tf.raw_ops.BlockLSTMV2],
                   name="lstm_step", allowed="Use matrix products, tf.sigmoid and tf.tanh.")
def _lstm_cell(d, h, dtype="float32", seed=0, scale=1.0):
    """A built LSTMCell with random weights (scaled by `scale`) and a random bias."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = keras.layers.LSTMCell(h, dtype=dtype, seed=seed)
        cell.build((None, d))
    cell.kernel.assign(rng.normal(size=(d, 4 * h)) * scale / np.sqrt(d))
    cell.recurrent_kernel.assign(rng.normal(size=(h, 4 * h)) * scale / np.sqrt(h))
    cell.bias.assign(rng.normal(size=4 * h))
    return cell

cell = _lstm_cell(3, 4)
rng = np.random.default_rng(0)
x_t, h_prev, c_prev = (tf.constant(rng.normal(size=(2, k)), tf.float32) for k in (3, 4, 4))
expected_h, (_, expected_c) = cell(x_t, [h_prev, c_prev])
h_t, c_t, gates = lstm_step(x_t, h_prev, c_prev, cell.kernel, cell.recurrent_kernel, cell.bias)
check_shape(h_t, (2, 4), name="h_t")
check_close(c_t, expected_c, rtol=1e-5, atol=1e-6, name="c_t against keras.layers.LSTMCell")
check_close(h_t, expected_h, rtol=1e-5, atol=1e-6, name="h_t against keras.layers.LSTMCell")
assert len(gates) == 4, "gates should be the tuple (i, f, g, o)"
for name, gate in zip("ifgo", gates):
    check_shape(gate, (2, 4), name=f"gate {name}")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
for n, d, h, dtype in [(5, 2, 3, "float64"), (1, 6, 6, "float64"), (4, 1, 7, "float32")]:
    cell = _lstm_cell(d, h, dtype, seed=n, scale=4.0)  # large weights: every block and tanh(c) matter
    x_t, h_prev, c_prev = (tf.constant(rng.normal(size=(n, k)) * s, dtype) for k, s in ((d, 1), (h, 1), (h, 3)))
    z = x_t @ cell.kernel + h_prev @ cell.recurrent_kernel + cell.bias
    ref = (tf.sigmoid(z[:, :h]), tf.sigmoid(z[:, h:2 * h]), tf.tanh(z[:, 2 * h:3 * h]), tf.sigmoid(z[:, 3 * h:]))
    expected_h, (_, expected_c) = cell(x_t, [h_prev, c_prev])
    got_h, got_c, got_gates = lstm_step(x_t, h_prev, c_prev, cell.kernel, cell.recurrent_kernel, cell.bias)
    tol = dict(rtol=1e-6, atol=1e-8) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    assert len(got_gates) == 4, "gates should be the tuple (i, f, g, o)"
    for name, gate, expected in zip("ifgo", got_gates, ref):
        check_close(gate, expected, **tol, name=f"gate {name} with N={n}, D={d}, H={h} (gate order i, f, g, o?)")
    check_close(got_c, expected_c, **tol, name=f"c_t with N={n}, D={d}, H={h} (the order i, f, g, o?)")
    check_close(got_h, expected_h, **tol, name=f"h_t with N={n}, D={d}, H={h} (h_t = o * tanh(c_t)?)")
    for name, value in [("h_t", got_h), ("c_t", got_c), *zip("ifgo", got_gates)]:
        assert value.dtype == tf.as_dtype(dtype), f"{name} should keep the inputs' dtype {dtype}, got {value.dtype}"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: the forward pass over a sequence (2 points)
# Write `lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias)`: loop over the T steps
# (you may call your `lstm_step`), carrying **both** states, and return `(outputs, h_T, c_T)`: the
# outputs $h_1, \dots, h_T$ stacked along time, (N, T, H), as `LSTM(...,
# return_sequences=True)` returns them, and the final states $h_T$, $c_T$, (N, H) each. Not
# with Keras' LSTM layers or TensorFlow's raw LSTM ops.
#
# * `x`: (N, T, D); `h0`, `c0`: (N, H); weights as in Exercise 1.

# %% nbgrader={"grade": false, "grade_id": "lstm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    """An LSTM over a sequence: x (N, T, D), h0 and c0 (N, H) -> (outputs (N, T, H), h_T (N, H), c_T (N, H))."""
    ### BEGIN SOLUTION
    h, c, outputs = h0, c0, []
    for t in range(x.shape[1]):  # lstm_step(x[:, t], h, c, ...), written out
        i, f, g, o = tf.split(x[:, t] @ kernel + h @ recurrent_kernel + bias, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs.append(h)
    return tf.stack(outputs, axis=1), h, c
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lstm_forward_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(lstm_forward, [keras.layers.LSTM, keras.layers.LSTMCell, keras.layers.RNN, tf.raw_ops.LSTMBlockCell,
                                  tf.raw_ops.BlockLSTM, tf.raw_ops.BlockLSTMV2],
                   name="lstm_forward", allowed="Loop over the steps, e.g. with your lstm_step.")
def _lstm_layer(d, h, dtype="float32", seed=0, recurrent_scale=1.0):
    """A built LSTM layer (all outputs and both final states returned) with a random bias."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.LSTM(h, return_sequences=True, return_state=True, dtype=dtype, seed=seed)
        layer.build((None, None, d))
    layer.cell.recurrent_kernel.assign(rng.normal(size=(h, 4 * h)) * recurrent_scale / np.sqrt(h))
    layer.cell.bias.assign(rng.normal(size=4 * h))
    return layer

layer = _lstm_layer(3, 4)
x, h0, c0 = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 3)), tf.float32), tf.zeros((2, 4)), tf.zeros((2, 4))
expected, expected_h, expected_c = layer(x)
outputs, h_T, c_T = lstm_forward(x, h0, c0, layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)
check_shape(outputs, (2, 5, 4), name="the outputs of lstm_forward")
check_close(outputs, expected, rtol=1e-5, atol=1e-6, name="the outputs against keras.layers.LSTM")
check_close(c_T, expected_c, rtol=1e-5, atol=1e-6, name="c_T against keras.layers.LSTM")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(2)
for n, t, d, h in [(3, 7, 2, 5), (4, 4, 3, 4), (2, 1, 3, 3), (1, 12, 1, 6)]:  # N == T, T == 1, N == 1
    layer = _lstm_layer(d, h, "float64", seed=t, recurrent_scale=3.0)
    x = tf.constant(rng.normal(size=(n, t, d)))
    h0, c0 = tf.constant(rng.normal(size=(n, h))), tf.constant(rng.normal(size=(n, h)) * 2)  # non-zero states
    expected, expected_h, expected_c = layer(x, initial_state=[h0, c0])
    got, got_h, got_c = lstm_forward(x, h0, c0, layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)
    check_close(got, expected, rtol=1e-6, atol=1e-8,
                name=f"the outputs for N={n}, T={t} (both states carried? h0 and c0 used? batch first?)")
    check_close(got_h, expected_h, rtol=1e-6, atol=1e-8, name=f"h_T for N={n}, T={t}")
    check_close(got_c, expected_c, rtol=1e-6, atol=1e-8, name=f"c_T for N={n}, T={t}")
### END HIDDEN TESTS

# %% [markdown]
# The course keeps recurrent weights in one neutral layout, Keras' (kernel (D, 4H),
# recurrent kernel (H, 4H), one bias (4H,)). We draw such weights from a seed, so that the
# PyTorch notebook starts from the *same* LSTM (it moves them into PyTorch's layout with
# `porting.rnn_keras_to_torch("lstm", ...)`: the matrices transposed, the gate order kept).
# Your forward pass and Keras' `LSTM` agree, and print the same numbers as the PyTorch
# notebook.

# %%
rng = np.random.default_rng(SEED)
D, H = 3, 4
neutral = {"kernel": rng.normal(size=(D, 4 * H)) / np.sqrt(D), "recurrent_kernel": rng.normal(size=(H, 4 * H)) / np.sqrt(H),
           "bias": rng.normal(size=4 * H) * 0.5}
x_np = rng.normal(size=(2, 6, D))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    lstm.build((None, None, D))
lstm.set_weights([neutral["kernel"], neutral["recurrent_kernel"], neutral["bias"]])
x = tf.constant(x_np, tf.float32)
zeros = tf.zeros((2, H))
ours, h_T, c_T = lstm_forward(x, zeros, zeros, lstm.cell.kernel, lstm.cell.recurrent_kernel, lstm.cell.bias)
builtin, h_n, c_n = lstm(x)
print("ours vs keras.layers.LSTM, relative error: outputs", f"{rel_error(ours, builtin):.1e}", "c_T", f"{rel_error(c_T, c_n):.1e}")
print("kernel:", tuple(lstm.cell.kernel.shape), "= the four (D, H) blocks of i, f, g (Keras: c), o side by side")
print("h_T of the first sequence:", np.round(to_numpy(builtin[0, -1]), 5))
print("c_T of the first sequence:", np.round(to_numpy(c_n[0]), 5))

# %% [markdown]
# ## 2. The gradient through time: LSTM against the simple RNN
# Lesson 04 measured $\lVert \partial L/\partial h_t \rVert$ for a loss on the last step of
# 100: in a simple RNN with spectral radius below 1 it falls by a constant factor per step.
# Here is the same measurement for an LSTM next to the simple RNN, with `tf.GradientTape`
# on the unrolled loop (the tape gives the gradient of every intermediate $h_t$). Both
# networks have 32 units, small inputs, recurrent matrices of spectral radius 0.9 (each gate
# block of the LSTM too), and start from the same numpy weights as the PyTorch notebook.
# The LSTM runs three times, with its forget-gate bias $b_f$ at 0, 1 and 3.
#
# Through the cell, one step back multiplies the gradient by $f_t$ (elementwise), not by a
# matrix: $b_f = 3$ holds the forget gate near $\sigma(3) \approx 0.95$.

# %%
STEPS, HIDDEN = 100, 32
x_long = tf.constant(np.random.default_rng(SEED).normal(size=(16, STEPS, 1)))
readout = tf.constant(np.random.default_rng(SEED + 1).normal(size=(HIDDEN, 1)))
rng = np.random.default_rng(SEED)
rnn_w = sequences.random_rnn_weights(1, HIDDEN, spectral_radius=0.9, input_scale=0.1, seed=SEED)
lstm_kernel = rng.normal(size=(1, 4 * HIDDEN)) * 0.1
lstm_recurrent = np.concatenate([sequences.scale_to_spectral_radius(rng.normal(size=(HIDDEN, HIDDEN)), 0.9)
                                 for _ in range(4)], axis=1)


def state_gradients(step, n_states):
    """||dL/dh_t|| averaged over the batch, for L = sum_n readout . h_T, through `step` unrolled."""
    state = [tf.zeros((16, HIDDEN), tf.float64) for _ in range(n_states)]
    hs = []
    with tf.GradientTape() as tape:
        tape.watch(state)
        for t in range(STEPS):
            state = step(x_long[:, t], *state)
            hs.append(state[0])
        loss = tf.reduce_sum(hs[-1] @ readout)
    grads = tape.gradient(loss, hs)
    return np.array([float(tf.reduce_mean(tf.norm(g, axis=1))) for g in grads])


W_xh, W_hh = tf.constant(rnn_w["W_xh"]), tf.constant(rnn_w["W_hh"])
norms = {"simple RNN": state_gradients(lambda x_t, h: [tf.tanh(x_t @ W_xh + h @ W_hh)], 1)}
K, R = tf.constant(lstm_kernel), tf.constant(lstm_recurrent)
for forget_bias in (0.0, 1.0, 3.0):
    b = tf.constant(np.concatenate([np.zeros(HIDDEN), np.full(HIDDEN, forget_bias), np.zeros(2 * HIDDEN)]))
    norms[f"LSTM, b_f = {forget_bias:g}"] = state_gradients(lambda x_t, h, c, b=b: list(lstm_step(x_t, h, c, K, R, b)[:2]), 2)

fig, ax = plt.subplots(figsize=(7, 4))
for label, values in norms.items():
    ax.semilogy(np.arange(1, STEPS + 1), values, label=label)
ax.set_xlabel("time step t")
ax.set_ylabel("mean ||dL/dh_t||")
ax.set_title("gradient reaching each step from a loss at t = 100")
ax.legend()
plt.show()
for label, values in norms.items():
    print(f"{label:>16}: ||dL/dh_1|| / ||dL/dh_100|| = {values[0] / values[-1]:9.2e}, "
          f"per step x{(values[0] / values[-1]) ** (1 / (STEPS - 1)):.3f}")

# %% [markdown]
# The simple RNN loses about an eighth of its gradient per step, and after 100 steps
# almost nothing is left. The LSTM with $b_f = 0$ is worse: its forget gate sits near
# $\sigma(0) = 0.5$, and it loses almost a third per step. With $b_f = 1$ the forget gate
# is near 0.73 and the loss per step is a few percent; with $b_f = 3$ (near 0.95) the
# gradient crosses the whole sequence undiminished (the other paths through the gates add
# a little). The weights' spectrum no longer decides; the forget gate, a number the network
# *learns* per unit and per step, does. A unit that must remember sets $f_t \approx 1$ and
# keeps both its value and its gradient; a unit that should forget sets $f_t \approx 0$.
# Section 5 shows why the starting value of $b_f$ matters for learning.

# %% [markdown]
# ## 3. Backpropagation through one LSTM step
# BPTT through an LSTM is ordinary backpropagation on the unrolled network, as in lesson 04;
# what is new is the step. Write $\delta h = \partial L/\partial h_t$ (everything that
# reaches $h_t$: its own output and the next step) and $\delta c = \partial L/\partial c_t$
# **from the next step only** (through $c_{t+1} = f_{t+1} c_t + \dots$). Going back through
# the six equations of section 1, from the last to the first:
#
# * $h_t = o \odot \tanh(c_t)$: $\;\partial L/\partial o = \delta h \odot \tanh(c_t)$, and the
#   cell receives a second share, $\;\delta c_{\text{total}} = \delta c + \delta h \odot o \odot
#   (1 - \tanh^2(c_t))$;
# * $c_t = f \odot c_{t-1} + i \odot g$: $\;\partial L/\partial f = \delta c_{\text{total}} \odot
#   c_{t-1}$, $\;\partial L/\partial i = \delta c_{\text{total}} \odot g$, $\;\partial L/\partial g =
#   \delta c_{\text{total}} \odot i$, $\;\partial L/\partial c_{t-1} = \delta c_{\text{total}}
#   \odot f$ (the additive path: only a product with $f$);
# * through the activations: $\sigma' = \sigma(1 - \sigma)$ for i, f, o and $\tanh' = 1 -
#   \tanh^2$ for g give $\partial L/\partial z$ (N, 4H), the four blocks side by side in the
#   order i, f, g, o;
# * through the matrix product $z = x_t K + h_{t-1} R + b$, as for any dense layer:
#   $\partial L/\partial x_t = \frac{\partial L}{\partial z} K^\top$, $\;\partial L/\partial
#   h_{t-1} = \frac{\partial L}{\partial z} R^\top$, $\;\partial L/\partial K = x_t^\top
#   \frac{\partial L}{\partial z}$, $\;\partial L/\partial R = h_{t-1}^\top \frac{\partial
#   L}{\partial z}$, $\;\partial L/\partial b = \sum_n \frac{\partial L}{\partial z}$.
#
# (PyTorch's two biases are added, so each receives this same bias gradient.)

# %% [markdown]
# ### Exercise 3: the backward pass of one step (4 points)
# Write `lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)`
# with TensorFlow operations, **by hand** from the derivation above: the tests refuse
# automatic differentiation (`tf.GradientTape`, `tf.gradients`, anything from `tf.autodiff`)
# and the course's `numerical_gradient`. They compare your gradients' values with
# `tf.GradientTape`'s, so a finite-difference loop of your own is not caught, but it skips
# what this exercise is about: the derivation is what is asked. You may call your
# `lstm_step` to get the gates again.
#
# * `dh`: (N, H), $\partial L/\partial h_t$; `dc`: (N, H), $\partial L/\partial c_t$ from the
#   next step only
# * `x_t`: (N, D), `h_prev`, `c_prev`: (N, H), `kernel`: (D, 4H), `recurrent_kernel`: (H, 4H),
#   `bias`: (4H,); gates i, f, g, o
# * returns a dict of gradients, each in the shape and dtype of its variable: `"x"` (N, D),
#   `"h_prev"` (N, H), `"c_prev"` (N, H), `"kernel"` (D, 4H), `"recurrent_kernel"` (H, 4H),
#   `"bias"` (4H,).

# %% nbgrader={"grade": false, "grade_id": "lstm_step_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    """Gradients of one LSTM step: dh, dc (N, H) -> {"x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"}."""
    ### BEGIN SOLUTION
    z = tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias
    z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)
    i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g), tf.sigmoid(z_o)
    tanh_c = tf.tanh(f * c_prev + i * g)
    d_o = dh * tanh_c
    dc_total = dc + dh * o * (1 - tanh_c ** 2)
    d_i, d_f, d_g = dc_total * g, dc_total * c_prev, dc_total * i
    dz = tf.concat([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g ** 2), d_o * o * (1 - o)], axis=1)
    return {"x": tf.matmul(dz, kernel, transpose_b=True), "h_prev": tf.matmul(dz, recurrent_kernel, transpose_b=True),
            "c_prev": dc_total * f, "kernel": tf.matmul(x_t, dz, transpose_a=True),
            "recurrent_kernel": tf.matmul(h_prev, dz, transpose_a=True), "bias": tf.reduce_sum(dz, axis=0)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lstm_step_backward_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
from course_utils.checks import numerical_gradient as _numerical_gradient

check_from_scratch(lstm_step_backward, [tf.GradientTape, tf.GradientTape.gradient, tf.gradients, tf.autodiff,
                                        tf.autodiff.ForwardAccumulator, tf.custom_gradient, tf.compat.v1, _numerical_gradient,
                                        keras.layers.LSTMCell, keras.layers.LSTM],
                   name="lstm_step_backward", allowed="Compute the gradients by hand with TensorFlow operations.")


def _tape_step(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    """The reference: tf.GradientTape through keras' LSTMCell for the loss sum(dh * h_t) + sum(dc * c_t)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = keras.layers.LSTMCell(h_prev.shape[1], dtype=x_t.dtype)
        cell.build((None, x_t.shape[1]))
    cell.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    inputs = [tf.Variable(v) for v in (x_t, h_prev, c_prev)]
    with tf.GradientTape() as tape:
        h_t, (_, c_t) = cell(inputs[0], [inputs[1], inputs[2]])
        loss = tf.reduce_sum(dh * h_t) + tf.reduce_sum(dc * c_t)
    g = tape.gradient(loss, [*inputs, cell.kernel, cell.recurrent_kernel, cell.bias])
    return dict(zip(("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"), g))

rng = np.random.default_rng(0)
N, D, H = 2, 3, 4
x_t, h_prev, c_prev, dh, dc = (tf.constant(rng.normal(size=(N, k))) for k in (D, H, H, H, H))
kernel, recurrent_kernel, bias = (tf.constant(rng.normal(size=s)) for s in ((D, 4 * H), (H, 4 * H), (4 * H,)))
expected = _tape_step(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)
got = lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)
for key in ("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"):
    check_close(got[key], expected[key], rtol=1e-6, atol=1e-8, name=f"lstm_step_backward(...)[{key!r}] against GradientTape")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(3)
cases = [(3, 2, 5, "random"), (1, 4, 4, "random"), (4, 1, 3, "dh only"), (2, 3, 2, "dc only"), (5, 2, 3, "float32")]
for n, d, h, what in cases:
    dtype = tf.float32 if what == "float32" else tf.float64
    x_t, h_prev, dh, dc = (tf.constant(rng.normal(size=(n, k)), dtype) for k in (d, h, h, h))
    c_prev = tf.constant(rng.normal(size=(n, h)) * 2, dtype)
    kernel, recurrent_kernel = tf.constant(rng.normal(size=(d, 4 * h)) * 1.5, dtype), tf.constant(rng.normal(size=(h, 4 * h)) * 1.5, dtype)
    bias = tf.constant(rng.normal(size=4 * h), dtype)
    if what == "dh only":
        dc = tf.zeros_like(dc)
    if what == "dc only":
        dh = tf.zeros_like(dh)
    expected = _tape_step(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)
    got = lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == tf.float32 else dict(rtol=1e-7, atol=1e-9)
    for key, shape in [("x", (n, d)), ("h_prev", (n, h)), ("c_prev", (n, h)), ("kernel", (d, 4 * h)),
                       ("recurrent_kernel", (h, 4 * h)), ("bias", (4 * h,))]:
        assert key in got, f"lstm_step_backward should return a dict with the key {key!r}"
        check_shape(got[key], shape, name=f"lstm_step_backward(...)[{key!r}]")
        check_close(got[key], expected[key], **tol, name=f"lstm_step_backward(...)[{key!r}] for N={n}, D={d}, H={h} ({what})")
        assert tf.convert_to_tensor(got[key]).dtype == dtype, \
            f"lstm_step_backward(...)[{key!r}] should be {dtype.name}, got {tf.convert_to_tensor(got[key]).dtype.name}"
### END HIDDEN TESTS

# %% [markdown]
# Now two independent checks in float64, as in lesson 04: `tf.GradientTape` through Keras'
# own `LSTMCell`, and a **numerical gradient** (central differences,
# `course_utils.checks.numerical_gradient`), which needs no calculus at all. The loss is
# $L = \sum \delta h \odot h_t + \sum \delta c \odot c_t$, whose gradients are exactly what
# `lstm_step_backward` computes. Relative errors far below $10^{-6}$ mean the derivation is
# right.

# %%
rng = np.random.default_rng(SEED)
N, D, H = 3, 2, 4
params = {"x": rng.normal(size=(N, D)), "h_prev": rng.normal(size=(N, H)), "c_prev": rng.normal(size=(N, H)),
          "weight_ih": rng.normal(size=(4 * H, D)), "weight_hh": rng.normal(size=(4 * H, H)), "bias": rng.normal(size=4 * H)}
# the same numbers as the PyTorch notebook, whose weights are the transposes: kernel = weight_ih^T
params["kernel"], params["recurrent_kernel"] = params.pop("weight_ih").T.copy(), params.pop("weight_hh").T.copy()
params = {k: params[k] for k in ("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias")}
dh_np, dc_np = rng.normal(size=(N, H)), rng.normal(size=(N, H))
t = {k: tf.constant(v) for k, v in params.items()}
by_hand = lstm_step_backward(tf.constant(dh_np), tf.constant(dc_np), t["x"], t["h_prev"], t["c_prev"], t["kernel"],
                             t["recurrent_kernel"], t["bias"])

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cell = keras.layers.LSTMCell(H, dtype="float64")
    cell.build((None, D))
cell.set_weights([params["kernel"], params["recurrent_kernel"], params["bias"]])
leaves = {k: tf.Variable(params[k]) for k in ("x", "h_prev", "c_prev")}
with tf.GradientTape() as tape:
    h_t, (_, c_t) = cell(leaves["x"], [leaves["h_prev"], leaves["c_prev"]])
    loss = tf.reduce_sum(dh_np * h_t) + tf.reduce_sum(dc_np * c_t)
tape_grads = dict(zip([*leaves, "kernel", "recurrent_kernel", "bias"],
                      tape.gradient(loss, [*leaves.values(), cell.kernel, cell.recurrent_kernel, cell.bias])))


def step_loss(name):
    """The loss as a function of one of the step's variables (numpy float64), the others fixed."""
    def loss(value):
        p = {k: (value if k == name else v) for k, v in params.items()}
        cell.set_weights([p["kernel"], p["recurrent_kernel"], p["bias"]])
        h_new, (_, c_new) = cell(tf.constant(p["x"]), [tf.constant(p["h_prev"]), tf.constant(p["c_prev"])])
        return float(tf.reduce_sum(dh_np * h_new) + tf.reduce_sum(dc_np * c_new))
    return loss


worst = 0.0
print(f"{'variable':>16}  {'vs GradientTape':>15}  {'vs numerical':>12}")
for name in params:
    numerical = numerical_gradient(step_loss(name), params[name])
    errors = rel_error(by_hand[name], tape_grads[name]), rel_error(by_hand[name], numerical)
    worst = max(worst, *errors)
    print(f"{name:>16}  {errors[0]:15.2e}  {errors[1]:12.2e}")
assert worst < 1e-6, f"a relative error of {worst:.1e}: the backward pass disagrees"

# %% [markdown]
# Chained over time, these steps are BPTT for the LSTM: `dh` of step $t$ is the output's
# gradient plus the `"h_prev"` of step $t+1$, and `dc` is the `"c_prev"` of step $t+1$. Look
# at that last one: $\partial L/\partial c_{t-1} = \delta c_{\text{total}} \odot f_t$. No
# weight matrix, no $\tanh'$: the additive path of section 2, in one line.

# %% [markdown]
# ## 4. Counting parameters
# The lesson's model is one LSTM layer of 128 units reading sequences of 10 steps of one
# feature, and a dense layer with one sigmoid output (section 6 trains it):
#
# ```python
# model = Sequential([LSTM(128, input_shape=(10, 1)), Dense(1, activation="sigmoid")])
# ```
#
# Keras reports 66,689 parameters for it, PyTorch 67,201 for the same network. Each of the
# four gates has an input matrix (D × H), a recurrent matrix (H × H) and a bias (H); the
# dense layer has H weights per output and a bias. The sequence length does not appear:
# the same weights serve every step.

# %% [markdown]
# ### Exercise 4: the parameter count (2 points)
# Write `lstm_param_count(input_size, hidden_size, output_size=1)`: the number of
# parameters of one Keras `LSTM(hidden_size)` reading `input_size` features, followed by
# `Dense(output_size)`, as a Python `int`, computed with arithmetic (do not build the
# layers).

# %% nbgrader={"grade": false, "grade_id": "lstm_param_count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_param_count(input_size, hidden_size, output_size=1):
    """Parameters of LSTM(hidden_size) on input_size features + Dense(output_size), an int."""
    ### BEGIN SOLUTION
    lstm = 4 * hidden_size * (input_size + hidden_size + 1)  # four gates, one bias vector
    return int(lstm + hidden_size * output_size + output_size)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lstm_param_count_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
check_from_scratch(lstm_param_count, [keras.layers.Layer, keras.Model, keras.layers.LSTM, keras.layers.Dense],
                   name="lstm_param_count", allowed="Count with arithmetic.")
count = lstm_param_count(1, 128)
assert count == 66689, f"the lesson's model has 66,689 parameters in Keras, lstm_param_count(1, 128) gives {count}"
### BEGIN HIDDEN TESTS
def _keras_count(d, h, o):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.Sequential([keras.Input((None, d)), keras.layers.LSTM(h), keras.layers.Dense(o)])
    return model.count_params()

for d, h, o in [(1, 1, 1), (3, 5, 1), (12, 7, 9), (2, 64, 3), (40, 3, 2)]:
    expected = _keras_count(d, h, o)
    got = lstm_param_count(d, h, o)
    assert isinstance(got, (int, np.integer)) and not isinstance(got, bool), f"the count should be an int, got {type(got).__name__}"
    assert got == expected, f"lstm_param_count({d}, {h}, {o}) should be {expected}, got {got}"
assert lstm_param_count(5, 6) == _keras_count(5, 6, 1), "output_size defaults to 1"
### END HIDDEN TESTS

# %% [markdown]
# The difference: PyTorch (following cuDNN) keeps **two** bias vectors per gate, `bias_ih`
# and `bias_hh`, where Keras keeps one: $4H = 512$ extra parameters for 128 units, and
# $67{,}201 - 66{,}689 = 512$. They are redundant (only their sum enters the gates), so the
# two networks compute the same functions; `porting` adds them up to go from PyTorch to
# Keras.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    seed_like = keras.Sequential([keras.Input((10, 1)), keras.layers.LSTM(128), keras.layers.Dense(1, activation="sigmoid")])
for w in seed_like.weights:
    print(f"{w.path:>30} {str(tuple(w.shape)):>11} {int(np.prod(w.shape)):7,d}")
print(f"{'total':>30} {'':>11} {seed_like.count_params():7,d}   (PyTorch: 67,201 = 66,689 + 4 x 128)")

# %% [markdown]
# ## 5. The forget-gate bias on the adding problem
# Section 2 showed that the forget gate sets how far a gradient travels. At the start of
# training the gate is whatever the initialisation makes it. PyTorch draws its biases
# uniformly from $\pm 1/\sqrt{H}$, so $b_f \approx 0$ and $f_t \approx 0.5$: the cell forgets
# half of itself every step, and the gradient from a loss 50 steps later is $2^{-50}$ of
# itself. Jozefowicz et al. (2015) recommend starting with $b_f = 1$, and Keras does this by
# default: `LSTM(..., unit_forget_bias=True)` initialises the forget block of the bias to 1
# and the rest to 0.

# %% [markdown]
# ### Exercise 5: initialise the forget-gate bias (2 points)
# Write `init_forget_bias(layer, value=1.0)` for a built `keras.layers.LSTM`: assign `value`
# to the forget-gate block (entries H to 2H) of its bias, in place (the existing variable
# `layer.cell.bias`, with `assign`), and leave every other entry of every weight as it was.
# Return `layer`.

# %% nbgrader={"grade": false, "grade_id": "init_forget_bias", "locked": false, "schema_version": 3, "solution": true, "task": false}
def init_forget_bias(layer, value=1.0):
    """Set the forget-gate block (entries H:2H) of a built Keras LSTM layer's bias to value, in place."""
    ### BEGIN SOLUTION
    units = layer.cell.units
    bias = layer.cell.bias.numpy()
    bias[units:2 * units] = value
    layer.cell.bias.assign(bias)
    return layer
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "init_forget_bias_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    layer = keras.layers.LSTM(3, unit_forget_bias=False)
    layer.build((None, None, 2))
before = [w.numpy().copy() for w in layer.weights]
assert init_forget_bias(layer, 1.0) is layer, "init_forget_bias should return the layer it was given"
check_close(layer.cell.bias[3:6], np.ones(3), name="the forget-gate bias, bias[H:2H]")
check_close(layer.cell.recurrent_kernel, before[1], name="the recurrent kernel (it must not change)")
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(7)
for d, h, dtype, value in [(2, 3, "float32", 1.0), (3, 4, "float64", 2.5), (1, 5, "float32", -0.5), (4, 2, "float64", 0.0)]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.LSTM(h, dtype=dtype)
        layer.build((None, None, d))
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape))  # every entry non-zero and different
    variables = list(layer.weights)
    before = [w.numpy().copy() for w in variables]
    returned = init_forget_bias(layer, value)
    assert returned is layer, "init_forget_bias should return the layer it was given"
    assert len(layer.weights) == len(variables) and all(a is b for a, b in zip(layer.weights, variables)) \
        and layer.cell.bias is variables[2], "the bias must be changed in place (assign), not replaced"
    bias = variables[2].numpy()
    check_close(bias[h:2 * h], np.full(h, value), name=f"bias[H:2H], the forget gate (H={h})")
    for lo, hi, gate in [(0, h, "i"), (2 * h, 3 * h, "g (Keras' c)"), (3 * h, 4 * h, "o")]:
        check_close(bias[lo:hi], before[2][lo:hi], name=f"the {gate} gate's bias block (only the forget gate may change)")
    check_close(layer.cell.kernel, before[0], name="the kernel (weights must not change)")
    check_close(layer.cell.recurrent_kernel, before[1], name="the recurrent kernel (weights must not change)")
### END HIDDEN TESTS

# %% [markdown]
# **The experiment.** The adding problem of lesson 04 at length 50, with its settings: 32
# units, 3,000 training sequences, Adam with learning rate 0.003, the global norm clipped to
# 1, batches of 64, 20 epochs, the MSE on 1,000 fresh sequences after each epoch. Two LSTMs
# start from Keras' default initialisation; your `init_forget_bias` then sets $b_f$ to 0
# in one and to 1 (Keras' default) in the other. Next to them, the simple RNN of lesson 04.

# %%
ADD_TRAIN = pick(smoke=200, standard=3000, full=10000)
ADD_EPOCHS = pick(smoke=2, standard=20, full=60)
LENGTHS = pick(smoke=[20], standard=[10, 50, 100], full=[10, 50, 100, 200])
FORGET_LENGTH = pick(smoke=20, standard=50, full=50)
N_VAL = pick(smoke=200, standard=1000, full=1000)


def train_adding(cell, length, forget_bias=None):
    """Train a 32-unit regressor on the adding problem; return (model, validation MSE per epoch, seconds)."""
    x_train, y_train = sequences.adding_problem(ADD_TRAIN, length, seed=SEED)
    x_val, y_val = sequences.adding_problem(N_VAL, length, seed=SEED + 1)
    cu.seed_everything(SEED)
    model = cu.rnn_regressor(2, 32, cell=cell)
    if cell == "rnn":
        cu.set_rnn_weights(model, sequences.random_rnn_weights(2, 32, 1, spectral_radius=0.9, seed=SEED))
    if forget_bias is not None:
        init_forget_bias(model.layers[0], forget_bias)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3, global_clipnorm=1.0), loss="mse")
    start = time.perf_counter()
    history = cu.train(model, cu.make_sequence_loader(x_train, y_train, batch_size=64, shuffle=True, seed=SEED),
                       cu.make_sequence_loader(x_val, y_val, batch_size=N_VAL), epochs=ADD_EPOCHS, verbose=False)
    return model, history["val_loss"], time.perf_counter() - start


forget_runs = {}
for label, cell, bias in [("LSTM, b_f = 0", "lstm", 0.0), ("LSTM, b_f = 1", "lstm", 1.0), ("simple RNN", "rnn", None)]:
    forget_runs[label] = train_adding(cell, FORGET_LENGTH, bias)
    print(f"{label:>14}, length {FORGET_LENGTH}: validation MSE {forget_runs[label][1][-1]:.4f} ({forget_runs[label][2]:.0f} s)")

fig, ax = plt.subplots(figsize=(7, 4))
for label, (_, losses, _) in forget_runs.items():
    ax.plot(np.arange(1, len(losses) + 1), losses, "o-", label=label)
ax.axhline(sequences.ADDING_BASELINE_MSE, color="gray", linestyle="--", label="always predict 1 (0.167)")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("validation MSE")
ax.set_title(f"the adding problem, length {FORGET_LENGTH}")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.legend()
plt.show()

# %% [markdown]
# Measured in the `standard` profile (these seeds, this CPU): with Keras' initialisation
# (an orthogonal recurrent matrix) the LSTM learns with both biases, but $b_f = 1$ gets
# there faster (validation MSE 0.005 to 0.013 after 20 epochs, against 0.02 to 0.06 with
# $b_f = 0$, in two runs: TensorFlow's multi-threaded CPU training is not repeatable bit for
# bit). Nothing else differs between the two runs: one bias vector, 32 numbers. The simple
# RNN, started as in lesson 04, gets only part of the way at this length (0.10 to 0.11). In the PyTorch notebook
# the difference is starker: from PyTorch's default initialisation, $b_f = 0$ stays at the
# baseline (0.163) and $b_f = 1$ reaches 0.022.
#
# **Length against error.** The same comparison, LSTM with $b_f = 1$ against the simple
# RNN, over several lengths and with the same number of updates for each.

# %%
table = {}
for length in LENGTHS:
    for label, cell, bias in [("LSTM, b_f = 1", "lstm", 1.0), ("simple RNN", "rnn", None)]:
        if length == FORGET_LENGTH:
            table[label, length] = forget_runs[label][1][-1]
            continue
        _, losses, seconds = train_adding(cell, length, bias)
        table[label, length] = losses[-1]
        print(f"{label:>14}, length {length:3d}: validation MSE {losses[-1]:.4f} ({seconds:.0f} s)")

fig, ax = plt.subplots(figsize=(7, 4))
for label in ("LSTM, b_f = 1", "simple RNN"):
    ax.plot(LENGTHS, [table[label, length] for length in LENGTHS], "o-", label=label)
ax.axhline(sequences.ADDING_BASELINE_MSE, color="gray", linestyle="--", label="always predict 1 (0.167)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("sequence length T")
ax.set_ylabel(f"validation MSE after {ADD_EPOCHS} epochs")
ax.legend()
plt.show()
print("| length | LSTM, b_f = 1 | simple RNN |\n|---|---|---|")
for length in LENGTHS:
    print(f"| {length} | {table['LSTM, b_f = 1', length]:.4f} | {table['simple RNN', length]:.4f} |")

# %% [markdown]
# Up to length 50 the LSTM ends well below the simple RNN (in the `standard` profile:
# about 0.0006 against 0.003 at length 10, 0.005 to 0.013 against 0.10 at 50 here; PyTorch: 0.002
# against 0.004, and 0.022 against 0.074). At length 100 neither leaves the baseline within 20
# epochs: the LSTM is not unlimited either. The first, slow phase of learning, finding
# which inputs matter at all, takes longer when the marked values lie further apart; the
# LSTM then needs more epochs (the `full` profile trains 60), the simple RNN gets nowhere.
#
# **Inside the trained LSTM.** Run the length-50 LSTM with $b_f = 1$ over one validation
# sequence with your `lstm_step`, and record its gates and its cell. The four units whose
# cell changes most at the first marked step are drawn.

# %%
model = forget_runs["LSTM, b_f = 1"][0]
weights = [model.layers[0].cell.kernel, model.layers[0].cell.recurrent_kernel, model.layers[0].cell.bias]
x_seq, y_seq = sequences.adding_problem(1, FORGET_LENGTH, seed=SEED + 2)
xs = tf.constant(x_seq)
h, c = tf.zeros((1, 32)), tf.zeros((1, 32))
record = {"i": [], "f": [], "o": [], "c": []}
for t in range(FORGET_LENGTH):
    h, c, (i, f, g, o) = lstm_step(xs[:, t], h, c, *weights)
    for key, value in (("i", i), ("f", f), ("o", o), ("c", c)):
        record[key].append(to_numpy(value[0]))
record = {k: np.array(v) for k, v in record.items()}  # (T, 32) each
marked = np.flatnonzero(x_seq[0, :, 1])
jump = np.abs(record["c"][marked[0]] - (record["c"][marked[0] - 1] if marked[0] > 0 else 0))
units = np.argsort(jump)[-4:][::-1]

fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
steps = np.arange(FORGET_LENGTH)
axes[0].bar(steps, x_seq[0, :, 0], color=np.where(x_seq[0, :, 1] == 1, "tab:red", "tab:gray"))
axes[0].set_ylabel("input value")
axes[0].set_title(f"marked values {x_seq[0, marked, 0].round(3)}, target {y_seq[0, 0]:.3f}, "
                  f"prediction {float(model(xs)[0, 0]):.3f}")
for ax, key, name in [(axes[1], "i", "input gate i"), (axes[2], "f", "forget gate f"), (axes[3], "c", "cell state c")]:
    for u in units:
        ax.plot(steps, record[key][:, u], label=f"unit {u}")
    for m in marked:
        ax.axvline(m, color="tab:red", alpha=0.3)
    ax.set_ylabel(name)
axes[3].set_xlabel("time step")
axes[3].legend(ncol=4)
plt.show()

# %% [markdown]
# Read it top to bottom, and compare with the textbook picture: at a marked step (red) the
# input gate opens and the cell jumps by an amount that depends on the marked value;
# between the marks the forget gate stays near 1 and the cell holds its value; at the
# second mark it adds the second number, and the output gate and the dense layer read the
# sum out. A network trained for 20 epochs (validation MSE about 0.02 in PyTorch, 0.005 to 0.013 in
# Keras) is only partly there. In our measurement (PyTorch, `standard` profile) the forget
# gates of the most active units sat between 0.75 and 0.87, not at 1: the cells drift
# towards a level set by the inputs, the marked steps shift that level, and the memory of
# the first number fades over some tens of steps. Longer training (the `full` profile)
# pushes the forget gates of the units that must remember towards 1. (A unit may also store
# its value with the opposite sign, or several units share the job; in the smoke profile
# the network has barely trained.)

# %% [markdown]
# ## 6. The lesson's classifier on ItalyPowerDemand
# ItalyPowerDemand (UCR time-series archive; Keogh et al. 2006) holds one day of Italy's
# electricity demand per series, 24 hourly values, and asks whether the day lies in
# October to March or in April to September: 67 training days and 1,029 test days. Each
# series was z-normalised on its own by the archive (mean 0, standard deviation 1 per day),
# so the classifier sees the *shape* of the day, not its level. The course ships it in
# `datasets/` (see `datasets/README.md`; the archive states no licence for it).

# %%
italy = load_italy_power_demand()
print({k: (v.shape, v.dtype.name) for k, v in italy.items()})
print("labels in the files:", np.unique(italy["y_train"]), "- training days per label:", np.bincount(italy["y_train"])[1:])
fig, ax = plt.subplots(figsize=(8, 3.5))
for label, colour in [(1, "tab:blue"), (2, "tab:orange")]:
    days = italy["x_train"][italy["y_train"] == label]
    ax.plot(np.arange(24), days.T, color=colour, alpha=0.25)
    ax.plot(np.arange(24), days.mean(axis=0), color=colour, linewidth=3,
            label=f"label {label}: {'October-March' if label == 1 else 'April-September'} (mean)")
ax.set_xlabel("hour")
ax.set_ylabel("demand (z-normalised per day)")
ax.legend()
plt.show()

# %% [markdown]
# ### Exercise 6: prepare the data (2 points)
# Write `prepare_italy(data)` with numpy. `data` is a dict like the one above: `x_train`
# (N, T) and `x_test` (M, T) floats, `y_train` (N,) and `y_test` (M,) ints 1 or 2. Return a
# new dict with the same keys:
#
# * `x_train` (N, T, 1) and `x_test` (M, T, 1), float32: each time step (each hour)
#   standardised with the mean and standard deviation (numpy's default, `ddof=0`) of that
#   time step over the **training** series only, for both sets;
# * `y_train` (N, 1) and `y_test` (M, 1), float32: label 1 becomes 0, label 2 becomes 1.
#
# Do not change the arrays of `data`.

# %% nbgrader={"grade": false, "grade_id": "prepare_italy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prepare_italy(data):
    """Train-only standardisation per time step and 0/1 labels: -> {"x_train" (N, T, 1), "y_train" (N, 1), ...}."""
    ### BEGIN SOLUTION
    mean = data["x_train"].mean(axis=0)
    std = data["x_train"].std(axis=0)
    return {
        "x_train": ((data["x_train"] - mean) / std)[..., None].astype(np.float32),
        "x_test": ((data["x_test"] - mean) / std)[..., None].astype(np.float32),
        "y_train": (data["y_train"] - 1).reshape(-1, 1).astype(np.float32),
        "y_test": (data["y_test"] - 1).reshape(-1, 1).astype(np.float32),
    }
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "prepare_italy_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
prepared = prepare_italy(load_italy_power_demand())
check_shape(prepared["x_train"], (67, 24, 1), name="x_train")
check_shape(prepared["y_test"], (1029, 1), name="y_test")
check_close(prepared["x_train"].mean(axis=0), np.zeros((24, 1)), atol=1e-5, name="the mean of each hour over the training days")
assert set(np.unique(prepared["y_train"])) == {0.0, 1.0}, "the labels should be 0 and 1"
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(11)
hours = 5
train_x = rng.normal(loc=np.arange(hours) * 2.0, scale=np.arange(1, hours + 1), size=(8, hours))
test_x = rng.normal(loc=-3.0, scale=5.0, size=(6, hours))  # other statistics: they must not be used
data = {"x_train": train_x, "y_train": np.array([1, 2, 2, 1, 1, 2, 1, 2]), "x_test": test_x,
        "y_test": np.array([2, 2, 1, 1, 2, 1])}
copies = {k: v.copy() for k, v in data.items()}
got = prepare_italy(data)
for key, value in copies.items():
    check_equal(data[key], value, name=f"data[{key!r}] after prepare_italy (it must not change)")
assert set(got) >= {"x_train", "y_train", "x_test", "y_test"}, "prepare_italy should return x_train, y_train, x_test, y_test"
mean, std = train_x.mean(axis=0), train_x.std(axis=0)
for key, source in (("x_train", train_x), ("x_test", test_x)):
    check_shape(got[key], (len(source), hours, 1), name=key)
    assert got[key].dtype == np.float32, f"{key} should be float32, got {got[key].dtype}"
    check_close(got[key][..., 0], (source - mean) / std, rtol=1e-5, atol=1e-5,
                name=f"{key}: (x - mean) / std with the training set's per-step mean and std (ddof=0)")
for key in ("y_train", "y_test"):
    check_shape(got[key], (len(data[key]), 1), name=key)
    assert got[key].dtype == np.float32, f"{key} should be float32, got {got[key].dtype}"
    check_equal(got[key][:, 0], (data[key] - 1).astype(np.float32), name=f"{key} (label 1 -> 0, label 2 -> 1)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 7: the lesson's model, in Keras (3 points)
# Write `build_seed_classifier(timesteps=10, units=128)` returning the lesson's model,
# **compiled**: a `keras.Sequential` (the functional API is fine too) taking inputs (N,
# `timesteps`, 1) (start it with `keras.Input((timesteps, 1))`, Keras 3's form of
# `input_shape=`), then `LSTM(units)` (its output at the last step only), then `Dense(1,
# activation="sigmoid")`, and nothing else; compiled with the binary cross-entropy loss, the
# Adam optimizer (its default learning rate, 0.001) and the accuracy metric, as in the
# lesson text.

# %% nbgrader={"grade": false, "grade_id": "build_seed_classifier", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_seed_classifier(timesteps=10, units=128):
    """The compiled Sequential LSTM(units) -> Dense(1, sigmoid) on inputs (N, timesteps, 1)."""
    ### BEGIN SOLUTION
    model = keras.Sequential([
        keras.Input((timesteps, 1)),
        keras.layers.LSTM(units),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "build_seed_classifier_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
model = build_seed_classifier(10, 128)
assert model.count_params() == 66689, f"the model should have 66,689 parameters, has {model.count_params()}"
check_shape(model(np.random.default_rng(0).normal(size=(5, 10, 1)).astype("float32")), (5, 1),
            name="the model's output for x (5, 10, 1)")
assert type(getattr(model, "optimizer", None)) is keras.optimizers.Adam, "compile the model, with the Adam optimizer"
### BEGIN HIDDEN TESTS
def _reference_probabilities(lstm, dense, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = keras.layers.LSTM(lstm.cell.units)
        ref.build((None, None, 1))
    ref.set_weights(lstm.get_weights())
    kernel, bias = dense.get_weights()
    return 1 / (1 + np.exp(-(np.asarray(ref(x)) @ kernel + bias)))

rng = np.random.default_rng(5)
for timesteps, units in [(10, 128), (24, 6), (3, 2)]:
    model = build_seed_classifier(timesteps, units)
    assert tuple(model.input_shape) == (None, timesteps, 1), f"the model should take inputs (N, {timesteps}, 1), takes {model.input_shape}"
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    denses = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(lstms) == 1 and len(denses) == 1, "the model should hold one LSTM layer and one Dense layer"
    lstm, dense = lstms[0], denses[0]
    assert lstm.cell.units == units and not lstm.return_sequences, f"the LSTM should be LSTM({units}), its last output only"
    assert dense.units == 1, "the Dense layer should have one output"
    assert model.count_params() == 4 * units * (units + 2) + units + 1, "the model should hold nothing else"
    for w in model.weights:  # large weights: the last step, a mean over steps and a missing sigmoid all differ
        w.assign(rng.normal(size=w.shape))
    x = rng.normal(size=(4, timesteps, 1)).astype("float32")
    expected = _reference_probabilities(lstm, dense, x)  # the reference first, then the model on a copy of x
    got = np.asarray(model(x.copy()))
    check_shape(got, (4, 1), name=f"the model's output for x (4, {timesteps}, 1)")
    check_close(got, expected, rtol=1e-4, atol=1e-5,
                name=f"the probabilities for T={timesteps} (Dense with a sigmoid on the LSTM's last output)")
    assert type(model.optimizer) is keras.optimizers.Adam, f"the optimizer should be Adam, got {type(model.optimizer).__name__}"
    assert abs(float(model.optimizer.learning_rate) - 1e-3) < 1e-9, "Adam's learning rate should be the default 0.001"
    loss = keras.losses.get(model.loss) if isinstance(model.loss, str) else model.loss
    assert loss is keras.losses.binary_crossentropy or type(loss) is keras.losses.BinaryCrossentropy, \
        f"the loss should be the binary cross-entropy, got {model.loss!r}"
    y_true, y_prob = np.array([[1.0], [0.0], [0.0], [1.0]], "float32"), np.array([[0.8], [0.3], [0.6], [0.2]], "float32")
    manual = -np.mean(y_true * np.log(y_prob) + (1 - y_true) * np.log(1 - y_prob))
    check_close(float(np.mean(np.asarray(loss(y_true, y_prob)))), manual, rtol=1e-4, atol=1e-6,
                name="the compiled loss on probabilities (binary cross-entropy, not from logits)")
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # new models in a loop: keep Keras' retracing note out of the output
    try:
        results = model.evaluate(x, np.array([[1.0], [0.0], [1.0], [0.0]], "float32"), verbose=0, return_dict=True)
    finally:
        tf.get_logger().setLevel(level)
    compiled = [m for m in model.metrics if hasattr(m, "metrics")]
    resolved = [m for c in compiled for m in c.metrics]
    assert len(resolved) == 1 and getattr(resolved[0], "_fn", None) is keras.metrics.binary_accuracy, \
        f"compile with the accuracy metric (binary accuracy for one sigmoid output), got {resolved}"
    accuracy = float(np.mean((got > 0.5) == np.array([[1.0], [0.0], [1.0], [0.0]])))
    value = [v for k, v in results.items() if k != "loss"]
    check_close(value[0], accuracy, atol=1e-6, name="the accuracy metric's value (threshold 0.5)")
### END HIDDEN TESTS

# %% [markdown]
# **Training it.** The lesson's recipe: batches of 32, and the test set as
# `validation_data`, evaluated after each epoch. It asks for 10 epochs, but with 67 training
# days an epoch is three updates, so we train for 50 (150 updates). Your `prepare_italy`
# standardises the data; `model.fit` runs the loop.

# %%
ITALY_EPOCHS = pick(smoke=3, standard=50, full=50)
data = prepare_italy(italy)
cu.seed_everything(SEED)
model = build_seed_classifier(timesteps=24, units=128)
start = time.perf_counter()
with tf.device(cu.get_device()):
    italy_history = model.fit(data["x_train"], data["y_train"], epochs=ITALY_EPOCHS, batch_size=32,
                              validation_data=(data["x_test"], data["y_test"]), verbose=0).history
print(f"{ITALY_EPOCHS} epochs in {time.perf_counter() - start:.1f} s; test accuracy {italy_history['val_accuracy'][-1]:.3f}, "
      f"test loss {italy_history['val_loss'][-1]:.3f}")

# %%
predicted = (model.predict(data["x_test"], verbose=0)[:, 0] > 0.5).astype(int)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for key, label in [("loss", "training"), ("val_loss", "test (validation_data)")]:
    axes[0].plot(np.arange(1, ITALY_EPOCHS + 1), italy_history[key], label=label)
for key, label in [("accuracy", "training"), ("val_accuracy", "test (validation_data)")]:
    axes[1].plot(np.arange(1, ITALY_EPOCHS + 1), italy_history[key], label=label)
axes[0].set_ylabel("binary cross-entropy")
axes[1].set_ylabel("accuracy")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend()
plt.show()
plot_confusion_matrix(data["y_test"][:, 0].astype(int), predicted, class_names=["October-March", "April-September"])
plt.show()

# %% [markdown]
# More than 90 % of the 1,029 test days are classified right after training on 67 days
# (measured in the `standard` profile: 0.934 in PyTorch, 0.921 in Keras; the smoke profile
# trains three epochs and does worse). One
# caution about the recipe itself: passing the test set as `validation_data` is fine for
# *watching* training, but choosing the number of epochs or anything else by it turns the
# test set into a validation set, and its accuracy is then no longer an unbiased estimate.
# With more data one keeps a separate validation split.

# %% [markdown]
# ## 7. Fused kernels: cuDNN and the from-scratch cell
# Your `lstm_forward` launches a handful of small operations per time step from Python.
# Keras' `LSTM` runs the sequence in one loop inside TensorFlow, and on an NVIDIA GPU it
# calls **cuDNN**'s fused LSTM kernel, which computes the input projections of all steps as
# one large matrix product and fuses each step's gate arithmetic into one kernel. Keras
# takes the cuDNN path only when the layer's arguments allow it: `activation="tanh"`,
# `recurrent_activation="sigmoid"`, `recurrent_dropout=0`, `unroll=False`,
# `use_bias=True`, and inputs that are not masked or are strictly right-padded; anything
# else falls back to a generic loop. (PyTorch's `nn.LSTM` uses cuDNN on any CUDA device
# in float32 or float16.) A cell written from scratch never gets it.
#
# Forward and backward passes of one batch like the classifier's (32 sequences of 24 steps,
# 128 units), on this machine's CPU, run eagerly (one Python call per operation) and inside
# `tf.function` (one compiled graph, as `model.fit` runs a training step):

# %%
REPEATS = pick(smoke=3, standard=30, full=30)
WARMUP = pick(smoke=1, standard=3, full=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    lstm = keras.layers.LSTM(128, seed=SEED)
    lstm.build((None, None, 1))
x = tf.constant(np.random.default_rng(SEED).normal(size=(32, 24, 1)), tf.float32)
zeros = tf.zeros((32, 128))


def fused():
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(lstm(x))
    return tape.gradient(loss, lstm.trainable_weights)  # returned, or tf.function would prune the work away


def scratch():
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(lstm_forward(x, zeros, zeros, lstm.cell.kernel, lstm.cell.recurrent_kernel, lstm.cell.bias)[1])
    return tape.gradient(loss, lstm.trainable_weights)


timings = {}
for mode in ("eager", "tf.function"):
    for name, run in [("keras.layers.LSTM", fused), ("lstm_forward (from scratch)", scratch)]:
        run = tf.function(run) if mode == "tf.function" else run
        for _ in range(WARMUP):  # warm-up: tracing, choosing kernels, allocating
            run()
        start = time.perf_counter()
        for _ in range(REPEATS):
            run()
        timings[mode, name] = (time.perf_counter() - start) / REPEATS
        print(f"{mode:>11} {name:>28}: {timings[mode, name] * 1e3:6.1f} ms per forward + backward")

# %% [markdown]
# Eagerly, Keras' layer runs its generic step loop op by op and is no faster than yours;
# compiled with `tf.function`, both become one graph and run many times faster, and on a CPU
# they end up close, since the arithmetic is the same (your loop, unrolled over 24 fixed
# steps in the graph, can even come out ahead of the layer's symbolic loop). The fused kernel pays off on a GPU,
# where each small launch costs about as much as the arithmetic (measured on one H100 for
# the course: LSTM(128) over 10 steps, batch 32, 60,000 sequences, PyTorch's fused `nn.LSTM`
# 2.8 s against a Python-loop cell 10.9 s per epoch). Write the cell yourself to understand it or
# to change it; train with the framework's layer.
#
# ## Summary
# * An LSTM keeps a memory cell $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ and shows $h_t =
#   o_t \odot \tanh(c_t)$; the input, forget and output gates are sigmoids of one stacked
#   matrix product, in the order i, f, g (Keras' c), o in Keras and PyTorch alike.
# * The cell's additive path multiplies the gradient by the forget gate per step, not by a
#   weight matrix: with $f \approx 1$ gradients cross many steps.
# * Backpropagating through a step adds the cell's share $\delta h \odot o \odot (1 -
#   \tanh^2 c_t)$ to $\delta c$; `tf.GradientTape` and a numerical gradient agree with it in
#   float64.
# * Keras has one bias vector per gate, PyTorch two: 66,689 against 67,201 parameters for
#   the lesson's model.
# * Start the forget-gate bias at 1, as Keras does (`unit_forget_bias=True`): the LSTM learns
#   the adding problem faster; from PyTorch's initialisation it decides whether it learns.
# * The lesson's LSTM(128) classifies ItalyPowerDemand days by season with more than
#   90 % accuracy.
# * Train with the framework's layer (cuDNN on a GPU when its arguments allow); the
#   from-scratch cell is for understanding.
#
# Next: lesson 06, the GRU, a lighter gated cell, and stacked and bidirectional layers.
