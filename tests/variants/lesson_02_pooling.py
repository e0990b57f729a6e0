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
    ("tensorflow", "max_pool2d_backward", "GradientTape of the built-in", TF_BACKWARD_GRADIENT_TAPE, True),
    ("tensorflow", "max_pool2d_backward", "every tied maximum",
     Mutation([("first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)", "first_max = is_max")]), False),
    ("tensorflow", "max_pool2d_backward", "every element",
     Mutation([("first_max = is_max * tf.cast(tf.cumsum(is_max, axis=1) == 1, x.dtype)", "first_max = tf.ones_like(is_max)")]),
     False),

    ("pytorch", "lp_pool", "the solution", Mutation(), True),
    ("pytorch", "lp_pool", "unfold", TORCH_LP_UNFOLD, True),
    ("pytorch", "lp_pool", "no root", Mutation([("return torch.where(window_sum > 0, root, torch.zeros_like(root))",
                                                  "return window_sum")]), False),
    ("pytorch", "lp_pool", "mean instead of sum", Mutation([("* self.size ** 2", "")]), False),
    ("pytorch", "lp_pool", "NaN gradient at zero windows",
     Mutation([("return torch.where(window_sum > 0, root, torch.zeros_like(root))", "return window_sum.pow(1.0 / self.p)")]),
     False),
    ("tensorflow", "lp_pool", "the solution", Mutation(), True),
    ("tensorflow", "lp_pool", "divide_no_nan-free where on a safe sum",
     Mutation([("tf.pow(tf.maximum(window_sum, 1e-30), 1.0 / self.p)",
                "tf.pow(tf.where(window_sum > 0, window_sum, tf.ones_like(window_sum)), 1.0 / self.p)")]), True),
    ("tensorflow", "lp_pool", "no root", Mutation([("return tf.where(window_sum > 0, root, tf.zeros_like(root))",
                                                     "return window_sum")]), False),
    ("tensorflow", "lp_pool", "mean instead of sum", Mutation([("* self.size ** 2", "")]), False),
    ("tensorflow", "lp_pool", "NaN gradient at zero windows",
     Mutation([("return tf.where(window_sum > 0, root, tf.zeros_like(root))", "return tf.pow(window_sum, 1.0 / self.p)")]),
     False),

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
