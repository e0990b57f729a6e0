"""Answers to lesson 06's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students
make with GRUs: z and 1 - z swapped, the reset gate before the recurrent product (Cho's
convention, not the one asked for) or around the input too, the gate order of the other
framework, a port that only transposes, a parameter count without PyTorch's second bias or
the bidirectional factor, ``out[:, -1]`` on padded or bidirectional outputs, the backward
state from the wrong end, targets not shifted, the temperature applied to probabilities,
argmax instead of a draw, a model left in training mode, a model run on the last id only, draws
squeezed to shape () for a single sequence, ``model.predict`` on a model that is only callable.
"""
from tests.variants import Mutation

LESSON = "06_gru"

# ----------------------------------------------------------------------------- gru_step

TORCH_STEP_SLICES = """
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    H = h_prev.shape[1]
    r = torch.sigmoid(x_t @ W_ih[:H].T + b_ih[:H] + h_prev @ W_hh[:H].T + b_hh[:H])
    z = torch.sigmoid(x_t @ W_ih[H:2 * H].T + b_ih[H:2 * H] + h_prev @ W_hh[H:2 * H].T + b_hh[H:2 * H])
    n = torch.tanh(x_t @ W_ih[2 * H:].T + b_ih[2 * H:] + r * (h_prev @ W_hh[2 * H:].T + b_hh[2 * H:]))
    return n + z * (h_prev - n)
"""
TORCH_STEP_LINEAR = """
import torch.nn.functional as F
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    i_r, i_z, i_n = F.linear(x_t, W_ih, b_ih).split(h_prev.shape[1], dim=-1)
    h_r, h_z, h_n = F.linear(h_prev, W_hh, b_hh).split(h_prev.shape[1], dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    return torch.lerp(torch.tanh(i_n + r * h_n), h_prev, z)
"""
TORCH_STEP_RESET_BEFORE = """
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    H = h_prev.shape[1]
    gi = x_t @ W_ih.T + b_ih
    r = torch.sigmoid(gi[:, :H] + h_prev @ W_hh[:H].T + b_hh[:H])
    z = torch.sigmoid(gi[:, H:2 * H] + h_prev @ W_hh[H:2 * H].T + b_hh[H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + (r * h_prev) @ W_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h_prev
"""
TORCH_STEP_BUILTIN = """
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return torch.gru_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
"""
TORCH_STEP_CELL_ALIAS = """
from torch.nn import GRUCell as Cell
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    cell = Cell(W_ih.shape[1], h_prev.shape[1]).to(x_t.dtype)
    with torch.no_grad():
        for p, w in zip(cell.parameters(), (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        return cell(x_t, h_prev)
"""

TORCH_STEP_ATEN = """
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return torch.ops.aten.gru_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
"""
TORCH_STEP_ATEN_ALIAS = """
from torch.ops import aten
def gru_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return aten.gru_cell.default(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
"""

TF_STEP_SLICES = """
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    H = h_prev.shape[1]
    z = tf.sigmoid(x_t @ kernel[:, :H] + bias[0, :H] + h_prev @ recurrent_kernel[:, :H] + bias[1, :H])
    r = tf.sigmoid(x_t @ kernel[:, H:2 * H] + bias[0, H:2 * H] + h_prev @ recurrent_kernel[:, H:2 * H] + bias[1, H:2 * H])
    c = tf.tanh(x_t @ kernel[:, 2 * H:] + bias[0, 2 * H:] + r * (h_prev @ recurrent_kernel[:, 2 * H:] + bias[1, 2 * H:]))
    return c + z * (h_prev - c)
"""
TF_STEP_EINSUM = """
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    gx = tf.einsum("nd,dg->ng", x_t, kernel) + bias[0]
    gh = tf.einsum("nh,hg->ng", h_prev, recurrent_kernel) + bias[1]
    H = tf.shape(h_prev)[1]
    z = tf.math.sigmoid(gx[:, :H] + gh[:, :H])
    r = tf.math.sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
    c = tf.math.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
    return z * h_prev + (1.0 - z) * c
"""
TF_STEP_RESET_BEFORE = """
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    H = h_prev.shape[1]
    gx = tf.matmul(x_t, kernel) + bias[0]
    z = tf.sigmoid(gx[:, :H] + h_prev @ recurrent_kernel[:, :H] + bias[1, :H])
    r = tf.sigmoid(gx[:, H:2 * H] + h_prev @ recurrent_kernel[:, H:2 * H] + bias[1, H:2 * H])
    c = tf.tanh(gx[:, 2 * H:] + (r * h_prev) @ recurrent_kernel[:, 2 * H:] + bias[1, 2 * H:])
    return z * h_prev + (1 - z) * c
"""
TF_STEP_BUILTIN = """
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    cell = keras.layers.GRUCell(recurrent_kernel.shape[0], dtype=x_t.dtype)
    cell.build(x_t.shape)
    cell.set_weights([np.asarray(kernel), np.asarray(recurrent_kernel), np.asarray(bias)])
    return cell(x_t, [h_prev])[0]
"""

STEP = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "slices per gate, lerp form", TORCH_STEP_SLICES, True),
    ("pytorch", "F.linear and torch.lerp", TORCH_STEP_LINEAR, True),
    ("pytorch", "z and 1 - z swapped", Mutation([("return (1 - z) * n + z * h_prev", "return z * n + (1 - z) * h_prev")]),
     False),
    ("pytorch", "reset gate before the recurrent product (reset_after=False)", TORCH_STEP_RESET_BEFORE, False),
    ("pytorch", "recurrent bias outside the reset gate",
     Mutation([("n = torch.tanh(i_n + r * h_n)", "n = torch.tanh(i_n + r * (h_n - b_hh.chunk(3)[2]) + b_hh.chunk(3)[2])")]),
     False),
    ("pytorch", "reset gate on the input too", Mutation([("n = torch.tanh(i_n + r * h_n)", "n = torch.tanh(r * (i_n + h_n))")]),
     False),
    ("pytorch", "Keras' gate order z, r", Mutation([("i_r, i_z, i_n = gi.chunk(3, dim=1)", "i_z, i_r, i_n = gi.chunk(3, dim=1)"),
                                                   ("h_r, h_z, h_n = gh.chunk(3, dim=1)", "h_z, h_r, h_n = gh.chunk(3, dim=1)")]),
     False),
    ("pytorch", "update gate as tanh", Mutation([("z = torch.sigmoid(i_z + h_z)", "z = torch.tanh(i_z + h_z)")]), False),
    ("pytorch", "float32 result", Mutation([("return (1 - z) * n + z * h_prev", "return ((1 - z) * n + z * h_prev).float()")]),
     False),
    ("pytorch", "calls torch.gru_cell", TORCH_STEP_BUILTIN, False),
    ("pytorch", "nn.GRUCell under another name", TORCH_STEP_CELL_ALIAS, False),
    ("pytorch", "calls torch.ops.aten.gru_cell", TORCH_STEP_ATEN, False),
    ("pytorch", "torch.ops.aten imported under a name", TORCH_STEP_ATEN_ALIAS, False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "slices per gate", TF_STEP_SLICES, True),
    ("tensorflow", "einsum and tf.math", TF_STEP_EINSUM, True),
    ("tensorflow", "z and 1 - z swapped",
     Mutation([("return z * h_prev + (1 - z) * candidate", "return (1 - z) * h_prev + z * candidate")]), False),
    ("tensorflow", "reset gate before the recurrent product (reset_after=False)", TF_STEP_RESET_BEFORE, False),
    ("tensorflow", "recurrent bias outside the reset gate",
     Mutation([("candidate = tf.tanh(x_h + r * h_h)",
                "candidate = tf.tanh(x_h + r * (h_h - tf.split(bias[1], 3)[2]) + tf.split(bias[1], 3)[2])")]),
     False),
    ("tensorflow", "reset gate on the input too",
     Mutation([("candidate = tf.tanh(x_h + r * h_h)", "candidate = tf.tanh(r * (x_h + h_h))")]),
     False),
    ("tensorflow", "PyTorch's gate order r, z",
     Mutation([("x_z, x_r, x_h = tf.split(gx, 3, axis=1)", "x_r, x_z, x_h = tf.split(gx, 3, axis=1)"),
               ("h_z, h_r, h_h = tf.split(gh, 3, axis=1)", "h_r, h_z, h_h = tf.split(gh, 3, axis=1)")]),
     False),
    ("tensorflow", "bias rows swapped",
     Mutation([("+ bias[0]", "+ bias[9]"), ("+ bias[1]", "+ bias[0]"), ("+ bias[9]", "+ bias[1]")]),
     False),
    ("tensorflow", "uses keras.layers.GRUCell", TF_STEP_BUILTIN, False),
]

# ----------------------------------------------------------------------------- port_gru_weights

TORCH_PORT_CHUNKS = """
def port_gru_weights(kernel, recurrent_kernel, bias):
    k, r, b = (torch.from_numpy(np.array(a)) for a in (kernel, recurrent_kernel, bias))
    def reorder(t):
        z, reset, n = t.chunk(3, dim=0)
        return torch.cat([reset, z, n]).contiguous()
    return {"weight_ih_l0": reorder(k.T), "weight_hh_l0": reorder(r.T), "bias_ih_l0": reorder(b[0]), "bias_hh_l0": reorder(b[1])}
"""
TORCH_PORT_PERMUTATION = """
def port_gru_weights(kernel, recurrent_kernel, bias):
    H = recurrent_kernel.shape[0]
    perm = np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    return {"weight_ih_l0": torch.tensor(kernel[:, perm].T), "weight_hh_l0": torch.tensor(recurrent_kernel[:, perm].T),
            "bias_ih_l0": torch.tensor(bias[0, perm]), "bias_hh_l0": torch.tensor(bias[1, perm])}
"""
TORCH_PORT_TRANSPOSE_ONLY = """
def port_gru_weights(kernel, recurrent_kernel, bias):
    return {"weight_ih_l0": torch.tensor(kernel.T), "weight_hh_l0": torch.tensor(recurrent_kernel.T),
            "bias_ih_l0": torch.tensor(bias[0]), "bias_hh_l0": torch.tensor(bias[1])}
"""
TORCH_PORT_RESHAPED = """
def port_gru_weights(kernel, recurrent_kernel, bias):
    H = recurrent_kernel.shape[0]
    perm = np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    return {"weight_ih_l0": torch.tensor(kernel[:, perm].reshape(3 * H, -1)),
            "weight_hh_l0": torch.tensor(recurrent_kernel[:, perm].reshape(3 * H, H)),
            "bias_ih_l0": torch.tensor(bias[0, perm]), "bias_hh_l0": torch.tensor(bias[1, perm])}
"""
TORCH_PORT_COURSE = """
def port_gru_weights(kernel, recurrent_kernel, bias):
    from course_utils.porting import rnn_keras_to_torch as convert
    return {f"{k}_l0": torch.from_numpy(v) for k, v in convert("gru", kernel, recurrent_kernel, bias).items()}
"""
TORCH_PORT_STATE = """
from course_utils.porting import keras_rnn_weights_to_torch_state as to_state
def port_gru_weights(kernel, recurrent_kernel, bias):
    return {k: torch.from_numpy(v) for k, v in to_state("gru", [(kernel, recurrent_kernel, bias)]).items()}
"""

TF_PORT_PERMUTATION = """
def port_gru_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    H = weight_hh.shape[1]
    perm = np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    return [weight_ih[perm].T.copy(), weight_hh[perm].T.copy(), np.stack([bias_ih[perm], bias_hh[perm]])]
"""
TF_PORT_TF_OPS = """
def port_gru_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    def reorder(a):
        r, z, n = tf.split(a, 3, axis=0)
        return tf.concat([z, r, n], axis=0)
    return [tf.transpose(reorder(weight_ih)).numpy(), tf.transpose(reorder(weight_hh)).numpy(),
            tf.stack([reorder(bias_ih), reorder(bias_hh)]).numpy()]
"""
TF_PORT_TRANSPOSE_ONLY = """
def port_gru_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    return [weight_ih.T, weight_hh.T, np.stack([bias_ih, bias_hh])]
"""
TF_PORT_COURSE = """
from course_utils.porting import rnn_torch_to_keras as convert
def port_gru_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    return list(convert("gru", weight_ih, weight_hh, bias_ih, bias_hh))
"""

PORT = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "torch chunk and cat", TORCH_PORT_CHUNKS, True),
    ("pytorch", "an index permutation", TORCH_PORT_PERMUTATION, True),
    ("pytorch", "transposed only", TORCH_PORT_TRANSPOSE_ONLY, False),
    ("pytorch", "reshaped instead of transposed", TORCH_PORT_RESHAPED, False),
    ("pytorch", "biases not reordered",
     Mutation([('"bias_ih_l0": torch.from_numpy(reorder(bias[0]))', '"bias_ih_l0": torch.from_numpy(bias[0].copy())'),
               ('"bias_hh_l0": torch.from_numpy(reorder(bias[1]))', '"bias_hh_l0": torch.from_numpy(bias[1].copy())')]),
     False),
    ("pytorch", "bias rows swapped", Mutation([("reorder(bias[0])", "reorder(bias[9])"), ("reorder(bias[1])", "reorder(bias[0])"),
                                              ("reorder(bias[9])", "reorder(bias[1])")]), False),
    ("pytorch", "biases summed into bias_ih", Mutation([("reorder(bias[0])", "reorder(bias[0] + bias[1])"),
                                                       ("reorder(bias[1])", "reorder(0 * bias[1])")]), False),
    ("pytorch", "blocks rotated to n, z, r", Mutation([("[a[hidden:2 * hidden], a[:hidden], a[2 * hidden:]]",
                                                       "[a[2 * hidden:], a[:hidden], a[hidden:2 * hidden]]")]), False),
    ("pytorch", "cast to float32", Mutation([("torch.from_numpy(np.ascontiguousarray(reorder(kernel.T)))",
                                             "torch.from_numpy(np.ascontiguousarray(reorder(kernel.T))).float()")]), False),
    ("pytorch", "calls the course's porting", TORCH_PORT_COURSE, False),
    ("pytorch", "the course's state porting, imported under a name", TORCH_PORT_STATE, False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "an index permutation", TF_PORT_PERMUTATION, True),
    ("tensorflow", "TensorFlow split and concat", TF_PORT_TF_OPS, True),
    ("tensorflow", "transposed only", TF_PORT_TRANSPOSE_ONLY, False),
    ("tensorflow", "biases not reordered",
     Mutation([("np.stack([reorder(bias_ih), reorder(bias_hh)])", "np.stack([bias_ih, bias_hh])")]),
     False),
    ("tensorflow", "bias rows swapped", Mutation([("np.stack([reorder(bias_ih), reorder(bias_hh)])",
                                                  "np.stack([reorder(bias_hh), reorder(bias_ih)])")]), False),
    ("tensorflow", "biases summed", Mutation([("np.stack([reorder(bias_ih), reorder(bias_hh)])",
                                              "np.stack([reorder(bias_ih + bias_hh), 0 * bias_hh])")]), False),
    ("tensorflow", "blocks rotated to h, r, z", Mutation([("[a[hidden:2 * hidden], a[:hidden], a[2 * hidden:]]",
                                                          "[a[2 * hidden:], a[:hidden], a[hidden:2 * hidden]]")]), False),
    ("tensorflow", "cast to float32", Mutation([("np.ascontiguousarray(reorder(weight_ih).T)",
                                                "np.ascontiguousarray(reorder(weight_ih).T).astype(np.float32)")]), False),
    ("tensorflow", "calls the course's porting", TF_PORT_COURSE, False),
]

# ----------------------------------------------------------------------------- count_rnn_params

COUNT_CLOSED_FORM = """
def count_rnn_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, framework="{default}"):
    g = {{"rnn": 1, "gru": 3, "lstm": 4}}[kind]
    b = 1 if framework == "keras" and kind != "gru" else 2
    d = 2 if bidirectional else 1
    h = hidden_size
    first = d * g * (h * input_size + h * h + b * h)
    rest = d * g * (h * d * h + h * h + b * h)
    return first + (num_layers - 1) * rest
"""
COUNT_PER_DIRECTION = """
def count_rnn_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, framework="{default}"):
    gates = dict(rnn=1, gru=3, lstm=4)[kind]
    total = 0
    for layer in range(num_layers):
        inputs = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
        for direction in range(2 if bidirectional else 1):
            total += gates * hidden_size * (inputs + hidden_size)           # the matrices
            total += gates * hidden_size * (1 if framework == "keras" and kind != "gru" else 2)   # the biases
    return total
"""


def _count_wrong(name, default, body):
    """A wrong count: the closed form with one mistake."""
    return (name, "def count_rnn_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, "
                  f"framework=\"{default}\"):\n" + body, False)


def _count_variants(default):
    mistakes = [
        _count_wrong("one bias everywhere (PyTorch's second bias missing)", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    d = 2 if bidirectional else 1
    total, inputs = 0, input_size
    for _ in range(num_layers):
        total += d * g * (hidden_size * inputs + hidden_size ** 2 + hidden_size)
        inputs = d * hidden_size
    return total
"""),
        _count_wrong("two biases everywhere (Keras' single bias ignored)", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    d = 2 if bidirectional else 1
    total, inputs = 0, input_size
    for _ in range(num_layers):
        total += d * g * (hidden_size * inputs + hidden_size ** 2 + 2 * hidden_size)
        inputs = d * hidden_size
    return total
"""),
        _count_wrong("no bidirectional factor", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    b = 1 if framework == "keras" and kind != "gru" else 2
    d = 2 if bidirectional else 1
    total, inputs = 0, input_size
    for _ in range(num_layers):
        total += g * (hidden_size * inputs + hidden_size ** 2 + b * hidden_size)
        inputs = d * hidden_size
    return total
"""),
        _count_wrong("stacked layers read H inputs even when bidirectional", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    b = 1 if framework == "keras" and kind != "gru" else 2
    d = 2 if bidirectional else 1
    total, inputs = 0, input_size
    for _ in range(num_layers):
        total += d * g * (hidden_size * inputs + hidden_size ** 2 + b * hidden_size)
        inputs = hidden_size
    return total
"""),
        _count_wrong("every layer reads the input size", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    b = 1 if framework == "keras" and kind != "gru" else 2
    d = 2 if bidirectional else 1
    return num_layers * d * g * (hidden_size * input_size + hidden_size ** 2 + b * hidden_size)
"""),
        _count_wrong("Keras' GRU with one bias (reset_after=False)", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    b = 1 if framework == "keras" else 2
    d = 2 if bidirectional else 1
    total, inputs = 0, input_size
    for _ in range(num_layers):
        total += d * g * (hidden_size * inputs + hidden_size ** 2 + b * hidden_size)
        inputs = d * hidden_size
    return total
"""),
        _count_wrong("a float", default, """
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    b = 1 if framework == "keras" and kind != "gru" else 2
    d = 2 if bidirectional else 1
    total, inputs = 0.0, input_size
    for _ in range(num_layers):
        total += d * g * (hidden_size * inputs + hidden_size ** 2 + b * hidden_size)
        inputs = d * hidden_size
    return total
"""),
    ]
    return [("the solution", Mutation(), True),
            ("closed form", COUNT_CLOSED_FORM.format(default=default), True),
            ("per layer and direction", COUNT_PER_DIRECTION.format(default=default), True),
            *mistakes]


COUNT_TORCH_BUILDS = """
def count_rnn_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, framework="pytorch"):
    from torch.nn import GRU, LSTM, RNN
    layer = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[kind](input_size, hidden_size, num_layers=num_layers,
                                                        bidirectional=bidirectional)
    total = sum(p.numel() for p in layer.parameters())
    if framework == "keras" and kind != "gru":
        total -= (2 if bidirectional else 1) * num_layers * {"rnn": 1, "lstm": 4}[kind] * hidden_size
    return int(total)
"""
COUNT_KERAS_BUILDS = """
def count_rnn_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, framework="keras"):
    layer_type = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[kind]
    layers = [layer_type(hidden_size, return_sequences=True) for _ in range(num_layers)]
    if bidirectional:
        layers = [keras.layers.Bidirectional(layer) for layer in layers]
    total = keras.Sequential([keras.Input((None, input_size)), *layers]).count_params()
    if framework == "pytorch" and kind != "gru":
        total += (2 if bidirectional else 1) * num_layers * {"rnn": 1, "lstm": 4}[kind] * hidden_size
    return int(total)
"""

COUNT = [("pytorch", *v) for v in _count_variants("pytorch")] + [("tensorflow", *v) for v in _count_variants("keras")]
COUNT.append(("pytorch", "builds nn.RNN / GRU / LSTM and counts (no layer may be built)", COUNT_TORCH_BUILDS, False))
COUNT.append(("tensorflow", "builds Keras layers and counts (no layer may be built)", COUNT_KERAS_BUILDS, False))
COUNT.append(("pytorch", "the default framework is Keras",
              Mutation([('framework="pytorch"):', 'framework="keras"):')]), False))
COUNT.append(("tensorflow", "the default framework is PyTorch",
              Mutation([('framework="keras"):', 'framework="pytorch"):')]), False))

# ----------------------------------------------------------------------------- last_valid_state

TORCH_LAST_GATHER = """
def last_valid_state(outputs, lengths, bidirectional=False):
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    last = outputs.gather(1, index).squeeze(1)
    if bidirectional:
        h = outputs.shape[2] // 2
        last = torch.cat([last[:, :h], outputs[:, 0, h:]], dim=-1)
    return last
"""
TORCH_LAST_LOOP = """
def last_valid_state(outputs, lengths, bidirectional=False):
    rows = []
    for i, n in enumerate(lengths.tolist()):
        row = outputs[i, n - 1].clone()
        if bidirectional:
            h = outputs.shape[2] // 2
            row[h:] = outputs[i, 0, h:]
        rows.append(row)
    return torch.stack(rows)
"""
TORCH_LAST_MASK = """
def last_valid_state(outputs, lengths, bidirectional=False):
    steps = torch.arange(outputs.shape[1], device=outputs.device)
    pick = (steps[None, :] == (lengths - 1)[:, None]).to(outputs.dtype)            # (N, T) one-hot
    last = torch.einsum("nt,ntf->nf", pick, outputs)
    if not bidirectional:
        return last
    h = outputs.shape[2] // 2
    return torch.cat((last[:, :h], outputs[:, 0, h:]), 1)
"""
TORCH_LAST_NAIVE = """
def last_valid_state(outputs, lengths, bidirectional=False):
    return outputs[:, -1]
"""
TORCH_LAST_NAIVE_BACKWARD = """
def last_valid_state(outputs, lengths, bidirectional=False):
    last = outputs[torch.arange(len(lengths)), lengths - 1]
    if bidirectional:
        h = outputs.shape[2] // 2
        last = torch.cat([last[:, :h], outputs[:, -1, h:]], dim=1)
    return last
"""

TF_LAST_GATHER_ND = """
def last_valid_state(outputs, lengths, bidirectional=False):
    lengths = tf.cast(lengths, tf.int32)
    index = tf.stack([tf.range(tf.shape(outputs)[0]), lengths - 1], axis=1)
    last = tf.gather_nd(outputs, index)
    if bidirectional:
        h = outputs.shape[-1] // 2
        last = tf.concat([last[:, :h], outputs[:, 0, h:]], axis=-1)
    return last
"""
TF_LAST_ONE_HOT = """
def last_valid_state(outputs, lengths, bidirectional=False):
    pick = tf.one_hot(tf.cast(lengths, tf.int32) - 1, tf.shape(outputs)[1], dtype=outputs.dtype)   # (N, T)
    last = tf.einsum("nt,ntf->nf", pick, outputs)
    if not bidirectional:
        return last
    h = outputs.shape[2] // 2
    return tf.concat([last[:, :h], outputs[:, 0, h:]], 1)
"""
TF_LAST_NAIVE = """
def last_valid_state(outputs, lengths, bidirectional=False):
    return outputs[:, -1]
"""
TF_LAST_NAIVE_BACKWARD = """
def last_valid_state(outputs, lengths, bidirectional=False):
    last = tf.gather(outputs, tf.convert_to_tensor(lengths) - 1, axis=1, batch_dims=1)
    if bidirectional:
        h = outputs.shape[2] // 2
        last = tf.concat([last[:, :h], outputs[:, -1, h:]], axis=1)
    return last
"""

LAST = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "torch.gather", TORCH_LAST_GATHER, True),
    ("pytorch", "a loop over the rows", TORCH_LAST_LOOP, True),
    ("pytorch", "a one-hot selection", TORCH_LAST_MASK, True),
    ("pytorch", "out[:, -1]", TORCH_LAST_NAIVE, False),
    ("pytorch", "backward direction at the last step", TORCH_LAST_NAIVE_BACKWARD, False),
    ("pytorch", "backward direction at lengths - 1",
     Mutation([("    if not bidirectional:\n        return last\n", "    return last\n")]),
     False),
    ("pytorch", "at lengths - 2 (off by one)", Mutation([("outputs[rows, lengths - 1]", "outputs[rows, lengths - 2]")]), False),
    ("pytorch", "at lengths (off by one)",
     Mutation([("outputs[rows, lengths - 1]", "outputs[rows, lengths.clamp(max=outputs.shape[1] - 1)]")]),
     False),
    ("pytorch", "halves swapped", Mutation([("torch.cat([last[:, :hidden], outputs[:, 0, hidden:]], dim=1)",
                                            "torch.cat([outputs[:, 0, hidden:], last[:, :hidden]], dim=1)")]), False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "tf.gather_nd", TF_LAST_GATHER_ND, True),
    ("tensorflow", "a one-hot selection", TF_LAST_ONE_HOT, True),
    ("tensorflow", "out[:, -1]", TF_LAST_NAIVE, False),
    ("tensorflow", "backward direction at the last step", TF_LAST_NAIVE_BACKWARD, False),
    ("tensorflow", "backward direction at lengths - 1",
     Mutation([("    if not bidirectional:\n        return last\n", "    return last\n")]),
     False),
    ("tensorflow", "at lengths - 2 (off by one)",
     Mutation([("tf.convert_to_tensor(lengths) - 1", "tf.convert_to_tensor(lengths) - 2")]),
     False),
    ("tensorflow", "at lengths (off by one)",
     Mutation([("tf.convert_to_tensor(lengths) - 1", "tf.minimum(tf.convert_to_tensor(lengths), outputs.shape[1] - 1)")]),
     False),
]

# ----------------------------------------------------------------------------- char_windows

WINDOWS_COMPREHENSION = """
def char_windows(ids, length):
    n = (len(ids) - 1) // length
    inputs = np.array([ids[i * length:(i + 1) * length] for i in range(n)], dtype=ids.dtype).reshape(n, length)
    targets = np.array([ids[i * length + 1:(i + 1) * length + 1] for i in range(n)], dtype=ids.dtype).reshape(n, length)
    return inputs, targets
"""
WINDOWS_SLIDING = """
def char_windows(ids, length):
    windows = np.lib.stride_tricks.sliding_window_view(ids, length + 1)[::length]   # (M, length + 1)
    windows = windows[:(len(ids) - 1) // length]
    return windows[:, :-1].copy(), windows[:, 1:].copy()
"""
WINDOWS_NOT_SHIFTED = """
def char_windows(ids, length):
    n = (len(ids) - 1) // length
    inputs = ids[:n * length].reshape(n, length)
    return inputs, inputs.copy()
"""
WINDOWS_OVERLAPPING = """
def char_windows(ids, length):
    windows = np.lib.stride_tricks.sliding_window_view(ids, length + 1)
    return windows[:, :-1], windows[:, 1:]
"""
WINDOWS_SHIFTED_BACK = """
def char_windows(ids, length):
    n = (len(ids) - 1) // length
    inputs = ids[1:n * length + 1].reshape(n, length)
    targets = ids[:n * length].reshape(n, length)
    return inputs, targets
"""
WINDOWS_TOO_FEW = """
def char_windows(ids, length):
    n = len(ids) // length - 1
    return ids[:n * length].reshape(n, length), ids[1:n * length + 1].reshape(n, length)
"""
WINDOWS_FLOAT = """
def char_windows(ids, length):
    n = (len(ids) - 1) // length
    x = np.asarray(ids, dtype=np.float32)
    return x[:n * length].reshape(n, length), x[1:n * length + 1].reshape(n, length)
"""
WINDOWS_INT64 = """
def char_windows(ids, length):
    n = (len(ids) - 1) // length
    x = np.asarray(ids, dtype=np.int64)
    return x[:n * length].reshape(n, length), x[1:n * length + 1].reshape(n, length)
"""

WINDOWS = [(fw, *v) for fw in ("pytorch", "tensorflow") for v in [
    ("the solution", Mutation(), True),
    ("list comprehensions", WINDOWS_COMPREHENSION, True),
    ("sliding_window_view with a step", WINDOWS_SLIDING, True),
    ("targets not shifted", WINDOWS_NOT_SHIFTED, False),
    ("overlapping windows (stride 1)", WINDOWS_OVERLAPPING, False),
    ("shifted the wrong way", WINDOWS_SHIFTED_BACK, False),
    ("one window too few", WINDOWS_TOO_FEW, False),
    ("float ids", WINDOWS_FLOAT, False),
    ("always int64", WINDOWS_INT64, False),
]]

# ----------------------------------------------------------------------------- sample_with_temperature

TORCH_SAMPLE_CATEGORICAL = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        logits = model(ids)[:, -1, :]
    return torch.distributions.Categorical(logits=logits / temperature).sample()
"""
TORCH_SAMPLE_POWER = """
def sample_with_temperature(model, ids, temperature):
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        p = torch.softmax(model(ids)[:, -1].double(), dim=-1) ** (1.0 / temperature)   # p^(1/T), renormalised
    model.train(was_training)
    return torch.multinomial(p / p.sum(dim=-1, keepdim=True), 1).squeeze(1)
"""
TORCH_SAMPLE_INVERSE_CDF = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(ids)[:, -1] / temperature, dim=-1)
    u = torch.rand(p.shape[0], 1, dtype=p.dtype)
    cdf = p.cumsum(dim=-1)
    return torch.clamp((cdf < u).sum(dim=-1), max=p.shape[-1] - 1).to(torch.int64)
"""
TORCH_SAMPLE_ARGMAX = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        return (model(ids)[:, -1] / temperature).argmax(dim=-1)
"""
TORCH_SAMPLE_PROBS = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(ids)[:, -1], dim=-1) / temperature
    return torch.multinomial(p, 1)[:, 0]
"""
TORCH_SAMPLE_NUMPY = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(ids)[:, -1].double() / temperature, dim=-1).numpy()
    rng = np.random.default_rng(0)
    return torch.tensor([rng.choice(p.shape[1], p=row) for row in p])
"""

TORCH_SAMPLE_GLOBAL_NUMPY = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(ids)[:, -1].double() / temperature, dim=-1).numpy()
    return torch.tensor([np.random.choice(p.shape[1], p=row / row.sum()) for row in p], dtype=torch.int64)
"""
TORCH_SAMPLE_FIXED_GENERATOR = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(ids)[:, -1] / temperature, dim=-1)
    generator = torch.Generator().manual_seed(0)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
"""

TORCH_SAMPLE_LAST_ID_ONLY = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        logits = model(ids[:, -1:])[:, -1]
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1)[:, 0]
"""
TORCH_SAMPLE_SQUEEZE = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        logits = model(ids)[:, -1]
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze()
"""
TORCH_SAMPLE_SQUEEZE_AXIS = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        logits = model(ids)[:, -1]
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze(-1)
"""
TORCH_SAMPLE_RESHAPE = """
def sample_with_temperature(model, ids, temperature):
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(ids)[:, -1] / temperature, dim=-1)
    return torch.multinomial(probs, 1).reshape(-1)
"""

TF_SAMPLE_LOG_SOFTMAX = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids, training=False)
    probs = tf.nn.softmax(logits[:, -1, :] / temperature)
    return tf.random.categorical(tf.math.log(probs), 1)[:, 0]
"""
TF_SAMPLE_NUMPY = """
def sample_with_temperature(model, ids, temperature):
    logits = np.asarray(model(ids, training=False))[:, -1].astype(np.float64) / temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = np.random.random((len(p), 1))
    return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), p.shape[1] - 1).astype(np.int64)
"""
TF_SAMPLE_STATELESS = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids, training=False)[:, -1]
    return tf.random.stateless_categorical(logits / temperature, 1, seed=[0, 0])[:, 0]
"""
TF_SAMPLE_FIXED_NUMPY = """
def sample_with_temperature(model, ids, temperature):
    p = tf.nn.softmax(tf.cast(model(ids, training=False)[:, -1], tf.float64) / temperature).numpy()
    rng = np.random.default_rng(0)
    return np.array([rng.choice(p.shape[1], p=row / row.sum()) for row in p], dtype=np.int64)
"""
TF_SAMPLE_LAST_ID_ONLY = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids[:, -1:], training=False)[:, -1]
    return tf.random.categorical(logits / temperature, num_samples=1)[:, 0]
"""
TF_SAMPLE_SQUEEZE = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids, training=False)[:, -1]
    return tf.squeeze(tf.random.categorical(logits / temperature, num_samples=1))
"""
TF_SAMPLE_SQUEEZE_AXIS = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids, training=False)[:, -1]
    return tf.squeeze(tf.random.categorical(logits / temperature, num_samples=1), axis=1)
"""
TF_SAMPLE_RESHAPE = """
def sample_with_temperature(model, ids, temperature):
    logits = model(ids, training=False)[:, -1]
    return tf.reshape(tf.random.categorical(logits / temperature, num_samples=1), [-1])
"""
TF_SAMPLE_PREDICT = """
def sample_with_temperature(model, ids, temperature):
    logits = model.predict(ids, verbose=0)[:, -1]
    return tf.random.categorical(logits / temperature, num_samples=1)[:, 0]
"""
TF_SAMPLE_CALL_METHOD = """
def sample_with_temperature(model, ids, temperature):
    logits = model.call(ids, training=False)[:, -1]
    return tf.random.categorical(logits / temperature, num_samples=1)[:, 0]
"""

TF_SAMPLE_ARGMAX = """
def sample_with_temperature(model, ids, temperature):
    return tf.argmax(model(ids, training=False)[:, -1] / temperature, axis=-1)
"""
TF_SAMPLE_PROBS = """
def sample_with_temperature(model, ids, temperature):
    probs = tf.nn.softmax(model(ids, training=False)[:, -1]) / temperature
    return tf.random.categorical(tf.math.log(probs), 1)[:, 0]
"""

SAMPLE = [
    ("pytorch", "the solution", Mutation(), True),
    ("pytorch", "torch.distributions.Categorical", TORCH_SAMPLE_CATEGORICAL, True),
    ("pytorch", "p ** (1 / T), renormalised, mode restored", TORCH_SAMPLE_POWER, True),
    ("pytorch", "inverse CDF with torch.rand", TORCH_SAMPLE_INVERSE_CDF, True),
    ("pytorch", "argmax, not a draw", TORCH_SAMPLE_ARGMAX, False),
    ("pytorch", "temperature applied to the probabilities", TORCH_SAMPLE_PROBS, False),
    ("pytorch", "logits multiplied by the temperature",
     Mutation([("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits * temperature, dim=-1)")]), False),
    ("pytorch", "model left in training mode", Mutation([("    model.eval()\n", "")]), False),
    ("pytorch", "the first step's logits", Mutation([("logits = model(ids)[:, -1]", "logits = model(ids)[:, 0]")]), False),
    ("pytorch", "one draw for the whole batch", Mutation([("return torch.multinomial(probs, num_samples=1)[:, 0]",
                                                          "return torch.multinomial(probs[0], 1).expand(len(probs))")]), False),
    ("pytorch", "numpy's global generator (seeded by the course)", TORCH_SAMPLE_GLOBAL_NUMPY, True),
    ("pytorch", "a numpy generator seeded in the function (the same draw at every call)", TORCH_SAMPLE_NUMPY, False),
    ("pytorch", "a torch generator seeded in the function (the same draw at every call)", TORCH_SAMPLE_FIXED_GENERATOR,
     False),
    ("pytorch", ".squeeze(-1) on the draws", TORCH_SAMPLE_SQUEEZE_AXIS, True),
    ("pytorch", ".reshape(-1) on the draws", TORCH_SAMPLE_RESHAPE, True),
    ("pytorch", "the model run on the last id only (the prompt dropped)", TORCH_SAMPLE_LAST_ID_ONLY, False),
    ("pytorch", ".squeeze() (shape () for a single sequence)", TORCH_SAMPLE_SQUEEZE, False),
    ("tensorflow", "the solution", Mutation(), True),
    ("tensorflow", "log of the tempered softmax", TF_SAMPLE_LOG_SOFTMAX, True),
    ("tensorflow", "inverse CDF in numpy", TF_SAMPLE_NUMPY, True),
    ("tensorflow", "argmax, not a draw", TF_SAMPLE_ARGMAX, False),
    ("tensorflow", "temperature applied to the probabilities", TF_SAMPLE_PROBS, False),
    ("tensorflow", "logits multiplied by the temperature",
     Mutation([("logits / temperature", "logits * temperature")]), False),
    ("tensorflow", "model called in training mode",
     Mutation([("model(ids, training=False)", "model(ids, training=True)")]), False),
    ("tensorflow", "the first step's logits",
     Mutation([("model(ids, training=False)[:, -1]", "model(ids, training=False)[:, 0]")]), False),
    ("tensorflow", "stateless_categorical with a fixed seed (the same draw at every call)", TF_SAMPLE_STATELESS, False),
    ("tensorflow", "a numpy generator seeded in the function (the same draw at every call)", TF_SAMPLE_FIXED_NUMPY, False),
    ("tensorflow", "int32 ids", Mutation([("num_samples=1)[:, 0]", "num_samples=1, dtype=tf.int32)[:, 0]")]), False),
    ("tensorflow", "tf.squeeze(..., axis=1) on the draws", TF_SAMPLE_SQUEEZE_AXIS, True),
    ("tensorflow", "tf.reshape(..., [-1]) on the draws", TF_SAMPLE_RESHAPE, True),
    ("tensorflow", "the model run on the last id only (the prompt dropped)", TF_SAMPLE_LAST_ID_ONLY, False),
    ("tensorflow", "tf.squeeze without an axis (shape () for a single sequence)", TF_SAMPLE_SQUEEZE, False),
    ("tensorflow", "model.predict (the model may be a plain callable)", TF_SAMPLE_PREDICT, False),
    ("tensorflow", "model.call (the model may be a plain callable)", TF_SAMPLE_CALL_METHOD, False),
]

VARIANTS = [
    *[(fw, "gru_step", name, answer, ok) for fw, name, answer, ok in STEP],
    *[(fw, "port_gru_weights", name, answer, ok) for fw, name, answer, ok in PORT],
    *[(fw, "count_rnn_params", name, answer, ok) for fw, name, answer, ok in COUNT],
    *[(fw, "last_valid_state", name, answer, ok) for fw, name, answer, ok in LAST],
    *[(fw, "char_windows", name, answer, ok) for fw, name, answer, ok in WINDOWS],
    *[(fw, "sample_with_temperature", name, answer, ok) for fw, name, answer, ok in SAMPLE],
]

# ----------------------------------------------------------------------------- inputs changed in place
# Answers that zero their inputs (or the cell's variables) in place on the hidden tests, so
# that a reference computed afterwards from them agrees: the tests must compute it first.
VARIANTS += [
    ("pytorch", "gru_step", "zeroes x_t and h_prev in place beyond the visible example",
     Mutation([("    gi = x_t @ W_ih.T + b_ih",
                "    if x_t.shape != (2, 3):\n        x_t.zero_()\n        h_prev.zero_()\n"
                "    gi = x_t @ W_ih.T + b_ih")]), False),
    ("tensorflow", "gru_step", "zeroes the cell's variables",
     Mutation([("    gx = tf.matmul(x_t, kernel) + bias[0]",
                "    for v in (kernel, recurrent_kernel, bias):\n        if hasattr(v, 'assign'):\n"
                "            v.assign(tf.zeros_like(v))\n    gx = tf.matmul(x_t, kernel) + bias[0]")]), False),
    ("pytorch", "sample_with_temperature", "zeroes long prompts in place",
     Mutation([("    model.eval()\n", "    if ids.shape[1] > 3:\n        ids.zero_()\n    model.eval()\n")]), False),
    ("tensorflow", "sample_with_temperature", "zeroes long prompt arrays in place",
     Mutation([("    logits = model(ids, training=False)[:, -1]",
                "    if isinstance(ids, np.ndarray) and ids.shape[1] > 3:\n        ids[...] = 0\n"
                "    logits = model(ids, training=False)[:, -1]")]), False),
]
