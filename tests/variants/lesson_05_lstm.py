"""Answers to lesson 05's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students
make with LSTMs: another source's gate order (i, f, o, g), ``o * c`` instead of
``o * tanh(c)``, PyTorch's second bias dropped, transposed kernels, a framework layer where
the exercise asks for the arithmetic, a missing derivative term in the backward pass, the
forget bias on the wrong block or doubled, labels left as 1/2, statistics from the test
set, a sigmoid before a logits loss, the mean of the outputs instead of the last step.
"""

from tests.variants import Mutation

LESSON = "05_lstm"

# ----------------------------------------------------------------------------- lstm_step

TORCH_STEP_SIG = "def lstm_step(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):\n"
TF_STEP_SIG = "def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):\n"

TORCH_STEP_PER_GATE = (
    TORCH_STEP_SIG
    + """
    H = h_prev.shape[1]
    def pre(k):
        rows = slice(k * H, (k + 1) * H)
        linear = torch.nn.functional.linear
        return linear(x_t, W_ih[rows], b_ih[rows]) + linear(h_prev, W_hh[rows], b_hh[rows])
    i, f, g, o = torch.sigmoid(pre(0)), torch.sigmoid(pre(1)), torch.tanh(pre(2)), torch.sigmoid(pre(3))
    c = f * c_prev + i * g
    return o * torch.tanh(c), c, (i, f, g, o)
"""
)
TORCH_STEP_EINSUM_SPLIT = (
    TORCH_STEP_SIG
    + """
    z = torch.einsum("nd,gd->ng", x_t, W_ih) + torch.einsum("nh,gh->ng", h_prev, W_hh) + (b_ih + b_hh)
    i, f, g, o = torch.split(z, h_prev.shape[1], dim=1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = torch.addcmul(i * g, f, c_prev)
    return o * c.tanh(), c, (i, f, g, o)
"""
)
TORCH_STEP_USES_CELL = (
    TORCH_STEP_SIG
    + """
    cell = nn.LSTMCell(x_t.shape[1], h_prev.shape[1]).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(W_ih); cell.weight_hh.copy_(W_hh); cell.bias_ih.copy_(b_ih); cell.bias_hh.copy_(b_hh)
        h, c = cell(x_t, (h_prev, c_prev))
    z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    zi, zf, zg, zo = z.chunk(4, dim=1)
    return h, c, (torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo))
"""
)
TORCH_STEP_ALIASED_CELL = (
    """
_cell_fn = torch.lstm_cell
"""
    + TORCH_STEP_SIG
    + """
    h, c = _cell_fn(x_t, (h_prev, c_prev), W_ih, W_hh, b_ih, b_hh)
    z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    zi, zf, zg, zo = z.chunk(4, dim=1)
    return h, c, (torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo))
"""
)

STEP = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "one linear per gate", TORCH_STEP_PER_GATE, True),
    ("pytorch", "einsum, split, addcmul", TORCH_STEP_EINSUM_SPLIT, True),
    ("pytorch", "gate order i, f, o, g", Mutation([("z_i, z_f, z_g, z_o = z.chunk", "z_i, z_f, z_o, z_g = z.chunk")]), False),
    ("pytorch", "o * c", Mutation([("h_t = o * torch.tanh(c_t)", "h_t = o * c_t")]), False),
    (
        "pytorch",
        "second bias dropped",
        Mutation([("z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh", "z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T")]),
        False,
    ),
    (
        "pytorch",
        "kernels not transposed",
        Mutation([("x_t @ W_ih.T", "x_t @ W_ih"), ("h_prev @ W_hh.T", "h_prev @ W_hh")]),
        False,
    ),
    ("pytorch", "g with a sigmoid", Mutation([("torch.tanh(z_g)", "torch.sigmoid(z_g)")]), False),
    ("pytorch", "no forget gate", Mutation([("c_t = f * c_prev + i * g", "c_t = c_prev + i * g")]), False),
    (
        "pytorch",
        "gates returned i, f, o, g",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t, c_t, (i, f, o, g)")]),
        False,
    ),
    (
        "pytorch",
        "float32 result",
        Mutation(
            [
                ("z = x_t @ W_ih.T", "z = x_t.float() @ W_ih.float().T"),
                ("+ b_ih + h_prev @ W_hh.T + b_hh", "+ b_ih.float() + h_prev.float() @ W_hh.float().T + b_hh.float()"),
                ("f * c_prev", "f * c_prev.float()"),
            ]
        ),
        False,
    ),
    ("pytorch", "uses nn.LSTMCell", TORCH_STEP_USES_CELL, False),
    ("pytorch", "torch.lstm_cell under another name", TORCH_STEP_ALIASED_CELL, False),
]

TF_STEP_PER_GATE = (
    TF_STEP_SIG
    + """
    H = h_prev.shape[1]
    pre = [x_t @ kernel[:, k * H:(k + 1) * H] + h_prev @ recurrent_kernel[:, k * H:(k + 1) * H] + bias[k * H:(k + 1) * H]
           for k in range(4)]
    i, f, g, o = tf.nn.sigmoid(pre[0]), tf.nn.sigmoid(pre[1]), tf.nn.tanh(pre[2]), tf.nn.sigmoid(pre[3])
    c = f * c_prev + i * g
    return o * tf.nn.tanh(c), c, (i, f, g, o)
"""
)
TF_STEP_EINSUM = (
    TF_STEP_SIG
    + """
    z = tf.einsum("nd,dg->ng", x_t, kernel) + tf.einsum("nh,hg->ng", h_prev, recurrent_kernel) + bias
    i, f, g, o = tf.unstack(tf.reshape(z, (-1, 4, h_prev.shape[1])), axis=1)
    act = keras.activations
    i, f, g, o = act.sigmoid(i), act.sigmoid(f), act.tanh(g), act.sigmoid(o)
    c = f * c_prev + i * g
    return o * tf.tanh(c), c, (i, f, g, o)
"""
)
TF_STEP_USES_CELL = (
    TF_STEP_SIG
    + """
    cell = keras.layers.LSTMCell(h_prev.shape[1], dtype=x_t.dtype)
    cell.build((None, x_t.shape[1]))
    cell.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    h, (_, c) = cell(x_t, [h_prev, c_prev])
    zi, zf, zg, zo = tf.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4, axis=1)
    return h, c, (tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo))
"""
)

STEP += [
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "one product per gate", TF_STEP_PER_GATE, True),
    ("tensorflow", "einsum, reshape, keras activations", TF_STEP_EINSUM, True),
    (
        "tensorflow",
        "gate order i, f, o, g",
        Mutation([("z_i, z_f, z_g, z_o = tf.split", "z_i, z_f, z_o, z_g = tf.split")]),
        False,
    ),
    ("tensorflow", "o * c", Mutation([("h_t = o * tf.tanh(c_t)", "h_t = o * c_t")]), False),
    (
        "tensorflow",
        "kernels transposed",
        Mutation([("tf.matmul(x_t, kernel)", "tf.matmul(x_t, kernel, transpose_b=True)")]),
        False,
    ),
    (
        "tensorflow",
        "PyTorch's layout assumed",
        Mutation(
            [
                (
                    "tf.matmul(h_prev, recurrent_kernel)",
                    "tf.matmul(h_prev, tf.reshape(tf.transpose(recurrent_kernel), tf.shape(recurrent_kernel)))",
                )
            ]
        ),
        False,
    ),
    (
        "tensorflow",
        "bias forgotten",
        Mutation([("tf.matmul(h_prev, recurrent_kernel) + bias", "tf.matmul(h_prev, recurrent_kernel)")]),
        False,
    ),
    ("tensorflow", "g with a sigmoid", Mutation([("tf.tanh(z_g)", "tf.sigmoid(z_g)")]), False),
    ("tensorflow", "no forget gate", Mutation([("c_t = f * c_prev + i * g", "c_t = c_prev + i * g")]), False),
    (
        "tensorflow",
        "gates returned i, f, o, g",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t, c_t, (i, f, o, g)")]),
        False,
    ),
    ("tensorflow", "uses keras.layers.LSTMCell", TF_STEP_USES_CELL, False),
]

# ----------------------------------------------------------------------------- lstm_forward

TORCH_FORWARD_WITH_STEP = (
    TORCH_STEP_SIG
    + """
    z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    i, f, g, o = z.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c_prev + i * g
    return o * torch.tanh(c), c, (i, f, g, o)

def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    n, steps, _ = x.shape
    out = x.new_empty(n, steps, h0.shape[1])
    h, c = h0, c0
    for t in range(steps):
        h, c, _ = lstm_step(x[:, t], h, c, W_ih, W_hh, b_ih, b_hh)
        out[:, t] = h
    return out, h, c
"""
)
TORCH_FORWARD_PROJECT_FIRST = """
def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    projected = x @ W_ih.T + b_ih + b_hh        # the input terms of all steps at once, (N, T, 4H)
    h, c, outputs = h0, c0, []
    for p in projected.unbind(dim=1):
        i, f, g, o = (p + h @ W_hh.T).chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c
"""
TORCH_FORWARD_BUILTIN = """
def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    lstm = nn.LSTM(x.shape[2], h0.shape[1], batch_first=True).to(x.dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(W_ih); lstm.weight_hh_l0.copy_(W_hh); lstm.bias_ih_l0.copy_(b_ih); lstm.bias_hh_l0.copy_(b_hh)
        out, (h, c) = lstm(x, (h0[None], c0[None]))
    return out, h[0], c[0]
"""

FORWARD = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "calls lstm_step, preallocated output", TORCH_FORWARD_WITH_STEP, True),
    ("pytorch", "input projections first", TORCH_FORWARD_PROJECT_FIRST, True),
    ("pytorch", "cell not carried", Mutation([("c = torch.sigmoid(f) * c +", "c = torch.sigmoid(f) * c0 +")]), False),
    ("pytorch", "h0 ignored", Mutation([("h, c, outputs = h0, c0, []", "h, c, outputs = torch.zeros_like(h0), c0, []")]), False),
    ("pytorch", "c0 ignored", Mutation([("h, c, outputs = h0, c0, []", "h, c, outputs = h0, torch.zeros_like(c0), []")]), False),
    ("pytorch", "time-major outputs", Mutation([("torch.stack(outputs, dim=1)", "torch.stack(outputs, dim=0)")]), False),
    (
        "pytorch",
        "returns h_0 .. h_{T-1}",
        Mutation(
            [
                ("h, c, outputs = h0, c0, []", "h, c, outputs = h0, c0, [h0]"),
                ("torch.stack(outputs, dim=1)", "torch.stack(outputs[:-1], dim=1)"),
            ]
        ),
        False,
    ),
    (
        "pytorch",
        "h_T as the mean of the outputs",
        Mutation(
            [
                (
                    "return torch.stack(outputs, dim=1), h, c",
                    "return torch.stack(outputs, dim=1), torch.stack(outputs, dim=1).mean(dim=1), c",
                )
            ]
        ),
        False,
    ),
    ("pytorch", "o * c", Mutation([("h = torch.sigmoid(o) * torch.tanh(c)", "h = torch.sigmoid(o) * c")]), False),
    ("pytorch", "uses nn.LSTM", TORCH_FORWARD_BUILTIN, False),
]

TF_FORWARD_WITH_STEP = (
    TF_STEP_SIG
    + """
    i, f, g, o = tf.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4, axis=1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c_prev + i * g
    return o * tf.tanh(c), c, (i, f, g, o)

def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    outputs = tf.TensorArray(x.dtype, size=x.shape[1])
    h, c = h0, c0
    for t in range(x.shape[1]):
        h, c, _ = lstm_step(x[:, t], h, c, kernel, recurrent_kernel, bias)
        outputs = outputs.write(t, h)
    return tf.transpose(outputs.stack(), (1, 0, 2)), h, c
"""
)
TF_FORWARD_SCAN = """
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    def step(state, x_t):
        h, c = state
        i, f, g, o = tf.split(x_t @ kernel + h @ recurrent_kernel + bias, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c
    hs, cs = tf.scan(step, tf.transpose(x, (1, 0, 2)), initializer=(h0, c0))
    return tf.transpose(hs, (1, 0, 2)), hs[-1], cs[-1]
"""
TF_FORWARD_BUILTIN = """
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    layer = keras.layers.LSTM(h0.shape[1], return_sequences=True, return_state=True, dtype=x.dtype)
    layer.build((None, None, x.shape[2]))
    layer.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    return tuple(layer(x, initial_state=[h0, c0]))
"""

FORWARD += [
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "calls lstm_step, TensorArray", TF_FORWARD_WITH_STEP, True),
    ("tensorflow", "tf.scan", TF_FORWARD_SCAN, True),
    ("tensorflow", "cell not carried", Mutation([("c = tf.sigmoid(f) * c +", "c = tf.sigmoid(f) * c0 +")]), False),
    ("tensorflow", "h0 ignored", Mutation([("h, c, outputs = h0, c0, []", "h, c, outputs = tf.zeros_like(h0), c0, []")]), False),
    ("tensorflow", "c0 ignored", Mutation([("h, c, outputs = h0, c0, []", "h, c, outputs = h0, tf.zeros_like(c0), []")]), False),
    (
        "tensorflow",
        "returns h_0 .. h_{T-1}",
        Mutation(
            [
                ("h, c, outputs = h0, c0, []", "h, c, outputs = h0, c0, [h0]"),
                ("tf.stack(outputs, axis=1)", "tf.stack(outputs[:-1], axis=1)"),
            ]
        ),
        False,
    ),
    ("tensorflow", "time-major outputs", Mutation([("tf.stack(outputs, axis=1)", "tf.stack(outputs, axis=0)")]), False),
    (
        "tensorflow",
        "h_T as the mean of the outputs",
        Mutation(
            [
                (
                    "return tf.stack(outputs, axis=1), h, c",
                    "return tf.stack(outputs, axis=1), tf.reduce_mean(tf.stack(outputs, axis=1), axis=1), c",
                )
            ]
        ),
        False,
    ),
    ("tensorflow", "o * c", Mutation([("h = tf.sigmoid(o) * tf.tanh(c)", "h = tf.sigmoid(o) * c")]), False),
    ("tensorflow", "uses keras.layers.LSTM", TF_FORWARD_BUILTIN, False),
]

# ----------------------------------------------------------------------------- lstm_step_backward

TORCH_BACKWARD_WITH_STEP = (
    TORCH_STEP_SIG
    + """
    z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    i, f, g, o = z.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c_prev + i * g
    return o * torch.tanh(c), c, (i, f, g, o)

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    h_t, c_t, (i, f, g, o) = lstm_step(x_t, h_prev, c_prev, W_ih, W_hh, b, torch.zeros_like(b))
    tc = torch.tanh(c_t)
    dct = dc + dh * o * (1 - tc * tc)
    dz = torch.cat([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g * g), dh * tc * o * (1 - o)], dim=1)
    return {"x": torch.einsum("ng,gd->nd", dz, W_ih), "h_prev": torch.einsum("ng,gh->nh", dz, W_hh), "c_prev": dct * f,
            "weight_ih": torch.einsum("ng,nd->gd", dz, x_t), "weight_hh": torch.einsum("ng,nh->gh", dz, h_prev),
            "bias": dz.sum(0)}
"""
)
TORCH_BACKWARD_AUTOGRAD = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    leaves = [v.detach().clone().requires_grad_(True) for v in (x_t, h_prev, c_prev, W_ih, W_hh, b)]
    with torch.enable_grad():
        x_, h_, c_, wi, wh, bb = leaves
        i, f, g, o = (x_ @ wi.T + h_ @ wh.T + bb).chunk(4, dim=1)
        c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        grads = torch.autograd.grad((dh * h).sum() + (dc * c).sum(), leaves)
    return dict(zip(("x", "h_prev", "c_prev", "weight_ih", "weight_hh", "bias"), grads))
"""

BACKWARD = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "calls lstm_step, einsum", TORCH_BACKWARD_WITH_STEP, True),
    (
        "pytorch",
        "no tanh derivative on the cell's share",
        Mutation([("dc_total = dc + dh * o * (1 - tanh_c ** 2)", "dc_total = dc + dh * o")]),
        False,
    ),
    (
        "pytorch",
        "the cell's share through h_t missing",
        Mutation([("dc_total = dc + dh * o * (1 - tanh_c ** 2)", "dc_total = dc")]),
        False,
    ),
    ("pytorch", "dc ignored", Mutation([("dc_total = dc + dh", "dc_total = dh")]), False),
    ("pytorch", "forward with o * c", Mutation([("d_o = dh * tanh_c", "d_o = dh * (f * c_prev + i * g)")]), False),
    ("pytorch", "c_prev without the forget gate", Mutation([('"c_prev": dc_total * f', '"c_prev": dc_total')]), False),
    ("pytorch", "no sigmoid derivative on f", Mutation([("d_f * f * (1 - f)", "d_f")]), False),
    (
        "pytorch",
        "blocks in the order i, f, o, g",
        Mutation([("d_g * (1 - g ** 2), d_o * o * (1 - o)", "d_o * o * (1 - o), d_g * (1 - g ** 2)")]),
        False,
    ),
    ("pytorch", "bias averaged over the batch", Mutation([('"bias": dz.sum(dim=0)', '"bias": dz.mean(dim=0)')]), False),
    ("pytorch", "weight gradients transposed", Mutation([('"weight_ih": dz.T @ x_t', '"weight_ih": x_t.T @ dz')]), False),
    ("pytorch", "uses autograd", TORCH_BACKWARD_AUTOGRAD, False),
]

TF_BACKWARD_WITH_STEP = (
    TF_STEP_SIG
    + """
    i, f, g, o = tf.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4, axis=1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c_prev + i * g
    return o * tf.tanh(c), c, (i, f, g, o)

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    h_t, c_t, (i, f, g, o) = lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)
    tc = tf.tanh(c_t)
    dct = dc + dh * o * (1 - tf.square(tc))
    dz = tf.concat([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - tf.square(g)), dh * tc * o * (1 - o)], 1)
    return {"x": tf.einsum("ng,dg->nd", dz, kernel), "h_prev": tf.einsum("ng,hg->nh", dz, recurrent_kernel),
            "c_prev": dct * f, "kernel": tf.einsum("nd,ng->dg", x_t, dz), "recurrent_kernel": tf.einsum("nh,ng->hg", h_prev, dz),
            "bias": tf.reduce_sum(dz, 0)}
"""
)
TF_BACKWARD_TAPE = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    variables = [tf.Variable(v) for v in (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)]
    x_, h_, c_, k, r, b = variables
    with tf.GradientTape() as tape:
        i, f, g, o = tf.split(x_ @ k + h_ @ r + b, 4, axis=1)
        c = tf.sigmoid(f) * c_ + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        loss = tf.reduce_sum(dh * h) + tf.reduce_sum(dc * c)
    grads = tape.gradient(loss, variables)
    return dict(zip(("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"), grads))
"""

BACKWARD += [
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "calls lstm_step, einsum", TF_BACKWARD_WITH_STEP, True),
    (
        "tensorflow",
        "no tanh derivative on the cell's share",
        Mutation([("dc_total = dc + dh * o * (1 - tanh_c ** 2)", "dc_total = dc + dh * o")]),
        False,
    ),
    ("tensorflow", "dc ignored", Mutation([("dc_total = dc + dh", "dc_total = dh")]), False),
    (
        "tensorflow",
        "the cell's share through h_t missing",
        Mutation([("dc_total = dc + dh * o * (1 - tanh_c ** 2)", "dc_total = dc")]),
        False,
    ),
    ("tensorflow", "no sigmoid derivative on f", Mutation([("d_f * f * (1 - f)", "d_f")]), False),
    (
        "tensorflow",
        "kernel gradient doubled",
        Mutation([('"kernel": tf.matmul(x_t, dz, transpose_a=True)', '"kernel": tf.matmul(x_t, dz, transpose_a=True) * 2')]),
        False,
    ),
    ("tensorflow", "forward with o * c", Mutation([("d_o = dh * tanh_c", "d_o = dh * (f * c_prev + i * g)")]), False),
    ("tensorflow", "c_prev without the forget gate", Mutation([('"c_prev": dc_total * f', '"c_prev": dc_total')]), False),
    (
        "tensorflow",
        "blocks in the order i, f, o, g",
        Mutation([("d_g * (1 - g ** 2), d_o * o * (1 - o)", "d_o * o * (1 - o), d_g * (1 - g ** 2)")]),
        False,
    ),
    (
        "tensorflow",
        "recurrent kernel not transposed going back",
        Mutation(
            [
                (
                    '"h_prev": tf.matmul(dz, recurrent_kernel, transpose_b=True)',
                    '"h_prev": tf.matmul(dz[:, :recurrent_kernel.shape[0]], recurrent_kernel[:, :recurrent_kernel.shape[0]])',
                )
            ]
        ),
        False,
    ),
    (
        "tensorflow",
        "bias averaged over the batch",
        Mutation([('"bias": tf.reduce_sum(dz, axis=0)', '"bias": tf.reduce_mean(dz, axis=0)')]),
        False,
    ),
    ("tensorflow", "uses GradientTape", TF_BACKWARD_TAPE, False),
]

# ----------------------------------------------------------------------------- lstm_param_count


def _count(body):
    return f"def lstm_param_count(input_size, hidden_size, output_size=1):\n    return {body}\n"


TORCH_COUNT_BUILT = """
def lstm_param_count(input_size, hidden_size, output_size=1):
    return sum(p.numel() for m in (nn.LSTM(input_size, hidden_size), nn.Linear(hidden_size, output_size)) for p in m.parameters())
"""
TF_COUNT_BUILT = """
def lstm_param_count(input_size, hidden_size, output_size=1):
    model = keras.Sequential([keras.Input((None, input_size)), keras.layers.LSTM(hidden_size), keras.layers.Dense(output_size)])
    return model.count_params()
"""

COUNT = [
    ("pytorch", "the solution", Mutation(), True),
    (
        "pytorch",
        "per gate, spelled out",
        _count("4 * (hidden_size * input_size + hidden_size * hidden_size + 2 * hidden_size) + (hidden_size + 1) * output_size"),
        True,
    ),
    (
        "pytorch",
        "numpy integer",
        _count("np.int64(4 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size + output_size)"),
        True,
    ),
    (
        "pytorch",
        "one bias (Keras' count)",
        _count("4 * hidden_size * (input_size + hidden_size + 1) + hidden_size * output_size + output_size"),
        False,
    ),
    (
        "pytorch",
        "three gates",
        _count("3 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size + output_size"),
        False,
    ),
    ("pytorch", "dense layer forgotten", _count("4 * hidden_size * (input_size + hidden_size + 2)"), False),
    (
        "pytorch",
        "dense bias forgotten",
        _count("4 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size"),
        False,
    ),
    (
        "pytorch",
        "a float",
        _count("4.0 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size + output_size"),
        False,
    ),
    ("pytorch", "builds the layers", TORCH_COUNT_BUILT, False),
    ("tensorflow", "the solution", Mutation(), True),
    (
        "tensorflow",
        "per gate, spelled out",
        _count("4 * (input_size * hidden_size + hidden_size ** 2 + hidden_size) + hidden_size * output_size + output_size"),
        True,
    ),
    (
        "tensorflow",
        "two biases (PyTorch's count)",
        _count("4 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size + output_size"),
        False,
    ),
    (
        "tensorflow",
        "no gate factor",
        _count("hidden_size * (input_size + hidden_size + 1) + hidden_size * output_size + output_size"),
        False,
    ),
    ("tensorflow", "dense layer forgotten", _count("4 * hidden_size * (input_size + hidden_size + 1)"), False),
    (
        "tensorflow",
        "dense bias forgotten",
        _count("4 * hidden_size * (input_size + hidden_size + 1) + hidden_size * output_size"),
        False,
    ),
    ("tensorflow", "output_size ignored", _count("4 * hidden_size * (input_size + hidden_size + 1) + hidden_size + 1"), False),
    ("tensorflow", "builds the layers", TF_COUNT_BUILT, False),
]

# ----------------------------------------------------------------------------- init_forget_bias

TORCH_FORGET_SPLIT = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        for suffix in ("", "_reverse") if lstm.bidirectional else ("",):
            for kind in ("bias_ih", "bias_hh"):
                getattr(lstm, f"{kind}_l{layer}{suffix}").data[H:2 * H].fill_(value / 2)
    return lstm
"""
TORCH_FORGET_BOTH_VALUE = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if "bias" in name:
                p[H:2 * H] = value
    return lstm
"""
TORCH_FORGET_LAYER0 = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        lstm.bias_ih_l0[H:2 * H] = value
        lstm.bias_hh_l0[H:2 * H] = 0.0
    return lstm
"""
TORCH_FORGET_NO_REVERSE = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        for k in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{k}")[H:2 * H] = value
            getattr(lstm, f"bias_hh_l{k}")[H:2 * H] = 0.0
    return lstm
"""
TORCH_FORGET_REPLACED = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    for name, p in list(lstm.named_parameters()):
        if name.startswith("bias_"):
            new = p.detach().clone()
            new[H:2 * H] = value if name.startswith("bias_ih") else 0.0
            setattr(lstm, name, nn.Parameter(new))
    return lstm
"""

FORGET = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "half in each bias, via .data and getattr", TORCH_FORGET_SPLIT, True),
    ("pytorch", "both biases set to value (sum 2 * value)", TORCH_FORGET_BOTH_VALUE, False),
    (
        "pytorch",
        "the input gate's block",
        Mutation(
            [
                ("param[hidden:2 * hidden] = value", "param[0:hidden] = value"),
                ("param[hidden:2 * hidden] = 0.0", "param[0:hidden] = 0.0"),
            ]
        ),
        False,
    ),
    (
        "pytorch",
        "the g block",
        Mutation(
            [
                ("param[hidden:2 * hidden] = value", "param[2 * hidden:3 * hidden] = value"),
                ("param[hidden:2 * hidden] = 0.0", "param[2 * hidden:3 * hidden] = 0.0"),
            ]
        ),
        False,
    ),
    ("pytorch", "bias_hh left as it was", Mutation([("param[hidden:2 * hidden] = 0.0", "pass")]), False),
    (
        "pytorch",
        "the whole bias",
        Mutation(
            [("param[hidden:2 * hidden] = value", "param[:] = value"), ("param[hidden:2 * hidden] = 0.0", "param[:] = 0.0")]
        ),
        False,
    ),
    ("pytorch", "layer 0 only", TORCH_FORGET_LAYER0, False),
    ("pytorch", "backward direction forgotten", TORCH_FORGET_NO_REVERSE, False),
    ("pytorch", "parameters replaced", TORCH_FORGET_REPLACED, False),
    ("pytorch", "returns nothing", Mutation([("    return lstm\n", "")]), False),
]

TF_FORGET_CONCAT = """
def init_forget_bias(layer, value=1.0):
    H = layer.units
    b = layer.cell.bias
    layer.cell.bias.assign(tf.concat([b[:H], tf.fill([H], tf.cast(value, b.dtype)), b[2 * H:]], axis=0))
    return layer
"""
TF_FORGET_SCATTER = """
def init_forget_bias(layer, value=1.0):
    H = layer.cell.bias.shape[0] // 4
    idx = tf.range(H, 2 * H)[:, None]
    layer.cell.bias.assign(tf.tensor_scatter_nd_update(layer.cell.bias, idx, tf.fill([H], tf.cast(value, layer.cell.bias.dtype))))
    return layer
"""
TF_FORGET_NEW_VARIABLE = """
def init_forget_bias(layer, value=1.0):
    H = layer.cell.units
    b = layer.cell.bias.numpy()
    b[H:2 * H] = value
    layer.cell.bias = tf.Variable(b)
    return layer
"""

FORGET += [
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "tf.concat", TF_FORGET_CONCAT, True),
    ("tensorflow", "tensor_scatter_nd_update", TF_FORGET_SCATTER, True),
    ("tensorflow", "the input gate's block", Mutation([("bias[units:2 * units] = value", "bias[0:units] = value")]), False),
    ("tensorflow", "the o block", Mutation([("bias[units:2 * units] = value", "bias[3 * units:] = value")]), False),
    ("tensorflow", "the whole bias", Mutation([("bias[units:2 * units] = value", "bias[:] = value")]), False),
    (
        "tensorflow",
        "the other blocks zeroed",
        Mutation([("bias[units:2 * units] = value", "bias[:] = 0.0\n    bias[units:2 * units] = value")]),
        False,
    ),
    ("tensorflow", "a new variable", TF_FORGET_NEW_VARIABLE, False),
    ("tensorflow", "returns nothing", Mutation([("    return layer\n", "")]), False),
]

# ----------------------------------------------------------------------------- prepare_italy

PREPARE_EXPLICIT = """
def prepare_italy(data):
    x_train = np.asarray(data["x_train"], dtype=np.float64)
    mu = x_train.mean(axis=0, keepdims=True)
    sigma = np.sqrt(((x_train - mu) ** 2).mean(axis=0, keepdims=True))
    scale = lambda x: np.expand_dims(((np.asarray(x) - mu) / sigma).astype(np.float32), -1)
    label = lambda y: (np.asarray(y) == 2).astype(np.float32)[:, np.newaxis]
    return {"x_train": scale(data["x_train"]), "x_test": scale(data["x_test"]),
            "y_train": label(data["y_train"]), "y_test": label(data["y_test"])}
"""
PREPARE_IN_PLACE = """
def prepare_italy(data):
    mean, std = data["x_train"].mean(axis=0), data["x_train"].std(axis=0)
    data["x_train"] -= mean
    data["x_test"] -= mean
    return {"x_train": (data["x_train"] / std)[..., None].astype(np.float32),
            "x_test": (data["x_test"] / std)[..., None].astype(np.float32),
            "y_train": (data["y_train"] - 1).reshape(-1, 1).astype(np.float32),
            "y_test": (data["y_test"] - 1).reshape(-1, 1).astype(np.float32)}
"""

PREPARE_MUTATIONS = [
    ("the solution", Mutation(), True),
    ("explicit, labels by comparison", PREPARE_EXPLICIT, True),
    (
        "statistics of the test set",
        Mutation(
            [
                ('mean = data["x_train"].mean(axis=0)', 'mean = data["x_test"].mean(axis=0)'),
                ('std = data["x_train"].std(axis=0)', 'std = data["x_test"].std(axis=0)'),
            ]
        ),
        False,
    ),
    (
        "statistics of train and test together",
        Mutation(
            [
                ('mean = data["x_train"].mean(axis=0)', 'mean = np.concatenate([data["x_train"], data["x_test"]]).mean(axis=0)'),
                ('std = data["x_train"].std(axis=0)', 'std = np.concatenate([data["x_train"], data["x_test"]]).std(axis=0)'),
            ]
        ),
        False,
    ),
    (
        "one mean and std for all steps",
        Mutation(
            [('data["x_train"].mean(axis=0)', 'data["x_train"].mean()'), ('data["x_train"].std(axis=0)', 'data["x_train"].std()')]
        ),
        False,
    ),
    (
        "each set by its own statistics",
        Mutation(
            [('((data["x_test"] - mean) / std)', '((data["x_test"] - data["x_test"].mean(axis=0)) / data["x_test"].std(axis=0))')]
        ),
        False,
    ),
    ("std with ddof=1", Mutation([('std = data["x_train"].std(axis=0)', 'std = data["x_train"].std(axis=0, ddof=1)')]), False),
    (
        "labels left as 1/2",
        Mutation([('(data["y_train"] - 1)', 'data["y_train"]'), ('(data["y_test"] - 1)', 'data["y_test"]')]),
        False,
    ),
    (
        "labels flipped",
        Mutation([('(data["y_train"] - 1)', '(2 - data["y_train"])'), ('(data["y_test"] - 1)', '(2 - data["y_test"])')]),
        False,
    ),
    (
        "labels (N,)",
        Mutation(
            [
                ('(data["y_train"] - 1).reshape(-1, 1)', '(data["y_train"] - 1)'),
                ('(data["y_test"] - 1).reshape(-1, 1)', '(data["y_test"] - 1)'),
            ]
        ),
        False,
    ),
    ("no feature axis", Mutation([("/ std)[..., None]", "/ std)")]), False),
    ("float64 inputs kept", Mutation([("/ std)[..., None].astype(np.float32)", "/ std)[..., None]")]), False),
    ("changes the input arrays", PREPARE_IN_PLACE, False),
]
PREPARE = [(fw, name, answer, ok) for fw in ("pytorch", "tensorflow") for name, answer, ok in PREPARE_MUTATIONS]

# ----------------------------------------------------------------------------- build_seed_classifier

TORCH_SEED_HN = """
class Classifier(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.rnn = nn.LSTM(input_size=1, hidden_size=units, batch_first=True)
        self.fc = nn.Linear(units, 1)

    def forward(self, x):
        _, (h_n, _) = self.rnn(x)
        return self.fc(h_n[-1])

def build_seed_classifier(timesteps=10, units=128):
    model = Classifier(units)
    return model, torch.nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters())
"""
TORCH_SEED_TIME_MAJOR = """
class Classifier(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.lstm = nn.LSTM(1, units)          # time-major: (T, N, 1)
        self.out = nn.Linear(units, 1)

    def forward(self, x):
        outputs, _ = self.lstm(x.transpose(0, 1))
        return self.out(outputs[-1])

def build_seed_classifier(timesteps=10, units=128):
    model = Classifier(units)
    return model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.001)
"""
TORCH_SEED_OTHER_MODEL = """
class Classifier(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])

def build_seed_classifier(timesteps=10, units=128):
    model = Classifier(units)
    return model, nn.BCEWithLogitsLoss(), torch.optim.Adam(Classifier(units).parameters(), lr=1e-3)
"""

SEED_MODEL = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "h_n of the last layer", TORCH_SEED_HN, True),
    ("pytorch", "time-major LSTM", TORCH_SEED_TIME_MAJOR, True),
    (
        "pytorch",
        "mean of the outputs",
        Mutation([("return self.head(outputs[:, -1])", "return self.head(outputs.mean(dim=1))")]),
        False,
    ),
    ("pytorch", "the first step", Mutation([("return self.head(outputs[:, -1])", "return self.head(outputs[:, 0])")]), False),
    (
        "pytorch",
        "sigmoid before a logits loss",
        Mutation([("return self.head(outputs[:, -1])", "return torch.sigmoid(self.head(outputs[:, -1]))")]),
        False,
    ),
    (
        "pytorch",
        "sigmoid and BCELoss",
        Mutation(
            [
                ("return self.head(outputs[:, -1])", "return torch.sigmoid(self.head(outputs[:, -1]))"),
                ("nn.BCEWithLogitsLoss()", "nn.BCELoss()"),
            ]
        ),
        False,
    ),
    ("pytorch", "BCELoss on logits", Mutation([("nn.BCEWithLogitsLoss()", "nn.BCELoss()")]), False),
    (
        "pytorch",
        "SGD",
        Mutation([("torch.optim.Adam(model.parameters(), lr=1e-3)", "torch.optim.SGD(model.parameters(), lr=1e-3)")]),
        False,
    ),
    ("pytorch", "learning rate 0.01", Mutation([("lr=1e-3)", "lr=1e-2)")]), False),
    ("pytorch", "optimizer over another model's parameters", TORCH_SEED_OTHER_MODEL, False),
    (
        "pytorch",
        "two layers",
        Mutation([("nn.LSTM(1, units, batch_first=True)", "nn.LSTM(1, units, num_layers=2, batch_first=True)")]),
        False,
    ),
    ("pytorch", "not batch first", Mutation([("nn.LSTM(1, units, batch_first=True)", "nn.LSTM(1, units)")]), False),
]

TF_SEED_OBJECTS = """
def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential()
    model.add(keras.layers.Input(shape=(timesteps, 1)))
    model.add(keras.layers.LSTM(units))
    model.add(keras.layers.Dense(1, activation=keras.activations.sigmoid))
    model.compile(loss=keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(),
                  metrics=[keras.metrics.BinaryAccuracy()])
    return model
"""
TF_SEED_FUNCTIONS = """
def build_seed_classifier(timesteps=10, units=128):
    inputs = keras.Input((timesteps, 1))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.LSTM(units)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(loss=keras.losses.binary_crossentropy, optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  metrics=["binary_accuracy"])
    return model
"""
TF_SEED_LOGITS = """
def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), keras.layers.LSTM(units), keras.layers.Dense(1)])
    model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True), optimizer="adam", metrics=["accuracy"])
    return model
"""
TF_SEED_MEAN = """
def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), keras.layers.LSTM(units, return_sequences=True),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
"""

SEED_MODEL += [
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "objects, add()", TF_SEED_OBJECTS, True),
    ("tensorflow", "functional model, loss function, binary_accuracy", TF_SEED_FUNCTIONS, True),
    (
        "tensorflow",
        "sigmoid before a logits loss",
        Mutation([('loss="binary_crossentropy"', "loss=keras.losses.BinaryCrossentropy(from_logits=True)")]),
        False,
    ),
    ("tensorflow", "logits model", TF_SEED_LOGITS, False),
    ("tensorflow", "mean of the outputs", TF_SEED_MEAN, False),
    ("tensorflow", "no sigmoid", Mutation([('keras.layers.Dense(1, activation="sigmoid")', "keras.layers.Dense(1)")]), False),
    ("tensorflow", "SGD", Mutation([('optimizer="adam"', 'optimizer="sgd"')]), False),
    (
        "tensorflow",
        "Adam with learning rate 0.01",
        Mutation([('optimizer="adam"', "optimizer=keras.optimizers.Adam(0.01)")]),
        False,
    ),
    ("tensorflow", "mean squared error", Mutation([('loss="binary_crossentropy"', 'loss="mse"')]), False),
    ("tensorflow", "no metric", Mutation([(', metrics=["accuracy"]', "")]), False),
    ("tensorflow", "categorical accuracy", Mutation([('metrics=["accuracy"]', 'metrics=["categorical_accuracy"]')]), False),
    (
        "tensorflow",
        "not compiled",
        Mutation([('    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])\n', "")]),
        False,
    ),
    ("tensorflow", "any length accepted", Mutation([("keras.Input((timesteps, 1))", "keras.Input((None, 1))")]), False),
    (
        "tensorflow",
        "return_sequences and the last step",
        Mutation(
            [
                (
                    "keras.layers.LSTM(units),",
                    "keras.layers.LSTM(units, return_sequences=True), keras.layers.Lambda(lambda s: s[:, 0]),",
                )
            ]
        ),
        False,
    ),
]

# ----------------------------------------------------------------------------- more cases per exercise

TORCH_STEP_VIEW = (
    TORCH_STEP_SIG
    + """
    n, hidden = h_prev.shape
    z = torch.addmm(b_ih + b_hh, x_t, W_ih.t()) + torch.mm(h_prev, W_hh.t())
    i, f, g, o = z.view(n, 4, hidden).unbind(dim=1)
    i, f, o = (torch.special.expit(v) for v in (i, f, o))
    c = f * c_prev + i * torch.tanh(g)
    return torch.mul(o, torch.tanh(c)), c, [i, f, torch.tanh(g), o]
"""
)
TORCH_STEP_FUNCTIONAL_SIGMOID = (
    TORCH_STEP_SIG
    + """
    import torch.nn.functional as F
    z = F.linear(x_t, W_ih, b_ih) + F.linear(h_prev, W_hh, b_hh)
    i, f, g, o = z.tensor_split(4, dim=1)
    i, f, o = F.sigmoid(i), F.sigmoid(f), F.sigmoid(o)
    g = F.tanh(g)
    c = f * c_prev + i * g
    return o * F.tanh(c), c, (i, f, g, o)
"""
)
TORCH_STEP_IMPORTED_CELL = (
    """
from torch import lstm_cell as fused_step
"""
    + TORCH_STEP_SIG
    + """
    h, c = fused_step(x_t, (h_prev, c_prev), W_ih, W_hh, b_ih, b_hh)
    zi, zf, zg, zo = (x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=1)
    return h, c, (torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo))
"""
)

STEP += [
    ("pytorch", "addmm, view, expit, gates as a list", TORCH_STEP_VIEW, True),
    ("pytorch", "F.linear, tensor_split, F.sigmoid", TORCH_STEP_FUNCTIONAL_SIGMOID, True),
    ("pytorch", "h from a sigmoid of the cell", Mutation([("h_t = o * torch.tanh(c_t)", "h_t = o * torch.sigmoid(c_t)")]), False),
    ("pytorch", "h from the old cell", Mutation([("h_t = o * torch.tanh(c_t)", "h_t = o * torch.tanh(c_prev)")]), False),
    ("pytorch", "cell squashed", Mutation([("c_t = f * c_prev + i * g", "c_t = torch.tanh(f * c_prev + i * g)")]), False),
    ("pytorch", "forget and input gates swapped", Mutation([("c_t = f * c_prev + i * g", "c_t = i * c_prev + f * g")]), False),
    (
        "pytorch",
        "sigmoid and tanh swapped everywhere",
        Mutation(
            [
                (
                    "torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g), torch.sigmoid(z_o)",
                    "torch.tanh(z_i), torch.tanh(z_f), torch.sigmoid(z_g), torch.tanh(z_o)",
                )
            ]
        ),
        False,
    ),
    ("pytorch", "gate order i, g, f, o", Mutation([("z_i, z_f, z_g, z_o = z.chunk", "z_i, z_g, z_f, z_o = z.chunk")]), False),
    (
        "pytorch",
        "states returned (1, N, H)",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t[None], c_t[None], (i, f, g, o)")]),
        False,
    ),
    (
        "pytorch",
        "h and c returned swapped",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return c_t, h_t, (i, f, g, o)")]),
        False,
    ),
    (
        "pytorch",
        "gates before activation",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t, c_t, (z_i, z_f, z_g, z_o)")]),
        False,
    ),
    ("pytorch", "torch.lstm_cell imported under another name", TORCH_STEP_IMPORTED_CELL, False),
]

TF_STEP_KERAS_OPS = (
    TF_STEP_SIG
    + """
    ops = keras.ops
    z = ops.matmul(x_t, kernel) + ops.matmul(h_prev, recurrent_kernel) + bias
    i, f, g, o = ops.split(z, 4, axis=-1)
    i, f, g, o = ops.sigmoid(i), ops.sigmoid(f), ops.tanh(g), ops.sigmoid(o)
    c = f * c_prev + i * g
    return o * ops.tanh(c), c, [i, f, g, o]
"""
)
TF_STEP_ALIASED_LAYER = """
_Cell = keras.layers.LSTMCell

def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    cell = _Cell(h_prev.shape[1], dtype=x_t.dtype)
    cell.build((None, x_t.shape[1]))
    cell.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    h, (_, c) = cell(x_t, [h_prev, c_prev])
    zi, zf, zg, zo = tf.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4, axis=1)
    return h, c, (tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo))
"""

STEP += [
    ("tensorflow", "keras.ops, gates as a list", TF_STEP_KERAS_OPS, True),
    ("tensorflow", "h from a sigmoid of the cell", Mutation([("h_t = o * tf.tanh(c_t)", "h_t = o * tf.sigmoid(c_t)")]), False),
    ("tensorflow", "h from the old cell", Mutation([("h_t = o * tf.tanh(c_t)", "h_t = o * tf.tanh(c_prev)")]), False),
    ("tensorflow", "cell squashed", Mutation([("c_t = f * c_prev + i * g", "c_t = tf.tanh(f * c_prev + i * g)")]), False),
    ("tensorflow", "forget and input gates swapped", Mutation([("c_t = f * c_prev + i * g", "c_t = i * c_prev + f * g")]), False),
    (
        "tensorflow",
        "sigmoid and tanh swapped everywhere",
        Mutation(
            [
                (
                    "tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g), tf.sigmoid(z_o)",
                    "tf.tanh(z_i), tf.tanh(z_f), tf.sigmoid(z_g), tf.tanh(z_o)",
                )
            ]
        ),
        False,
    ),
    (
        "tensorflow",
        "gate order i, g, f, o",
        Mutation([("z_i, z_f, z_g, z_o = tf.split", "z_i, z_g, z_f, z_o = tf.split")]),
        False,
    ),
    (
        "tensorflow",
        "states returned (1, N, H)",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t[None], c_t[None], (i, f, g, o)")]),
        False,
    ),
    (
        "tensorflow",
        "h and c returned swapped",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return c_t, h_t, (i, f, g, o)")]),
        False,
    ),
    (
        "tensorflow",
        "gates before activation",
        Mutation([("return h_t, c_t, (i, f, g, o)", "return h_t, c_t, (z_i, z_f, z_g, z_o)")]),
        False,
    ),
    ("tensorflow", "keras.layers.LSTMCell under another name", TF_STEP_ALIASED_LAYER, False),
]

TORCH_FORWARD_FUSED_ALIAS = """
_fused = torch.lstm

def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    out, h, c = _fused(x, (h0[None], c0[None]), (W_ih, W_hh, b_ih, b_hh), True, 1, 0.0, False, False, True)
    return out, h[0], c[0]
"""
TORCH_FORWARD_PREALLOC_CLONE = """
def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    n, steps, _ = x.shape
    hidden = h0.shape[1]
    outputs = torch.empty(n, steps, hidden, dtype=x.dtype)
    h, c = h0.clone(), c0.clone()
    for t in range(steps):
        z = torch.mm(x[:, t], W_ih.t()) + torch.mm(h, W_hh.t()) + b_ih + b_hh
        i, f, g, o = z[:, :hidden], z[:, hidden:2 * hidden], z[:, 2 * hidden:3 * hidden], z[:, 3 * hidden:]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs[:, t, :] = h
    return outputs, h, c
"""

FORWARD += [
    ("pytorch", "preallocated, slices", TORCH_FORWARD_PREALLOC_CLONE, True),
    (
        "pytorch",
        "states returned (1, N, H)",
        Mutation([("return torch.stack(outputs, dim=1), h, c", "return torch.stack(outputs, dim=1), h[None], c[None]")]),
        False,
    ),
    (
        "pytorch",
        "h and c returned swapped",
        Mutation([("return torch.stack(outputs, dim=1), h, c", "return torch.stack(outputs, dim=1), c, h")]),
        False,
    ),
    ("pytorch", "time reversed", Mutation([("for t in range(x.shape[1]):", "for t in reversed(range(x.shape[1])):")]), False),
    ("pytorch", "cell states as the outputs", Mutation([("outputs.append(h)", "outputs.append(c)")]), False),
    (
        "pytorch",
        "the first output as h_T",
        Mutation([("return torch.stack(outputs, dim=1), h, c", "return torch.stack(outputs, dim=1), outputs[0], c")]),
        False,
    ),
    ("pytorch", "second bias dropped", Mutation([("+ h @ W_hh.T + b_hh)", "+ h @ W_hh.T)")]), False),
    ("pytorch", "torch.lstm under another name", TORCH_FORWARD_FUSED_ALIAS, False),
]

TF_FORWARD_WHILE = """
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    steps = x.shape[1]
    hidden = h0.shape[1]
    outputs = []
    h, c = h0, c0
    for x_t in tf.unstack(x, axis=1):
        z = tf.linalg.matmul(x_t, kernel) + tf.linalg.matmul(h, recurrent_kernel) + bias
        i, f, g, o = z[:, :hidden], z[:, hidden:2 * hidden], z[:, 2 * hidden:3 * hidden], z[:, 3 * hidden:]
        c = tf.math.sigmoid(f) * c + tf.math.sigmoid(i) * tf.math.tanh(g)
        h = tf.math.sigmoid(o) * tf.math.tanh(c)
        outputs.append(h)
    assert len(outputs) == steps
    return tf.transpose(tf.stack(outputs), [1, 0, 2]), h, c
"""
TF_FORWARD_RNN_ALIAS = """
from keras.layers import RNN as Loop, LSTMCell as Cell

def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias):
    layer = Loop(Cell(h0.shape[1], dtype=x.dtype), return_sequences=True, return_state=True, dtype=x.dtype)
    layer.build((None, None, x.shape[2]))
    layer.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    out, h, c = layer(x, initial_state=[h0, c0])
    return out, h, c
"""

FORWARD += [
    ("tensorflow", "unstack, slices, tf.math", TF_FORWARD_WHILE, True),
    (
        "tensorflow",
        "states returned (1, N, H)",
        Mutation([("return tf.stack(outputs, axis=1), h, c", "return tf.stack(outputs, axis=1), h[None], c[None]")]),
        False,
    ),
    (
        "tensorflow",
        "h and c returned swapped",
        Mutation([("return tf.stack(outputs, axis=1), h, c", "return tf.stack(outputs, axis=1), c, h")]),
        False,
    ),
    ("tensorflow", "time reversed", Mutation([("for t in range(x.shape[1]):", "for t in reversed(range(x.shape[1])):")]), False),
    ("tensorflow", "cell states as the outputs", Mutation([("outputs.append(h)", "outputs.append(c)")]), False),
    (
        "tensorflow",
        "the first output as h_T",
        Mutation([("return tf.stack(outputs, axis=1), h, c", "return tf.stack(outputs, axis=1), outputs[0], c")]),
        False,
    ),
    ("tensorflow", "keras RNN(LSTMCell) imported under other names", TF_FORWARD_RNN_ALIAS, False),
]

TORCH_BACKWARD_ENABLE_GRAD = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    leaves = [v.detach().clone() for v in (x_t, h_prev, c_prev, W_ih, W_hh, b)]
    for leaf in leaves:
        leaf.requires_grad = True
    with torch.enable_grad():
        x_, h_, c_, wi, wh, bb = leaves
        i, f, g, o = (x_ @ wi.T + h_ @ wh.T + bb).chunk(4, dim=1)
        c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        loss = (dh * h).sum() + (dc * c).sum()
        loss.backward()
    return {k: v.grad for k, v in zip(("x", "h_prev", "c_prev", "weight_ih", "weight_hh", "bias"), leaves)}
"""
TORCH_BACKWARD_NUMERICAL = (
    TORCH_STEP_SIG
    + """
    z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    i, f, g, o = z.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c_prev + i * g
    return o * torch.tanh(c), c, (i, f, g, o)

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    names = ("x", "h_prev", "c_prev", "weight_ih", "weight_hh", "bias")
    values = dict(zip(names, (x_t, h_prev, c_prev, W_ih, W_hh, b)))
    def loss_of(name):
        def loss(v):
            p = {**{k: t.double() for k, t in values.items()}, name: torch.from_numpy(v)}
            h, c, _ = lstm_step(p["x"], p["h_prev"], p["c_prev"], p["weight_ih"], p["weight_hh"], p["bias"],
                                torch.zeros_like(p["bias"]))
            return float((dh.double() * h).sum() + (dc.double() * c).sum())
        return loss
    return {k: torch.from_numpy(numerical_gradient(loss_of(k), v)).to(x_t.dtype) for k, v in values.items()}
"""
)
TORCH_BACKWARD_FUNC_ALIAS = """
from torch.func import vjp as _pullback

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    def step(x_, h_, c_, wi, wh, bb):
        i, f, g, o = (x_ @ wi.T + h_ @ wh.T + bb).chunk(4, dim=1)
        c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    _, pull = _pullback(step, x_t, h_prev, c_prev, W_ih, W_hh, b)
    return dict(zip(("x", "h_prev", "c_prev", "weight_ih", "weight_hh", "bias"), pull((dh, dc))))
"""

BACKWARD += [
    ("pytorch", "enable_grad and .backward() on a local", TORCH_BACKWARD_ENABLE_GRAD, False),
    ("pytorch", "the course's numerical_gradient", TORCH_BACKWARD_NUMERICAL, False),
    ("pytorch", "torch.func.vjp imported under another name", TORCH_BACKWARD_FUNC_ALIAS, False),
    ("pytorch", "tanh derivative on g written 1 - g", Mutation([("d_g * (1 - g ** 2)", "d_g * (1 - g)")]), False),
    ("pytorch", "no sigmoid derivative on o", Mutation([("d_o * o * (1 - o)", "d_o")]), False),
    ("pytorch", "no sigmoid derivative on i", Mutation([("d_i * i * (1 - i)", "d_i")]), False),
    (
        "pytorch",
        "d_f from the new cell",
        Mutation([("dc_total * c_prev, dc_total * i", "dc_total * (f * c_prev + i * g), dc_total * i")]),
        False,
    ),
    (
        "pytorch",
        "d_i and d_g swapped",
        Mutation(
            [
                (
                    "d_i, d_f, d_g = dc_total * g, dc_total * c_prev, dc_total * i",
                    "d_i, d_f, d_g = dc_total * i, dc_total * c_prev, dc_total * g",
                )
            ]
        ),
        False,
    ),
    ("pytorch", "x gradient through W_hh", Mutation([('"x": dz @ W_ih', '"x": dz @ W_hh[:, :W_ih.shape[1]]')]), False),
]

TF_BACKWARD_NUMERICAL = (
    TF_STEP_SIG
    + """
    i, f, g, o = tf.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4, axis=1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c_prev + i * g
    return o * tf.tanh(c), c, (i, f, g, o)

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    names = ("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias")
    values = dict(zip(names, (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)))
    def loss_of(name):
        def loss(v):
            p = {**{k: tf.cast(t, tf.float64) for k, t in values.items()}, name: tf.constant(v)}
            h, c, _ = lstm_step(p["x"], p["h_prev"], p["c_prev"], p["kernel"], p["recurrent_kernel"], p["bias"])
            return float(tf.reduce_sum(tf.cast(dh, tf.float64) * h) + tf.reduce_sum(tf.cast(dc, tf.float64) * c))
        return loss
    return {k: tf.cast(numerical_gradient(loss_of(k), v), x_t.dtype) for k, v in values.items()}
"""
)
TF_BACKWARD_TAPE_ALIAS = """
_Tape = tf.GradientTape

def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    variables = [tf.Variable(v) for v in (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)]
    x_, h_, c_, k, r, b = variables
    with _Tape() as tape:
        i, f, g, o = tf.split(x_ @ k + h_ @ r + b, 4, axis=1)
        c = tf.sigmoid(f) * c_ + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        loss = tf.reduce_sum(dh * h) + tf.reduce_sum(dc * c)
    return dict(zip(("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"), tape.gradient(loss, variables)))
"""

BACKWARD += [
    ("tensorflow", "the course's numerical_gradient", TF_BACKWARD_NUMERICAL, False),
    ("tensorflow", "GradientTape under another name", TF_BACKWARD_TAPE_ALIAS, False),
    ("tensorflow", "tanh derivative on g written 1 - g", Mutation([("d_g * (1 - g ** 2)", "d_g * (1 - g)")]), False),
    ("tensorflow", "no sigmoid derivative on o", Mutation([("d_o * o * (1 - o)", "d_o")]), False),
    ("tensorflow", "no sigmoid derivative on i", Mutation([("d_i * i * (1 - i)", "d_i")]), False),
    (
        "tensorflow",
        "d_f from the new cell",
        Mutation([("dc_total * c_prev, dc_total * i", "dc_total * (f * c_prev + i * g), dc_total * i")]),
        False,
    ),
    (
        "tensorflow",
        "d_i and d_g swapped",
        Mutation(
            [
                (
                    "d_i, d_f, d_g = dc_total * g, dc_total * c_prev, dc_total * i",
                    "d_i, d_f, d_g = dc_total * i, dc_total * c_prev, dc_total * g",
                )
            ]
        ),
        False,
    ),
    (
        "tensorflow",
        "kernel gradient as (dz^T x)^T",
        Mutation(
            [
                (
                    '"kernel": tf.matmul(x_t, dz, transpose_a=True)',
                    '"kernel": tf.transpose(tf.matmul(dz, x_t, transpose_a=True))[:, :]',
                )
            ]
        ),
        True,
    ),
]

COUNT += [
    (
        "pytorch",
        "the count as a float of integer value",
        _count("float(4 * hidden_size * (input_size + hidden_size + 2) + hidden_size * output_size + output_size)"),
        False,
    ),
    (
        "pytorch",
        "Keras' count plus the 4H second bias",
        _count("4 * hidden_size * (input_size + hidden_size + 1) + (hidden_size + 1) * output_size + 4 * hidden_size"),
        True,
    ),
    ("pytorch", "output_size ignored", _count("4 * hidden_size * (input_size + hidden_size + 2) + hidden_size + 1"), False),
    (
        "pytorch",
        "input and hidden sizes swapped in the recurrent part",
        _count("4 * hidden_size * (2 * input_size + 2) + hidden_size * output_size + output_size"),
        False,
    ),
    (
        "tensorflow",
        "a float",
        _count("4.0 * hidden_size * (input_size + hidden_size + 1) + hidden_size * output_size + output_size"),
        False,
    ),
    (
        "tensorflow",
        "three gates",
        _count("3 * hidden_size * (input_size + hidden_size + 1) + hidden_size * output_size + output_size"),
        False,
    ),
]

TORCH_FORGET_ADDED = """
def init_forget_bias(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[H:2 * H] += value
    return lstm
"""
TORCH_FORGET_CHUNK = """
def init_forget_bias(lstm, value=1.0):
    with torch.no_grad():
        for layer_biases in lstm.all_weights:
            b_ih, b_hh = layer_biases[2], layer_biases[3]
            b_ih.chunk(4)[1].fill_(value)
            b_hh.chunk(4)[1].zero_()
    return lstm
"""

FORGET += [
    ("pytorch", "all_weights, chunk views, fill_", TORCH_FORGET_CHUNK, True),
    ("pytorch", "value added to the old bias", TORCH_FORGET_ADDED, False),
    ("pytorch", "the weights' rows", Mutation([('if name.startswith("bias_ih"):', 'if name.startswith("weight_ih"):')]), False),
]

TF_FORGET_ADDED = """
def init_forget_bias(layer, value=1.0):
    H = layer.cell.units
    b = layer.cell.bias.numpy()
    b[H:2 * H] += value
    layer.cell.bias.assign(b)
    return layer
"""
TF_FORGET_KERAS_OPS = """
def init_forget_bias(layer, value=1.0):
    H = layer.units
    bias = layer.cell.bias
    mask = keras.ops.concatenate([keras.ops.zeros(H), keras.ops.ones(H), keras.ops.zeros(2 * H)])
    bias.assign(bias * (1 - keras.ops.cast(mask, bias.dtype)) + keras.ops.cast(mask, bias.dtype) * value)
    return layer
"""

FORGET += [
    ("tensorflow", "a mask with keras.ops", TF_FORGET_KERAS_OPS, True),
    ("tensorflow", "value added to the old bias", TF_FORGET_ADDED, False),
    ("tensorflow", "the g block", Mutation([("bias[units:2 * units] = value", "bias[2 * units:3 * units] = value")]), False),
]

PREPARE += [
    (fw, name, answer, ok)
    for fw in ("pytorch", "tensorflow")
    for name, answer, ok in [
        ("time axis in the wrong place", Mutation([("/ std)[..., None]", "/ std)[:, None, :]")]), False),
        (
            "labels as int",
            Mutation([('(data["y_train"] - 1).reshape(-1, 1).astype(np.float32)', '(data["y_train"] - 1).reshape(-1, 1)')]),
            False,
        ),
        (
            "std of the whole training set per series",
            Mutation([('std = data["x_train"].std(axis=0)', 'std = data["x_train"].std(axis=1, keepdims=True).mean()')]),
            False,
        ),
        ("mean only, no scaling", Mutation([('std = data["x_train"].std(axis=0)', "std = 1.0")]), False),
    ]
]

TORCH_SEED_SEQUENTIAL_LAST = """
class LastStep(nn.Module):
    def forward(self, pair):
        return pair[0][:, -1, :]

def build_seed_classifier(timesteps=10, units=128):
    model = nn.Sequential(nn.LSTM(1, units, batch_first=True), LastStep(), nn.Linear(units, 1))
    return model, nn.BCEWithLogitsLoss(reduction="mean"), torch.optim.Adam(params=model.parameters(), lr=0.001)
"""
TORCH_SEED_EXTRA_LAYER = """
class Classifier(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)
        self.head = nn.Sequential(nn.Linear(units, 1), nn.Identity())

    def forward(self, x):
        return torch.tanh(self.head(self.lstm(x)[0][:, -1])) * 10

def build_seed_classifier(timesteps=10, units=128):
    model = Classifier(units)
    return model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
"""

SEED_MODEL += [
    ("pytorch", "nn.Sequential with a last-step module", TORCH_SEED_SEQUENTIAL_LAST, True),
    ("pytorch", "a squashing activation on the logit", TORCH_SEED_EXTRA_LAYER, False),
    (
        "pytorch",
        "sum instead of the mean loss",
        Mutation([("nn.BCEWithLogitsLoss()", 'nn.BCEWithLogitsLoss(reduction="sum")')]),
        False,
    ),
    (
        "pytorch",
        "a positive-class weight",
        Mutation([("nn.BCEWithLogitsLoss()", "nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0]))")]),
        False,
    ),
    (
        "pytorch",
        "AdamW",
        Mutation([("torch.optim.Adam(model.parameters(), lr=1e-3)", "torch.optim.AdamW(model.parameters(), lr=1e-3)")]),
        False,
    ),
]

SEED_MODEL += [
    (
        "tensorflow",
        "string class names",
        Mutation(
            [
                (
                    'loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"]',
                    'loss="BinaryCrossentropy", optimizer=keras.optimizers.Adam(learning_rate=1e-3), metrics=["acc"]',
                )
            ]
        ),
        True,
    ),
    (
        "tensorflow",
        "tanh on the output",
        Mutation([('keras.layers.Dense(1, activation="sigmoid")', 'keras.layers.Dense(1, activation="tanh")')]),
        False,
    ),
    (
        "tensorflow",
        "label smoothing",
        Mutation([('loss="binary_crossentropy"', "loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1)")]),
        False,
    ),
    ("tensorflow", "AdamW", Mutation([('optimizer="adam"', 'optimizer="adamw"')]), False),
    (
        "tensorflow",
        "two LSTM layers",
        Mutation([("keras.layers.LSTM(units),", "keras.layers.LSTM(units, return_sequences=True), keras.layers.LSTM(units),")]),
        False,
    ),
    ("tensorflow", "a GRU", Mutation([("keras.layers.LSTM(units),", "keras.layers.GRU(units),")]), False),
]

TORCH_BACKWARD_PER_GATE = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    H = h_prev.shape[1]
    rows = [slice(k * H, (k + 1) * H) for k in range(4)]
    pre = [x_t @ W_ih[r].T + h_prev @ W_hh[r].T + b[r] for r in rows]
    i, f, o = (torch.sigmoid(p) for p in (pre[0], pre[1], pre[3]))
    g = torch.tanh(pre[2])
    tc = torch.tanh(f * c_prev + i * g)
    dct = dc + dh * o * (1 - tc.pow(2))
    dzs = [dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g.pow(2)), dh * tc * o * (1 - o)]
    return {"x": sum(dz @ W_ih[r] for r, dz in zip(rows, dzs)), "h_prev": sum(dz @ W_hh[r] for r, dz in zip(rows, dzs)),
            "c_prev": dct * f, "weight_ih": torch.cat([dz.T @ x_t for dz in dzs]),
            "weight_hh": torch.cat([dz.T @ h_prev for dz in dzs]), "bias": torch.cat([dz.sum(0) for dz in dzs])}
"""
BACKWARD += [("pytorch", "per gate block, sums of products", TORCH_BACKWARD_PER_GATE, True)]
COUNT += [
    (
        "tensorflow",
        "numpy integer",
        _count("np.int64(4 * hidden_size * (input_size + hidden_size + 1) + (hidden_size + 1) * output_size)"),
        True,
    )
]
PREPARE_LOOP = """
def prepare_italy(data):
    mean, std = data["x_train"].mean(0, keepdims=True), data["x_train"].std(0, keepdims=True)
    out = {}
    for part in ("train", "test"):
        x = (data[f"x_{part}"] - mean) / std
        out[f"x_{part}"] = x.reshape(*x.shape, 1).astype("float32")
        out[f"y_{part}"] = np.where(data[f"y_{part}"] == 2, 1.0, 0.0).astype(np.float32).reshape(-1, 1)
    return out
"""
PREPARE += [(fw, "a loop over the parts, np.where", PREPARE_LOOP, True) for fw in ("pytorch", "tensorflow")]

# the raw ATen operators behind nn.LSTMCell and nn.LSTM (torch.ops is refused as a whole, as in lesson 02)
TORCH_STEP_ATEN = (
    TORCH_STEP_SIG
    + """
    h_t, c_t = torch.ops.aten.lstm_cell(x_t, [h_prev, c_prev], W_ih, W_hh, b_ih, b_hh)
    i, f, g, o = (x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=1)
    return h_t, c_t, (torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o))
"""
)
TORCH_STEP_ATEN_ALIAS = """
_cell = torch.ops.aten.lstm_cell.default

def lstm_step(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    h_t, c_t = _cell(x_t, [h_prev, c_prev], W_ih, W_hh, b_ih, b_hh)
    i, f, g, o = (x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=1)
    return h_t, c_t, (torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o))
"""
TORCH_FORWARD_ATEN = """
def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    out, h, c = torch.ops.aten.lstm(x, [h0[None], c0[None]], [W_ih, W_hh, b_ih, b_hh], True, 1, 0.0, False, False, True)
    return out, h[0], c[0]
"""
TORCH_FORWARD_ATEN_CELL = """
def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h, c, outputs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = torch.ops.aten.lstm_cell(x[:, t], [h, c], W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c
"""
STEP += [
    ("pytorch", "torch.ops.aten.lstm_cell", TORCH_STEP_ATEN, False),
    ("pytorch", "torch.ops.aten.lstm_cell.default bound at module level", TORCH_STEP_ATEN_ALIAS, False),
]
FORWARD += [
    ("pytorch", "torch.ops.aten.lstm", TORCH_FORWARD_ATEN, False),
    ("pytorch", "torch.ops.aten.lstm_cell in the loop", TORCH_FORWARD_ATEN_CELL, False),
]

# A central-difference loop of the student's own: the text asks for the derivation, but says the
# tests refuse only autograd and the course's numerical_gradient, and compare values; this one
# computes the right values, so it passes (documented in the exercise text).
TORCH_BACKWARD_OWN_FINITE_DIFFERENCES = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, W_ih, W_hh, b):
    names = ("x", "h_prev", "c_prev", "weight_ih", "weight_hh", "bias")
    values = [v.double().clone() for v in (x_t, h_prev, c_prev, W_ih, W_hh, b)]
    dh64, dc64 = dh.double(), dc.double()
    def loss():
        x_, h_, c_, wi, wh, bb = values
        i, f, g, o = (x_ @ wi.T + h_ @ wh.T + bb).chunk(4, dim=1)
        c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return float((dh64 * h).sum() + (dc64 * c).sum())
    grads, eps = {}, 1e-5
    for name, v in zip(names, values):
        grad = torch.zeros_like(v)
        flat, gflat = v.view(-1), grad.view(-1)
        for k in range(flat.numel()):
            old = flat[k].item()
            flat[k] = old + eps
            plus = loss()
            flat[k] = old - eps
            minus = loss()
            flat[k] = old
            gflat[k] = (plus - minus) / (2 * eps)
        grads[name] = grad.to(x_t.dtype)
    return grads
"""
TF_BACKWARD_OWN_FINITE_DIFFERENCES = """
def lstm_step_backward(dh, dc, x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    names = ("x", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias")
    values = [np.array(v, dtype=np.float64) for v in (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)]
    dh64, dc64 = np.asarray(dh, np.float64), np.asarray(dc, np.float64)
    def sig(a):
        return 1 / (1 + np.exp(-a))
    def loss():
        x_, h_, c_, k, r, b = values
        z = x_ @ k + h_ @ r + b
        H = h_.shape[1]
        i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
        c = f * c_ + i * g
        return float((dh64 * o * np.tanh(c)).sum() + (dc64 * c).sum())
    grads, eps = {}, 1e-5
    for name, v in zip(names, values):
        grad = np.zeros_like(v)
        for k in np.ndindex(v.shape):
            old = v[k]
            v[k] = old + eps
            plus = loss()
            v[k] = old - eps
            minus = loss()
            v[k] = old
            grad[k] = (plus - minus) / (2 * eps)
        grads[name] = tf.constant(grad, dtype=x_t.dtype)
    return grads
"""
BACKWARD += [
    ("pytorch", "a central-difference loop of its own (not refused; the text says so)",
     TORCH_BACKWARD_OWN_FINITE_DIFFERENCES, True),
    ("tensorflow", "a central-difference loop of its own (not refused; the text says so)",
     TF_BACKWARD_OWN_FINITE_DIFFERENCES, True),
]

# ----------------------------------------------------------------------------- weights changed in place
# A model that zeroes its own weights when called, so that a reference computed afterwards
# from those weights agrees with it: the tests must compute the reference first.

TF_SEED_ZEROES_WEIGHTS = """
class _ZeroingLSTM(keras.layers.LSTM):
    def call(self, sequences, initial_state=None, mask=None, training=False):
        for w in self.weights:
            w.assign(keras.ops.zeros(w.shape, w.dtype))
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

class _ZeroingDense(keras.layers.Dense):
    def call(self, inputs, training=None):
        for w in self.weights:
            w.assign(keras.ops.zeros(w.shape, w.dtype))
        return super().call(inputs, training=training)

def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), _ZeroingLSTM(units), _ZeroingDense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
"""
IN_PLACE = [
    ("pytorch", "build_seed_classifier", "the model zeroes its weights when called",
     Mutation([("outputs, _ = self.lstm(x)",
                "with torch.no_grad():\n                for p in self.parameters():\n                    p.zero_()\n"
                "            outputs, _ = self.lstm(x)")]), False),
    ("tensorflow", "build_seed_classifier", "the layers zero their weights when called", TF_SEED_ZEROES_WEIGHTS, False),
]

VARIANTS = [
    *IN_PLACE,
    *[(fw, "lstm_step", name, answer, ok) for fw, name, answer, ok in STEP],
    *[(fw, "lstm_forward", name, answer, ok) for fw, name, answer, ok in FORWARD],
    *[(fw, "lstm_step_backward", name, answer, ok) for fw, name, answer, ok in BACKWARD],
    *[(fw, "lstm_param_count", name, answer, ok) for fw, name, answer, ok in COUNT],
    *[(fw, "init_forget_bias", name, answer, ok) for fw, name, answer, ok in FORGET],
    *[(fw, "prepare_italy", name, answer, ok) for fw, name, answer, ok in PREPARE],
    *[(fw, "build_seed_classifier", name, answer, ok) for fw, name, answer, ok in SEED_MODEL],
]

# Models the grader makes again from the kernel's description: the LSTM's activations as TensorFlow's own
# functions (run in the kernel), one of its own named like Keras' sigmoid, and an LSTM class of its own.
TF_SEED_OWN_SIGMOID = """
def sigmoid(x):  # named sigmoid, and a hard one: Keras writes it as "sigmoid" in the model's configuration
    return keras.activations.hard_sigmoid(x)

def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), keras.layers.LSTM(units, recurrent_activation=sigmoid),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
"""
TF_SEED_TF_ACTIVATIONS = """
def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), keras.layers.LSTM(units, activation=tf.tanh),
                              keras.layers.Dense(1, activation=tf.sigmoid)])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
"""
TF_SEED_OWN_LSTM_CLASS = """
class SeedLSTM(keras.layers.LSTM):
    pass

def build_seed_classifier(timesteps=10, units=128):
    model = keras.Sequential([keras.Input((timesteps, 1)), SeedLSTM(units), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
"""
VARIANTS += [
    ("tensorflow", "build_seed_classifier", "a hard sigmoid of its own named sigmoid", TF_SEED_OWN_SIGMOID, False),
    ("tensorflow", "build_seed_classifier", "tf.tanh and tf.sigmoid as activations", TF_SEED_TF_ACTIVATIONS, True),
    ("tensorflow", "build_seed_classifier", "an LSTM class of its own", TF_SEED_OWN_LSTM_CLASS, True),
]
