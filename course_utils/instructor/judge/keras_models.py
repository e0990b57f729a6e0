"""Keras models a test passes: their configuration and weights to the kernel, their state back as data; a layer
of the answer's own class that the answer made: kept in the kernel, a stand-in here whose call runs there."""
from __future__ import annotations

import contextlib
import functools
import json
import sys

from course_utils.instructor.judge.base import _KERNEL, FORWARD, AnswerError, NotData, _keep, _text


def _is_keras_layer(value) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.layers.Layer)


def _keras_layers(layer) -> list:
    """The layer and every layer inside it, in Keras' own order (the same for a model and its copy)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))  # Keras 3 has no public recursive walk


def _check_keras_apart(layer, sent: list) -> None:
    """Each Keras model goes as a copy of its own: a model and a layer inside it (or two models sharing
    a layer) would become separate copies in the kernel, and what the answer did to one not reach the other."""
    mine = {id(w) for w in layer.weights}
    if any(mine & {id(w) for w in other.weights} or layer in _keras_layers(other) or other in _keras_layers(layer)
           for other in sent):
        raise NotData("Keras models that share layers or weights (a model and a layer inside it) in one call")


def _keras_spec(layer) -> dict:
    """What the kernel needs to make a copy of the grader's Keras model (its weights apart): its
    configuration, and the trainable flags of its layers and weights (a flag set on a weight is not
    in the configuration)."""
    import keras

    if not layer.built:  # the answer would build it in the kernel: new weights (and layers) the test never had
        raise NotData(f"an unbuilt Keras model ({type(layer).__name__}): build it first (keras.Input or .build)")
    try:
        config = json.dumps(keras.saving.serialize_keras_object(layer))
    except Exception as error:  # noqa: BLE001 - a test's own class without get_config
        raise NotData(f"a Keras model that cannot be described by its configuration ({_text(error)})") from None
    return {"config": config, "layers": [bool(x.trainable) for x in _keras_layers(layer)],
            "weights": [bool(w.trainable) for w in layer.weights], "compile": _compile_settings(layer)}


def _keras_made(spec, weights: list):
    """The grader's Keras model, made in the kernel from :func:`_keras_spec` and its weights."""
    import keras

    try:
        # the test's own layer classes (a Recorder) were made from the cell's source (:func:`_made_classes`)
        classes = {name: cls for name, cls in getattr(_KERNEL, "classes", {}).items() if isinstance(cls, type)}
        layer = keras.saving.deserialize_keras_object(json.loads(str(spec["config"])), custom_objects=classes)
        layer.set_weights(weights)
        _set_trainable(layer, spec["layers"], spec["weights"])
        if isinstance(spec.get("compile"), dict):  # the grader's own settings (the kernel trusts its request)
            with contextlib.suppress(Exception):  # a test's own loss function cannot cross: the copy stays uncompiled
                layer.compile_from_config(spec["compile"])
    except Exception as error:  # noqa: BLE001
        raise NotData(f"the grader's Keras model could not be made in the kernel ({_text(error)})") from None
    return layer


def _set_trainable(model, layer_flags: list, weight_flags: list) -> None:
    """The trainable flags of each layer (outer ones first: setting one sets those inside it), then of each weight."""
    for layer, flag in zip(_keras_layers(model), layer_flags):
        if isinstance(flag, bool) and layer.trainable != flag:
            layer.trainable = flag
    for variable, flag in zip(model.weights, weight_flags):
        if isinstance(flag, bool) and variable.trainable != flag:
            variable.trainable = flag


def _keras_before(layer) -> tuple:
    """What :func:`_keras_state` compares with after the call: the weights, the optimizer and the compile settings."""
    return list(layer.weights), getattr(layer, "optimizer", None), _compile_settings(layer)


def _keras_state(layer, before: tuple) -> dict:
    """After a call: each layer's ``trainable``; each weight's value, whether it is still the variable it was,
    and its own ``trainable``; the compile settings when the answer compiled the model again."""
    import numpy as np

    weights, optimizer, settings = before
    state = {"trainable": [bool(x.trainable) for x in _keras_layers(layer)],
             "weights": [[np.asarray(w.numpy()), i < len(weights) and w is weights[i], bool(w.trainable)]
                         for i, w in enumerate(layer.weights)]}
    now = _compile_settings(layer)
    if getattr(layer, "optimizer", None) is not optimizer or now != settings:  # compiled again by the answer
        state["compile"] = now
    return state


def _write_back_keras(model, state) -> None:
    """Make the grader's Keras ``model`` what the kernel's copy became: trainable flags (layers, then
    weights) and values assigned in place. Layers or weights added, removed or replaced do not cross:
    the call fails, saying so."""
    import numpy as np

    layers, variables = _keras_layers(model), list(model.weights)
    flags = state.get("trainable") if isinstance(state, dict) else None
    weights = state.get("weights") if isinstance(state, dict) else None
    if not isinstance(flags, list) or not isinstance(weights, list) or not all(type(f) is bool for f in flags) \
            or not all(isinstance(w, list) and len(w) == 3 and type(w[2]) is bool for w in weights):
        raise AnswerError("the student's kernel sent a malformed model state")
    if len(flags) != len(layers):
        raise AnswerError("the answer added or removed layers of the model: the test gets back a model's "
                          "trainable flags and weights, not new layers")
    if len(weights) != len(variables) or not all(w[1] is True for w in weights):
        raise AnswerError("the answer added, removed or replaced weights of the model: the test gets back weights "
                          "changed in place (assign), not new variables")
    changed = []
    for variable, (value, _, _) in zip(variables, weights):
        current = np.asarray(variable.numpy())
        if not isinstance(value, np.ndarray) or value.shape != current.shape or value.dtype != current.dtype:
            raise AnswerError(f"the answer changed the shape or dtype of the weight {variable.path}")
        if value.tobytes() != current.tobytes():
            changed.append((variable, value))
    settings = state.get("compile")
    compiled = _compiled_settings(settings) if settings is not None else None  # checked first too
    _set_trainable(model, flags, [w[2] for w in weights])  # checked first: nothing is applied from a state refused
    for variable, value in changed:
        variable.assign(value)
    if compiled is not None:
        try:
            model.compile(**compiled)
        except Exception as error:  # noqa: BLE001 - settings Keras' own resolution refuses (an unknown name)
            raise AnswerError(f"the model could not be compiled again with the answer's settings: {_text(error)}") from None


# -- a layer the answer made (``LpPool2D(2, 2)``): kept in the kernel, called from here -----------------------------
# Keras' dtype policies a stand-in may take (its inputs are cast to the policy's compute dtype, as the kernel's are)
DTYPE_POLICIES = {"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"}


def _made_keras_description(layer) -> dict:
    """The kernel's side: a Keras layer of the answer's own class that the answer made, kept under a number,
    described by its class's name and dtype policy. Its weights, if it has any, stay in the kernel and are not
    the stand-in's (no test that is judged looks at a made layer's weights: a model the answer builds is
    checked in the kernel, by a test that is not judged)."""
    return {"number": _keep(layer), "class": type(layer).__qualname__[:200], "dtype": str(layer.dtype_policy.name)}


def _keras_mirror(description):
    """The grader's side: a :func:`_kernel_layer_class` standing in for the layer the kernel describes."""
    if not isinstance(description, dict) or type(description.get("number")) is not int \
            or description.get("dtype") not in DTYPE_POLICIES:
        raise NotData("a malformed Keras layer from the student's kernel")
    layer = _kernel_layer_class()(dtype=description["dtype"])
    for key, value in (("_kernel_model", description["number"]), ("_kernel_root", layer),
                       ("kernel_class", str(description.get("class", "?"))[:200])):
        object.__setattr__(layer, key, value)  # not Keras' tracking: plain attributes of the stand-in
    return layer


@functools.cache
def _kernel_layer_class():
    import keras

    class KernelLayer(keras.layers.Layer):
        """The grader's stand-in for a Keras layer of the answer's own class: Keras' ``__call__`` here (inputs
        cast to the layer's dtype), ``call`` in the student's kernel with its weights there, gradients from there."""

        def call(self, *args, training=None, **kwargs):  # (named, or Keras' __call__ would drop it)
            call = getattr(self, "_kernel_call", None)
            if call is None:
                raise RuntimeError("this layer was made in the student's kernel and has no connection to it now")
            if training is not None:
                kwargs["training"] = training
            return call(FORWARD, (self, "", list(args), dict(kwargs)), {})

        def __repr__(self) -> str:
            return f"<the student's {self.__dict__.get('kernel_class', '?')}>"

    KernelLayer.__module__ = __name__
    return KernelLayer


# -- compile settings: the answer's, described as data in the kernel, made again here from Keras' own classes ------
COMPILE_PLAIN = ("loss_weights", "run_eagerly", "steps_per_execution", "jit_compile")
# Keras' optimizers made from a kernel's settings (not Muon, whose layer patterns are regular expressions
# it searches with, nor the wrappers of another optimizer)
OPTIMIZERS = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion", "Lamb",
              "Adafactor"}
MAX_SETTING = 1_000  # the largest number in a configuration: MeanIoU(num_classes=n) keeps n * n numbers


def _compile_settings(model) -> dict | None:
    """A compiled model's settings (Keras' ``get_compile_config``: the optimizer, the loss and the metrics
    serialized, a learning rate as a number), or None when it is not compiled."""
    if not getattr(model, "compiled", False):
        return None
    config = model.get_compile_config()
    return json.loads(json.dumps(config, default=str)) if isinstance(config, dict) else None


def _keras_class(entry: dict, module: str, base_name: str):
    """What a serialized entry names, when it is one of Keras' own in ``keras.<module>``: a class deriving
    from ``base_name`` (``Optimizer``, ``Loss``, ``Metric``), or one of its loss or metric functions."""
    import keras

    library = getattr(keras, module)
    function = entry.get("class_name") == "function"
    name = entry.get("config") if function else entry.get("class_name")
    found = getattr(library, name, None) if isinstance(name, str) and name.isidentifier() else None
    if function:  # a loss or metric function (not the namespace's own get, serialize or deserialize)
        ok = type(found).__name__ == "function" and name not in ("get", "serialize", "deserialize")
    else:
        ok = isinstance(found, type) and issubclass(found, getattr(library, base_name)) \
            and (module != "optimizers" or name in OPTIMIZERS)
    if not ok or not str(getattr(found, "__module__", "")).startswith("keras."):
        raise NotData(f"compile settings naming {str(name)[:100]!r}, which is not one of the keras.{module} the "
                      f"grader makes: compile with Keras' own {module} (by name or class)")
    return found


def _small(value) -> bool:
    """A small number, a short string, None, or a short flat list of them."""
    def scalar(v):
        return v is None or type(v) is bool or (type(v) in (int, float) and abs(v) <= MAX_SETTING) \
            or (type(v) is str and len(v) <= 200)

    return scalar(value) or (type(value) is list and len(value) <= 50 and all(map(scalar, value)))


def _plain_config(config) -> dict:
    """Keyword arguments that are :func:`_small`: never a nested configuration, which Keras' own
    ``from_config`` would deserialize (a schedule, a function), nor a size that makes a metric allocate
    (``AUC(num_thresholds=10**10)``)."""
    if not isinstance(config, dict) or len(config) > 50 or not all(
            isinstance(k, str) and k.isidentifier() and _small(v) for k, v in config.items()):
        raise NotData("compile settings with a configuration that is not plain data (a schedule, a function, "
                      f"a number above {MAX_SETTING})")
    return config


def _setting(entry, module: str, base_name: str):
    """A loss or metric (or the optimizer): a name Keras resolves itself, one of Keras' own classes made
    from its plain configuration, or one of Keras' own functions."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        raise NotData(f"malformed compile settings ({module})")
    found = _keras_class(entry, module, base_name)
    if not isinstance(found, type):  # a function
        return found
    try:
        return found(**_plain_config(entry.get("config")))  # the constructor, not from_config (above)
    except NotData:
        raise
    except Exception as error:  # noqa: BLE001 - whatever Keras' constructor raises on the kernel's arguments
        raise NotData(f"compile settings that Keras' {found.__name__} refuses ({_text(error)})") from None


def _compiled_settings(settings) -> dict:
    """The keyword arguments of ``model.compile`` that the kernel's settings describe, made here from
    Keras' own optimizers, losses and metrics only (a name, or a class with its plain configuration)."""
    if not isinstance(settings, dict):
        raise NotData("malformed compile settings")
    optimizer = settings.get("optimizer")
    if isinstance(optimizer, dict) and optimizer.get("class_name") == "function":
        raise NotData("compile settings naming a function as the optimizer")
    made = {"optimizer": _setting(optimizer, "optimizers", "Optimizer"),
            "loss": _setting(settings.get("loss"), "losses", "Loss") if settings.get("loss") is not None else None}
    for key in ("metrics", "weighted_metrics"):
        entries = settings.get(key)
        if entries is not None:
            if not isinstance(entries, list) or len(entries) > 16:
                raise NotData(f"compile settings whose {key} are not a list of at most 16 (one output: a list of "
                              "metrics)")
            made[key] = [_setting(e, "metrics", "Metric") for e in entries]
    for key in COMPILE_PLAIN:
        if settings.get(key) is not None:
            if not _small(settings[key]):
                raise NotData(f"compile settings whose {key} is not small plain data")
            made[key] = settings[key]
    return made
