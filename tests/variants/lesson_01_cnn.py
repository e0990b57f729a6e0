"""Answers to lesson 01's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students make.
"""
from tests.variants import Mutation

LESSON = "01_cnn"

OUTPUT_SIZE_RIGHT = [
    ("floor division", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return (size + 2 * padding - kernel_size) // stride + 1\n"),
    ("math.floor", "import math\ndef conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return math.floor((size + 2 * padding - kernel_size) / stride) + 1\n"),
    ("int() of the true division", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return int((size + 2 * padding - kernel_size) / stride) + 1\n"),
    ("numpy floor, numpy integer", "import numpy as np\ndef conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return np.int64(np.floor((size + 2 * padding - kernel_size) / stride)) + 1\n"),
    ("counting window positions", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    count, start = 0, 0\n    while start + kernel_size <= size + 2 * padding:\n"
     "        count, start = count + 1, start + stride\n    return count\n"),
]
OUTPUT_SIZE_WRONG = [
    ("padding on one side", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return (size + padding - kernel_size) // stride + 1\n"),
    ("no floor", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return (size + 2 * padding - kernel_size) / stride + 1\n"),
    ("off by one", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return (size + 2 * padding - kernel_size) // stride\n"),
    ("ceil", "import math\ndef conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return math.ceil((size + 2 * padding - kernel_size) / stride) + 1\n"),
    ("stride ignored", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return size + 2 * padding - kernel_size + 1\n"),
    ("a float, even if whole", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return float((size + 2 * padding - kernel_size) // stride + 1)\n"),
    ("round instead of floor", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return round((size + 2 * padding - kernel_size) / stride) + 1\n"),
    ("Keras 'same' size ceil(n / s) when padded", "import math\ndef conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    if padding:\n        return math.ceil(size / stride)\n"
     "    return (size - kernel_size) // stride + 1\n"),
    ("a numpy float64", "import numpy as np\ndef conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return np.floor((size + 2 * padding - kernel_size) / stride) + 1\n"),
]

TORCH_CONV_UNFOLD = """
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, c, h, w = x.shape
    f, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)          # (N, C*kh*kw, L)
    out = weight.reshape(f, -1) @ cols                                     # (N, F, L)
    if bias is not None:
        out = out + bias.view(1, f, 1)
    h_out = (h + 2 * padding - kh) // stride + 1
    return out.reshape(n, f, h_out, -1)
"""
TORCH_CONV_PIXELS = """
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, c, h, w = x.shape
    f, _, kh, kw = weight.shape
    xp = torch.zeros(n, c, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, f, h_out, w_out, dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]   # (N, C, kh, kw)
            out[:, :, i, j] = (window.unsqueeze(1) * weight.unsqueeze(0)).sum(dim=(2, 3, 4))
    return out if bias is None else out + bias.view(1, f, 1, 1)
"""

TF_CONV_PATCHES = """
def conv2d(x, kernel, bias=None, stride=1, padding=0):
    x = tf.pad(tf.convert_to_tensor(x), [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    kh, kw, c, f = kernel.shape
    patches = tf.image.extract_patches(x, [1, kh, kw, 1], [1, stride, stride, 1], [1, 1, 1, 1], "VALID")
    # patches: (N, H_out, W_out, kh*kw*C) in (u, v, c) order, as the kernel reshaped
    out = tf.tensordot(patches, tf.reshape(kernel, (kh * kw * c, f)), axes=1)
    return out if bias is None else out + bias
"""

TORCH_BUILD_SEQUENTIAL = """
def build_cnn():
    return nn.Sequential(nn.Conv2d(1, 32, PADDING_ARG), CONV_ACT, POOL, nn.Flatten(),
                         nn.Linear(FLAT, 128), HIDDEN_ACT nn.Linear(128, 10) TAIL)
"""
TORCH_BUILD_MODULE = """
class LessonCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=(3, 3))
        self.hidden = nn.Linear(5408, 128)
        self.out = nn.Linear(128, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), kernel_size=2, stride=2)
        return self.out(F.relu(self.hidden(torch.flatten(x, 1))))

def build_cnn():
    return LessonCNN()
"""


def torch_build(padding_arg="3", pool="nn.MaxPool2d(2)", flat="5408", hidden_act="nn.ReLU(),", tail="",
                conv_act="nn.ReLU()"):
    return (TORCH_BUILD_SEQUENTIAL.replace("PADDING_ARG", padding_arg).replace("POOL", pool)
            .replace("CONV_ACT", conv_act)
            .replace("FLAT", flat).replace("HIDDEN_ACT", hidden_act).replace("TAIL", tail))


TF_BUILD = """
def build_cnn():
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu", padding=PADDING),
        POOL,
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation=HIDDEN_ACT),
        keras.layers.Dense(10, activation=OUT_ACT),
    ])
    model.compile(optimizer=OPTIMIZER, loss=LOSS, metrics=METRICS)
    return model
"""
TF_BUILD_FUNCTIONAL_LESSON_TEXT = """
def build_cnn():
    # the lesson text's style: input_shape on the first layer (deprecated in Keras 3, still correct)
    conv = keras.layers.Conv2D(filters=32, kernel_size=3, activation='relu', input_shape=(28, 28, 1))
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.MaxPooling2D()(conv(inputs))
    x = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=[keras.metrics.CategoricalAccuracy()])
    return model
"""


def tf_build(padding='"valid"', pool="keras.layers.MaxPool2D(2)", hidden_act='"relu"', out_act='"softmax"',
             optimizer='"adam"', loss='"categorical_crossentropy"', metrics='["accuracy"]'):
    return (TF_BUILD.replace("PADDING", padding).replace("POOL", pool).replace("HIDDEN_ACT", hidden_act)
            .replace("OUT_ACT", out_act).replace("OPTIMIZER", optimizer).replace("LOSS", loss)
            .replace("METRICS", metrics))


TORCH_CONV_TENSOR_UNFOLD = """
def conv2d(x, weight, bias=None, stride=1, padding=0):
    x = F.pad(x, [padding] * 4)
    windows = x.unfold(2, weight.shape[2], stride).unfold(3, weight.shape[3], stride)  # (N, C, Ho, Wo, kh, kw)
    out = torch.einsum("nchwuv,fcuv->nfhw", windows, weight)
    return out if bias is None else out + bias[None, :, None, None]
"""
TORCH_CONV_NUMPY = """
def conv2d(x, weight, bias=None, stride=1, padding=0):
    xs, ws = x.detach().numpy(), weight.detach().numpy()
    xs = np.pad(xs, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    f, c, kh, kw = ws.shape
    h_out, w_out = (xs.shape[2] - kh) // stride + 1, (xs.shape[3] - kw) // stride + 1
    out = np.zeros((xs.shape[0], f, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xs[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(window, ws, axes=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out += bias.detach().numpy()[None, :, None, None]
    return torch.from_numpy(out)
"""
TORCH_CONV_HELPERS = """
def pad_all_sides(x, p):
    return torch.cat([torch.zeros(*x.shape[:2], p, x.shape[3], dtype=x.dtype), x,
                      torch.zeros(*x.shape[:2], p, x.shape[3], dtype=x.dtype)], dim=2) if p else x

class Padder:
    def __call__(self, x, p):
        x = pad_all_sides(x, p)
        return pad_all_sides(x.transpose(2, 3), p).transpose(2, 3)

def conv2d(x, weight, bias=None, stride=1, padding=0):
    x = Padder()(x.double(), padding)
    f, c, kh, kw = weight.shape
    h_out, w_out = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = 0
    for u in range(kh):
        for v in range(kw):
            patch = x[:, :, u:u + stride * h_out:stride, v:v + stride * w_out:stride]
            out = out + (patch[:, None] * weight.double()[None, :, :, u, v, None, None]).sum(2)
    return out if bias is None else out + bias.double().view(1, -1, 1, 1)
"""
TF_CONV_NUMPY = """
def conv2d(x, kernel, bias=None, stride=1, padding=0):
    xs = np.pad(np.asarray(x, np.float64), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ks = np.asarray(kernel, np.float64)
    kh, kw, c, f = ks.shape
    h_out, w_out = (xs.shape[1] - kh) // stride + 1, (xs.shape[2] - kw) // stride + 1
    out = np.zeros((xs.shape[0], h_out, w_out, f))
    for i in range(h_out):
        for j in range(w_out):
            window = xs[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(window, ks, axes=([1, 2, 3], [0, 1, 2]))
    if bias is not None:
        out += np.asarray(bias)
    return tf.constant(out)
"""
TF_CONV_STACKED_SLICES = """
def conv2d(x, kernel, bias=None, stride=1, padding=0):
    x = tf.cast(tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]]), tf.float64)
    kernel = tf.cast(kernel, tf.float64)
    kh, kw, c, f = kernel.shape
    h_out, w_out = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    rows = []
    for i in range(h_out):
        cols = []
        for j in range(w_out):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            cols.append(tf.tensordot(window, kernel, axes=[[1, 2, 3], [0, 1, 2]]))
        rows.append(tf.stack(cols, axis=1))
    out = tf.stack(rows, axis=1)
    return out if bias is None else out + tf.cast(bias, tf.float64)
"""

TORCH_BUILD_NESTED = """
def build_cnn():
    features = nn.Sequential(nn.Conv2d(1, 32, (3, 3), stride=1, padding=0), nn.ReLU(inplace=True),
                             nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(features, classifier)
"""
TORCH_BUILD_ORDERED = """
from collections import OrderedDict
def build_cnn():
    return nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 32, 3, padding="valid")), ("relu1", nn.ReLU()),
                                      ("pool", nn.MaxPool2d(2)), ("flat", nn.Flatten()),
                                      ("fc1", nn.Linear(5408, 128)), ("relu2", nn.ReLU()), ("fc2", nn.Linear(128, 10))]))
"""
TORCH_BUILD_CHANNELS_LAST = """
class ChannelsLastCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.fc1, self.fc2 = nn.Linear(5408, 128), nn.Linear(128, 10)
    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)   # flattened in Keras' (H, W, C) order
        return self.fc2(torch.relu(self.fc1(x)))
def build_cnn():
    return ChannelsLastCNN()
"""
TORCH_BUILD_CLAMPED = """
class ClampedCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc1, self.fc2 = nn.Conv2d(1, 32, 3), nn.Linear(5408, 128), nn.Linear(128, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x.clamp(-3, 3))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))
def build_cnn():
    return ClampedCNN()
"""
TORCH_BUILD_LOGITS_CLAMPED = TORCH_BUILD_CLAMPED.replace(
    "x = F.max_pool2d(F.relu(self.conv(x.clamp(-3, 3))), 2)\n        return self.fc2(F.relu(self.fc1(x.flatten(1))))",
    "x = F.max_pool2d(F.relu(self.conv(x)), 2)\n        return self.fc2(F.relu(self.fc1(x.flatten(1)))).clamp(-100, 100)")
TORCH_BUILD_LOG_SOFTMAX = TORCH_BUILD_MODULE.replace(
    "return self.out(F.relu(self.hidden(torch.flatten(x, 1))))",
    "return F.log_softmax(self.out(F.relu(self.hidden(torch.flatten(x, 1)))), dim=1)")

TF_BUILD_SUBCLASS = """
class LessonCNN(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(32, (3, 3), activation="relu")
        self.pool = keras.layers.MaxPooling2D(pool_size=2)
        self.flat = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(128, activation="relu")
        self.head = keras.layers.Dense(10, activation="softmax")
    def call(self, x):
        return self.head(self.hidden(self.flat(self.pool(self.conv(x)))))

def build_cnn():
    model = LessonCNN()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-4), loss="CategoricalCrossentropy",
                  metrics=["acc"])
    return model
"""
TF_BUILD_NESTED = """
def build_cnn():
    features = keras.Sequential([keras.layers.Conv2D(32, 3), keras.layers.ReLU(), keras.layers.MaxPool2D()])
    head = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(128), keras.layers.Activation("relu"),
                             keras.layers.Dense(10), keras.layers.Softmax()])
    model = keras.Sequential([keras.Input((28, 28, 1)), features, head])
    model.compile(optimizer=tf.keras.optimizers.Adam(), loss=keras.losses.categorical_crossentropy,
                  metrics=[keras.metrics.CategoricalAccuracy()])
    return model
"""
TF_BUILD_CHANNELS_FIRST_FLATTEN = """
def build_cnn():
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPool2D(2),
        keras.layers.Permute((3, 1, 2)),   # flattened in PyTorch's (C, H, W) order
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    return model
"""
TF_BUILD_NOT_COMPILED = """
def build_cnn():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                             keras.layers.MaxPool2D(2), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])
"""
TF_BUILD_ADAM_SUBCLASS = TF_BUILD_NOT_COMPILED.replace("def build_cnn():\n    return keras.Sequential(",
                                                       "class MyAdam(keras.optimizers.Adam):\n    pass\n"
                                                       "def build_cnn():\n    model = keras.Sequential(") + (
    "    model.compile(optimizer=MyAdam(), loss='categorical_crossentropy', metrics=['accuracy'])\n    return model\n")

# An answer that zeroes the weights when called, so that a reference computed afterwards from
# them agrees; and one whose zero-initialised last layer hides a wrong activation unless the
# tests draw random weights first.
TORCH_BUILD_ZEROES_WEIGHTS = """
class ZeroingCNN(nn.Sequential):
    def forward(self, x):
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
        return super().forward(x)
def build_cnn():
    return ZeroingCNN(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5408, 128), nn.ReLU(),
                      nn.Linear(128, 10))
"""
TORCH_BUILD_ZERO_LAST_LAYER = """
def build_cnn():
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5408, 128), nn.Tanh(),
                          nn.Linear(128, 10))
    nn.init.zeros_(model[-1].weight)
    nn.init.zeros_(model[-1].bias)
    return model
"""
TF_BUILD_ZEROES_WEIGHTS = """
class _ZeroingConv2D(keras.layers.Conv2D):
    def call(self, inputs):
        for w in self.weights:
            w.assign(keras.ops.zeros(w.shape, w.dtype))
        return super().call(inputs)
class _ZeroingDense(keras.layers.Dense):
    def call(self, inputs, training=None):
        for w in self.weights:
            w.assign(keras.ops.zeros(w.shape, w.dtype))
        return super().call(inputs, training=training)
def build_cnn():
    model = keras.Sequential([keras.Input((28, 28, 1)), _ZeroingConv2D(32, 3, activation="relu"), keras.layers.MaxPool2D(2),
                              keras.layers.Flatten(), _ZeroingDense(128, activation="relu"),
                              _ZeroingDense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
"""
IN_PLACE = [
    ("pytorch", "build_cnn", "the model zeroes its weights when called", TORCH_BUILD_ZEROES_WEIGHTS, False),
    ("pytorch", "build_cnn", "tanh hidden by a zero-initialised last layer", TORCH_BUILD_ZERO_LAST_LAYER, False),
    ("tensorflow", "build_cnn", "the layers zero their weights when called", TF_BUILD_ZEROES_WEIGHTS, False),
]


VARIANTS = [
    *IN_PLACE,
    *[("pytorch", "conv_output_size", name, src, True) for name, src in OUTPUT_SIZE_RIGHT],
    *[("pytorch", "conv_output_size", name, src, False) for name, src in OUTPUT_SIZE_WRONG],
    *[("tensorflow", "conv_output_size", name, src, True) for name, src in OUTPUT_SIZE_RIGHT],
    *[("tensorflow", "conv_output_size", name, src, False) for name, src in OUTPUT_SIZE_WRONG],

    ("pytorch", "conv2d", "the solution", Mutation(), True),
    ("pytorch", "conv2d", "unfold (im2col)", TORCH_CONV_UNFOLD, True),
    ("pytorch", "conv2d", "loop over pixels", TORCH_CONV_PIXELS, True),
    ("pytorch", "conv2d", "flipped kernel", Mutation([("weight[:, :, u, v]", "weight.flip((2, 3))[:, :, u, v]")]), False),
    ("pytorch", "conv2d", "padding ignored", Mutation([("x = F.pad(x, (padding, padding, padding, padding))", "pass")]), False),
    ("pytorch", "conv2d", "stride ignored", Mutation([("u:u + stride * h_out:stride", "u:u + h_out"),
                                                      ("v:v + stride * w_out:stride", "v:v + w_out"),
                                                      ("// stride + 1", "+ 1")]), False),
    ("pytorch", "conv2d", "bias ignored", Mutation([("if bias is not None:", "if False:")]), False),
    ("pytorch", "conv2d", "calls F.conv2d", "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    return F.conv2d(x, weight, bias, stride=stride, padding=padding)\n", False),
    ("pytorch", "conv2d", "true convolution via F.conv2d", "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    return torch.nn.functional.conv2d(x, weight.flip((2, 3)), bias, stride=stride, padding=padding)\n", False),
    ("pytorch", "conv2d", "Tensor.unfold windows and einsum", TORCH_CONV_TENSOR_UNFOLD, True),
    ("pytorch", "conv2d", "numpy loops, float64 tensor back", TORCH_CONV_NUMPY, True),
    ("pytorch", "conv2d", "own padding helper and class, float64", TORCH_CONV_HELPERS, True),
    ("pytorch", "conv2d", "module-level alias of F.conv2d", "correlate = F.conv2d\n"
     "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    return correlate(x, weight, bias, stride=stride, padding=padding)\n", False),
    ("pytorch", "conv2d", "F.conv2d imported under another name", "from torch.nn.functional import conv2d as xcorr\n"
     "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    return xcorr(x, weight, bias, stride, padding)\n", False),
    ("pytorch", "conv2d", "nn.Conv2d layer with the weights copied", "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    layer = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=stride, padding=padding,\n"
     "                      bias=bias is not None)\n"
     "    with torch.no_grad():\n        layer.weight.copy_(weight)\n"
     "        if bias is not None:\n            layer.bias.copy_(bias)\n        return layer(x)\n", False),
    ("pytorch", "conv2d", "torch.convolution", "def conv2d(x, weight, bias=None, stride=1, padding=0):\n"
     "    return torch.convolution(x, weight, bias, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1)\n", False),
    ("pytorch", "conv2d", "the built-in behind a helper", "def _slide(x, w, b, s, p):\n"
     "    return torch.ops.aten.conv2d(x, w, b, [s, s], [p, p])\n"
     "def conv2d(x, weight, bias=None, stride=1, padding=0):\n    return _slide(x, weight, bias, stride, padding)\n", False),
    ("pytorch", "conv2d", "padding on one side only",
     Mutation([("x = F.pad(x, (padding, padding, padding, padding))", "x = F.pad(x, (0, 2 * padding, 0, 2 * padding))")]),
     False),
    ("pytorch", "conv2d", "only the first input channel",
     Mutation([("patch, weight[:, :, u, v]", "patch[:, :1], weight[:, :1, u, v]")]), False),
    ("pytorch", "conv2d", "W_out from H",
     Mutation([("w_out = (w + 2 * padding - kw) // stride + 1", "w_out = (h + 2 * padding - kw) // stride + 1")]), False),
    ("tensorflow", "conv2d", "the solution", Mutation(), True),
    ("tensorflow", "conv2d", "extract_patches", TF_CONV_PATCHES, True),
    ("tensorflow", "conv2d", "kernel transposed per offset",
     Mutation([('"nhwc,cf->nhwf", patch, kernel[u, v]', '"nhwc,fc->nhwf", patch, tf.transpose(kernel[u, v])')]), True),
    ("tensorflow", "conv2d", "flipped kernel", Mutation([("kernel[u, v]", "kernel[::-1, ::-1][u, v]")]), False),
    ("tensorflow", "conv2d", "padding ignored",
     Mutation([("x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])", "pass")]), False),
    ("tensorflow", "conv2d", "bias ignored", Mutation([("if bias is not None:", "if False:")]), False),
    ("tensorflow", "conv2d", "calls tf.nn.conv2d", "def conv2d(x, kernel, bias=None, stride=1, padding=0):\n"
     "    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])\n"
     "    out = tf.nn.conv2d(x, kernel, stride, 'VALID')\n"
     "    return out if bias is None else out + bias\n", False),
    ("tensorflow", "conv2d", "numpy loops, float64 tensor back", TF_CONV_NUMPY, True),
    ("tensorflow", "conv2d", "stacked windows in float64", TF_CONV_STACKED_SLICES, True),
    ("tensorflow", "conv2d", "module-level alias of tf.nn.conv2d", "correlate = tf.nn.conv2d\n"
     "def conv2d(x, kernel, bias=None, stride=1, padding=0):\n"
     "    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])\n"
     "    out = correlate(x, kernel, stride, 'VALID')\n"
     "    return out if bias is None else out + bias\n", False),
    ("tensorflow", "conv2d", "keras.ops.conv imported under another name", "from keras.ops import conv as xcorr\n"
     "def conv2d(x, kernel, bias=None, stride=1, padding=0):\n"
     "    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])\n"
     "    out = xcorr(x, kernel, strides=stride)\n"
     "    return out if bias is None else out + bias\n", False),
    ("tensorflow", "conv2d", "Conv2D layer with set weights", "def conv2d(x, kernel, bias=None, stride=1, padding=0):\n"
     "    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])\n"
     "    layer = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], strides=stride, use_bias=bias is not None)\n"
     "    layer.build(x.shape)\n"
     "    layer.set_weights([np.asarray(kernel)] + ([np.asarray(bias)] if bias is not None else []))\n"
     "    return layer(x)\n", False),
    ("tensorflow", "conv2d", "tf.nn.convolution behind a helper", "def _slide(x, k, s):\n"
     "    return tf.nn.convolution(x, k, strides=s, padding='VALID')\n"
     "def conv2d(x, kernel, bias=None, stride=1, padding=0):\n"
     "    out = _slide(tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]]), kernel, stride)\n"
     "    return out if bias is None else out + bias\n", False),
    ("tensorflow", "conv2d", "padding on one side only",
     Mutation([("x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])",
                "x = tf.pad(x, [[0, 0], [0, 2 * padding], [0, 2 * padding], [0, 0]])")]), False),
    ("tensorflow", "conv2d", "stride ignored", Mutation([("u:u + stride * h_out:stride", "u:u + h_out"),
                                                         ("v:v + stride * w_out:stride", "v:v + w_out"),
                                                         ("// stride + 1", "+ 1")]), False),
    ("tensorflow", "conv2d", "only the first input channel",
     Mutation([("patch, kernel[u, v]", "patch[..., :1], kernel[u, v, :1]")]), False),
    ("tensorflow", "conv2d", "W_out from H",
     Mutation([("w_out = (w + 2 * padding - kw) // stride + 1", "w_out = (h + 2 * padding - kw) // stride + 1")]), False),

    ("pytorch", "build_cnn", "Sequential", torch_build(), True),
    ("pytorch", "build_cnn", "Module subclass with F.relu", TORCH_BUILD_MODULE, True),
    ("pytorch", "build_cnn", "padding 1", torch_build(padding_arg="3, padding=1", flat="6272"), False),
    ("pytorch", "build_cnn", "softmax at the end", torch_build(tail=", nn.Softmax(dim=1)"), False),
    ("pytorch", "build_cnn", "no ReLU after the hidden layer", torch_build(hidden_act=""), False),
    ("pytorch", "build_cnn", "average pooling", torch_build(pool="nn.AvgPool2d(2)"), False),
    ("pytorch", "build_cnn", "nested Sequentials, tuple sizes, inplace ReLU", TORCH_BUILD_NESTED, True),
    ("pytorch", "build_cnn", "named layers in an OrderedDict", TORCH_BUILD_ORDERED, True),
    ("pytorch", "build_cnn", "flattened in channels-last order", TORCH_BUILD_CHANNELS_LAST, True),
    ("pytorch", "build_cnn", "dropout after the hidden layer", torch_build(hidden_act="nn.ReLU(), nn.Dropout(0.5),"), False),
    ("pytorch", "build_cnn", "Dropout2d after the pooling", torch_build(pool="nn.MaxPool2d(2), nn.Dropout2d(0.25)"), False),
    ("pytorch", "build_cnn", "ReLU6 after the hidden layer", torch_build(hidden_act="nn.ReLU6(),"), False),
    ("pytorch", "build_cnn", "LeakyReLU after the convolution", torch_build(conv_act="nn.LeakyReLU(0.01)"), False),
    ("pytorch", "build_cnn", "Hardtanh(0, 20) as the conv's ReLU", torch_build(conv_act="nn.Hardtanh(0.0, 20.0)"), False),
    ("pytorch", "build_cnn", "inputs clamped in forward", TORCH_BUILD_CLAMPED, False),
    ("pytorch", "build_cnn", "logits clamped to [-100, 100] (\"for stability\")", TORCH_BUILD_LOGITS_CLAMPED, False),
    ("pytorch", "build_cnn", "log-softmax in forward", TORCH_BUILD_LOG_SOFTMAX, False),
    ("tensorflow", "build_cnn", "Sequential", tf_build(), True),
    ("tensorflow", "build_cnn", "functional, lesson-text style, loss and metric objects", TF_BUILD_FUNCTIONAL_LESSON_TEXT, True),
    ("tensorflow", "build_cnn", "same padding", tf_build(padding='"same"'), False),
    ("tensorflow", "build_cnn", "no softmax", tf_build(out_act="None"), False),
    ("tensorflow", "build_cnn", "average pooling", tf_build(pool="keras.layers.AveragePooling2D(2)"), False),
    ("tensorflow", "build_cnn", "sparse loss", tf_build(loss='"sparse_categorical_crossentropy"'), False),
    ("tensorflow", "build_cnn", "SGD", tf_build(optimizer='"sgd"'), False),
    ("tensorflow", "build_cnn", "no metrics", tf_build(metrics="[]"), False),
    ("tensorflow", "build_cnn", "subclassed model, Adam(3e-4), 'CategoricalCrossentropy', 'acc'", TF_BUILD_SUBCLASS, True),
    ("tensorflow", "build_cnn", "nested models, separate activation layers, loss function", TF_BUILD_NESTED, True),
    ("tensorflow", "build_cnn", "flattened in channels-first order", TF_BUILD_CHANNELS_FIRST_FLATTEN, True),
    ("tensorflow", "build_cnn", "loss object, categorical_accuracy string",
     tf_build(loss="keras.losses.CategoricalCrossentropy()", metrics='["categorical_accuracy"]'), True),
    ("tensorflow", "build_cnn", "not compiled", TF_BUILD_NOT_COMPILED, False),
    ("tensorflow", "build_cnn", "AdamW (a subclass of Adam)", tf_build(optimizer="keras.optimizers.AdamW()"), False),
    ("tensorflow", "build_cnn", "own subclass of Adam", TF_BUILD_ADAM_SUBCLASS, False),
    ("tensorflow", "build_cnn", "RMSprop", tf_build(optimizer='"rmsprop"'), False),
    ("tensorflow", "build_cnn", "loss from logits",
     tf_build(loss="keras.losses.CategoricalCrossentropy(from_logits=True)"), False),
    ("tensorflow", "build_cnn", "label smoothing", tf_build(loss="keras.losses.CategoricalCrossentropy(label_smoothing=0.1)"),
     False),
    ("tensorflow", "build_cnn", "KL divergence", tf_build(loss='"kl_divergence"'), False),
    ("tensorflow", "build_cnn", "summed, not averaged", tf_build(loss='keras.losses.CategoricalCrossentropy(reduction="sum")'),
     False),
    ("tensorflow", "build_cnn", "keras.metrics.Accuracy()", tf_build(metrics="[keras.metrics.Accuracy()]"), False),
    ("tensorflow", "build_cnn", "top-5 accuracy", tf_build(metrics='["top_k_categorical_accuracy"]'), False),
    ("tensorflow", "build_cnn", "sparse accuracy", tf_build(metrics='["sparse_categorical_accuracy"]'), False),
    ("tensorflow", "build_cnn", "binary accuracy", tf_build(metrics='["binary_accuracy"]'), False),
    ("tensorflow", "build_cnn", "AUC", tf_build(metrics='["AUC"]'), False),
    ("tensorflow", "build_cnn", "dropout after the pooling",
     tf_build(pool="keras.layers.MaxPool2D(2), keras.layers.Dropout(0.25)"), False),
    ("tensorflow", "build_cnn", "Gaussian noise on the input",
     tf_build(pool="keras.layers.MaxPool2D(2), keras.layers.GaussianNoise(0.5)"), False),
    ("tensorflow", "build_cnn", "relu6 in the hidden layer", tf_build(hidden_act='"relu6"'), False),
    ("tensorflow", "build_cnn", "L2 regularizer", tf_build(hidden_act='"relu", kernel_regularizer="l2"'), False),

    ("pytorch", "predict_classes", "eval and argmax", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n        return model(images).argmax(1).numpy()\n", True),
    ("pytorch", "predict_classes", "softmax then argmax, to numpy", "def predict_classes(model, images):\n"
     "    model.train(False)\n    return torch.softmax(model(images), dim=-1).detach().argmax(-1).cpu().numpy()\n", True),
    ("pytorch", "predict_classes", "torch.max indices as int32", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.inference_mode():\n"
     "        return torch.max(model(images), 1).indices.numpy().astype(np.int32)\n", True),
    ("pytorch", "predict_classes", "one image at a time", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n"
     "        return np.array([int(model(image[None]).argmax()) for image in images], dtype=int)\n", True),
    ("pytorch", "predict_classes", "a tensor, not a numpy array", "def predict_classes(model, images):\n"
     "    model.train(False)\n    return torch.softmax(model(images), dim=-1).detach().argmax(-1)\n", False),
    ("pytorch", "predict_classes", "floats", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n        return model(images).argmax(1).numpy().astype(np.float32)\n", False),
    ("pytorch", "predict_classes", "a list", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n        return model(images).argmax(1).tolist()\n", False),
    ("pytorch", "predict_classes", "squeezed: a scalar for one image", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n        return model(images).squeeze().argmax(-1).numpy()\n", False),
    ("pytorch", "predict_classes", "argmax over the batch", "def predict_classes(model, images):\n"
     "    model.eval()\n    return model(images).argmax(0).detach().numpy()\n", False),
    ("pytorch", "predict_classes", "training mode", "def predict_classes(model, images):\n"
     "    return model(images).argmax(1).detach().numpy()\n", False),
    ("pytorch", "predict_classes", "returns the top score", "def predict_classes(model, images):\n"
     "    model.eval()\n    return model(images).max(1).values.detach().numpy()\n", False),
    ("tensorflow", "predict_classes", "call and argmax", "def predict_classes(model, images):\n"
     "    return np.argmax(model(images, training=False), axis=1)\n", True),
    ("tensorflow", "predict_classes", "model.predict", "def predict_classes(model, images):\n"
     "    return model.predict(images, verbose=0).argmax(axis=-1)\n", True),
    ("tensorflow", "predict_classes", "argmax over the batch", "def predict_classes(model, images):\n"
     "    return np.argmax(model(images, training=False), axis=0)\n", False),
    ("tensorflow", "predict_classes", "training mode", "def predict_classes(model, images):\n"
     "    return np.argmax(model(images, training=True), axis=1)\n", False),
    ("tensorflow", "predict_classes", "images rescaled by 1/255 first (they are already floats)",
     "def predict_classes(model, images):\n    return np.argmax(model(images / 255.0, training=False), axis=1)\n", False),
    ("tensorflow", "predict_classes", "tf.argmax to numpy int32", "def predict_classes(model, images):\n"
     "    return tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32).numpy()\n", True),
    ("tensorflow", "predict_classes", "one image at a time", "def predict_classes(model, images):\n"
     "    return np.array([int(np.argmax(model(images[i:i + 1], training=False))) for i in range(len(images))])\n", True),
    ("tensorflow", "predict_classes", "a tf.Tensor, not a numpy array", "def predict_classes(model, images):\n"
     "    return tf.argmax(model(images, training=False), axis=1)\n", False),
    ("tensorflow", "predict_classes", "floats", "def predict_classes(model, images):\n"
     "    return np.argmax(model(images, training=False), axis=1).astype(float)\n", False),
    ("tensorflow", "predict_classes", "squeezed: a scalar for one image", "def predict_classes(model, images):\n"
     "    return np.argmax(np.squeeze(model(images, training=False)), axis=-1)\n", False),

    ("pytorch", "first_conv_feature_maps", "hook helper and ReLU", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))\n"
     "    return F.relu(torch.as_tensor(cu.feature_maps(model, conv, images)))\n", True),
    ("pytorch", "first_conv_feature_maps", "a hand-written forward hook", "def first_conv_feature_maps(model, images):\n"
     "    conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][0]\n    seen = {}\n"
     "    handle = conv.register_forward_hook(lambda mod, inp, out: seen.setdefault('maps', out))\n"
     "    model.eval()\n    with torch.no_grad():\n        model(images)\n    handle.remove()\n"
     "    return seen['maps'].clamp(min=0)\n", True),
    ("pytorch", "first_conv_feature_maps", "the layer on the raw input", "def first_conv_feature_maps(model, images):\n"
     "    conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][0]\n"
     "    with torch.no_grad():\n        return torch.relu(conv(images)).numpy()\n", False),
    ("pytorch", "first_conv_feature_maps", "the last convolution", "def first_conv_feature_maps(model, images):\n"
     "    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]\n"
     "    return F.relu(torch.as_tensor(cu.feature_maps(model, conv, images)))\n", False),
    ("pytorch", "first_conv_feature_maps", "before the ReLU", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))\n"
     "    return cu.feature_maps(model, conv, images)\n", False),
    ("pytorch", "first_conv_feature_maps", "assumes a Sequential", "def first_conv_feature_maps(model, images):\n"
     "    with torch.no_grad():\n        return model[1](model[0](images))\n", False),
    ("pytorch", "first_conv_feature_maps", "after pooling", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))\n"
     "    with torch.no_grad():\n        return F.max_pool2d(F.relu(conv(images)), 2)\n", False),
    ("tensorflow", "first_conv_feature_maps", "feature_maps helper", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))\n"
     "    return cu.feature_maps(model, conv, images)\n", True),
    ("tensorflow", "first_conv_feature_maps", "a probe model", "def first_conv_feature_maps(model, images):\n"
     "    conv = [l for l in model.layers if 'conv' in type(l).__name__.lower()][0]\n"
     "    return keras.Model(model.inputs[0], conv.output)(images)\n", True),
    ("tensorflow", "first_conv_feature_maps", "ReLU applied again (a no-op)", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))\n"
     "    return tf.nn.relu(cu.feature_maps(model, conv, images))\n", True),
    ("tensorflow", "first_conv_feature_maps", "the last convolution", "def first_conv_feature_maps(model, images):\n"
     "    conv = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)][-1]\n"
     "    return cu.feature_maps(model, conv, images)\n", False),
    ("tensorflow", "first_conv_feature_maps", "assumes layers[0]", "def first_conv_feature_maps(model, images):\n"
     "    return cu.feature_maps(model, model.layers[0], images)\n", False),
    ("tensorflow", "first_conv_feature_maps", "the layer on the raw input", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))\n"
     "    return conv(images)\n", False),
    ("tensorflow", "first_conv_feature_maps", "after pooling", "def first_conv_feature_maps(model, images):\n"
     "    pool = next(l for l in model.layers if isinstance(l, keras.layers.MaxPool2D))\n"
     "    return cu.feature_maps(model, pool, images)\n", False),
]

# Models the grader makes again from the kernel's description (course_utils.instructor.judge.keras_models):
# Keras' own layers from their configuration, the answer's own classes and functions run in the kernel.
TF_BUILD_OWN_LAYER_CLASSES = TF_BUILD_ZEROES_WEIGHTS.replace(
    "        for w in self.weights:\n            w.assign(keras.ops.zeros(w.shape, w.dtype))\n", "")
TF_BUILD_LEAKY_NAMED_RELU = """
def relu(x):  # named relu, and leaky: Keras writes it as "relu" in the model's configuration
    return tf.nn.leaky_relu(x, 0.2)
""" + tf_build(hidden_act="relu")
TF_BUILD_SUBCLASS_ADDS_A_LOSS = TF_BUILD_SUBCLASS.replace(
    "    def call(self, x):\n",
    "    def call(self, x):\n        self.add_loss(1e-3 * tf.reduce_sum(tf.square(self.hidden.kernel)))\n")
VARIANTS += [
    ("tensorflow", "build_cnn", "own subclasses of Conv2D and Dense, unchanged", TF_BUILD_OWN_LAYER_CLASSES, True),
    ("tensorflow", "build_cnn", "TensorFlow's functions as activations",
     tf_build(hidden_act="tf.nn.relu", out_act="tf.nn.softmax"), True),
    ("tensorflow", "build_cnn", "a leaky function of its own named relu", TF_BUILD_LEAKY_NAMED_RELU, False),
    ("tensorflow", "build_cnn", "a subclassed model whose call adds a weight penalty", TF_BUILD_SUBCLASS_ADDS_A_LOSS,
     False),
    ("tensorflow", "build_cnn", "a call of its own set on the hidden Dense layer", tf_build().replace(
        "    return model", "    model.layers[-2].call = lambda x, **kwargs: tf.tanh(x @ model.layers[-2].kernel) * 100\n"
        "    return model"), False),
    ("tensorflow", "build_cnn", "Adam with a decaying learning rate",
     tf_build(optimizer="keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 10_000, 0.9))"), True),
]
