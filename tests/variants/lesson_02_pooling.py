"""Answers to lesson 02's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students make.
"""
from tests.variants import Mutation

LESSON = "02_pooling"

TORCH_POOL_LOOP = """
def pool2d(x, size, stride=None, padding=0, mode="max"):
    stride = stride or size
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1
    out = torch.empty(n, c, ho, wo, dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * stride - padding, j * stride - padding
            win = x[:, :, max(r0, 0):min(r0 + size, h), max(c0, 0):min(c0 + size, w)]
            out[:, :, i, j] = win.amax(dim=(2, 3)) if mode == "max" else win.mean(dim=(2, 3))
    return out
"""
TF_POOL_LOOP = """
def pool2d(x, size, stride=None, padding=0, mode="max"):
    stride = stride or size
    x = tf.convert_to_tensor(x)
    n, h, w, c = x.shape
    ho, wo = (h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1
    rows = []
    for i in range(ho):
        row = []
        for j in range(wo):
            r0, c0 = i * stride - padding, j * stride - padding
            win = x[:, max(r0, 0):min(r0 + size, h), max(c0, 0):min(c0 + size, w), :]
            row.append(tf.reduce_max(win, axis=[1, 2]) if mode == "max" else tf.reduce_mean(win, axis=[1, 2]))
        rows.append(tf.stack(row, axis=1))
    return tf.stack(rows, axis=1)
"""
TORCH_BACKWARD = """
def max_pool2d_backward(dout, x, size, stride=None):
    stride = stride or size
    n, c, h_out, w_out = dout.shape
    dx = torch.zeros_like(x)
    for i in range(h_out):
        for j in range(w_out):
            rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
            window = x[:, :, rows, cols]
            mask = (window == window.amax(dim=(2, 3), keepdim=True)).to(x.dtype)
            MASK_LINE
            dx[:, :, rows, cols] += mask * dout[:, :, i, j][:, :, None, None]
    return dx
"""
FIRST_OF_TIES = "mask = mask * (mask.flatten(2).cumsum(2).view_as(mask) == 1)"


def torch_backward(mask_line):
    return TORCH_BACKWARD.replace("MASK_LINE", mask_line)


TORCH_LP_UNFOLD = """
class LpPool2D(nn.Module):
    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size

    def forward(self, x):
        n, c, h, w = x.shape
        cols = F.unfold(x.reshape(n * c, 1, h, w), self.size, stride=self.stride)  # (N*C, size*size, L)
        s = cols.pow(self.p).sum(dim=1)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        out = torch.where(s > 0, safe.pow(1 / self.p), torch.zeros_like(s))
        ho, wo = (h - self.size) // self.stride + 1, (w - self.size) // self.stride + 1
        return out.reshape(n, c, ho, wo)
"""
TORCH_STOCHASTIC_ARGMAX = """
def stochastic_pool2d(x, size, training, u=None):
    n, c, h, w = x.shape
    ho, wo = h // size, w // size
    cells = F.unfold(x[:, :, :ho * size, :wo * size].reshape(n * c, 1, ho * size, wo * size), size, stride=size)
    cells = cells.reshape(n, c, size * size, ho, wo).permute(0, 1, 3, 4, 2)       # row-major cells
    total = cells.sum(-1, keepdim=True)
    probs = cells / torch.where(total > 0, total, torch.ones_like(total))
    if not training:
        return (probs * cells).sum(-1)
    if u is None:
        u = torch.rand(n, c, ho, wo, dtype=x.dtype)
    first = (probs.cumsum(-1) > u[..., None]).to(torch.int64).argmax(-1, keepdim=True)
    return cells.gather(-1, first).squeeze(-1)
"""
TORCH_DROPOUT_BERNOULLI = """
def dropout(x, p, training):
    if not training:
        return x
    keep = torch.bernoulli(torch.full_like(x, 1.0 - p))
    return x * keep / (1.0 - p) if p < 1 else x * keep
"""
TORCH_BN_MANUAL = """
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    c = x.shape[1]
    if training:
        m = x.transpose(0, 1).reshape(c, -1)
        mean, var = m.mean(1), ((m - m.mean(1, keepdim=True)) ** 2).mean(1)
        count = m.shape[1]
        running_mean = running_mean + momentum * (mean - running_mean)
        running_var = running_var + momentum * (var * count / (count - 1) - running_var)
    else:
        mean, var = running_mean, running_var
    y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + eps)
    return y * gamma[None, :, None, None] + beta[None, :, None, None], running_mean, running_var
"""
TF_BACKWARD_GRADIENT_TAPE = """
def max_pool2d_backward(dout, x, size, stride=None):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = tf.nn.max_pool2d(x, size, stride or size, "VALID")
    return tape.gradient(out, x, output_gradients=dout)
"""
TF_STOCHASTIC_GATHER = """
def stochastic_pool2d(x, size, training, u=None):
    x = tf.convert_to_tensor(x)
    _, h, w, c = x.shape
    ho, wo = h // size, w // size
    patches = tf.image.extract_patches(x[:, :ho * size, :wo * size, :], [1, size, size, 1], [1, size, size, 1],
                                       [1, 1, 1, 1], "VALID")                     # (N, ho, wo, size*size*c)
    n = tf.shape(x)[0]
    cells = tf.transpose(tf.reshape(patches, (n, ho, wo, size * size, c)), (0, 1, 2, 4, 3))
    total = tf.reduce_sum(cells, -1, keepdims=True)
    probs = tf.math.divide_no_nan(cells, total)
    if not training:
        return tf.reduce_sum(probs * cells, -1)
    if u is None:
        u = tf.random.uniform((n, ho, wo, c), dtype=x.dtype)
    first = tf.argmax(tf.cast(tf.cumsum(probs, -1) > tf.cast(u, x.dtype)[..., None], tf.int32), axis=-1)
    return tf.gather(cells, first, batch_dims=4)
"""

VARIANTS = [
    ("pytorch", "pool2d", "the solution", Mutation(), True),
    ("pytorch", "pool2d", "a loop over windows of real cells", TORCH_POOL_LOOP, True),
    ("pytorch", "pool2d", "average counts the padding",
     Mutation([("windows(xp).sum(dim=0) / windows(real).sum(dim=0)", "windows(xp).sum(dim=0) / (size * size)")]), False),
    ("pytorch", "pool2d", "max pads with zeros",
     Mutation([('fill = float("-inf") if mode == "max" else 0.0', "fill = 0.0")]), False),
    ("pytorch", "pool2d", "default stride 1", Mutation([("stride = stride or size", "stride = stride or 1")]), False),
    ("tensorflow", "pool2d", "the solution", Mutation(), True),
    ("tensorflow", "pool2d", "a loop over windows of real cells", TF_POOL_LOOP, True),
    ("tensorflow", "pool2d", "average counts the padding",
     Mutation([("tf.reduce_sum(windows(real), axis=0)", "(size * size)")]), False),
    ("tensorflow", "pool2d", "max pads with zeros",
     Mutation([('fill = float("-inf") if mode == "max" else 0.0', "fill = 0.0")]), False),
    ("tensorflow", "pool2d", "default stride 1", Mutation([("stride = stride or size", "stride = stride or 1")]), False),

    ("pytorch", "max_pool2d_backward", "the solution", Mutation(), True),
    ("pytorch", "max_pool2d_backward", "mask of the first maximum", torch_backward(FIRST_OF_TIES), True),
    ("pytorch", "max_pool2d_backward", "every tied maximum", torch_backward("pass"), False),
    ("pytorch", "max_pool2d_backward", "every element", torch_backward("mask = torch.ones_like(mask)"), False),
    ("pytorch", "max_pool2d_backward", "overlapping windows overwrite",
     Mutation([("dx[:, :, rows, cols] += grad.view(n, c, size, size)", "dx[:, :, rows, cols] = grad.view(n, c, size, size)")]),
     False),
    ("tensorflow", "max_pool2d_backward", "the solution", Mutation(), True),
    ("tensorflow", "max_pool2d_backward", "GradientTape of the built-in", TF_BACKWARD_GRADIENT_TAPE, False),
    ("tensorflow", "max_pool2d_backward", "every tied maximum",
     Mutation([("first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)", "first_max = is_max")]), False),
    ("tensorflow", "max_pool2d_backward", "every element",
     Mutation([("first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)", "first_max = tf.ones_like(is_max)")]),
     False),

    ("pytorch", "lp_pool", "the solution", Mutation(), True),
    ("pytorch", "lp_pool", "x^p in float32 (underflows at large p)", TORCH_LP_UNFOLD, False),
    ("pytorch", "lp_pool", "no root", Mutation([("m_safe * s_safe.pow(1.0 / self.p)", "m_safe * s_safe")]), False),
    ("pytorch", "lp_pool", "mean instead of sum",
     Mutation([(".pow(self.p).sum(dim=(-2, -1))", ".pow(self.p).mean(dim=(-2, -1))")]), False),
    ("pytorch", "lp_pool", "NaN gradient at zero windows",
     Mutation([("s_safe = torch.where(nonzero, s, torch.ones_like(s))", "s_safe = s")]), False),
    ("tensorflow", "lp_pool", "the solution", Mutation(), True),
    ("tensorflow", "lp_pool", "no root", Mutation([("m_safe * tf.pow(s_safe, 1.0 / self.p)", "m_safe * s_safe")]), False),
    ("tensorflow", "lp_pool", "mean instead of sum",
     Mutation([("tf.reduce_sum(tf.pow(windows / m_safe[..., None], self.p), axis=-1)",
                "tf.reduce_mean(tf.pow(windows / m_safe[..., None], self.p), axis=-1)")]), False),
    ("tensorflow", "lp_pool", "NaN gradient at zero windows",
     Mutation([("s_safe = tf.where(nonzero, s, tf.ones_like(s))", "s_safe = s")]), False),

    ("pytorch", "stochastic_pool2d", "the solution", Mutation(), True),
    ("pytorch", "stochastic_pool2d", "unfold and argmax", TORCH_STOCHASTIC_ARGMAX, True),
    ("pytorch", "stochastic_pool2d", "plain average at inference",
     Mutation([("return (probs * windows).sum(dim=-1)", "return windows.mean(dim=-1)")]), False),
    ("pytorch", "stochastic_pool2d", "max at inference",
     Mutation([("return (probs * windows).sum(dim=-1)", "return windows.amax(dim=-1)")]), False),
    ("pytorch", "stochastic_pool2d", "NaN for windows of zeros",
     Mutation([("probs = torch.where(total > 0, windows / total.clamp_min(1e-12), torch.zeros_like(windows))",
                "probs = windows / total")]), False),
    ("pytorch", "stochastic_pool2d", "ignores the given draws", Mutation([("if u is None:", "if True:")]), False),
    ("pytorch", "stochastic_pool2d", "column-major cells",
     Mutation([(".permute(0, 1, 2, 4, 3, 5)", ".permute(0, 1, 2, 4, 5, 3)")]), False),
    ("tensorflow", "stochastic_pool2d", "the solution", Mutation(), True),
    ("tensorflow", "stochastic_pool2d", "extract_patches and gather", TF_STOCHASTIC_GATHER, True),
    ("tensorflow", "stochastic_pool2d", "plain average at inference",
     Mutation([("return tf.reduce_sum(probs * windows, axis=-1)", "return tf.reduce_mean(windows, axis=-1)")]), False),
    ("tensorflow", "stochastic_pool2d", "NaN for windows of zeros",
     Mutation([("probs = tf.where(total > 0, windows / tf.maximum(total, 1e-12), tf.zeros_like(windows))",
                "probs = windows / total")]), False),
    ("tensorflow", "stochastic_pool2d", "ignores the given draws", Mutation([("if u is None:", "if True:")]), False),
    ("tensorflow", "stochastic_pool2d", "column-major cells", Mutation([("(0, 1, 3, 5, 2, 4)", "(0, 1, 3, 5, 4, 2)")]), False),

    ("pytorch", "dropout", "the solution", Mutation(), True),
    ("pytorch", "dropout", "bernoulli mask", TORCH_DROPOUT_BERNOULLI, True),
    ("pytorch", "dropout", "no 1 / (1 - p) scaling", Mutation([("return x * keep / (1 - p)", "return x * keep")]), False),
    ("pytorch", "dropout", "drops at inference too", Mutation([("if not training or p == 0:", "if p == 0:")]), False),
    ("pytorch", "dropout", "p read as the keep probability", Mutation([("torch.rand_like(x) >= p", "torch.rand_like(x) < p")]),
     False),
    ("pytorch", "dropout", "NaN for p = 1", Mutation([("if p == 1:", "if False:")]), False),
    ("tensorflow", "dropout", "the solution", Mutation(), True),
    ("tensorflow", "dropout", "no 1 / (1 - p) scaling", Mutation([("return x * keep / (1 - p)", "return x * keep")]), False),
    ("tensorflow", "dropout", "drops at inference too", Mutation([("if not training or p == 0:", "if p == 0:")]), False),
    ("tensorflow", "dropout", "p read as the keep probability",
     Mutation([("tf.random.uniform(tf.shape(x)) >= p", "tf.random.uniform(tf.shape(x)) < p")]), False),

    ("pytorch", "batch_norm", "the solution", Mutation(), True),
    ("pytorch", "batch_norm", "by hand, rsqrt and incremental updates", TORCH_BN_MANUAL, True),
    ("pytorch", "batch_norm", "unbiased variance to normalise",
     Mutation([("x.var(dim=(0, 2, 3), unbiased=False)", "x.var(dim=(0, 2, 3), unbiased=True)")]), False),
    ("pytorch", "batch_norm", "biased variance in the running average",
     Mutation([("momentum * var * n / (n - 1)", "momentum * var")]), False),
    ("pytorch", "batch_norm", "Keras' momentum convention",
     Mutation([("new_mean = (1 - momentum) * running_mean + momentum * mean",
                "new_mean = momentum * running_mean + (1 - momentum) * mean")]), False),
    ("pytorch", "batch_norm", "batch statistics at inference", Mutation([("if training:", "if True:")]), False),
    ("tensorflow", "batch_norm", "the solution", Mutation(), True),
    ("tensorflow", "batch_norm", "moments by hand",
     Mutation([("mean, var = tf.nn.moments(x, axes=[0, 1, 2])  # the biased variance",
                "mean = tf.reduce_mean(x, axis=[0, 1, 2]); var = tf.reduce_mean(tf.square(x - mean), axis=[0, 1, 2])")]),
     True),
    ("tensorflow", "batch_norm", "unbiased variance",
     Mutation([("mean, var = tf.nn.moments(x, axes=[0, 1, 2])  # the biased variance",
                "mean = tf.reduce_mean(x, axis=[0, 1, 2]); var = tf.math.reduce_variance(x, axis=[0, 1, 2])"
                " * (tf.cast(tf.size(x) // x.shape[-1], x.dtype) / tf.cast(tf.size(x) // x.shape[-1] - 1, x.dtype))")]),
     False),
    ("tensorflow", "batch_norm", "PyTorch's momentum convention",
     Mutation([("new_mean = momentum * moving_mean + (1 - momentum) * mean",
                "new_mean = (1 - momentum) * moving_mean + momentum * mean")]), False),
    ("tensorflow", "batch_norm", "batch statistics at inference", Mutation([("if training:", "if True:")]), False),

]

# ---------------------------------------------------------------- issue 11: the holes closed
# pool2d: the built-in reached through an alias, a wrapper, a layer made earlier.
TORCH_POOL_ALIAS = """
from torch.nn.functional import max_pool2d as _mp, avg_pool2d as _ap
def pool2d(x, size, stride=None, padding=0, mode="max"):
    if mode == "max":
        return _mp(x, size, stride or size, padding)
    return _ap(x, size, stride or size, padding, count_include_pad=False)
"""
TORCH_POOL_UNFOLD = """
def pool2d(x, size, stride=None, padding=0, mode="max"):
    stride = stride or size
    fill = float("-inf") if mode == "max" else 0.0
    xp = F.pad(x, (padding,) * 4, value=fill)
    win = xp.unfold(2, size, stride).unfold(3, size, stride)
    if mode == "max":
        return win.amax(dim=(-2, -1))
    ones = F.pad(torch.ones_like(x), (padding,) * 4).unfold(2, size, stride).unfold(3, size, stride)
    return win.sum(dim=(-2, -1)) / ones.sum(dim=(-2, -1))
"""
TF_POOL_ALIAS = """
_mp = tf.nn.max_pool2d
def _avg(x, size, stride, padding):
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    total = tf.nn.avg_pool2d(tf.pad(x, pads), size, stride, "VALID")
    return total / tf.nn.avg_pool2d(tf.pad(tf.ones_like(x), pads), size, stride, "VALID")
def pool2d(x, size, stride=None, padding=0, mode="max"):
    stride = stride or size
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    if mode == "max":
        return _mp(tf.pad(x, pads, constant_values=float("-inf")), size, stride, "VALID")
    return _avg(x, size, stride, padding)
"""
TF_POOL_PATCHES = """
def pool2d(x, size, stride=None, padding=0, mode="max"):
    stride = stride or size
    x = tf.convert_to_tensor(x)
    c = x.shape[-1]
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    fill = float("-inf") if mode == "max" else 0.0
    def patches(t):
        p = tf.image.extract_patches(t, [1, size, size, 1], [1, stride, stride, 1], [1, 1, 1, 1], "VALID")
        return tf.reshape(p, tf.concat([tf.shape(p)[:3], [size * size, c]], 0))
    win = patches(tf.pad(x, pads, constant_values=fill))
    if mode == "max":
        return tf.reduce_max(win, axis=3)
    return tf.reduce_sum(win, axis=3) / tf.reduce_sum(patches(tf.pad(tf.ones_like(x), pads)), axis=3)
"""
# max_pool2d_backward: autograd, and the wrong tie-breaking rules.
TORCH_BACKWARD_AUTOGRAD = """
def max_pool2d_backward(dout, x, size, stride=None):
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        F.max_pool2d(x, size, stride or size).backward(dout)
    return x.grad
"""
TORCH_BACKWARD_AUTOGRAD_GRAD = """
import torch.autograd as ag
_pool = F.max_pool2d
def max_pool2d_backward(dout, x, size, stride=None):
    x = x.detach().requires_grad_(True)
    with torch.set_grad_enabled(True):
        return ag.grad(_pool(x, size, stride or size), x, dout)[0]
"""
TORCH_BACKWARD_WITH_INDICES = """
def max_pool2d_backward(dout, x, size, stride=None):
    _, idx = F.max_pool2d_with_indices(x, size, stride or size)
    dx = torch.zeros_like(x).flatten(2)
    dx.scatter_add_(2, idx.flatten(2), dout.flatten(2))
    return dx.view_as(x)
"""
TORCH_BACKWARD_UNFOLD = """
def max_pool2d_backward(dout, x, size, stride=None):
    stride = stride or size
    n, c, h, w = x.shape
    cols = F.unfold(x.reshape(n * c, 1, h, w), size, stride=stride)          # (N*C, k*k, L)
    first = cols.argmax(dim=1, keepdim=True)
    grads = torch.zeros_like(cols).scatter_(1, first, dout.reshape(n * c, 1, -1))
    return F.fold(grads, (h, w), size, stride=stride).reshape(n, c, h, w)
"""
TF_BACKWARD_TAPE_ALIAS = """
from tensorflow import GradientTape as Recorder
_pool = tf.nn.max_pool2d
def max_pool2d_backward(dout, x, size, stride=None):
    x = tf.convert_to_tensor(x)
    with Recorder() as tape:
        tape.watch(x)
        out = _pool(x, size, stride or size, "VALID")
    return tape.gradient(out, x, output_gradients=dout)
"""
TF_BACKWARD_ARGMAX = """
def max_pool2d_backward(dout, x, size, stride=None):
    stride = stride or size
    x = tf.convert_to_tensor(x)
    dout = tf.cast(dout, x.dtype)
    n, h, w, c = x.shape
    _, ho, wo, _ = dout.shape
    dx = tf.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            win = tf.reshape(x[:, i * stride:i * stride + size, j * stride:j * stride + size, :], (n, size * size, c))
            onehot = tf.one_hot(tf.argmax(win, axis=1), size * size, axis=1, dtype=x.dtype)   # (n, k*k, c)
            grad = tf.reshape(onehot * dout[:, i:i + 1, j, :], (n, size, size, c))
            dx += tf.pad(grad, [[0, 0], [i * stride, h - i * stride - size], [j * stride, w - j * stride - size], [0, 0]])
    return dx
"""
# Lp pooling: right formulations, and the inexact hint.
TORCH_LP_FLOAT64 = """
class LpPool2D(nn.Module):
    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size

    def forward(self, x):
        s = F.avg_pool2d(x.double().pow(self.p), self.size, self.stride) * self.size ** 2
        safe = torch.where(s > 0, s, torch.ones_like(s))
        return torch.where(s > 0, safe.pow(1 / self.p), torch.zeros_like(s)).to(x.dtype)
"""
TORCH_LP_MAXPOOL_SCALE = """
class LpPool2D(nn.Module):
    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size

    def forward(self, x):
        n, c, h, w = x.shape
        cols = F.unfold(x.reshape(n * c, 1, h, w), self.size, stride=self.stride)   # (N*C, k*k, L)
        m = cols.amax(dim=1, keepdim=True)
        ok = m > 0
        m1 = torch.where(ok, m, torch.ones_like(m))
        s = (cols / m1).pow(self.p).sum(dim=1, keepdim=True)
        y = torch.where(ok, m1 * torch.where(ok, s, torch.ones_like(s)) ** (1 / self.p), torch.zeros_like(m))
        ho, wo = (h - self.size) // self.stride + 1, (w - self.size) // self.stride + 1
        return y.reshape(n, c, ho, wo)
"""
TORCH_LP_BUILTIN = """
class LpPool2D(nn.Module):
    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size
        self.inner = nn.LPPool2d(p, size, stride)

    def forward(self, x):
        return self.inner(x)
"""
TORCH_LP_CLAMP = """
class LpPool2D(nn.Module):
    def __init__(self, p, size, stride=None):
        super().__init__()
        self.p, self.size, self.stride = float(p), size, stride or size

    def forward(self, x):
        window_sum = F.avg_pool2d(x.pow(self.p), self.size, self.stride) * self.size ** 2
        root = window_sum.clamp_min(1e-30).pow(1.0 / self.p)
        return torch.where(window_sum > 0, root, torch.zeros_like(root))
"""
TF_LP_CLAMP = """
class LpPool2D(keras.layers.Layer):
    def __init__(self, p, size, stride=None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.size, self.stride = float(p), size, stride or size

    def call(self, x):
        window_sum = tf.nn.avg_pool2d(tf.pow(x, self.p), self.size, self.stride, "VALID") * self.size ** 2
        root = tf.pow(tf.maximum(window_sum, 1e-30), 1.0 / self.p)
        return tf.where(window_sum > 0, root, tf.zeros_like(root))
"""
TF_LP_NAIVE_SAFE = TF_LP_CLAMP.replace("tf.maximum(window_sum, 1e-30)",
                                       "tf.where(window_sum > 0, window_sum, tf.ones_like(window_sum))")
TF_LP_FLOAT64 = """
class LpPool2D(keras.layers.Layer):
    def __init__(self, p, size, stride=None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.size, self.stride = float(p), size, stride or size

    def call(self, x):
        x64 = tf.cast(x, tf.float64)
        s = tf.nn.avg_pool2d(tf.pow(x64, self.p), self.size, self.stride, "VALID") * self.size ** 2
        safe = tf.where(s > 0, s, tf.ones_like(s))
        return tf.cast(tf.where(s > 0, tf.pow(safe, 1.0 / self.p), tf.zeros_like(s)), x.dtype)
"""
TF_LP_MAXPOOL_SCALE = """
class LpPool2D(keras.layers.Layer):
    def __init__(self, p, size, stride=None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.size, self.stride = float(p), size, stride or size

    def call(self, x):
        c = x.shape[-1]
        patches = tf.image.extract_patches(x, [1, self.size, self.size, 1], [1, self.stride, self.stride, 1],
                                           [1, 1, 1, 1], "VALID")
        cells = tf.reshape(patches, tf.concat([tf.shape(patches)[:3], [self.size * self.size, c]], 0))
        m = tf.nn.max_pool2d(x, self.size, self.stride, "VALID")
        ok = m > 0
        m1 = tf.where(ok, m, tf.ones_like(m))
        s = tf.reduce_sum((cells / m1[:, :, :, None, :]) ** self.p, axis=3)
        return tf.where(ok, m1 * tf.where(ok, s, tf.ones_like(s)) ** (1.0 / self.p), tf.zeros_like(m))
"""
# stochastic pooling: shared or repeated draws, non-strict comparison; a multinomial sampler.
TORCH_STOCHASTIC_MULTINOMIAL = """
def stochastic_pool2d(x, size, training, u=None):
    n, c, h, w = x.shape
    ho, wo = h // size, w // size
    win = x[:, :, :ho * size, :wo * size].reshape(n, c, ho, size, wo, size).permute(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, -1)
    total = win.sum(-1, keepdim=True)
    probs = torch.where(total > 0, win / torch.where(total > 0, total, torch.ones_like(total)), torch.zeros_like(win))
    if not training:
        return (probs * win).sum(-1)
    if u is not None:
        idx = (probs.cumsum(-1) <= u[..., None]).sum(-1, keepdim=True).clamp(max=size * size - 1)
        return win.gather(-1, idx).squeeze(-1)
    flat = probs.reshape(-1, size * size)
    flat = torch.where(flat.sum(1, keepdim=True) > 0, flat, torch.ones_like(flat))   # windows of zeros: any cell, all 0
    idx = torch.multinomial(flat, 1).reshape(n, c, ho, wo, 1)
    return win.gather(-1, idx).squeeze(-1)
"""
# dropout: built-ins, and masks that are not independent.
TORCH_DROPOUT_BUILTIN = """
_drop = F.dropout
def dropout(x, p, training):
    return _drop(x, p, training)
"""
TORCH_DROPOUT_LAYER = """
def dropout(x, p, training):
    layer = nn.Dropout(p)
    layer.train(training)
    return layer(x)
"""
TORCH_DROPOUT_FIXED_COUNT = """
def dropout(x, p, training):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    flat = torch.ones(x.numel(), dtype=x.dtype)
    flat[torch.randperm(x.numel())[:round(p * x.numel())]] = 0
    return x * flat.view_as(x) / (1 - p)
"""
TF_DROPOUT_LAYER = """
def dropout(x, p, training):
    if p == 1 and training:
        return tf.zeros_like(x)
    return keras.layers.Dropout(p)(x, training=training)
"""
TF_DROPOUT_TFNN = """
from tensorflow.nn import dropout as _drop
def dropout(x, p, training):
    x = tf.convert_to_tensor(x)
    if not training:
        return x
    if p == 1:
        return tf.zeros_like(x)
    return _drop(x, rate=p)
"""
TF_DROPOUT_FIXED_COUNT = """
def dropout(x, p, training):
    x = tf.convert_to_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return tf.zeros_like(x)
    size = int(tf.size(x))
    order = tf.argsort(tf.random.uniform([size]))
    keep = tf.cast(order >= round(p * size), x.dtype)
    return x * tf.reshape(keep, tf.shape(x)) / (1 - p)
"""
TF_DROPOUT_GENERATOR = """
_gen = tf.random.Generator.from_seed(123)
def dropout(x, p, training):
    x = tf.convert_to_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return tf.zeros_like(x)
    keep = tf.cast(_gen.uniform(tf.shape(x), dtype=x.dtype) >= p, x.dtype)
    return x * keep / (1 - p)
"""
# batch norm forward: the framework's own.
TORCH_BN_BUILTIN = """
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    rm, rv = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum, eps=eps)
    return y, rm, rv
"""
TF_BN_LAYER = """
def batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99, eps=1e-3):
    x = tf.convert_to_tensor(x)
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=eps, dtype=x.dtype)
    layer.build(x.shape)
    layer.set_weights([np.asarray(gamma), np.asarray(beta), np.asarray(moving_mean), np.asarray(moving_var)])
    y = layer(x, training=training)
    return y, tf.identity(layer.moving_mean), tf.identity(layer.moving_variance)
"""
TF_BN_OPS = """
def batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99, eps=1e-3):
    x = tf.convert_to_tensor(x)
    if training:
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        new_mean = momentum * moving_mean + (1 - momentum) * mean
        new_var = momentum * moving_var + (1 - momentum) * var
    else:
        mean, var, new_mean, new_var = moving_mean, moving_var, moving_mean, moving_var
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, eps), new_mean, new_var
"""
# batch norm backward: staged (one path at a time), and the usual mistakes.
TORCH_BN_BACKWARD_STAGED = """
def batch_norm_backward(dout, x, gamma, eps=1e-5):
    n, c, h, w = x.shape
    m = n * h * w
    xc = x.permute(1, 0, 2, 3).reshape(c, m)
    d = dout.permute(1, 0, 2, 3).reshape(c, m)
    mu = xc.mean(1, keepdim=True)
    var = ((xc - mu) ** 2).sum(1, keepdim=True) / m
    std = (var + eps) ** 0.5
    xhat = (xc - mu) / std
    dbeta = d.sum(1)
    dgamma = (d * xhat).sum(1)
    dxhat = d * gamma[:, None]
    dvar = (dxhat * (xc - mu)).sum(1, keepdim=True) * -0.5 * (var + eps) ** -1.5
    dmu = -(dxhat / std).sum(1, keepdim=True) + dvar * (-2.0 / m) * (xc - mu).sum(1, keepdim=True)
    dxc = dxhat / std + dvar * 2 * (xc - mu) / m + dmu / m
    return dxc.reshape(c, n, h, w).permute(1, 0, 2, 3), dgamma, dbeta
"""
TORCH_BN_BACKWARD_AUTOGRAD = """
def batch_norm_backward(dout, x, gamma, eps=1e-5):
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        g = gamma.detach().clone().requires_grad_(True)
        b = torch.zeros_like(g, requires_grad=True)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        y = (x - mean) / torch.sqrt(var + eps) * g.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
        return torch.autograd.grad((y * dout).sum(), (x, g, b))
"""
TF_BN_BACKWARD_STAGED = """
def batch_norm_backward(dout, x, gamma, eps=1e-3):
    x = tf.convert_to_tensor(x)
    dout, gamma = tf.cast(dout, x.dtype), tf.cast(gamma, x.dtype)
    c = x.shape[-1]
    xc, d = tf.reshape(x, (-1, c)), tf.reshape(dout, (-1, c))
    m = tf.cast(tf.shape(xc)[0], x.dtype)
    mu = tf.reduce_mean(xc, 0)
    var = tf.reduce_mean((xc - mu) ** 2, 0)
    std = tf.sqrt(var + eps)
    xhat = (xc - mu) / std
    dxhat = d * gamma
    dvar = tf.reduce_sum(dxhat * (xc - mu), 0) * -0.5 * (var + eps) ** -1.5
    dmu = -tf.reduce_sum(dxhat / std, 0)
    dx = dxhat / std + dvar * 2 * (xc - mu) / m + dmu / m
    return tf.reshape(dx, tf.shape(x)), tf.reduce_sum(d * xhat, 0), tf.reduce_sum(d, 0)
"""
TF_BN_BACKWARD_TAPE = """
def batch_norm_backward(dout, x, gamma, eps=1e-3):
    x, gamma = tf.Variable(x), tf.Variable(gamma)
    beta = tf.Variable(tf.zeros_like(gamma))
    with tf.GradientTape() as tape:
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        y = (x - mean) / tf.sqrt(var + eps) * gamma + beta
        loss = tf.reduce_sum(y * dout)
    return tuple(tape.gradient(loss, [x, gamma, beta]))
"""
TORCH_DX = "dx = gamma.view(shape) * inv_std / m * (m * dout - dbeta.view(shape) - x_hat * dgamma.view(shape))"
TF_DX = "dx = gamma * inv_std / m * (m * dout - dbeta - x_hat * dgamma)"

NEW_VARIANTS = [
    ("pytorch", "pool2d", "unfold windows", TORCH_POOL_UNFOLD, True),
    ("pytorch", "pool2d", "the built-ins imported under other names", TORCH_POOL_ALIAS, False),
    ("pytorch", "pool2d", "a pooling layer made at module level",
     "_layer = nn.MaxPool2d(2)\n" + TORCH_POOL_ALIAS.replace(
         "_mp(x, size, stride or size, padding)",
         "_layer(x) if size == 2 and not padding else _mp(x, size, stride or size, padding)"),
     False),
    ("tensorflow", "pool2d", "extract_patches", TF_POOL_PATCHES, True),
    ("tensorflow", "pool2d", "the built-ins through an alias and a helper", TF_POOL_ALIAS, False),

    ("pytorch", "max_pool2d_backward", "unfold, argmax and fold", TORCH_BACKWARD_UNFOLD, True),
    ("pytorch", "max_pool2d_backward", "autograd through F.max_pool2d", TORCH_BACKWARD_AUTOGRAD, False),
    ("pytorch", "max_pool2d_backward", "torch.autograd.grad through an aliased pooling", TORCH_BACKWARD_AUTOGRAD_GRAD, False),
    ("pytorch", "max_pool2d_backward", "the indices of F.max_pool2d_with_indices", TORCH_BACKWARD_WITH_INDICES, False),
    ("pytorch", "max_pool2d_backward", "the last of tied maxima",
     torch_backward("mask = mask * (mask.flatten(2).flip(2).cumsum(2).flip(2).view_as(mask) == 1)"), False),
    ("pytorch", "max_pool2d_backward", "the first of tied maxima in column-major order",
     torch_backward("mask = mask * (mask.transpose(2, 3).flatten(2).cumsum(2).view(mask.shape[0], mask.shape[1], "
                    "mask.shape[3], mask.shape[2]).transpose(2, 3) == 1)"), False),
    ("tensorflow", "max_pool2d_backward", "one-hot of tf.argmax", TF_BACKWARD_ARGMAX, True),
    ("tensorflow", "max_pool2d_backward", "an aliased GradientTape", TF_BACKWARD_TAPE_ALIAS, False),
    ("tensorflow", "max_pool2d_backward", "the last of tied maxima",
     Mutation([("first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)",
                "first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1, reverse=True) == 1, x.dtype)")]), False),
    ("tensorflow", "max_pool2d_backward", "overlapping windows overwrite",
     Mutation([("dx += tf.pad(", "dx = dx * tf.cast(tf.pad(tf.zeros_like(grad), [[0, 0], [top, h - top - size], "
                "[left, w - left - size], [0, 0]], constant_values=1.0), x.dtype) + tf.pad(")]), False),

    ("pytorch", "lp_pool", "unfold, scaled by the window maximum", TORCH_LP_MAXPOOL_SCALE, True),
    ("pytorch", "lp_pool", "x^p summed in float64", TORCH_LP_FLOAT64, True),
    ("pytorch", "lp_pool", "nn.LPPool2d inside", TORCH_LP_BUILTIN, False),
    ("pytorch", "lp_pool", "the old hint, clamp_min(1e-30) before the root", TORCH_LP_CLAMP, False),
    ("tensorflow", "lp_pool", "extract_patches, scaled by max_pool2d", TF_LP_MAXPOOL_SCALE, True),
    ("tensorflow", "lp_pool", "x^p summed in float64", TF_LP_FLOAT64, True),
    ("tensorflow", "lp_pool", "the old hint, tf.maximum(s, 1e-30) before the root", TF_LP_CLAMP, False),
    ("tensorflow", "lp_pool", "x^p in float32 (underflows at large p)", TF_LP_NAIVE_SAFE, False),

    ("pytorch", "stochastic_pool2d", "torch.multinomial when u is None", TORCH_STOCHASTIC_MULTINOMIAL, True),
    ("pytorch", "stochastic_pool2d", "one draw per map",
     Mutation([("u = torch.rand(n, c, h_out, w_out, dtype=x.dtype, device=x.device)",
                "u = torch.rand(n, c, 1, 1, dtype=x.dtype).expand(n, c, h_out, w_out)")]), False),
    ("pytorch", "stochastic_pool2d", "one draw per position, shared by examples and channels",
     Mutation([("u = torch.rand(n, c, h_out, w_out, dtype=x.dtype, device=x.device)",
                "u = torch.rand(1, 1, h_out, w_out, dtype=x.dtype).expand(n, c, h_out, w_out)")]), False),
    ("pytorch", "stochastic_pool2d", "the same draws at every call",
     Mutation([("u = torch.rand(n, c, h_out, w_out, dtype=x.dtype, device=x.device)",
                "u = torch.rand(n, c, h_out, w_out, dtype=x.dtype, generator=torch.Generator().manual_seed(0))")]), False),
    ("pytorch", "stochastic_pool2d", "cumulative probability at least u (not exceeding)",
     Mutation([("(probs.cumsum(dim=-1) <= u.unsqueeze(-1))", "(probs.cumsum(dim=-1) < u.unsqueeze(-1))")]), False),
    ("tensorflow", "stochastic_pool2d", "one draw per map",
     Mutation([("u = tf.random.uniform((n, h_out, w_out, c), dtype=x.dtype)",
                "u = tf.tile(tf.random.uniform((n, 1, 1, c), dtype=x.dtype), (1, h_out, w_out, 1))")]), False),
    ("tensorflow", "stochastic_pool2d", "the same draws at every call",
     Mutation([("u = tf.random.uniform((n, h_out, w_out, c), dtype=x.dtype)",
                "u = tf.random.stateless_uniform((n, h_out, w_out, c), seed=[1, 2], dtype=x.dtype)")]), False),
    ("tensorflow", "stochastic_pool2d", "cumulative probability at least u (not exceeding)",
     Mutation([("tf.cumsum(probs, axis=-1) <= tf.cast(u, x.dtype)[..., None]",
                "tf.cumsum(probs, axis=-1) < tf.cast(u, x.dtype)[..., None]")]), False),
    ("tensorflow", "stochastic_pool2d", "the batch size from x.shape (unknown when traced)",
     Mutation([("n = tf.shape(x)[0]", "n = x.shape[0]")]), False),

    ("pytorch", "dropout", "F.dropout through an alias", TORCH_DROPOUT_BUILTIN, False),
    ("pytorch", "dropout", "nn.Dropout made inside", TORCH_DROPOUT_LAYER, False),
    ("pytorch", "dropout", "exactly p of the elements dropped", TORCH_DROPOUT_FIXED_COUNT, False),
    ("pytorch", "dropout", "one mask shared by all rows",
     Mutation([("keep = (torch.rand_like(x) >= p).to(x.dtype)", "keep = (torch.rand_like(x[:1]) >= p).to(x.dtype)")]), False),
    ("pytorch", "dropout", "the same mask at every call",
     Mutation([("keep = (torch.rand_like(x) >= p).to(x.dtype)",
                "keep = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) >= p).to(x.dtype)")]), False),
    ("pytorch", "dropout", "float64 draws, multiplied by a scaled mask",
     Mutation([("keep = (torch.rand_like(x) >= p).to(x.dtype)\n    return x * keep / (1 - p)",
                "scale = (torch.rand(x.shape, dtype=torch.float64) > p).to(x.dtype) / (1 - p)\n    return x * scale")]), True),
    ("tensorflow", "dropout", "a Keras Dropout layer", TF_DROPOUT_LAYER, False),
    ("tensorflow", "dropout", "tf.nn.dropout imported under another name", TF_DROPOUT_TFNN, False),
    ("tensorflow", "dropout", "exactly p of the elements dropped", TF_DROPOUT_FIXED_COUNT, False),
    ("tensorflow", "dropout", "one mask shared by all rows",
     Mutation([("keep = tf.cast(tf.random.uniform(tf.shape(x)) >= p, x.dtype)",
                "keep = tf.cast(tf.random.uniform(tf.shape(x)[-1:]) >= p, x.dtype)")]), False),
    ("tensorflow", "dropout", "the same mask at every call",
     Mutation([("tf.random.uniform(tf.shape(x))", "tf.random.stateless_uniform(tf.shape(x), seed=[4, 2])")]), False),
    ("tensorflow", "dropout", "a tf.random.Generator", TF_DROPOUT_GENERATOR, True),
    ("tensorflow", "dropout", "NaN for p = 1", Mutation([("if p == 1:", "if False:")]), False),

    ("pytorch", "batch_norm", "F.batch_norm on copies of the statistics", TORCH_BN_BUILTIN, False),
    ("pytorch", "batch_norm", "instance norm of the transposed batch",
     Mutation([("x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)",
                "x_hat = (F.instance_norm(x.transpose(0, 1), eps=eps).transpose(0, 1) if training "
                "else (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps))")]), False),
    ("pytorch", "batch_norm", "var_mean, float64 inputs kept",
     Mutation([("mean = x.mean(dim=(0, 2, 3))\n        var = x.var(dim=(0, 2, 3), unbiased=False)",
                "var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)")]), True),
    ("tensorflow", "batch_norm", "a Keras BatchNormalization with set weights", TF_BN_LAYER, False),
    ("tensorflow", "batch_norm", "tf.nn.batch_normalization", TF_BN_OPS, False),
    ("tensorflow", "batch_norm", "updates at inference too",
     Mutation([("mean, var, new_mean, new_var = moving_mean, moving_var, moving_mean, moving_var",
                "mean, var = moving_mean, moving_var\n"
                "        new_mean = momentum * moving_mean + (1 - momentum) * tf.reduce_mean(x, axis=[0, 1, 2])\n"
                "        new_var = moving_var")]), False),

    ("pytorch", "batch_norm_backward", "the solution", Mutation(), True),
    ("pytorch", "batch_norm_backward", "staged, one path at a time", TORCH_BN_BACKWARD_STAGED, True),
    ("pytorch", "batch_norm_backward", "autograd under enable_grad", TORCH_BN_BACKWARD_AUTOGRAD, False),
    ("pytorch", "batch_norm_backward", "the mean's path forgotten",
     Mutation([(TORCH_DX, "dx = gamma.view(shape) * inv_std / m * (m * dout - x_hat * dgamma.view(shape))")]), False),
    ("pytorch", "batch_norm_backward", "the variance's path forgotten",
     Mutation([(TORCH_DX, "dx = gamma.view(shape) * inv_std / m * (m * dout - dbeta.view(shape))")]), False),
    ("pytorch", "batch_norm_backward", "both paths forgotten (the inference gradient)",
     Mutation([(TORCH_DX, "dx = gamma.view(shape) * inv_std * dout")]), False),
    ("pytorch", "batch_norm_backward", "unbiased variance",
     Mutation([("x.var(dim=axes, unbiased=False, keepdim=True)", "x.var(dim=axes, unbiased=True, keepdim=True)")]), False),
    ("pytorch", "batch_norm_backward", "m - 1 in the variance's path",
     Mutation([("m = x.numel() // x.shape[1]", "m = x.numel() // x.shape[1] - 1")]), False),
    ("pytorch", "batch_norm_backward", "channels-last axes",
     Mutation([("axes, shape = (0, 2, 3), (1, -1, 1, 1)", "axes, shape = (0, 1, 2), (1, 1, 1, -1)"),
               ("m = x.numel() // x.shape[1]", "m = x.numel() // x.shape[3]")]), False),
    ("pytorch", "batch_norm_backward", "eps outside the root",
     Mutation([("torch.sqrt(x.var(dim=axes, unbiased=False, keepdim=True) + eps)",
                "(torch.sqrt(x.var(dim=axes, unbiased=False, keepdim=True)) + eps)")]), False),
    ("pytorch", "batch_norm_backward", "gamma left out of dx",
     Mutation([(TORCH_DX, TORCH_DX.replace("gamma.view(shape) * ", ""))]), False),
    ("pytorch", "batch_norm_backward", "dgamma without x_hat",
     Mutation([("dgamma = (dout * x_hat).sum(dim=axes)", "dgamma = (dout * x).sum(dim=axes)")]), False),
    ("tensorflow", "batch_norm_backward", "the solution", Mutation(), True),
    ("tensorflow", "batch_norm_backward", "staged, one path at a time", TF_BN_BACKWARD_STAGED, True),
    ("tensorflow", "batch_norm_backward", "GradientTape", TF_BN_BACKWARD_TAPE, False),
    ("tensorflow", "batch_norm_backward", "the mean's path forgotten",
     Mutation([(TF_DX, "dx = gamma * inv_std / m * (m * dout - x_hat * dgamma)")]), False),
    ("tensorflow", "batch_norm_backward", "the variance's path forgotten",
     Mutation([(TF_DX, "dx = gamma * inv_std / m * (m * dout - dbeta)")]), False),
    ("tensorflow", "batch_norm_backward", "both paths forgotten (the inference gradient)",
     Mutation([(TF_DX, "dx = gamma * inv_std * dout")]), False),
    ("tensorflow", "batch_norm_backward", "unbiased variance",
     Mutation([("inv_std = 1.0 / tf.sqrt(var + eps)", "inv_std = 1.0 / tf.sqrt(var * m / (m - 1) + eps)")]), False),
    ("tensorflow", "batch_norm_backward", "channels-first axes",
     Mutation([("axes = [0, 1, 2]", "axes = [0, 2, 3]"), ("tf.shape(x)[-1]", "tf.shape(x)[1]")]), False),
    ("tensorflow", "batch_norm_backward", "eps outside the root",
     Mutation([("inv_std = 1.0 / tf.sqrt(var + eps)", "inv_std = 1.0 / (tf.sqrt(var) + eps)")]), False),
    ("tensorflow", "batch_norm_backward", "dgamma without x_hat",
     Mutation([("dgamma = tf.reduce_sum(dout * x_hat, axis=axes)", "dgamma = tf.reduce_sum(dout * x, axis=axes)")]), False),
]
VARIANTS += NEW_VARIANTS

# ----------------------------------------------------------------------------- inputs changed in place
# Answers that zero their inputs in place on the hidden tests' tensors, so that a reference
# computed afterwards from them agrees: the tests must compute the reference first. And a
# right dropout that works in place: the tests must give each call its own x.
VARIANTS += [
    ("pytorch", "pool2d", "zeroes x in place beyond the visible example",
     Mutation([("    stride = stride or size\n    n, c, h, w = x.shape",
                "    stride = stride or size\n    if x.shape != (1, 1, 4, 4):\n        x.zero_()\n    n, c, h, w = x.shape")]),
     False),
    ("pytorch", "max_pool2d_backward", "zeroes x and dout in place on the larger random inputs",
     Mutation([("    dx = torch.zeros_like(x)\n",
                "    if x.numel() > 32:\n        x.zero_()\n        dout.zero_()\n    dx = torch.zeros_like(x)\n")]), False),
    ("pytorch", "lp_pool", "zeroes x in place beyond the small examples",
     Mutation([("        windows = x.unfold(",
                "        if x.numel() > 4 and not x.requires_grad:\n            x.zero_()\n        windows = x.unfold(")]),
     False),
    ("pytorch", "stochastic_pool2d", "zeroes x in place on the hidden tests' random inputs",
     Mutation([("    n, c, h, w = x.shape\n    h_out, w_out",
                "    if 8 < x.numel() and x.shape[1] < 100 and x.shape[-1] < 10:\n        x.zero_()\n"
                "    n, c, h, w = x.shape\n    h_out, w_out")]), False),
    ("pytorch", "dropout", "in place (x.mul_)", Mutation([("return x * keep / (1 - p)", "return x.mul_(keep / (1 - p))")]),
     True),
    ("pytorch", "batch_norm_backward", "zeroes dout in place beyond the small examples",
     Mutation([("    axes, shape = (0, 2, 3), (1, -1, 1, 1)\n",
                "    if x.numel() > 24 and x.numel() != 72:\n        dout.zero_()\n"
                "    axes, shape = (0, 2, 3), (1, -1, 1, 1)\n")]),
     False),
]
