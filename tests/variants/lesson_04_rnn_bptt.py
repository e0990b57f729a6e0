"""Answers to lesson 04's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students
make with RNNs: a missing tanh or tanh derivative, a transposed recurrent matrix, the state
not carried or not cut between chunks, gradients summed over the wrong axis, clipping each
tensor on its own.
"""
from tests.variants import Mutation

LESSON = "04_rnn_bptt"

# ----------------------------------------------------------------------------- rnn_step

TORCH_STEP = "def rnn_step(x_t, h_prev, W_ih, W_hh, b):\n    return {}\n"
TF_STEP = "def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):\n    return {}\n"

STEP = [
    ("pytorch", "F.linear",
     "torch.tanh(torch.nn.functional.linear(x_t, W_ih) + torch.nn.functional.linear(h_prev, W_hh, b))", True),
    ("pytorch", "einsum",
     "torch.einsum('nd,hd->nh', x_t, W_ih).add(torch.einsum('nk,hk->nh', h_prev, W_hh)).add(b).tanh()", True),
    ("pytorch", "no tanh", "x_t @ W_ih.T + h_prev @ W_hh.T + b", False),
    ("pytorch", "W_hh not transposed", "torch.tanh(x_t @ W_ih.T + h_prev @ W_hh + b)", False),
    ("pytorch", "bias forgotten", "torch.tanh(x_t @ W_ih.T + h_prev @ W_hh.T)", False),
    ("pytorch", "sigmoid", "torch.sigmoid(x_t @ W_ih.T + h_prev @ W_hh.T + b)", False),
    ("pytorch", "float32 result",
     "torch.tanh(x_t.float() @ W_ih.float().T + h_prev.float() @ W_hh.float().T + b.float())", False),
    ("tensorflow", "tf.nn.tanh and @", "tf.nn.tanh(x_t @ kernel + h_prev @ recurrent_kernel + bias)", True),
    ("tensorflow", "keras activation, einsum",
     "keras.activations.tanh(tf.einsum('nd,dh->nh', x_t, kernel) + tf.einsum('nk,kh->nh', h_prev, recurrent_kernel) + bias)",
     True),
    ("tensorflow", "no tanh", "tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias", False),
    ("tensorflow", "recurrent kernel transposed",
     "tf.tanh(tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel, transpose_b=True) + bias)", False),
    ("tensorflow", "bias forgotten", "tf.tanh(tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel))", False),
    ("tensorflow", "sigmoid", "tf.sigmoid(tf.matmul(x_t, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias)", False),
]

# ----------------------------------------------------------------------------- rnn_forward

TORCH_FORWARD_PREALLOCATED = """
def rnn_forward(x, h0, W_ih, W_hh, b):
    n, steps, _ = x.shape
    out = x.new_zeros(n, steps, W_hh.shape[0])
    h = h0
    for t in range(steps):
        h = torch.tanh(torch.nn.functional.linear(x[:, t], W_ih) + torch.nn.functional.linear(h, W_hh) + b)
        out[:, t] = h
    return out
"""
TORCH_FORWARD_INPUTS_FIRST = """
def rnn_forward(x, h0, W_ih, W_hh, b):
    projected = x @ W_ih.T + b          # all the input terms at once, (N, T, H)
    h, states = h0, []
    for p in projected.unbind(dim=1):
        h = torch.tanh(p + h @ W_hh.T)
        states.append(h)
    return torch.stack(states, dim=1)
"""
TF_FORWARD_TENSORARRAY = """
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    states = tf.TensorArray(x.dtype, size=x.shape[1])
    h = h0
    for t in range(x.shape[1]):
        h = tf.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        states = states.write(t, h)
    return tf.transpose(states.stack(), (1, 0, 2))
"""
TF_FORWARD_SCAN = """
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    step = lambda h, x_t: tf.tanh(x_t @ kernel + h @ recurrent_kernel + bias)
    return tf.transpose(tf.scan(step, tf.transpose(x, (1, 0, 2)), initializer=h0), (1, 0, 2))
"""

FORWARD = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "preallocated output", TORCH_FORWARD_PREALLOCATED, True),
    ("pytorch", "input terms first", TORCH_FORWARD_INPUTS_FIRST, True),
    ("pytorch", "state not carried", Mutation([("h @ W_hh.T", "h0 @ W_hh.T")]), False),
    ("pytorch", "h0 ignored", Mutation([("h, states = h0, []", "h, states = torch.zeros_like(h0), []")]), False),
    ("pytorch", "returns h_0 .. h_{T-1}", Mutation([("h, states = h0, []", "h, states = h0, [h0]"),
                                                      ("torch.stack(states, dim=1)", "torch.stack(states[:-1], dim=1)")]), False),
    ("pytorch", "time-major output", Mutation([("torch.stack(states, dim=1)", "torch.stack(states, dim=0)")]), False),
    ("pytorch", "last state repeated",
     Mutation([("torch.stack(states, dim=1)", "torch.stack([h] * len(states), dim=1)")]), False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "TensorArray", TF_FORWARD_TENSORARRAY, True),
    ("tensorflow", "tf.scan", TF_FORWARD_SCAN, True),
    ("tensorflow", "state not carried", Mutation([("tf.matmul(h, recurrent_kernel)", "tf.matmul(h0, recurrent_kernel)")]), False),
    ("tensorflow", "h0 ignored", Mutation([("h, states = h0, []", "h, states = tf.zeros_like(h0), []")]), False),
    ("tensorflow", "returns h_0 .. h_{T-1}", Mutation([("h, states = h0, []", "h, states = h0, [h0]"),
                                                         ("tf.stack(states, axis=1)", "tf.stack(states[:-1], axis=1)")]), False),
    ("tensorflow", "time-major output", Mutation([("tf.stack(states, axis=1)", "tf.stack(states, axis=0)")]), False),
]

# ----------------------------------------------------------------------------- rnn_backward

TORCH_BACKWARD_AFTER_THE_LOOP = """
def rnn_backward(dh_out, x, h0, hs, W_hh):
    steps = hs.shape[1]
    das, dhs = [None] * steps, [None] * steps
    carry = torch.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        dhs[t] = dh_out[:, t] + carry
        das[t] = dhs[t] * (1 - hs[:, t].pow(2))
        carry = das[t] @ W_hh
    da = torch.stack(das, dim=1)                               # (N, T, H)
    h_prev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)        # (N, T, H)
    return {"weight_ih": torch.einsum("nth,ntd->hd", da, x), "weight_hh": torch.einsum("nth,ntk->hk", da, h_prev),
            "bias": da.sum(dim=(0, 1)), "h0": carry, "dh": torch.stack(dhs, dim=1)}
"""
TORCH_BACKWARD_AUTOGRAD = """
def rnn_backward(dh_out, x, h0, hs, W_hh):
    W_hh = W_hh.clone().requires_grad_(True)
    loss = (dh_out * hs).sum()
    loss.backward()
    return {"weight_hh": W_hh.grad}
"""
TF_BACKWARD_AFTER_THE_LOOP = """
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    steps = hs.shape[1]
    das, dhs = [None] * steps, [None] * steps
    carry = tf.zeros_like(h0)
    for t in reversed(range(steps)):
        dhs[t] = dh_out[:, t] + carry
        das[t] = dhs[t] * (1 - tf.square(hs[:, t]))
        carry = tf.einsum("nh,kh->nk", das[t], recurrent_kernel)
    da = tf.stack(das, axis=1)
    h_prev = tf.concat([h0[:, None], hs[:, :-1]], axis=1)
    return {"kernel": tf.einsum("ntd,nth->dh", x, da), "recurrent_kernel": tf.einsum("ntk,nth->kh", h_prev, da),
            "bias": tf.reduce_sum(da, axis=[0, 1]), "h0": carry, "dh": tf.stack(dhs, axis=1)}
"""
TF_BACKWARD_TAPE = """
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    with tf.GradientTape() as tape:
        tape.watch(recurrent_kernel)
        loss = tf.reduce_sum(dh_out * hs)
    return {"recurrent_kernel": tape.gradient(loss, recurrent_kernel)}
"""

BACKWARD = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "einsum after the loop", TORCH_BACKWARD_AFTER_THE_LOOP, True),
    ("pytorch", "no tanh derivative", Mutation([("da = dh[:, t] * (1 - hs[:, t] ** 2)", "da = dh[:, t]")]), False),
    ("pytorch", "tanh derivative from h_{t-1}", Mutation([("(1 - hs[:, t] ** 2)", "(1 - hs[:, t - 1] ** 2)")]), False),
    ("pytorch", "h_t instead of h_{t-1}", Mutation([("da.T @ h_prev", "da.T @ hs[:, t]")]), False),
    ("pytorch", "W_hh transposed going back", Mutation([("from_later = da @ W_hh", "from_later = da @ W_hh.T")]), False),
    ("pytorch", "nothing flows back in time",
     Mutation([("dh[:, t] = dh_out[:, t] + from_later", "dh[:, t] = dh_out[:, t]")]), False),
    ("pytorch", "bias averaged over the batch", Mutation([("da.sum(dim=0)", "da.mean(dim=0)")]), False),
    ("pytorch", "input gradient transposed",
     Mutation([('grads["weight_ih"] += da.T @ x[:, t]',
               'grads["weight_ih"] += (x[:, t].T @ da).reshape(grads["weight_ih"].shape)')]),
     False),
    ("pytorch", "no gradient for h0", Mutation([("grads[\"h0\"] = from_later", "grads[\"h0\"] = torch.zeros_like(h0)")]), False),
    ("pytorch", "uses autograd", TORCH_BACKWARD_AUTOGRAD, False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "einsum after the loop", TF_BACKWARD_AFTER_THE_LOOP, True),
    ("tensorflow", "no tanh derivative", Mutation([("da = dh[t] * (1 - hs[:, t] ** 2)", "da = dh[t]")]), False),
    ("tensorflow", "h_t instead of h_{t-1}", Mutation([("tf.matmul(h_prev, da, transpose_a=True)",
                                                          "tf.matmul(hs[:, t], da, transpose_a=True)")]), False),
    ("tensorflow", "recurrent kernel not transposed going back",
     Mutation([("tf.matmul(da, recurrent_kernel, transpose_b=True)", "tf.matmul(da, recurrent_kernel)")]), False),
    ("tensorflow", "nothing flows back in time",
     Mutation([("dh[t] = dh_out[:, t] + from_later", "dh[t] = dh_out[:, t]")]), False),
    ("tensorflow", "bias summed over time only",
     Mutation([("d_bias += tf.reduce_sum(da, axis=0)", "d_bias += da[0]")]), False),
    ("tensorflow", "no gradient for h0", Mutation([('"h0": from_later', '"h0": tf.zeros_like(h0)')]), False),
    ("tensorflow", "uses GradientTape", TF_BACKWARD_TAPE, False),
]

# ----------------------------------------------------------------------------- clip_by_global_norm

TORCH_CLIP_IF = """
def clip_by_global_norm(grads, max_norm):
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    if norm > max_norm:
        return [g * (max_norm / norm) for g in grads], norm
    return [g.clone() for g in grads], norm
"""
TORCH_CLIP_EPSILON = """
def clip_by_global_norm(grads, max_norm):
    norm = torch.stack([torch.norm(g) for g in grads]).norm()
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)   # clip_grad_norm_'s formula
    return [g * coef for g in grads], norm.item()
"""
TORCH_CLIP_PER_TENSOR = """
def clip_by_global_norm(grads, max_norm):
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    return [g * min(1.0, max_norm / max(float(g.norm()), 1e-12)) for g in grads], norm
"""
TORCH_CLIP_IN_PLACE = """
def clip_by_global_norm(grads, max_norm):
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / max(float(norm), 1e-12))
    return [g.mul_(scale) for g in grads], norm
"""
TORCH_CLIP_BUILTIN = """
def clip_by_global_norm(grads, max_norm):
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], norm
"""
TF_CLIP_IF = """
def clip_by_global_norm(grads, max_norm):
    norm = tf.norm(tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0))
    if norm > max_norm:
        return [g * max_norm / norm for g in grads], norm
    return list(grads), norm
"""
TF_CLIP_GLOBAL_NORM = """
def clip_by_global_norm(grads, max_norm):
    norm = tf.linalg.global_norm(grads)
    return [g * tf.minimum(1.0, max_norm / tf.maximum(norm, 1e-12)) for g in grads], norm
"""
TF_CLIP_PER_TENSOR = """
def clip_by_global_norm(grads, max_norm):
    return [tf.clip_by_norm(g, max_norm) for g in grads], tf.linalg.global_norm(grads)
"""


def _clip_wrong(framework, name, norm, clipped):
    """A wrong answer built from a norm expression and a clipped-list expression."""
    return (framework, "clip_by_global_norm", name,
            f"def clip_by_global_norm(grads, max_norm):\n    norm = {norm}\n    return {clipped}, norm\n", False)


TORCH_NORM = "torch.sqrt(sum((g ** 2).sum() for g in grads))"
TF_NORM = "tf.sqrt(tf.add_n([tf.reduce_sum(g ** 2) for g in grads]))"

CLIP = [
    ("pytorch", "clip_by_global_norm", "the solution", Mutation(), True),
    ("pytorch", "clip_by_global_norm", "if above the threshold", TORCH_CLIP_IF, True),
    ("pytorch", "clip_by_global_norm", "clip_grad_norm_'s epsilon, norm as a float", TORCH_CLIP_EPSILON, True),
    ("pytorch", "clip_by_global_norm", "each tensor by its own norm", TORCH_CLIP_PER_TENSOR, False),
    ("pytorch", "clip_by_global_norm", "changes the gradients in place", TORCH_CLIP_IN_PLACE, False),
    ("pytorch", "clip_by_global_norm", "calls clip_grad_norm_", TORCH_CLIP_BUILTIN, False),
    _clip_wrong("pytorch", "always rescaled to max_norm", TORCH_NORM, "[g * max_norm / max(float(norm), 1e-12) for g in grads]"),
    _clip_wrong("pytorch", "norms added, not squares", "sum(g.norm() for g in grads)",
                "[g * min(1.0, max_norm / max(float(norm), 1e-12)) for g in grads]"),
    _clip_wrong("pytorch", "no square root", "sum((g ** 2).sum() for g in grads)",
                "[g * min(1.0, max_norm / max(float(norm), 1e-12)) for g in grads]"),
    _clip_wrong("pytorch", "clipped by value", TORCH_NORM, "[g.clamp(-max_norm, max_norm) for g in grads]"),
    ("pytorch", "clip_by_global_norm", "returns the norm after clipping", Mutation([
        ("return [g * scale.to(g.dtype) for g in grads], total_norm",
         "return [g * scale.to(g.dtype) for g in grads], total_norm * scale")]), False),
    ("tensorflow", "clip_by_global_norm", "the solution", Mutation(), True),
    ("tensorflow", "clip_by_global_norm", "if above the threshold", TF_CLIP_IF, True),
    ("tensorflow", "clip_by_global_norm", "tf.linalg.global_norm", TF_CLIP_GLOBAL_NORM, True),
    ("tensorflow", "clip_by_global_norm", "each tensor by its own norm", TF_CLIP_PER_TENSOR, False),
    _clip_wrong("tensorflow", "always rescaled to max_norm", TF_NORM, "[g * max_norm / tf.maximum(norm, 1e-12) for g in grads]"),
    _clip_wrong("tensorflow", "norms added, not squares", "tf.add_n([tf.norm(g) for g in grads])",
                "[g * tf.minimum(1.0, max_norm / tf.maximum(norm, 1e-12)) for g in grads]"),
    _clip_wrong("tensorflow", "clipped by value", TF_NORM, "[tf.clip_by_value(g, -max_norm, max_norm) for g in grads]"),
    ("tensorflow", "clip_by_global_norm", "calls tf.clip_by_global_norm",
     "def clip_by_global_norm(grads, max_norm):\n    return tf.clip_by_global_norm(grads, max_norm)\n", False),
]

# ----------------------------------------------------------------------------- forward_in_chunks

TORCH_CHUNKS_SPLIT = """
def forward_in_chunks(rnn, x, chunk_length, h0=None):
    n = x.shape[0]
    h = torch.zeros(1, n, rnn.hidden_size, dtype=x.dtype) if h0 is None else h0
    outputs = []
    for chunk in torch.split(x, chunk_length, dim=1):
        out, h = rnn(chunk, h.detach())
        outputs.append(out)
    return torch.cat(outputs, dim=1), h
"""
TF_CHUNKS_WHILE = """
def forward_in_chunks(layer, x, chunk_length, h0=None):
    outputs, state, start = [], h0, 0
    while start < x.shape[1]:
        chunk = x[:, start:start + chunk_length]
        if state is None:
            out, state = layer(chunk)
        else:
            out, state = layer(chunk, initial_state=[tf.stop_gradient(state)])
        outputs.append(out)
        start += chunk_length
    return tf.concat(outputs, axis=1), state
"""

CHUNKS = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "torch.split, detach before use", TORCH_CHUNKS_SPLIT, True),
    ("pytorch", "state not carried", Mutation([("out, h = rnn(x[:, start:start + chunk_length], h)",
                                                 "out, h = rnn(x[:, start:start + chunk_length], h0)")]), False),
    ("pytorch", "state not detached", Mutation([("h = h.detach()", "pass")]), False),
    ("pytorch", "state reset to zeros", Mutation([("h = h.detach()", "h = torch.zeros_like(h)")]), False),
    ("pytorch", "last short chunk dropped", Mutation([("range(0, x.shape[1], chunk_length)",
                                                        "range(0, x.shape[1] - chunk_length + 1, chunk_length)")]), False),
    ("pytorch", "outputs detached too", Mutation([("outputs.append(out)", "outputs.append(out.detach())")]), False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "while loop, stop_gradient before use", TF_CHUNKS_WHILE, True),
    ("tensorflow", "state not carried", Mutation([("initial_state=h)", "initial_state=h0)")]), False),
    ("tensorflow", "state not cut", Mutation([("h = tf.stop_gradient(h)", "pass")]), False),
    ("tensorflow", "last short chunk dropped", Mutation([("range(0, x.shape[1], chunk_length)",
                                                           "range(0, x.shape[1] - chunk_length + 1, chunk_length)")]), False),
    ("tensorflow", "outputs cut too", Mutation([("outputs.append(out)", "outputs.append(tf.stop_gradient(out))")]), False),
]

# ----------------------------------------------------------------------------- issue 11: new classes
# "from scratch" (the framework's own RNN reached however the answer names it), autograd
# used in a backward pass (a method on a local tensor, an alias, a numerical gradient),
# clipping functions, dtypes, and truncated BPTT that cuts the graph in the wrong places
# or returns the state in the wrong layout.

STEP_BUILTIN = [
    ("pytorch", "nn.RNNCell with the weights loaded", """
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    cell = torch.nn.RNNCell(W_ih.shape[1], W_ih.shape[0]).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(W_ih); cell.weight_hh.copy_(W_hh); cell.bias_ih.copy_(b); cell.bias_hh.zero_()
    return cell(x_t, h_prev)
""", False),
    ("pytorch", "torch.rnn_tanh_cell through a module-level alias", """
from torch import rnn_tanh_cell as fused
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    return fused(x_t, h_prev, W_ih, W_hh, b, torch.zeros_like(b))
""", False),
    ("pytorch", "addmm and a helper", """
def _affine(a, w, c):
    return torch.addmm(c, a, w.T)
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    return torch.tanh(_affine(x_t, W_ih, b) + _affine(h_prev, W_hh, torch.zeros_like(b)))
""", True),
    ("tensorflow", "SimpleRNNCell with the weights set", """
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    cell = keras.layers.SimpleRNNCell(kernel.shape[1], dtype=x_t.dtype.name)
    cell.build((None, kernel.shape[0]))
    cell.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    return cell(x_t, [h_prev])[0]
""", False),
    ("tensorflow", "keras.ops matmul and tanh", """
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    return keras.ops.tanh(keras.ops.matmul(x_t, kernel) + keras.ops.matmul(h_prev, recurrent_kernel) + bias)
""", True),
]

FORWARD_MORE = [
    ("pytorch", "nn.RNN with the weights loaded", """
def rnn_forward(x, h0, W_ih, W_hh, b):
    rnn = torch.nn.RNN(W_ih.shape[1], W_ih.shape[0], batch_first=True).to(x.dtype)
    rnn.load_state_dict({"weight_ih_l0": W_ih, "weight_hh_l0": W_hh, "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)})
    return rnn(x, h0[None])[0]
""", False),
    ("pytorch", "a step that calls nn.RNNCell", """
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    cell = torch.nn.RNNCell(W_ih.shape[1], W_ih.shape[0]).to(x_t.dtype)
    cell.load_state_dict({"weight_ih": W_ih, "weight_hh": W_hh, "bias_ih": b, "bias_hh": torch.zeros_like(b)})
    return cell(x_t, h_prev)
def rnn_forward(x, h0, W_ih, W_hh, b):
    h, states = h0, []
    for t in range(x.shape[1]):
        h = rnn_step(x[:, t], h, W_ih, W_hh, b)
        states.append(h)
    return torch.stack(states, dim=1)
""", False),
    ("pytorch", "computed in float32",
     Mutation([("h, states = h0, []", "x, h0, W_ih, W_hh, b = x.float(), h0.float(), "
                "W_ih.float(), W_hh.float(), b.float()\n    h, states = h0, []")]), False),
    ("pytorch", "calls its own rnn_step, unbind and stack", """
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    return torch.tanh(x_t @ W_ih.T + h_prev @ W_hh.T + b)
def rnn_forward(x, h0, W_ih, W_hh, b):
    states = []
    for x_t in x.unbind(1):
        h0 = rnn_step(x_t, h0, W_ih, W_hh, b)
        states.append(h0)
    return torch.stack(states, 1)
""", True),
    ("tensorflow", "SimpleRNN with the weights set", """
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    layer = keras.layers.SimpleRNN(kernel.shape[1], return_sequences=True, dtype=x.dtype.name)
    layer.build((None, None, kernel.shape[0]))
    layer.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    return layer(x, initial_state=h0)
""", False),
    ("tensorflow", "keras.backend.rnn", """
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    step = lambda x_t, states: (lambda h: (h, [h]))(tf.tanh(x_t @ kernel + states[0] @ recurrent_kernel + bias))
    return keras.backend.rnn(step, x, [h0])[1]
""", False),
    ("tensorflow", "computed in float32",
     Mutation([("h, states = h0, []", "x, h0, kernel, recurrent_kernel, bias = (tf.cast(v, tf.float32) "
                "for v in (x, h0, kernel, recurrent_kernel, bias))\n    h, states = h0, []")]), False),
    ("tensorflow", "calls its own rnn_step, unstack", """
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    return tf.tanh(x_t @ kernel + h_prev @ recurrent_kernel + bias)
def rnn_forward(x, h0, kernel, recurrent_kernel, bias):
    states, h = [], h0
    for x_t in tf.unstack(x, axis=1):
        h = rnn_step(x_t, h, kernel, recurrent_kernel, bias)
        states.append(h)
    return tf.stack(states, axis=1)
""", True),
]

BACKWARD_MORE = [
    ("pytorch", ".backward() on a recomputed graph", """
def rnn_backward(dh_out, x, h0, hs, W_hh):
    n, steps, hidden = hs.shape
    # a = atanh(h_t) recovers the pre-activations; differentiate them with autograd
    h_prev = torch.cat([h0[:, None], hs[:, :-1]], dim=1).clone().requires_grad_(True)
    xs = x.clone().requires_grad_(True)
    W = W_hh.clone().requires_grad_(True)
    grads = {}
    dh = torch.zeros_like(hs)
    from_later = torch.zeros_like(h0)
    das = []
    for t in reversed(range(steps)):
        dh[:, t] = dh_out[:, t] + from_later
        da = dh[:, t] * (1 - hs[:, t] ** 2)
        das.insert(0, da)
        hp = hs[:, t - 1] if t > 0 else h0
        hp = hp.clone().requires_grad_(True)
        (hp @ W.T * da).sum().backward()
        from_later = hp.grad
    da = torch.stack(das, dim=1)
    hprev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)
    return {"weight_ih": torch.einsum("nth,ntd->hd", da, x), "weight_hh": torch.einsum("nth,ntk->hk", da, hprev),
            "bias": da.sum(dim=(0, 1)), "h0": from_later, "dh": dh}
""", False),
    ("pytorch", "autograd.grad through a module-level alias", """
from torch.autograd import grad as vjp_of
def rnn_backward(dh_out, x, h0, hs, W_hh):
    steps = hs.shape[1]
    dh = torch.zeros_like(hs)
    from_later = torch.zeros_like(h0)
    das = []
    for t in reversed(range(steps)):
        dh[:, t] = dh_out[:, t] + from_later
        da = dh[:, t] * (1 - hs[:, t] ** 2)
        das.insert(0, da)
        hp = (hs[:, t - 1] if t > 0 else h0).clone().requires_grad_(True)
        from_later = vjp_of((hp @ W_hh.T * da).sum(), hp)[0]
    da = torch.stack(das, dim=1)
    hprev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)
    return {"weight_ih": torch.einsum("nth,ntd->hd", da, x), "weight_hh": torch.einsum("nth,ntk->hk", da, hprev),
            "bias": da.sum(dim=(0, 1)), "h0": from_later, "dh": dh}
""", False),
    ("pytorch", "torch.func.vjp for the step back", """
def rnn_backward(dh_out, x, h0, hs, W_hh):
    steps = hs.shape[1]
    dh = torch.zeros_like(hs)
    from_later = torch.zeros_like(h0)
    das = []
    for t in reversed(range(steps)):
        dh[:, t] = dh_out[:, t] + from_later
        da = dh[:, t] * (1 - hs[:, t] ** 2)
        das.insert(0, da)
        hp = hs[:, t - 1] if t > 0 else h0
        from_later = torch.func.vjp(lambda h: h @ W_hh.T, hp)[1](da)[0]
    da = torch.stack(das, dim=1)
    hprev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)
    return {"weight_ih": torch.einsum("nth,ntd->hd", da, x), "weight_hh": torch.einsum("nth,ntk->hk", da, hprev),
            "bias": da.sum(dim=(0, 1)), "h0": from_later, "dh": dh}
""", False),
    ("pytorch", "tanh derivative precomputed, addmm", """
def rnn_backward(dh_out, x, h0, hs, W_hh):
    n, steps, hidden = hs.shape
    deriv = 1 - hs * hs
    g_ih = x.new_zeros(hidden, x.shape[2]); g_hh = x.new_zeros(hidden, hidden); g_b = x.new_zeros(hidden)
    dhs = [None] * steps
    carry = torch.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        dhs[t] = dh_out[:, t] + carry
        da = dhs[t] * deriv[:, t]
        g_ih = torch.addmm(g_ih, da.T, x[:, t])
        g_hh = torch.addmm(g_hh, da.T, hs[:, t - 1] if t else h0)
        g_b = g_b + da.sum(0)
        carry = torch.mm(da, W_hh)
    return {"weight_ih": g_ih, "weight_hh": g_hh, "bias": g_b, "h0": carry, "dh": torch.stack(dhs, 1)}
""", True),
    ("tensorflow", "GradientTape through a module-level alias", """
Tape = tf.GradientTape
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    steps = hs.shape[1]
    dh, das = [None] * steps, [None] * steps
    from_later = tf.zeros_like(h0)
    for t in reversed(range(steps)):
        dh[t] = dh_out[:, t] + from_later
        das[t] = dh[t] * (1 - hs[:, t] ** 2)
        hp = hs[:, t - 1] if t > 0 else h0
        with Tape() as tape:
            tape.watch(hp)
            loss = tf.reduce_sum((hp @ recurrent_kernel) * das[t])
        from_later = tape.gradient(loss, hp)
    da = tf.stack(das, axis=1)
    h_prev = tf.concat([h0[:, None], hs[:, :-1]], axis=1)
    return {"kernel": tf.einsum("ntd,nth->dh", x, da), "recurrent_kernel": tf.einsum("ntk,nth->kh", h_prev, da),
            "bias": tf.reduce_sum(da, axis=[0, 1]), "h0": from_later, "dh": tf.stack(dh, axis=1)}
""", False),
    ("tensorflow", "tf.gradients inside tf.function", """
@tf.function
def _back(hp, rk, da):
    return tf.gradients(tf.reduce_sum((hp @ rk) * da), hp)[0]
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    steps = hs.shape[1]
    dh, das = [None] * steps, [None] * steps
    from_later = tf.zeros_like(h0)
    for t in reversed(range(steps)):
        dh[t] = dh_out[:, t] + from_later
        das[t] = dh[t] * (1 - hs[:, t] ** 2)
        from_later = _back(hs[:, t - 1] if t > 0 else h0, recurrent_kernel, das[t])
    da = tf.stack(das, axis=1)
    h_prev = tf.concat([h0[:, None], hs[:, :-1]], axis=1)
    return {"kernel": tf.einsum("ntd,nth->dh", x, da), "recurrent_kernel": tf.einsum("ntk,nth->kh", h_prev, da),
            "bias": tf.reduce_sum(da, axis=[0, 1]), "h0": from_later, "dh": tf.stack(dh, axis=1)}
""", False),
    ("tensorflow", "tanh derivative precomputed, matmul with transpose", """
def rnn_backward(dh_out, x, h0, hs, recurrent_kernel):
    steps = hs.shape[1]
    deriv = 1 - tf.square(hs)
    h_prev = tf.concat([h0[:, None], hs[:, :-1]], axis=1)
    carry = tf.zeros_like(h0)
    dhs, das = [], []
    for t in range(steps - 1, -1, -1):
        d = dh_out[:, t] + carry
        a = d * deriv[:, t]
        dhs.insert(0, d)
        das.insert(0, a)
        carry = tf.matmul(a, tf.transpose(recurrent_kernel))
    da = tf.stack(das, 1)
    return {"kernel": tf.reduce_sum(tf.matmul(tf.transpose(x, (0, 2, 1)), da), 0),
            "recurrent_kernel": tf.reduce_sum(tf.matmul(tf.transpose(h_prev, (0, 2, 1)), da), 0),
            "bias": tf.reduce_sum(da, (0, 1)), "h0": carry, "dh": tf.stack(dhs, 1)}
""", True),
]

CLIP_MORE = [
    ("pytorch", "clip_by_global_norm", "clip_grad_norm_ through a module-level alias", """
from torch.nn.utils import clip_grad_norm_ as cg
def clip_by_global_norm(grads, max_norm):
    params = [torch.nn.Parameter(g.clone()) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = cg(params, max_norm)
    return [p.grad for p in params], norm
""", False),
    ("pytorch", "clip_by_global_norm", "get_total_norm, then clip_grads_with_norm_", """
def clip_by_global_norm(grads, max_norm):
    out = [g.clone() for g in grads]
    norm = torch.nn.utils.get_total_norm(out)
    torch.nn.utils.clip_grads_with_norm_([torch.nn.Parameter(torch.zeros_like(g)) for g in out], max_norm, norm)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    return [g * scale for g in out], norm
""", False),
    ("pytorch", "clip_by_global_norm", "float64 gradients come back float32", """
def clip_by_global_norm(grads, max_norm):
    norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / max(float(norm), 1e-12))
    return [g.float() * scale for g in grads], norm
""", False),
    ("pytorch", "clip_by_global_norm", "get_total_norm and a python scale", """
def clip_by_global_norm(grads, max_norm):
    norm = torch.nn.utils.get_total_norm(grads)
    scale = 1.0 if float(norm) <= max_norm else max_norm / float(norm)
    return [g * scale for g in grads], norm
""", True),
    ("pytorch", "clip_by_global_norm", "vector_norm of the per-tensor norms", """
def clip_by_global_norm(grads, max_norm):
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
    return [g * (max_norm / norm).clamp(max=1.0).to(g.dtype) for g in grads], norm
""", True),
    ("tensorflow", "clip_by_global_norm", "tf.clip_by_global_norm through a module-level alias", """
from tensorflow import clip_by_global_norm as builtin_clip
def clip_by_global_norm(grads, max_norm):
    return builtin_clip(grads, max_norm)
""", False),
    ("tensorflow", "clip_by_global_norm", "tf.clip_by_norm with the global norm's share", """
def clip_by_global_norm(grads, max_norm):
    norm = tf.linalg.global_norm(grads)
    return [tf.clip_by_norm(g, max_norm * tf.norm(g) / tf.maximum(norm, 1e-12)) for g in grads], norm
""", False),
    ("tensorflow", "clip_by_global_norm", "returns the norm after clipping", Mutation([
        ("return [g * tf.cast(scale, g.dtype) for g in grads], total_norm",
         "return [g * tf.cast(scale, g.dtype) for g in grads], total_norm * scale")]), False),
    ("tensorflow", "clip_by_global_norm", "float64 gradients come back float32", """
def clip_by_global_norm(grads, max_norm):
    grads = [tf.cast(g, tf.float32) for g in grads]
    norm = tf.linalg.global_norm(grads)
    return [g * tf.minimum(1.0, max_norm / tf.maximum(norm, 1e-12)) for g in grads], norm
""", False),
    ("tensorflow", "clip_by_global_norm", "keras.ops, the scale clipped with tf.clip_by_value", """
def clip_by_global_norm(grads, max_norm):
    norm = keras.ops.sqrt(sum(keras.ops.sum(keras.ops.square(tf.cast(g, tf.float64))) for g in grads))
    scale = tf.clip_by_value(max_norm / tf.maximum(norm, 1e-300), 0.0, 1.0)
    return [g * tf.cast(scale, g.dtype) for g in grads], norm
""", True),
]

TORCH_CHUNKS_EVERY_STEP = """
def forward_in_chunks(rnn, x, chunk_length, h0=None):
    outputs, h = [], h0
    for t in range(x.shape[1]):
        out, h = rnn(x[:, t:t + 1], h)
        outputs.append(out)
        h = h.detach()
    return torch.cat(outputs, dim=1), h
"""
TORCH_CHUNKS_FROM_THE_END = """
def forward_in_chunks(rnn, x, chunk_length, h0=None):
    steps = x.shape[1]
    first = steps % chunk_length or chunk_length
    bounds = [0] + list(range(first, steps, chunk_length)) + [steps]
    outputs, h = [], h0
    for a, b in zip(bounds[:-1], bounds[1:]):
        out, h = rnn(x[:, a:b], h)
        outputs.append(out)
        h = h.detach()
    return torch.cat(outputs, dim=1), h
"""
TORCH_CHUNKS_EVERY_OTHER = Mutation([("h = h.detach()  # carry the state, cut the graph",
                                      "h = h.detach() if start // chunk_length % 2 else h")])
TORCH_CHUNKS_OUT_STATE = """
def forward_in_chunks(rnn, x, chunk_length, h0=None):
    outputs, h = [], h0
    for chunk in x.split(chunk_length, dim=1):
        out, _ = rnn(chunk, h)
        outputs.append(out)
        h = out[:, -1:].transpose(0, 1).detach()      # the last output is the state, made (1, N, H)
    return torch.cat(outputs, dim=1), h
"""
TORCH_CHUNKS_CUT_WITHIN = """
def forward_in_chunks(rnn, x, chunk_length, h0=None):
    outputs, h = [], h0
    for start in range(0, x.shape[1], chunk_length):
        half = max(1, min(chunk_length, x.shape[1] - start) // 2)
        out1, h = rnn(x[:, start:start + half], h)
        rest = x[:, start + half:start + chunk_length]
        out2, h = rnn(rest, h.detach()) if rest.shape[1] else (out1[:, :0], h)
        outputs += [out1, out2]
        h = h.detach()
    return torch.cat(outputs, dim=1), h
"""
TF_CHUNKS_EVERY_STEP = """
def forward_in_chunks(layer, x, chunk_length, h0=None):
    outputs, h = [], h0
    for t in range(x.shape[1]):
        out, h = layer(x[:, t:t + 1], initial_state=h)
        outputs.append(out)
        h = tf.stop_gradient(h)
    return tf.concat(outputs, axis=1), h
"""
TF_CHUNKS_FROM_THE_END = """
def forward_in_chunks(layer, x, chunk_length, h0=None):
    steps = x.shape[1]
    first = steps % chunk_length or chunk_length
    bounds = [0] + list(range(first, steps, chunk_length)) + [steps]
    outputs, h = [], h0
    for a, b in zip(bounds[:-1], bounds[1:]):
        out, h = layer(x[:, a:b], initial_state=h)
        outputs.append(out)
        h = tf.stop_gradient(h)
    return tf.concat(outputs, axis=1), h
"""
TF_CHUNKS_OUT_STATE = """
def forward_in_chunks(layer, x, chunk_length, h0=None):
    outputs, h = [], h0
    for start in range(0, x.shape[1], chunk_length):
        out, _ = layer(x[:, start:start + chunk_length], initial_state=None if h is None else [h])
        outputs.append(out)
        h = tf.stop_gradient(out[:, -1])
    return tf.concat(outputs, axis=1), h
"""

CHUNKS_MORE = [
    ("pytorch", "every step detached", TORCH_CHUNKS_EVERY_STEP, False),
    ("pytorch", "chunks counted from the end (the first one short)", TORCH_CHUNKS_FROM_THE_END, False),
    ("pytorch", "state detached after every other chunk only", TORCH_CHUNKS_EVERY_OTHER, False),
    ("pytorch", "graph also cut in the middle of each chunk", TORCH_CHUNKS_CUT_WITHIN, False),
    ("pytorch", "h_last returned as (N, H)",
     Mutation([("return torch.cat(outputs, dim=1), h", "return torch.cat(outputs, dim=1), h[0]")]), False),
    ("pytorch", "h_last returned batch first (N, 1, H)",
     Mutation([("return torch.cat(outputs, dim=1), h", "return torch.cat(outputs, dim=1), h.transpose(0, 1)")]), False),
    ("pytorch", "the inputs of each chunk detached",
     Mutation([("rnn(x[:, start:start + chunk_length], h)", "rnn(x[:, start:start + chunk_length].detach(), h)")]), False),
    ("pytorch", "state from the last output, split", TORCH_CHUNKS_OUT_STATE, True),
    ("tensorflow", "every step cut", TF_CHUNKS_EVERY_STEP, False),
    ("tensorflow", "chunks counted from the end (the first one short)", TF_CHUNKS_FROM_THE_END, False),
    ("tensorflow", "state cut after every other chunk only",
     Mutation([("h = tf.stop_gradient(h)  # carry the state, cut the graph",
                "h = tf.stop_gradient(h) if start // chunk_length % 2 else h")]), False),
    ("tensorflow", "h_last returned as (1, N, H)",
     Mutation([("return tf.concat(outputs, axis=1), h", "return tf.concat(outputs, axis=1), h[None]")]), False),
    ("tensorflow", "the inputs of each chunk cut",
     Mutation([("layer(x[:, start:start + chunk_length], initial_state=h)",
                "layer(tf.stop_gradient(x[:, start:start + chunk_length]), initial_state=h)")]), False),
    ("tensorflow", "state from the last output, as a list", TF_CHUNKS_OUT_STATE, True),
]

# ----------------------------------------------------------------------------- inputs changed in place
# An answer that zeroes its inputs (or the cell's weights) and returns what the reference
# then computes from them: the tests must compute the reference first.

IN_PLACE = [
    ("pytorch", "rnn_step", "zeroes x_t and h_prev in place, returns tanh(b)", """
def rnn_step(x_t, h_prev, W_ih, W_hh, b):
    x_t.zero_(); h_prev.zero_()
    return torch.tanh(b).expand(len(x_t), -1).clone()
""", False),
    ("tensorflow", "rnn_step", "zeroes the cell's variables, returns zeros", """
def rnn_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    for v in (kernel, recurrent_kernel, bias):
        v.assign(tf.zeros_like(v))
    return tf.zeros((x_t.shape[0], kernel.shape[1]), x_t.dtype)
""", False),
]

VARIANTS = [
    *IN_PLACE,
    *[(fw, "rnn_step", name, (TORCH_STEP if fw == "pytorch" else TF_STEP).format(body), ok) for fw, name, body, ok in STEP],
    *[(fw, "rnn_step", name, answer, ok) for fw, name, answer, ok in STEP_BUILTIN],
    *[(fw, "rnn_forward", name, answer, ok) for fw, name, answer, ok in FORWARD_MORE],
    *[(fw, "rnn_backward", name, answer, ok) for fw, name, answer, ok in BACKWARD_MORE],
    *CLIP_MORE,
    *[(fw, "forward_in_chunks", name, answer, ok) for fw, name, answer, ok in CHUNKS_MORE],
    ("pytorch", "rnn_step", "the solution", Mutation(), True),
    ("tensorflow", "rnn_step", "the solution", Mutation(), True),
    *[(fw, "rnn_forward", name, answer, ok) for fw, name, answer, ok in FORWARD],
    *[(fw, "rnn_backward", name, answer, ok) for fw, name, answer, ok in BACKWARD],
    *CLIP,
    *[(fw, "forward_in_chunks", name, answer, ok) for fw, name, answer, ok in CHUNKS],
]
