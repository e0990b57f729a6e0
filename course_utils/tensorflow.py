"""TensorFlow / Keras helpers. ``course_utils/torch.py`` has the same names for the same
ideas, so a lesson's two notebooks read alike.

Layouts: images are (N, H, W, C) here (TensorFlow's layout); labels are (N,) ints, or
one-hot (N, classes) float32 for ``categorical_crossentropy``. Histories are Keras'
``History.history`` dicts, one float per epoch, plus ``epoch_time`` in seconds.

Importing this module before TensorFlow quiets TensorFlow's C++ log, which would
otherwise write to stderr (and nbgrader scores a test cell with stderr as failed).
"""
from __future__ import annotations

import contextlib
import copy
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# Lines TensorFlow's native code writes before absl's logging starts, so that
# TF_CPP_MIN_LOG_LEVEL cannot silence them: informational on a machine without a GPU.
_NATIVE_NOISE = (
    "All log messages before absl::InitializeLog()",
    "cudart_stub.cc",
    "Could not find cuda drivers",
    "oneDNN custom operations are on",
    "Unable to register cu",
    "computation_placer.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Run a block with file descriptor 2 captured, then pass on every line that is not
    known start-up noise. Written here because no logging setting reaches these lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not any(noise in line for noise in _NATIVE_NOISE):
                    print(line, file=sys.stderr)


import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

with _quiet_native_stderr():
    import tensorflow as tf
    tf.config.list_physical_devices("GPU")  # loads the CUDA stubs now, inside the filter
from tqdm.keras import TqdmCallback  # noqa: E402

from .data import one_hot, to_float_images, to_rgb  # noqa: E402, F401  (to_rgb: re-exported for notebooks)

keras = tf.keras
FRAMEWORK = "tensorflow"
_device: str | None = None


def get_device(prefer: str | None = None) -> str:
    """The device name to place work on: ``"/GPU:0"`` when a GPU is visible, else ``"/CPU:0"``.

    Turns on memory growth for every GPU first, so TensorFlow takes GPU memory as it
    needs it instead of all at once. ``prefer`` (or ``COURSE_DEVICE``) forces one.

    With a GPU it also turns TensorFlow's TF32 (on by default on Ampere and later GPUs)
    **off**, so that float32 results outside training (checks, exercises, :func:`predict`)
    match a CPU at ``rtol=1e-5``; :func:`train` turns it on for its fit only (see :func:`tf32`).
    """
    global _device
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        return choice if choice.startswith("/") else f"/{choice.upper()}:0"
    if _device is None:
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # the GPU was already initialised; its setting stays
                pass
        if gpus:
            tf.config.experimental.enable_tensor_float_32_execution(False)  # exact float32 outside training
        _device = "/GPU:0" if gpus else "/CPU:0"
    return _device


@contextlib.contextmanager
def tf32(enabled: bool = True):
    """A block with TF32 (float32 matrix products and convolutions on tensor cores, with
    a 10-bit mantissa) allowed or not; the setting is restored afterwards, even on error.

    Training uses it; comparisons of float32 results at ``rtol=1e-5`` must run outside it.
    The setting only matters on a GPU; on a CPU it is set and restored all the same.
    """
    saved = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(enabled)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(saved)


def device_report() -> str:
    """One line per fact: versions, the chosen device and the visible devices."""
    device = get_device()
    lines = [f"TensorFlow {tf.__version__} (Keras {keras.__version__}) on Python {platform.python_version()}",
             f"training device: {device}"]
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        lines.append(f"{gpu.name}: {details.get('device_name', 'GPU')}")
    if not tf.config.list_physical_devices("GPU"):
        lines.append(f"CPU threads: intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}")
    return "\n".join(lines)


def seed_everything(seed: int = 0, deterministic: bool | None = None) -> None:
    """Seed Python, numpy and TensorFlow (``keras.utils.set_random_seed``), so that a seeded
    run prints the same numbers twice on the same machine.

    ``deterministic``: ask for deterministic ops (``tf.config.experimental.enable_op_determinism``;
    ops without a deterministic version then raise) or not. ``None``, the default, means on
    when no GPU is used (:func:`get_device` is the CPU): without them TensorFlow's CPU
    reductions can sum in a different order each run (lesson 01 in ``smoke``: 67.00% and
    68.20% test accuracy), and they cost the lessons' models about 6% per epoch there (median
    of ``make bench``'s ``det. / default`` column, 0.85-1.42 from lesson to lesson). On a GPU
    they are slower, so there ``True`` opts in. ``False`` turns them off. (The PyTorch twin's
    ``None`` leaves them off: PyTorch repeats its CPU numbers without them.)
    """
    keras.utils.set_random_seed(seed)
    if deterministic is None:
        deterministic = "GPU" not in get_device().upper()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework.config import disable_op_determinism  # tf.config exports only enable

        disable_op_determinism()


def to_tensor_images(images) -> np.ndarray:
    """Images as float32 (N, H, W, C), TensorFlow's layout.

    uint8 images (values 0..255), grey (N, H, W) or colour (N, H, W, C) with C 1 or 3
    (see :func:`course_utils.data.to_rgb`, :func:`course_utils.data.pad_or_resize`), are
    scaled to [0, 1]. Float images are taken as already scaled: (N, H, W, C) passes
    through, (N, H, W) gets a channel axis.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return to_float_images(images, channels_last=True)
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"images should be uint8 or float, got {images.dtype}")
    images = images.astype(np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"float images should be (N, H, W, C) or (N, H, W), got shape {images.shape}")
    return images


def random_affine(degrees: float = 10.0, shift: float = 0.1, scale: float = 0.1) -> keras.Sequential:
    """A batch augmentation: every image gets its own random rotation (up to ``degrees``),
    shift (up to ``shift`` of its size) and zoom (up to ``scale``).

    Keras' own random layers; call the result on a batch x (B, H, W, C) -> same shape.
    They are active when called with ``training=True`` (their default).
    """
    return keras.Sequential([
        keras.layers.RandomRotation(degrees / 360, fill_mode="constant"),
        keras.layers.RandomTranslation(shift, shift, fill_mode="constant"),
        keras.layers.RandomZoom(scale, fill_mode="constant"),
    ], name="random_affine")


def make_loader(images, labels, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                augment=None, *, num_classes: int | None = None) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(x, y)`` batches: x float32 (B, H, W, C) in [0, 1];
    y int64 (B,), or one-hot float32 (B, num_classes) when ``num_classes`` is given
    (for ``categorical_crossentropy``; TensorFlow only: PyTorch's cross-entropy takes
    class indices). Shuffled anew each epoch with a fixed seed.
    ``augment`` (e.g. :func:`random_affine`) is applied to every image batch.
    images: as :func:`to_tensor_images` takes them (uint8 grey or colour, or float)."""
    x = to_tensor_images(images)
    y = np.asarray(labels)
    if len(x) != len(y):
        raise ValueError(f"images and labels differ in length: {len(x)} images, {len(y)} labels")
    y = one_hot(y, num_classes) if num_classes is not None else y.astype(np.int64)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def count_params(model: keras.Model, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only the trainable ones)."""
    if trainable_only:
        return int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params())


class _EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time`` (seconds) to the history, as the PyTorch ``train`` does."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time"] = time.perf_counter() - self._start


def train(model: keras.Model, train_data, val_data=None, epochs: int = 1, verbose: bool = True, *,
          callbacks=()) -> dict:
    """``model.fit`` with a tqdm progress bar; return its history dict.

    The model must be compiled (optimizer, loss, ``metrics=["accuracy"]``): the PyTorch
    twin's ``optimizer``, ``loss_fn`` and ``clip_norm`` are ``compile`` arguments here.
    ``callbacks`` (keyword-only, Keras only) are passed to ``fit``, e.g. a learning-rate
    schedule (PyTorch's ``scheduler``). TF32 is allowed for the fit (see :func:`tf32`).
    History keys: loss, accuracy, val_loss, val_accuracy, epoch_time (seconds).
    """
    with tf.device(get_device()), tf32(True):
        bars = [TqdmCallback(verbose=1 if verbose else 0, leave=True)] if verbose else []
        history = model.fit(train_data, validation_data=val_data, epochs=epochs, verbose=0, shuffle=False,
                            callbacks=[_EpochTimer(), *bars, *callbacks])
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def evaluate(model: keras.Model, data) -> dict:
    """Mean loss and metrics over a data set: ``{"loss": float, "accuracy": float}``."""
    with tf.device(get_device()):
        result = model.evaluate(data, verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def _ends_in_softmax(model: keras.Model) -> bool:
    last = model.layers[-1] if model.layers else None
    return isinstance(last, keras.layers.Softmax) or getattr(last, "activation", None) is keras.activations.softmax


def predict(model: keras.Model, images, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, classes) as numpy, rows summing to 1, in both frameworks.

    A model whose last layer applies softmax (``activation="softmax"`` or a ``Softmax``
    layer) gives them itself; any other model is taken to return logits (a loss with
    ``from_logits=True``) and softmax is applied. images: as :func:`to_tensor_images`.
    """
    with tf.device(get_device()):
        out = np.asarray(model.predict(to_tensor_images(images), batch_size=batch_size, verbose=0), dtype=np.float32)
    if _ends_in_softmax(model):
        return out
    out = np.exp(out - out.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def feature_maps(model: keras.Model, layer: keras.layers.Layer, images) -> np.ndarray:
    """The output of ``layer`` (a layer of ``model``) for ``images`` as numpy.

    Built as a second Keras model from the model's input to the layer's output, so
    the model must have been built on an ``Input``. For a conv layer: (N, H, W, C).
    """
    if layer not in model.layers:
        raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # a list of one warns in Keras 3
    probe = keras.Model(inputs=inputs, outputs=layer.output)
    with tf.device(get_device()):
        return np.asarray(probe(to_tensor_images(images), training=False))


def conv_filters(layer: keras.layers.Conv2D) -> np.ndarray:
    """A conv layer's kernels as numpy (out_channels, in_channels, kH, kW), the layout
    of PyTorch, so that both frameworks' filters plot alike (Keras stores (kH, kW, in, out))."""
    return np.transpose(np.asarray(layer.kernel), (3, 2, 0, 1))


# --- sequences (lesson 04) ---
# Recurrent models and truncated BPTT, shared by the RNN, LSTM and GRU lessons. Sequence
# batches are (B, T, D); weights come in the neutral layout of course_utils.sequences,
# which is Keras' own (kernel (D, H), recurrent_kernel (H, H), bias (H,)).

_RECURRENT = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def rnn_regressor(input_size: int, hidden_size: int, output_size: int = 1, return_sequences: bool = False,
                  cell: str = "rnn", batch_size: int | None = None, num_layers: int = 1,
                  bidirectional: bool = False) -> keras.Sequential:
    """Recurrent layers and a dense head: x (B, T, D) -> (B, O) from the last step, or
    (B, T, O) at every step with ``return_sequences=True``. ``cell``: ``"rnn"``
    (``SimpleRNN``, tanh), ``"lstm"`` or ``"gru"``; ``num_layers`` stacked layers of
    ``hidden_size`` units (all but the last return sequences); ``bidirectional`` wraps
    each in ``Bidirectional`` (outputs concatenated: 2 * hidden_size features).

    With ``batch_size`` the recurrent layers are **stateful** (Keras' truncated BPTT):
    their final state after one batch is the initial state of the next, the batch size
    is fixed and any sequence length is accepted; see :func:`train_truncated_bptt`. Not
    compiled. Same arguments as the PyTorch twin.
    """
    if cell not in _RECURRENT:
        raise ValueError(f"cell must be one of {', '.join(_RECURRENT)}, got {cell!r}")
    if int(num_layers) != num_layers or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    stateful = batch_size is not None
    layers = [keras.Input(batch_shape=(batch_size, None, input_size)) if stateful else keras.Input((None, input_size))]
    for k in range(int(num_layers)):
        layer = _RECURRENT[cell](hidden_size, return_sequences=return_sequences or k < num_layers - 1,
                                 stateful=stateful)
        layers.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
    layers.append(keras.layers.Dense(output_size))
    return keras.Sequential(layers, name=f"{cell}_regressor")


def _recurrent_directions(model: keras.Model) -> list:
    """The model's recurrent layers, one per layer and direction, ordered layer 0
    forward, layer 0 backward, layer 1 forward, ..."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            found.append(layer)
    return found


def set_rnn_weights(model: keras.Model, weights: dict) -> None:
    """Copy neutral-layout (Keras-layout) weights into the recurrent layers of a model
    (and the ``Dense`` head after them), any cell, depth and direction.

    weights: ``W_xh (D, G*H)``, ``W_hh (H, G*H)``, ``b_h`` for a one-layer model (see
    :func:`course_utils.sequences.random_rnn_weights`; G = 1 for rnn, 4 for lstm, 3 for
    gru, whose ``b_h`` is (2, 3H)), or ``layers``: a list of such ``(kernel,
    recurrent_kernel, bias)`` triples ordered layer 0 forward, layer 0 backward, layer 1
    forward, ...; optionally ``W_hy (H * directions, O)``, ``b_y (O,)`` for the head.
    """
    rnns = _recurrent_directions(model)
    if not rnns:
        raise ValueError(f"model {model.name!r} has no recurrent layer")
    if "layers" in weights:
        layers = [tuple(triple) for triple in weights["layers"]]
    else:
        missing = [k for k in ("W_xh", "W_hh", "b_h") if k not in weights]
        if missing:
            raise ValueError(f"the weights need 'layers' or W_xh, W_hh and b_h; missing {', '.join(missing)}")
        layers = [(weights["W_xh"], weights["W_hh"], weights["b_h"])]
    if len(layers) != len(rnns) or any(len(triple) != 3 for triple in layers):
        raise ValueError(f"the model has {len(rnns)} recurrent layer direction(s), each taking (kernel, "
                         f"recurrent_kernel, bias); the weights give {len(layers)}")
    pairs = []
    for k, (rnn, triple) in enumerate(zip(rnns, layers)):
        names = (f"layer {k} kernel", f"layer {k} recurrent_kernel", f"layer {k} bias") if "layers" in weights \
            else ("W_xh", "W_hh", "b_h")
        pairs += list(zip(rnn.weights, triple, names))
    if "W_hy" in weights:
        last = max(i for i, layer in enumerate(model.layers)
                   if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)))
        dense = model.layers[last + 1]
        pairs += list(zip(dense.weights, (weights["W_hy"], weights["b_y"]), ("W_hy", "b_y")))
    for variable, value, key in pairs:
        if tuple(variable.shape) != np.shape(value):
            raise ValueError(f"{key}: the model has shape {tuple(variable.shape)}, the weights {np.shape(value)}")
    for variable, value, _ in pairs:
        variable.assign(np.asarray(value).astype(variable.dtype))


def make_sequence_loader(x, y, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(x, y)`` batches for sequence regression: x float32
    (B, T, D), y float32 (B, O) or (B, T, O). Shuffled anew each epoch with a fixed seed."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} sequences, {len(y)} targets")
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _ResetStates(keras.callbacks.Callback):
    """Each epoch of truncated BPTT starts from a zero state."""

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()


def train_truncated_bptt(model: keras.Model, x_chunks, y_chunks, epochs: int = 1, verbose: bool = True) -> dict:
    """Truncated BPTT over the chunks of one long series (see
    :func:`course_utils.sequences.truncated_bptt_chunks`), the Keras way: a stateful model
    (``rnn_regressor(..., return_sequences=True, batch_size=B)``), compiled with its
    optimizer (clipping there: ``global_clipnorm=``) and loss, is fitted on the chunks in
    order, one chunk per step, without shuffling.

    x_chunks, y_chunks: (K, B, L, D) and (K, B, L, O); chunk k + 1 continues chunk k. The
    stateful layer **carries** its final state into the next step, and since each step
    is its own gradient computation the graph is **cut** there: gradients flow back at
    most L steps. States are reset at the start of each epoch. Returns the history
    ``{"loss": [...], "epoch_time": [...]}``.
    """
    x_chunks, y_chunks = np.asarray(x_chunks, dtype=np.float32), np.asarray(y_chunks, dtype=np.float32)
    if x_chunks.ndim != 4 or y_chunks.shape[:3] != x_chunks.shape[:3]:
        raise ValueError(f"expected chunks (K, B, L, D) and (K, B, L, O), got {x_chunks.shape} and {y_chunks.shape}")
    if not any(getattr(layer, "stateful", False) for layer in model.layers):
        raise ValueError("train_truncated_bptt needs a stateful model: rnn_regressor(..., batch_size=B)")
    chunks = tf.data.Dataset.from_tensor_slices((x_chunks, y_chunks))  # one element = one chunk = one batch
    return train(model, chunks, epochs=epochs, verbose=verbose, callbacks=[_ResetStates()])


def _stateless_config(config):
    """A model config with every ``stateful`` turned off and every fixed batch size freed."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key == "stateful":
                value = False
            elif key in ("batch_shape", "batch_input_shape") and isinstance(value, (list, tuple)) and value:
                value = [None, *value[1:]]
            else:
                value = _stateless_config(value)
            out[key] = value
        return out
    if isinstance(config, list):
        return [_stateless_config(item) for item in config]
    return config


def predict_steps(model: keras.Model, x) -> np.ndarray:
    """The model's outputs for sequences x (N, T, D), from a zero initial state, as numpy:
    (N, T, O) for a ``return_sequences`` model, else (N, O). A stateful model is copied
    into a stateless twin first (from its config, so any depth and direction), so its
    carried state is neither used nor changed and any N is accepted."""
    x = np.asarray(x, dtype=np.float32)
    if any(getattr(layer, "stateful", False) for layer in model.layers):
        twin = model.__class__.from_config(_stateless_config(copy.deepcopy(model.get_config())))
        twin.set_weights(model.get_weights())
        model = twin
    with tf.device(get_device()):
        return np.asarray(model(x, training=False))


# --- transfer learning (lesson 03) ---
# The course's own VGG-style network, the same in both frameworks; its pretrained weights
# ship as datasets/vgg_style_fashion.npz (see datasets/build_pretrained.py).

VGG_STYLE_BLOCKS = ((16, 2), (32, 2), (64, 3))
"""(channels, convolutions) of each block of :func:`vgg_style_network`."""


def vgg_style_network(weights=None, include_top: bool = True) -> keras.Model:
    """The course's VGG-style network: (N, 32, 32, 3) images in [0, 1] -> (N, 10) probabilities.

    Three blocks of 3x3 "same" convolutions with ReLU, each ending in 2x2 max pooling
    (16-16 | 32-32 | 64-64-64 channels), with Keras VGG16's layer names (``block1_conv1``,
    ..., ``block3_pool``), then ``flatten`` (1,024 features from (4, 4, 64)), ``dropout``
    (0.3) and ``classifier`` (``Dense(10, activation="softmax")``): 119,258 parameters,
    109,008 in the blocks. ``include_top=False`` keeps only the blocks:
    (N, 32, 32, 3) -> (N, 4, 4, 64). A functional model named ``vgg_style``.

    weights: ``None`` (Keras' default initialisation) or the path of a file saved by
    :func:`course_utils.porting.save_sequential_npz` (e.g. ``find_weights("vgg_style_fashion").path``),
    loaded through ``load_sequential_npz(path, layout="keras")``; without the top only the
    convolutions' weights are used.
    """
    from .porting import load_sequential_npz

    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for b, (channels, n) in enumerate(VGG_STYLE_BLOCKS, start=1):
        for i in range(n):
            x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"block{b}_conv{i + 1}")(x)
        x = keras.layers.MaxPool2D(2, name=f"block{b}_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dropout(0.3, name="dropout")(x)
        x = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, x, name="vgg_style")
    if weights is not None:
        arrays = load_sequential_npz(weights, layout="keras")
        needed = len(model.get_weights())
        if len(arrays) < needed:
            raise ValueError(f"{weights} holds {len(arrays)} arrays; the network needs {needed}")
        model.set_weights(arrays[:needed])
    return model
