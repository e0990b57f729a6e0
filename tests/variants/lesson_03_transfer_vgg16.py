"""Answers to lesson 03's exercises, right and wrong, that its tests must tell apart.

See ``tests/variants/__init__.py`` for the format. Wrong answers are the mistakes students make:
softmax before a logits loss, a head that ignores ``num_classes``, freezing only some layers,
buffers counted as parameters, RGB left in place of BGR, means subtracted on the wrong scale,
features computed in training mode or with gradients, an optimizer built before unfreezing
(or before freezing), a Keras model not compiled again after ``trainable`` changed.
"""
from tests.variants import Mutation

LESSON = "03_transfer_vgg16"

# ----------------------------------------------------------------------------- PyTorch

TORCH_HEAD = """
def build_head(feature_shape, num_classes=10):
    c, h, w = feature_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 256), ACT
                         nn.Linear(256, CLASSES) TAIL)
"""


def torch_head(hidden="1024", act="nn.ReLU(),", classes="num_classes", tail=""):
    return (TORCH_HEAD.replace("HIDDEN", hidden).replace("ACT", act).replace("CLASSES", classes)
            .replace("TAIL", tail))


TORCH_HEAD_MODULE = """
import math
class Head(nn.Module):
    def __init__(self, feature_shape, num_classes):
        super().__init__()
        self.fc1 = nn.Linear(math.prod(feature_shape), 1024)
        self.fc2 = nn.Linear(1024, 256)
        self.out = nn.Linear(256, num_classes)
    def forward(self, x):
        x = torch.flatten(x, start_dim=1)
        return self.out(torch.relu(self.fc2(F.relu(self.fc1(x)))))

def build_head(feature_shape, num_classes=10):
    return Head(feature_shape, num_classes)
"""

TORCH_PREPROCESS_INDEX = """
def vgg_preprocess(images, mode="caffe"):
    if mode == "caffe":
        bgr = images[:, [2, 1, 0]]
        return bgr - torch.tensor([103.939, 116.779, 123.68]).reshape(1, 3, 1, 1)
    elif mode == "torch":
        channels = [(images[:, i] / 255.0 - m) / s for i, (m, s) in
                    enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))]
        return torch.stack(channels, dim=1)
    raise ValueError("unknown mode " + str(mode))
"""
TORCH_PREPROCESS_NUMPY = """
def vgg_preprocess(images, mode="caffe"):
    x = images.numpy().astype(np.float64)
    if mode == "caffe":
        out = x[:, ::-1] - np.array([103.939, 116.779, 123.68])[None, :, None, None]
    elif mode == "torch":
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        out = (x / 255 - mean[None, :, None, None]) / std[None, :, None, None]
    else:
        raise ValueError(mode)
    return torch.from_numpy(out.astype(np.float32))
"""
TORCH_PREPROCESS_NORMALIZE = """
import torchvision.transforms as T
def vgg_preprocess(images, mode="caffe"):
    if mode == "caffe":
        return images.flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    if mode == "torch":
        return T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(images / 255)
    raise ValueError(mode)
"""
TORCH_PREPROCESS_IN_PLACE = """
def vgg_preprocess(images, mode="caffe"):
    if mode == "caffe":
        out = images.flip(1)
        out -= torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
        return out
    if mode == "torch":
        images /= 255
        images -= torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        images /= torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return images
    raise ValueError(mode)
"""

TORCH_EXTRACT_INFERENCE = """
def extract_features(base, images, batch_size=256):
    was_training = base.training
    base.train(False)
    with torch.inference_mode():
        parts = [base(chunk).reshape(len(chunk), -1) for chunk in torch.split(images, batch_size)]
    base.train(was_training)
    return torch.cat(parts).cpu().numpy()
"""
TORCH_EXTRACT_DETACH = """
def extract_features(base, images, batch_size=256):
    base.eval()
    parts = [base(images[i:i + batch_size]).flatten(1).detach() for i in range(0, len(images), batch_size)]
    return torch.cat(parts).numpy()
"""
TORCH_EXTRACT_TRAIN_MODE = """
def extract_features(base, images, batch_size=256):
    with torch.no_grad():
        parts = [base(images[i:i + batch_size]).flatten(1) for i in range(0, len(images), batch_size)]
    return torch.cat(parts).numpy()
"""
TORCH_EXTRACT_ONE_BATCH = """
def extract_features(base, images, batch_size=256):
    base.eval()
    with torch.no_grad():
        return base(images).flatten(1).numpy()
"""

TORCH_FINE_TUNE_FILTER = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    base.get_submodule(block).requires_grad_(True)
    return torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=lr)
"""
TORCH_FINE_TUNE_NAMES = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    for name, p in base.named_parameters():
        if name.split(".")[0] == block:
            p.requires_grad = True
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params=trainable, lr=lr)
"""
TORCH_FINE_TUNE_TOO_EARLY = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for p in base.get_submodule(block).parameters():
        p.requires_grad = True
    return optimizer
"""
TORCH_FINE_TUNE_ALL_PARAMS = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    for p in base.get_submodule(block).parameters():
        p.requires_grad = True
    return torch.optim.Adam(model.parameters(), lr=lr)
"""
TORCH_FINE_TUNE_WHOLE_MODEL_FIRST = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    model.requires_grad_(True)
    for name, child in base.named_children():
        child.requires_grad_(name == block)
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
"""
TORCH_FINE_TUNE_WHOLE_BASE = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    base.requires_grad_(True)
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
"""

# ----------------------------------------------------------------------------- TensorFlow

TF_HEAD = """
def build_head(feature_shape, num_classes=10):
    return keras.Sequential([
        keras.Input(feature_shape),
        FLATTEN,
        keras.layers.Dense(HIDDEN, activation="relu"),
        keras.layers.Dense(256, activation=ACT),
        keras.layers.Dense(CLASSES, activation=OUT),
    ])
"""


def tf_head(flatten="keras.layers.Flatten()", hidden="1024", act='"relu"', classes="num_classes", out='"softmax"'):
    return (TF_HEAD.replace("FLATTEN", flatten).replace("HIDDEN", hidden).replace("ACT", act)
            .replace("CLASSES", classes).replace("OUT", out))


TF_HEAD_FUNCTIONAL = """
def build_head(feature_shape, num_classes=10):
    inputs = keras.Input(shape=feature_shape)
    x = keras.layers.Reshape((-1,))(inputs)
    x = keras.layers.Dense(1024, activation=keras.activations.relu)(x)
    x = keras.layers.Dense(256)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))
"""

TF_PREPROCESS_TF = """
def vgg_preprocess(images, mode="caffe"):
    x = tf.convert_to_tensor(images, tf.float32)
    if mode == "caffe":
        return tf.reverse(x, axis=[-1]) - tf.constant([103.939, 116.779, 123.68])
    if mode == "torch":
        return (x / 255.0 - tf.constant([0.485, 0.456, 0.406])) / tf.constant([0.229, 0.224, 0.225])
    raise ValueError(mode)
"""
TF_PREPROCESS_CHANNELS = """
def vgg_preprocess(images, mode="caffe"):
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    if mode == "caffe":
        return np.stack([b - 103.939, g - 116.779, r - 123.68], axis=-1)
    elif mode == "torch":
        return np.stack([(r / 255 - 0.485) / 0.229, (g / 255 - 0.456) / 0.224, (b / 255 - 0.406) / 0.225], axis=-1)
    else:
        raise ValueError("mode must be caffe or torch")
"""
TF_PREPROCESS_KERAS = """
def vgg_preprocess(images, mode="caffe"):
    if mode not in ("caffe", "torch"):
        raise ValueError(mode)
    return keras.applications.imagenet_utils.preprocess_input(np.array(images, copy=True), mode=mode)
"""
TF_PREPROCESS_IN_PLACE = """
def vgg_preprocess(images, mode="caffe"):
    x = np.asarray(images)
    if mode == "caffe":
        x = x[..., ::-1]
        x -= np.array([103.939, 116.779, 123.68], dtype=x.dtype)
        return x
    if mode == "torch":
        return (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    raise ValueError(mode)
"""

TF_EXTRACT_PREDICT = """
def extract_features(base, images, batch_size=256):
    return base.predict(images, batch_size=batch_size, verbose=0).reshape(len(images), -1)
"""
TF_EXTRACT_DATASET = """
def extract_features(base, images, batch_size=256):
    parts = []
    for batch in tf.data.Dataset.from_tensor_slices(images).batch(batch_size):
        out = base(batch)          # a model called without training= runs in inference mode
        parts.append(tf.reshape(out, (tf.shape(out)[0], -1)).numpy())
    return np.concatenate(parts, axis=0)
"""
TF_EXTRACT_TRAINING = """
def extract_features(base, images, batch_size=256):
    parts = [np.asarray(base(images[i:i + batch_size], training=True)) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).reshape(len(images), -1)
"""
TF_EXTRACT_ONE_BATCH = """
def extract_features(base, images, batch_size=256):
    return np.asarray(base(images, training=False)).reshape(len(images), -1)
"""

TF_FINE_TUNE = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    UNFREEZE
    COMPILE
    return model
"""
TF_UNFREEZE = """base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith(block + "_")"""
TF_COMPILE = """model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="categorical_crossentropy",
                  metrics=["accuracy"])"""


def tf_fine_tune(unfreeze=TF_UNFREEZE, compile_=TF_COMPILE):
    return TF_FINE_TUNE.replace("UNFREEZE", unfreeze).replace("COMPILE", compile_)


VARIANTS = [
    # build_head
    ("pytorch", "build_head", "the solution", Mutation(), True),
    ("pytorch", "build_head", "Sequential from (C, H, W)", torch_head(), True),
    ("pytorch", "build_head", "Module subclass, torch.flatten, math.prod", TORCH_HEAD_MODULE, True),
    ("pytorch", "build_head", "softmax before a logits loss", torch_head(tail=", nn.Softmax(dim=1)"), False),
    ("pytorch", "build_head", "no ReLU after the second layer", torch_head(act=""), False),
    ("pytorch", "build_head", "512 hidden units", torch_head(hidden="512"), False),
    ("pytorch", "build_head", "always 10 classes", torch_head(classes="10"), False),
    ("tensorflow", "build_head", "the solution", Mutation(), True),
    ("tensorflow", "build_head", "functional, Reshape, Softmax layer", TF_HEAD_FUNCTIONAL, True),
    ("tensorflow", "build_head", "no softmax", tf_head(out="None"), False),
    ("tensorflow", "build_head", "no ReLU after the second layer", tf_head(act="None"), False),
    ("tensorflow", "build_head", "512 hidden units", tf_head(hidden="512"), False),
    ("tensorflow", "build_head", "always 10 classes", tf_head(classes="10"), False),
    ("tensorflow", "build_head", "global pooling instead of Flatten",
     tf_head(flatten="keras.layers.GlobalAveragePooling2D()"), False),

    # freeze_base
    ("pytorch", "freeze_base", "the solution", Mutation(), True),
    ("pytorch", "freeze_base", "requires_grad_", "def freeze_base(base):\n    return base.requires_grad_(False)\n", True),
    ("pytorch", "freeze_base", "module by module", "def freeze_base(base):\n    for m in base.modules():\n"
     "        for p in m.parameters(recurse=False):\n            p.requires_grad_(False)\n    return base\n", True),
    ("pytorch", "freeze_base", "eval mode only", "def freeze_base(base):\n    base.eval()\n    return base\n", False),
    ("pytorch", "freeze_base", "weights only, biases left",
     "def freeze_base(base):\n    for name, p in base.named_parameters():\n"
     "        if name.endswith('weight'):\n            p.requires_grad = False\n    return base\n", False),
    ("pytorch", "freeze_base", "convolutions only, batch norm left",
     "def freeze_base(base):\n    for m in base.modules():\n        if isinstance(m, nn.Conv2d):\n"
     "            m.requires_grad_(False)\n    return base\n", False),
    ("pytorch", "freeze_base", "returns nothing",
     "def freeze_base(base):\n    for p in base.parameters():\n        p.requires_grad = False\n", False),
    ("tensorflow", "freeze_base", "the solution", Mutation(), True),
    ("tensorflow", "freeze_base", "base.trainable",
     "def freeze_base(base):\n    base.trainable = False\n    return base\n", True),
    ("tensorflow", "freeze_base", "convolutions only, batch norm left",
     "def freeze_base(base):\n    for layer in base.layers:\n        if isinstance(layer, keras.layers.Conv2D):\n"
     "            layer.trainable = False\n    return base\n", False),
    ("tensorflow", "freeze_base", "all but the last layer",
     "def freeze_base(base):\n    for layer in base.layers[:-1]:\n        layer.trainable = False\n    return base\n", False),
    ("tensorflow", "freeze_base", "returns nothing", "def freeze_base(base):\n    base.trainable = False\n", False),

    # count_params_split
    ("pytorch", "count_params_split", "the solution", Mutation(), True),
    ("pytorch", "count_params_split", "total minus trainable, numpy ints",
     "def count_params_split(model):\n    total = np.int64(cu.count_params(model))\n"
     "    trainable = np.int64(cu.count_params(model, trainable_only=True))\n    return trainable, total - trainable\n", True),
    ("pytorch", "count_params_split", "(total, trainable)",
     "def count_params_split(model):\n    return cu.count_params(model), cu.count_params(model, trainable_only=True)\n", False),
    ("pytorch", "count_params_split", "(frozen, trainable)",
     "def count_params_split(model):\n    t = cu.count_params(model, trainable_only=True)\n"
     "    return cu.count_params(model) - t, t\n", False),
    ("pytorch", "count_params_split", "buffers counted as frozen",
     "def count_params_split(model):\n    t = sum(p.numel() for p in model.parameters() if p.requires_grad)\n"
     "    return t, sum(v.numel() for v in model.state_dict().values()) - t\n", False),
    ("pytorch", "count_params_split", "tensors instead of numbers",
     "def count_params_split(model):\n    ps = list(model.parameters())\n"
     "    return sum(p.requires_grad for p in ps), sum(not p.requires_grad for p in ps)\n", False),
    ("tensorflow", "count_params_split", "the solution", Mutation(), True),
    ("tensorflow", "count_params_split", "cu.count_params",
     "def count_params_split(model):\n    t = cu.count_params(model, trainable_only=True)\n"
     "    return t, model.count_params() - t\n", True),
    ("tensorflow", "count_params_split", "(total, trainable)",
     "def count_params_split(model):\n    return model.count_params(), cu.count_params(model, trainable_only=True)\n", False),
    ("tensorflow", "count_params_split", "whole layers by layer.trainable",
     "def count_params_split(model):\n    t = sum(l.count_params() for l in model.layers if l.trainable)\n"
     "    return t, model.count_params() - t\n", False),
    ("tensorflow", "count_params_split", "tensors instead of numbers",
     "def count_params_split(model):\n    return len(model.trainable_weights), len(model.non_trainable_weights)\n", False),

    # vgg_preprocess
    ("pytorch", "vgg_preprocess", "the solution", Mutation(), True),
    ("pytorch", "vgg_preprocess", "index [2, 1, 0], channel by channel", TORCH_PREPROCESS_INDEX, True),
    ("pytorch", "vgg_preprocess", "numpy inside", TORCH_PREPROCESS_NUMPY, True),
    ("pytorch", "vgg_preprocess", "RGB left in place",
     Mutation([("return images.flip(1) - mean", "return images - mean")]), False),
    ("pytorch", "vgg_preprocess", "channel flipped along the width", Mutation([("images.flip(1)", "images.flip(-1)")]), False),
    ("pytorch", "vgg_preprocess", "RGB means after the flip",
     Mutation([("[103.939, 116.779, 123.68]", "[123.68, 116.779, 103.939]")]), False),
    ("pytorch", "vgg_preprocess", "caffe means on the [0, 1] scale",
     Mutation([("return images.flip(1) - mean", "return (images / 255).flip(1) - mean")]), False),
    ("pytorch", "vgg_preprocess", "torch mode on the 0..255 scale",
     Mutation([("(images / 255 - mean", "(images - mean")]), False),
    ("pytorch", "vgg_preprocess", "torch mode without the std",
     Mutation([("(images / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)", "images / 255 - mean.view(1, 3, 1, 1)")]),
     False),
    ("pytorch", "vgg_preprocess", "torchvision Normalize", TORCH_PREPROCESS_NORMALIZE, False),
    ("pytorch", "vgg_preprocess", "changes the input in place", TORCH_PREPROCESS_IN_PLACE, False),
    ("pytorch", "vgg_preprocess", "unknown mode accepted",
     Mutation([("raise ValueError(f\"mode must be 'caffe' or 'torch', got {mode!r}\")", "return images.clone()")]), False),
    ("tensorflow", "vgg_preprocess", "the solution", Mutation(), True),
    ("tensorflow", "vgg_preprocess", "TensorFlow ops, tf.reverse", TF_PREPROCESS_TF, True),
    ("tensorflow", "vgg_preprocess", "channel by channel, np.stack", TF_PREPROCESS_CHANNELS, True),
    ("tensorflow", "vgg_preprocess", "RGB left in place",
     Mutation([("return x[..., ::-1] - np.array", "return x - np.array")]), False),
    ("tensorflow", "vgg_preprocess", "height flipped instead of channels",
     Mutation([("return x[..., ::-1] - np.array", "return x[:, ::-1] - np.array")]), False),
    ("tensorflow", "vgg_preprocess", "RGB means after the flip",
     Mutation([("[103.939, 116.779, 123.68]", "[123.68, 116.779, 103.939]")]), False),
    ("tensorflow", "vgg_preprocess", "caffe means on the [0, 1] scale",
     Mutation([("return x[..., ::-1] - np.array", "return x[..., ::-1] / 255 - np.array")]), False),
    ("tensorflow", "vgg_preprocess", "torch mode on the 0..255 scale", Mutation([("(x / 255 - mean)", "(x - mean)")]), False),
    ("tensorflow", "vgg_preprocess", "torch mode without the std",
     Mutation([("(x / 255 - mean) / std", "x / 255 - mean")]), False),
    ("tensorflow", "vgg_preprocess", "Keras' preprocess_input", TF_PREPROCESS_KERAS, False),
    ("tensorflow", "vgg_preprocess", "changes the input in place", TF_PREPROCESS_IN_PLACE, False),
    ("tensorflow", "vgg_preprocess", "unknown mode accepted",
     Mutation([("raise ValueError(f\"mode must be 'caffe' or 'torch', got {mode!r}\")", "return x")]), False),

    # extract_features
    ("pytorch", "extract_features", "the solution", Mutation(), True),
    ("pytorch", "extract_features", "inference_mode, split, mode restored", TORCH_EXTRACT_INFERENCE, True),
    ("pytorch", "extract_features", "training mode", TORCH_EXTRACT_TRAIN_MODE, False),
    ("pytorch", "extract_features", "gradients on, detached", TORCH_EXTRACT_DETACH, False),
    ("pytorch", "extract_features", "all images in one batch", TORCH_EXTRACT_ONE_BATCH, False),
    ("pytorch", "extract_features", "returns a tensor", Mutation([("return torch.cat(outputs).numpy().astype(np.float32)",
                                                                  "return torch.cat(outputs)")]), False),
    ("pytorch", "extract_features", "not flattened", Mutation([("base(images[start:start + batch_size]).flatten(1)",
                                                                "base(images[start:start + batch_size])")]), False),
    ("tensorflow", "extract_features", "the solution", Mutation(), True),
    ("tensorflow", "extract_features", "model.predict", TF_EXTRACT_PREDICT, True),
    ("tensorflow", "extract_features", "tf.data batches, default call", TF_EXTRACT_DATASET, True),
    ("tensorflow", "extract_features", "training mode", TF_EXTRACT_TRAINING, False),
    ("tensorflow", "extract_features", "all images in one batch", TF_EXTRACT_ONE_BATCH, False),
    ("tensorflow", "extract_features", "returns a tensor",
     "def extract_features(base, images, batch_size=256):\n"
     "    return tf.concat([tf.reshape(base(images[i:i + batch_size], training=False), (len(images[i:i + batch_size]), -1))\n"
     "                      for i in range(0, len(images), batch_size)], axis=0)\n", False),
    ("tensorflow", "extract_features", "not flattened",
     Mutation([("np.concatenate(outputs).astype(np.float32).reshape(len(images), -1)",
                                                                   "np.concatenate(outputs).astype(np.float32)")]), False),

    # setup_fine_tuning
    ("pytorch", "setup_fine_tuning", "the solution", Mutation(), True),
    ("pytorch", "setup_fine_tuning", "requires_grad_ and filter", TORCH_FINE_TUNE_FILTER, True),
    ("pytorch", "setup_fine_tuning", "by parameter names", TORCH_FINE_TUNE_NAMES, True),
    ("pytorch", "setup_fine_tuning", "optimizer built before unfreezing", TORCH_FINE_TUNE_TOO_EARLY, False),
    ("pytorch", "setup_fine_tuning", "optimizer over all parameters, frozen ones too", TORCH_FINE_TUNE_ALL_PARAMS, False),
    ("pytorch", "setup_fine_tuning", "whole base unfrozen", TORCH_FINE_TUNE_WHOLE_BASE, False),
    ("pytorch", "setup_fine_tuning", "whole model unfrozen, then the base's other blocks frozen",
     TORCH_FINE_TUNE_WHOLE_MODEL_FIRST, False),
    ("pytorch", "setup_fine_tuning", "learning rate ignored", Mutation([("lr=lr)", "lr=1e-3)")]), False),
    ("pytorch", "setup_fine_tuning", "SGD", Mutation([("torch.optim.Adam(", "torch.optim.SGD(")]), False),
    ("tensorflow", "setup_fine_tuning", "the solution", Mutation(), True),
    ("tensorflow", "setup_fine_tuning", "freeze the others after base.trainable",
     tf_fine_tune(unfreeze="base.trainable = True\n    for layer in base.layers:\n"
                  "        if not layer.name.startswith(f'{block}_'):\n            layer.trainable = False"), True),
    ("tensorflow", "setup_fine_tuning", "Adam object with keyword loss and metric objects",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), keras.losses.CategoricalCrossentropy(),\n"
                  "                  metrics=[keras.metrics.CategoricalAccuracy(name='accuracy')])"), True),
    ("tensorflow", "setup_fine_tuning", "not compiled again", tf_fine_tune(compile_="pass"), False),
    ("tensorflow", "setup_fine_tuning", "learning rate set, not compiled again",
     tf_fine_tune(compile_="model.optimizer.learning_rate.assign(lr)"), False),
    ("tensorflow", "setup_fine_tuning", "whole base unfrozen", tf_fine_tune(unfreeze="base.trainable = True"), False),
    ("tensorflow", "setup_fine_tuning", "every layer of the model unfrozen, then the base's other layers frozen",
     tf_fine_tune(unfreeze="for layer in model.layers:\n        layer.trainable = True\n    for layer in base.layers:\n"
                  "        layer.trainable = layer.name.startswith(block + '_')"), False),
    ("tensorflow", "setup_fine_tuning", "default learning rate",
     tf_fine_tune(compile_="model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])"), False),
    ("tensorflow", "setup_fine_tuning", "sparse loss",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), 'sparse_categorical_crossentropy', metrics=['accuracy'])"),
     False),
    ("tensorflow", "setup_fine_tuning", "SGD",
     tf_fine_tune(compile_="model.compile(keras.optimizers.SGD(lr), 'categorical_crossentropy', metrics=['accuracy'])"), False),
]

# ----------------------------------------------------------------------------- more cases (issue 11's classes)

TORCH_HEAD_CHANNELS_LAST = """
def build_head(feature_shape, num_classes=10):
    class ChannelsLast(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(len(x), -1)
    return nn.Sequential(ChannelsLast(), nn.Linear(int(np.prod(feature_shape)), 1024), nn.ReLU(),
                         nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, num_classes))
"""
TF_HEAD_CHANNELS_FIRST = """
def build_head(feature_shape, num_classes=10):
    return keras.Sequential([
        keras.Input(feature_shape), keras.layers.Permute((3, 1, 2)), keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax")])
"""
TORCH_FINE_TUNE_GETATTR = """
def setup_fine_tuning(model, base, block, lr=1e-4):
    getattr(base, block).requires_grad_()
    params = [p for name, p in model.named_parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr)
"""

# A wrong activation hidden by a zero-initialised last layer: every output is then the same
# whatever comes before, unless the tests draw random weights first.
TORCH_HEAD_ZERO_LAST_LAYER = """
def build_head(feature_shape, num_classes=10):
    head = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(feature_shape)), 1024), nn.Tanh(), nn.Linear(1024, 256),
                         nn.Tanh(), nn.Linear(256, num_classes))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head
"""
TF_HEAD_ZERO_LAST_LAYER = """
def build_head(feature_shape, num_classes=10):
    return keras.Sequential([keras.Input(feature_shape), keras.layers.Flatten(),
                             keras.layers.Dense(1024, activation="tanh"), keras.layers.Dense(256, activation="tanh"),
                             keras.layers.Dense(num_classes, activation="softmax", kernel_initializer="zeros")])
"""
VARIANTS += [
    ("pytorch", "build_head", "tanh hidden by a zero-initialised last layer", TORCH_HEAD_ZERO_LAST_LAYER, False),
    ("tensorflow", "build_head", "tanh hidden by a zero-initialised last layer", TF_HEAD_ZERO_LAST_LAYER, False),
]

VARIANTS += [
    # build_head
    ("pytorch", "build_head", "channels-last flatten (the same head)", TORCH_HEAD_CHANNELS_LAST, True),
    ("pytorch", "build_head", "dropout between the layers", torch_head(act="nn.ReLU(), nn.Dropout(0.5),"), False),
    ("pytorch", "build_head", "tanh instead of the second ReLU", torch_head(act="nn.Tanh(),"), False),
    ("pytorch", "build_head", "log-softmax at the end", torch_head(tail=", nn.LogSoftmax(dim=1)"), False),
    ("pytorch", "build_head", "no bias in the output layer",
     Mutation([("nn.Linear(256, num_classes)", "nn.Linear(256, num_classes, bias=False)")]), False),
    ("pytorch", "build_head", "output layer frozen",
     Mutation([("    return nn.Sequential(", "    head = nn.Sequential("),
               ("        nn.Linear(256, num_classes),\n    )", "        nn.Linear(256, num_classes),\n    )\n"
                "    head[-1].requires_grad_(False)\n    return head")]), False),
    ("tensorflow", "build_head", "channels-first flatten (the same head)", TF_HEAD_CHANNELS_FIRST, True),
    ("tensorflow", "build_head", "dropout between the layers",
     tf_head(flatten="keras.layers.Flatten(), keras.layers.Dropout(0.5)"), False),
    ("tensorflow", "build_head", "sigmoid output", tf_head(out='"sigmoid"'), False),
    ("tensorflow", "build_head", "tanh instead of the second ReLU", tf_head(act='"tanh"'), False),
    ("tensorflow", "build_head", "no bias in the output layer",
     Mutation([('keras.layers.Dense(num_classes, activation="softmax")',
                'keras.layers.Dense(num_classes, activation="softmax", use_bias=False)')]), False),

    # freeze_base
    ("pytorch", "freeze_base", "attribute on the module (no effect)",
     "def freeze_base(base):\n    base.requires_grad = False\n    return base\n", False),
    ("pytorch", "freeze_base", "a frozen copy", "import copy\ndef freeze_base(base):\n    base = copy.deepcopy(base)\n"
     "    for p in base.parameters():\n        p.requires_grad = False\n    return base\n", False),
    ("pytorch", "freeze_base", "direct children's own parameters only (nested blocks missed)",
     "def freeze_base(base):\n    for child in base.children():\n        for p in child.parameters(recurse=False):\n"
     "            p.requires_grad = False\n    return base\n", False),
    ("tensorflow", "freeze_base", "first layer only",
     "def freeze_base(base):\n    base.layers[0].trainable = False\n    return base\n", False),
    ("tensorflow", "freeze_base", "a frozen clone", "def freeze_base(base):\n    clone = keras.models.clone_model(base)\n"
     "    clone.trainable = False\n    return clone\n", False),

    # count_params_split
    ("pytorch", "count_params_split", "(trainable, total)",
     "def count_params_split(model):\n    return cu.count_params(model, trainable_only=True), cu.count_params(model)\n", False),
    ("pytorch", "count_params_split", "named_parameters, a list",
     "def count_params_split(model):\n    counts = [0, 0]\n    for _, p in model.named_parameters():\n"
     "        counts[0 if p.requires_grad else 1] += p.numel()\n    return tuple(counts)\n", True),
    ("tensorflow", "count_params_split", "(frozen, trainable)",
     "def count_params_split(model):\n    t = sum(int(np.prod(w.shape)) for w in model.trainable_weights)\n"
     "    return model.count_params() - t, t\n", False),
    ("tensorflow", "count_params_split", "batch norm statistics left out",
     "def count_params_split(model):\n    t = sum(int(np.prod(w.shape)) for w in model.trainable_weights)\n"
     "    f = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights if 'moving' not in w.path)\n"
     "    return t, f\n", False),
    ("tensorflow", "count_params_split", "model.weights by w.trainable (Keras 3 marks frozen variables)",
     "def count_params_split(model):\n    ws = model.weights\n    t = sum(int(np.prod(w.shape)) for w in ws if w.trainable)\n"
     "    return t, sum(int(np.prod(w.shape)) for w in ws) - t\n", True),

    # vgg_preprocess
    ("pytorch", "vgg_preprocess", "torch mode in BGR order",
     Mutation([("(images / 255 - mean", "(images.flip(1) / 255 - mean")]), False),
    ("pytorch", "vgg_preprocess", "means added", Mutation([("return images.flip(1) - mean", "return images.flip(1) + mean")]),
     False),
    ("pytorch", "vgg_preprocess", "std multiplied", Mutation([(") / std.view(1, 3, 1, 1)", ") * std.view(1, 3, 1, 1)")]),
     False),
    ("tensorflow", "vgg_preprocess", "torch mode in BGR order", Mutation([("(x / 255 - mean)", "(x[..., ::-1] / 255 - mean)")]),
     False),
    ("tensorflow", "vgg_preprocess", "caffe mode divided by the std too",
     Mutation([("return x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)",
                "return (x[..., ::-1] - np.array([103.939, 116.779, 123.68])) / np.array([0.225, 0.224, 0.229])")]), False),
    ("tensorflow", "vgg_preprocess", "float64 numpy, einsum-free arithmetic",
     Mutation([("np.asarray(images, dtype=np.float32)", "np.array(images, dtype=np.float64)")]), True),

    # extract_features
    ("pytorch", "extract_features", "flattened in (H, W, C) order",
     Mutation([("base(images[start:start + batch_size]).flatten(1)",
                "base(images[start:start + batch_size]).permute(0, 2, 3, 1).flatten(1)")]), False),
    ("pytorch", "extract_features", "float64 features",
     Mutation([(".numpy().astype(np.float32)", ".numpy().astype(np.float64)")]), False),
    ("pytorch", "extract_features", "no_grad decorator, reshape",
     "@torch.no_grad()\ndef extract_features(base, images, batch_size=256):\n    base.eval()\n"
     "    out = [base(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)]\n"
     "    return torch.cat(out).reshape(images.shape[0], -1).numpy()\n", True),
    ("tensorflow", "extract_features", "flattened in (C, H, W) order",
     Mutation([("np.concatenate(outputs).astype(np.float32).reshape(len(images), -1)",
                "np.concatenate(outputs).astype(np.float32).transpose(0, 3, 1, 2).reshape(len(images), -1)")]), False),
    ("tensorflow", "extract_features", "float64 features",
     Mutation([("np.concatenate(outputs).astype(np.float32)", "np.concatenate(outputs).astype(np.float64)")]), False),

    # setup_fine_tuning
    ("pytorch", "setup_fine_tuning", "getattr, requires_grad_(), positional lr", TORCH_FINE_TUNE_GETATTR, True),
    ("pytorch", "setup_fine_tuning", "AdamW (a subclass of Adam)",
     Mutation([("torch.optim.Adam(", "torch.optim.AdamW(")]), False),
    ("pytorch", "setup_fine_tuning", "optimizer over the block only, head left out",
     Mutation([("return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)",
                "return torch.optim.Adam(base.get_submodule(block).parameters(), lr=lr)")]), False),
    ("tensorflow", "setup_fine_tuning", "string spellings 'CategoricalCrossentropy' and 'acc'",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(learning_rate=lr), 'CategoricalCrossentropy', "
                  "metrics=['acc'])"), True),
    ("tensorflow", "setup_fine_tuning", "AdamW (a subclass of Adam)",
     tf_fine_tune(compile_="model.compile(keras.optimizers.AdamW(lr), 'categorical_crossentropy', metrics=['accuracy'])"),
     False),
    ("tensorflow", "setup_fine_tuning", "loss from logits",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), keras.losses.CategoricalCrossentropy(from_logits=True), "
                  "metrics=['accuracy'])"), False),
    ("tensorflow", "setup_fine_tuning", "label smoothing",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), keras.losses.CategoricalCrossentropy(label_smoothing=0.1), "
                  "metrics=['accuracy'])"), False),
    ("tensorflow", "setup_fine_tuning", "exact-match Accuracy metric",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), 'categorical_crossentropy', "
                  "metrics=[keras.metrics.Accuracy()])"), False),
    ("tensorflow", "setup_fine_tuning", "top-5 accuracy",
     tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), 'categorical_crossentropy', "
                  "metrics=['top_k_categorical_accuracy'])"), False),
    ("tensorflow", "setup_fine_tuning", "no metric", tf_fine_tune(compile_="model.compile(keras.optimizers.Adam(lr), "
                                                                  "'categorical_crossentropy')"), False),
]

# built-ins reached through an alias bound before the answer runs (the guard reads the code)
VARIANTS += [
    ("pytorch", "vgg_preprocess", "torchvision's normalize under an alias",
     "from torchvision.transforms.functional import normalize as _scale\n"
     "def vgg_preprocess(images, mode='caffe'):\n"
     "    if mode == 'caffe':\n"
     "        return images[:, [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)\n"
     "    if mode == 'torch':\n"
     "        return _scale(images / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])\n"
     "    raise ValueError(mode)\n", False),
    ("tensorflow", "vgg_preprocess", "Keras' preprocess_input under an alias",
     "from keras.applications.vgg16 import preprocess_input as _prep\n"
     "def vgg_preprocess(images, mode='caffe'):\n"
     "    x = np.array(images, dtype=np.float32)\n"
     "    if mode == 'caffe':\n"
     "        return _prep(x)\n"
     "    if mode == 'torch':\n"
     "        return (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])\n"
     "    raise ValueError(mode)\n", False),
]

# other libraries' preprocessing and normalisation helpers, wrong types and blocks matched by prefix
TORCH_PREPROCESS_TEMPLATE = """
def vgg_preprocess(images, mode='caffe'):
    if mode == 'caffe':
        return images[:, [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    if mode == 'torch':
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return TORCH_MODE
    raise ValueError(mode)
"""


def torch_preprocess(torch_mode, prefix=""):
    return prefix + TORCH_PREPROCESS_TEMPLATE.replace("TORCH_MODE", torch_mode)


TF_PREPROCESS_TEMPLATE = """
def vgg_preprocess(images, mode='caffe'):
    x = np.array(images, dtype=np.float32)
    if mode == 'caffe':
        return CAFFE_MODE
    if mode == 'torch':
        return TORCH_MODE
    raise ValueError(mode)
"""


def tf_preprocess(caffe="x[..., ::-1] - np.array([103.939, 116.779, 123.68])",
                  torch_mode="(x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])", prefix=""):
    return prefix + TF_PREPROCESS_TEMPLATE.replace("CAFFE_MODE", caffe).replace("TORCH_MODE", torch_mode)


VARIANTS += [
    ("pytorch", "vgg_preprocess", "mean and std as tensors, float64 result",
     torch_preprocess("((images.double() / 255 - mean.double().view(1, 3, 1, 1)) / std.double().view(1, 3, 1, 1))"), True),
    ("pytorch", "vgg_preprocess", "transforms.v2.functional.normalize_image",
     torch_preprocess("normalize_image(images / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])",
                      "from torchvision.transforms.v2.functional import normalize_image\n"), False),
    ("pytorch", "vgg_preprocess", "transforms._functional_tensor.normalize",
     torch_preprocess("_FT.normalize(images / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])",
                      "import torchvision.transforms._functional_tensor as _FT\n"), False),
    ("pytorch", "vgg_preprocess", "batch norm with the ImageNet statistics",
     torch_preprocess("F.batch_norm(images / 255, mean, std ** 2, training=False, eps=0.0)"), False),
    ("pytorch", "vgg_preprocess", "the weights' own transforms (ImageClassification)",
     torch_preprocess("ImageClassification(crop_size=images.shape[-1], resize_size=images.shape[-1])(images / 255)",
                      "from torchvision.transforms._presets import ImageClassification\n"), False),
    ("pytorch", "vgg_preprocess", "a numpy array instead of a tensor",
     """
def vgg_preprocess(images, mode='caffe'):
    x = images.numpy().astype(np.float32)
    if mode == 'caffe':
        return x[:, ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32).reshape(1, 3, 1, 1)
    if mode == 'torch':
        return ((x / 255 - np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1))
                / np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1))
    raise ValueError(mode)
""", False),
    ("pytorch", "vgg_preprocess", "an integer tensor",
     Mutation([("return images.flip(1) - mean.view(1, 3, 1, 1)", "return (images.flip(1) - mean.view(1, 3, 1, 1)).long()")]),
     False),
    ("pytorch", "vgg_preprocess", "the input divided in place (div_) in torch mode",
     """
def vgg_preprocess(images, mode='caffe'):
    if mode == 'caffe':
        return images.flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    if mode == 'torch':
        images.div_(255)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    raise ValueError(mode)
""", False),
    ("tensorflow", "vgg_preprocess", "tf.reverse and tf.constant, a tensor", tf_preprocess(
        caffe="tf.reverse(tf.constant(x), axis=[-1]) - tf.constant([103.939, 116.779, 123.68])"), True),
    ("tensorflow", "vgg_preprocess", "keras.applications.vgg19.preprocess_input",
     tf_preprocess(caffe="keras.applications.vgg19.preprocess_input(x)"), False),
    ("tensorflow", "vgg_preprocess", "resnet50's preprocess_input under an alias",
     tf_preprocess(caffe="_prep(x)", prefix="from keras.applications.resnet50 import preprocess_input as _prep\n"), False),
    ("tensorflow", "vgg_preprocess", "keras.applications.resnet.preprocess_input",
     tf_preprocess(caffe="keras.applications.resnet.preprocess_input(x.copy())"), False),
    ("tensorflow", "vgg_preprocess", "densenet's preprocess_input for torch mode",
     tf_preprocess(torch_mode="keras.applications.densenet.preprocess_input(x)"), False),
    ("tensorflow", "vgg_preprocess", "imagenet_utils' private numpy helper",
     tf_preprocess(caffe="_numpy_input(x, data_format='channels_last', mode='caffe')",
                   prefix="from keras.src.applications.imagenet_utils import _preprocess_numpy_input as _numpy_input\n"),
     False),

    ("pytorch", "setup_fine_tuning", "parameter names split at the first dot",
     "def setup_fine_tuning(model, base, block, lr=1e-4):\n    for name, p in base.named_parameters():\n"
     "        if name.partition('.')[0] == block:\n            p.requires_grad_(True)\n"
     "    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)\n", True),
    ("pytorch", "setup_fine_tuning", "parameter names matched with startswith(block) (block20 unfrozen too)",
     "def setup_fine_tuning(model, base, block, lr=1e-4):\n    for name, p in base.named_parameters():\n"
     "        if name.startswith(block):\n            p.requires_grad = True\n"
     "    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)\n", False),
    ("pytorch", "setup_fine_tuning", "children matched with `block in name`",
     "def setup_fine_tuning(model, base, block, lr=1e-4):\n    for name, child in base.named_children():\n"
     "        if block in name:\n            child.requires_grad_(True)\n"
     "    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)\n", False),
    ("tensorflow", "setup_fine_tuning", "the name's first part equals the block",
     tf_fine_tune(unfreeze="base.trainable = True\n    for layer in base.layers:\n"
                  "        layer.trainable = layer.name.split('_')[0] == block"), True),
    ("tensorflow", "setup_fine_tuning", "`block in layer.name` (block20 unfrozen too)",
     tf_fine_tune(unfreeze="base.trainable = True\n    for layer in base.layers:\n        layer.trainable = block in layer.name"),
     False),
    ("tensorflow", "setup_fine_tuning", "startswith(block) without the underscore",
     tf_fine_tune(unfreeze="base.trainable = True\n    for layer in base.layers:\n"
                  "        layer.trainable = layer.name.startswith(block)"), False),
]

# Heads the grader makes again from the kernel's description: a subclassed model (its call runs in the
# kernel, its Dense layers are Keras' own here), and an activation of the answer's own named like Keras' one.
TF_HEAD_SUBCLASS = """
class Head(keras.Model):
    def __init__(self, feature_shape, num_classes):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.hidden = [keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(256, activation="relu")]
        self.out = keras.layers.Dense(num_classes, activation="softmax")
        self.build((None, *feature_shape))
    def build(self, shape):
        for layer in [self.flatten, *self.hidden, self.out]:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
    def call(self, x):
        x = self.flatten(x)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

def build_head(feature_shape, num_classes=10):
    return Head(tuple(feature_shape), num_classes)
"""
TF_HEAD_NAMED_RELU = """
def relu(x):  # named relu, and not it: Keras writes it as "relu" in the model's configuration
    return tf.nn.elu(x)
""" + tf_head(act="relu")
VARIANTS += [
    ("tensorflow", "build_head", "a subclassed model built in its constructor", TF_HEAD_SUBCLASS, True),
    ("tensorflow", "build_head", "tf.nn.relu and tf.nn.softmax", tf_head(act="tf.nn.relu", out="tf.nn.softmax"), True),
    ("tensorflow", "build_head", "an ELU of its own named relu", TF_HEAD_NAMED_RELU, False),
]
