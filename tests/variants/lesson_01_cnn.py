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
    ("float but whole", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
     "    return float((size + 2 * padding - kernel_size) // stride + 1)\n"),
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
    return nn.Sequential(nn.Conv2d(1, 32, PADDING_ARG), nn.ReLU(), POOL, nn.Flatten(),
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


def torch_build(padding_arg="3", pool="nn.MaxPool2d(2)", flat="5408", hidden_act="nn.ReLU(),", tail=""):
    return (TORCH_BUILD_SEQUENTIAL.replace("PADDING_ARG", padding_arg).replace("POOL", pool)
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


VARIANTS = [
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

    ("pytorch", "build_cnn", "Sequential", torch_build(), True),
    ("pytorch", "build_cnn", "Module subclass with F.relu", TORCH_BUILD_MODULE, True),
    ("pytorch", "build_cnn", "padding 1", torch_build(padding_arg="3, padding=1", flat="6272"), False),
    ("pytorch", "build_cnn", "softmax at the end", torch_build(tail=", nn.Softmax(dim=1)"), False),
    ("pytorch", "build_cnn", "no ReLU after the hidden layer", torch_build(hidden_act=""), False),
    ("pytorch", "build_cnn", "average pooling", torch_build(pool="nn.AvgPool2d(2)"), False),
    ("tensorflow", "build_cnn", "Sequential", tf_build(), True),
    ("tensorflow", "build_cnn", "functional, lesson-text style, loss and metric objects", TF_BUILD_FUNCTIONAL_LESSON_TEXT, True),
    ("tensorflow", "build_cnn", "same padding", tf_build(padding='"same"'), False),
    ("tensorflow", "build_cnn", "no softmax", tf_build(out_act="None"), False),
    ("tensorflow", "build_cnn", "average pooling", tf_build(pool="keras.layers.AveragePooling2D(2)"), False),
    ("tensorflow", "build_cnn", "sparse loss", tf_build(loss='"sparse_categorical_crossentropy"'), False),
    ("tensorflow", "build_cnn", "SGD", tf_build(optimizer='"sgd"'), False),
    ("tensorflow", "build_cnn", "no metrics", tf_build(metrics="[]"), False),

    ("pytorch", "predict_classes", "eval and argmax", "def predict_classes(model, images):\n"
     "    model.eval()\n    with torch.no_grad():\n        return model(images).argmax(1).numpy()\n", True),
    ("pytorch", "predict_classes", "softmax then argmax, as a tensor", "def predict_classes(model, images):\n"
     "    model.train(False)\n    return torch.softmax(model(images), dim=-1).detach().argmax(-1)\n", True),
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

    ("pytorch", "first_conv_feature_maps", "hook helper and ReLU", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))\n"
     "    return F.relu(torch.as_tensor(cu.feature_maps(model, conv, images)))\n", True),
    ("pytorch", "first_conv_feature_maps", "call the layer", "def first_conv_feature_maps(model, images):\n"
     "    conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][0]\n"
     "    with torch.no_grad():\n        return torch.relu(conv(images)).numpy()\n", True),
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
    ("tensorflow", "first_conv_feature_maps", "assumes layers[0]", "def first_conv_feature_maps(model, images):\n"
     "    return cu.feature_maps(model, model.layers[0], images)\n", False),
    ("tensorflow", "first_conv_feature_maps", "the layer on the raw input", "def first_conv_feature_maps(model, images):\n"
     "    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))\n"
     "    return conv(images)\n", False),
    ("tensorflow", "first_conv_feature_maps", "after pooling", "def first_conv_feature_maps(model, images):\n"
     "    pool = next(l for l in model.layers if isinstance(l, keras.layers.MaxPool2D))\n"
     "    return cu.feature_maps(model, pool, images)\n", False),
]
