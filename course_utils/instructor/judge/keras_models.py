"""Keras models a test passes: their configuration and weights to the kernel, their state back as data. Keras
models the answer makes: made again here from checked configurations and the kernel's weights, with stand-ins
for the answer's own classes whose call runs the kernel's model (kept there)."""
from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import threading

from course_utils.instructor.judge.base import (
    _KERNEL,
    FORWARD,
    MAX_DEPTH,
    AnswerError,
    NotData,
    _keep,
    _kept_ids,
    _text,
)


def _is_keras_layer(value) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.layers.Layer)


def _keras_layers(layer) -> list:
    """The layer and every layer inside it, in Keras' own order (the same for a model and its copy), but
    input layers (a Sequential built here by its first call has one, its copy in the kernel may have none)."""
    import keras

    return [x for x in layer._flatten_layers(include_self=True, recursive=True)  # Keras 3 has no public recursive walk
            if not isinstance(x, keras.layers.InputLayer)]


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
    now = _compile_settings(layer)
    state = {"trainable": [bool(x.trainable) for x in _keras_layers(layer)],
             "weights": [[np.asarray(w.numpy()), i < len(weights) and w is weights[i], bool(w.trainable)]
                         for i, w in enumerate(layer.weights)]}
    if id(layer) in _kept_ids() and [id(w) for w in layer.weights] != [id(w) for w in weights]:
        # a model the answer made, built by the call (a model of its class making its layers on the first call)
        state["tree"] = _keras_description(layer)
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
    made = model.__dict__.get("_kernel_root") is model  # a model the answer made (kept in the kernel)
    if made and "tree" in state and isinstance(model, _KernelCalls) and [tuple(v.shape) for v in variables] != [
            getattr(w[0], "shape", None) for w in weights]:
        _transplanted(model, state["tree"])  # a model of the answer's class that its call built
        if state.get("compile") is not None:
            _recompiled(model, state["compile"])
        return
    if len(flags) != len(layers):
        raise AnswerError("the answer added or removed layers of the model: the test gets back a model's "
                          "trainable flags and weights, not new layers")
    if len(weights) != len(variables) or not (made or all(w[1] is True for w in weights)):
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
        _recompiled(model, settings, compiled)


def _recompiled(model, settings, compiled: dict | None = None) -> None:
    """Compile the grader's ``model`` with the kernel's compile ``settings`` (Keras' own classes only); a
    stand-in's model runs eagerly (Keras' fit and evaluate would trace it, and its call cannot be traced)."""
    compiled = _compiled_settings(settings) if compiled is None else compiled
    if any(_is_stand_in(x) for x in _keras_layers(model)):
        compiled["run_eagerly"] = True
    try:
        model.compile(**compiled)
    except Exception as error:  # noqa: BLE001 - settings Keras' own resolution refuses (an unknown name)
        raise AnswerError(f"the model could not be compiled with the answer's settings: {_text(error)}") from None


# -- a layer or model the answer made (``build_cnn()``, ``LpPool2D(2, 2)``) ----------------------------------------
# Keras' own layers are made again here from their configurations (checked first: :func:`_checked_config`) and
# the kernel's weights; a layer of the answer's own class (or one holding such a layer) is a stand-in here
# (:func:`_kernel_layer_class`) holding its variables and its layers made the same way, whose ``call`` runs the
# kernel's layer (kept there) after sending it the stand-in's weights.
DTYPE_POLICIES = {"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"}
MADE_LAYERS = 512             # layers and calls of layers that the models of one reply describe
MAX_LOSSES = 64               # losses a stand-in's call reports
MAX_ACTIVATIONS = 1 << 24     # numbers per example in the output of a layer made here (Conv2D(2**20, 1))
UNBUILT_WEIGHTS = 1 << 24     # numbers the layers of a reply may allocate beyond those the kernel sent (built here)
CONFIG_BYTES = 1 << 20        # the JSON of one configuration
CONFIG_MODULES = {  # what a configuration may name: module -> the base class of what it may name there
    "keras.layers": "Layer", "keras.initializers": "Initializer", "keras.regularizers": "Regularizer",
    "keras.constraints": "Constraint"}
CONFIG_NAMES = {("keras", "Sequential"), ("keras", "DTypePolicy"), ("keras", "FloatDTypePolicy"),
                ("keras.src.models.functional", "Functional")}
# settings Keras makes an object of: a dict there must name Keras' own (Keras writes a lambda as {"value": its code})
OBJECT_KEYS = ("activation", "initializer", "regularizer", "constraint", "dtype")
# Keras' layers made from a configuration here: those of the course's models and their plausible variants, none
# of which makes an output larger than its input and weights do (not UpSampling, padding or repeating layers, nor
# attention's scores), runs code (Lambda) or reads files (preprocessing); any other is a stand-in (its call runs in
# the kernel)
MADE_HERE = {
    "InputLayer", "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Identity", "Conv1D",
    "Conv2D", "Conv3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Flatten", "Reshape", "Permute", "Cropping1D", "Cropping2D",
    "Cropping3D", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "BatchNormalization", "LayerNormalization",
    "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "StackedRNNCells", "Bidirectional",
    "TimeDistributed", "Embedding", "Masking"}
# the dtypes and dtype policies a configuration may name (not Keras' quantized ones, int8_from_float32)
PLAIN_DTYPES = DTYPE_POLICIES | {"int8", "int16", "int32", "int64", "uint8", "bool"}


class KerasReply:
    """What the Keras models of one reply may still cost the grader: layers and calls of layers
    (:data:`MADE_LAYERS`), numbers allocated beyond the weights sent (:data:`UNBUILT_WEIGHTS`), and the arrays
    counted as sent (an array the reply names twice is sent once)."""

    def __init__(self):
        self.layers, self.unbuilt, self.counted = MADE_LAYERS, [UNBUILT_WEIGHTS], set()

    def spend_layers(self, count: int) -> None:
        self.layers -= count
        if self.layers < 0:
            raise NotData(f"Keras models of more than {MADE_LAYERS} layers and calls of layers in one reply")


@functools.cache
def _config_classes() -> dict:
    """module -> {name: class}: Keras' own classes a configuration may name (:data:`CONFIG_MODULES`)."""
    import keras

    found = {}
    for module, base in CONFIG_MODULES.items():
        library = getattr(keras, module.split(".")[1])
        root = getattr(library, base)
        found[module] = {
            name: cls for name in dir(library) if isinstance(cls := getattr(library, name), type)
            and issubclass(cls, root) and (module != "keras.layers" or cls.__name__ in MADE_HERE)
            and cls.__module__.startswith(f"keras.src.{module.split('.')[1]}.")}
    return found


def _own_keras_class(cls) -> bool:
    """A class of Keras' own that :func:`_checked_config` lets a configuration name (a layer, Sequential, Functional)."""
    import keras

    return cls in _config_classes()["keras.layers"].values() or cls is keras.Sequential \
        or (cls.__name__ == "Functional" and cls.__module__ == "keras.src.models.functional")


def _checked_config(config) -> int:
    """Refuse a configuration naming anything but Keras' own layers, initializers, regularizers, constraints,
    dtype policies and the symbolic tensors of a functional model (never a function, a Lambda's code, a
    preprocessing layer's files, a registered class), or holding more than small plain data; the number of
    layers and calls of layers it describes."""
    count = [0]
    _config_walk(config, 0, True, count)
    return count[0]


def _sanitized(config):
    """The kernel's side: ``config`` with each object it names that :func:`_checked_config` refuses (a
    function of the answer's as an activation) replaced by None; its plain data checked."""
    return _config_walk(config, 0, False, [0])


def _config_walk(value, depth: int, strict: bool, count: list):
    """``value`` checked (``strict``: NotData for an object :func:`_checked_config` refuses) or made again with
    None in place of such objects; ``count`` adds up the layers and calls of layers in it."""
    if depth > 64:
        raise NotData("a Keras configuration nested too deep")
    if value is None or type(value) in (bool, float) or (type(value) is int and abs(value) < 2**31) \
            or (type(value) is str and len(value) <= 1000):
        return value
    if type(value) is list and len(value) <= 10_000:
        items = [_config_walk(item, depth + 1, strict, count) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if type(value) is not dict or len(value) > 200 or not all(type(k) is str for k in value):
        raise NotData("a Keras configuration holding something other than small plain data")
    if "class_name" in value:
        refused = _refusal(value)
        if refused:
            if strict:
                raise NotData(refused)
            return None
        count[0] += value.get("module") == "keras.layers" or value.get("class_name") in (
            "__keras_tensor__", "Sequential", "Functional")
    items = {}
    for key, item in value.items():
        if (isinstance(item, dict) and "class_name" not in item and key.endswith(OBJECT_KEYS)) or (
                key == "dtype" and isinstance(item, str) and item not in PLAIN_DTYPES):
            if strict:
                raise NotData(f"a Keras configuration whose {key[:60]} names nothing of Keras' own it may name")
            items[key] = None
        else:
            items[key] = _config_walk(item, depth + 1, strict, count)
    return value if all(items[k] is v for k, v in value.items()) else items


def _refusal(entry: dict) -> str | None:
    """Why a configuration may not name ``entry`` (a dict with a ``class_name``), or None."""
    name, module = entry.get("class_name"), entry.get("module")
    if name == "__keras_tensor__":  # a functional model's symbolic input: its shape, dtype and history
        return "a malformed Keras configuration" if module is not None or set(entry) - {"class_name", "config"} else None
    policy = isinstance(name, str) and name.endswith("DTypePolicy")
    if entry.get("registered_name") not in (None, name) or not (
            (module, name) in CONFIG_NAMES or name in _config_classes().get(module, {})) or (
            policy and (entry.get("config") or {}).get("name") not in PLAIN_DTYPES):
        return (f"a Keras configuration naming {str(module)[:60]}.{str(name)[:60]}, which is not one of Keras' own "
                "layers the grader makes again")
    return None


def _rebuildable_config(layer) -> tuple[str, list] | None:
    """The kernel's side: the configuration of ``layer`` (as JSON), when it and every layer inside it are of
    Keras' own classes, and the places (in :func:`_keras_layers`' order) of the layers whose call must run
    here: those whose configuration names what the grader does not make (an activation of the answer's own,
    left out of the configuration sent). A layer of the answer's class deriving from one of Keras' layers
    without a configuration of its own (``class MyDense(keras.layers.Dense)``) goes as that Keras layer, its
    call run here. None when Keras cannot write the configuration."""
    layers = _keras_layers(layer)
    base = _keras_base(type(layer))
    if not all(_own_keras_class(type(x)) for x in layers[1:]) or (base is None and not _own_keras_class(type(layer))):
        return None
    try:
        config = _serialized(layer)
        if base is not None:  # written as its Keras base class, with the configuration that class reads
            config = {**config, "module": "keras.layers", "class_name": base.__name__, "registered_name": None}
        text = json.dumps(_sanitized(config))  # (the configuration as sent: a layer whose own differs is forwarded)
        forwarded = []
        for k, x in enumerate(layers):
            own = _serialized(x) if k else config
            if (k == 0 and base is not None) or "call" in vars(x) or _foreign_functions(x) or _sanitized(own) != own:
                forwarded.append(k)  # (a call of the answer's set on the layer itself runs in the kernel too)
    except Exception:  # noqa: BLE001 - a configuration Keras cannot write, or one that is not plain data
        return None
    return (text, forwarded) if len(text) <= CONFIG_BYTES else None


def _keras_base(cls):
    """The kernel's side: the Keras layer class that the answer's class ``cls`` derives from and whose
    configuration it keeps (no ``get_config`` of its own); None for Keras' own classes and any other."""
    if _own_keras_class(cls):
        return None
    for base in cls.__mro__[1:]:
        if base in _config_classes()["keras.layers"].values():
            return base if cls.get_config is base.get_config else None
    return None


def _foreign_functions(layer) -> list:
    """The kernel's side: the names of the layer's activations that are not Keras' own function of their name
    (Keras writes a function of the answer's named ``relu`` as ``"relu"``: the grader would make Keras' relu)."""
    import keras

    found = []
    for key, value in vars(layer).items():
        if key.endswith("activation") and callable(value):
            try:
                same = keras.activations.get(value.__name__) is value
            except Exception:  # noqa: BLE001 - no such name among Keras' activations (a lambda)
                same = False
            if not same:
                found.append(key)
    return found


def _serialized(layer) -> dict:
    """The kernel's side: Keras' configuration of ``layer``, an activation of the answer's own written as
    ``linear`` (the layer's call then runs in the kernel: :func:`_rebuildable_config`)."""
    import keras

    swapped = [(x, key, vars(x)[key]) for x in _keras_layers(layer) for key in _foreign_functions(x)]
    try:
        for x, key, _ in swapped:
            object.__setattr__(x, key, keras.activations.linear)
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    finally:
        for x, key, value in swapped:
            object.__setattr__(x, key, value)
    return _uncompiled(config)


def _own_variables(layer) -> list:
    """The variables a layer holds itself (not those of its layers), in Keras' order (trainable ones first)."""
    found, seen = [], set()
    for variable in layer._trainable_variables + layer._non_trainable_variables:  # Keras 3 has no public accessor
        if id(variable) not in seen:
            seen.add(id(variable))
            found.append(variable)
    return found


def _layer_tree(layer, count: list, depth: int = 0) -> dict:
    """The kernel's side: ``layer`` described as data, its configuration and weights (Keras' own), or its own
    variables and its layers (the answer's class, or a Keras model holding one)."""
    import keras
    import numpy as np

    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MADE_LAYERS:
        raise NotData(f"a Keras model of more than {MADE_LAYERS} layers, or nested deeper than {MAX_DEPTH}")
    config = _rebuildable_config(layer)
    if config is not None:
        return {"config": config[0], "forwarded": config[1], "values": [np.asarray(w.numpy()) for w in layer.weights]}
    trainable = {id(v) for v in layer._trainable_variables}
    names = {id(v): k for k, v in vars(layer).items() if not k.startswith("_") and _is_keras_layer(v)}
    shape = None
    with contextlib.suppress(Exception):  # (a model of the answer's class has none)
        shape = [None if d is None else int(d) for d in layer.input_shape]
    return {"class": type(layer).__qualname__[:200], "model": isinstance(layer, keras.Model),
            "dtype": str(layer.dtype_policy.name), "input_shape": shape,
            "variables": [[str(v.name)[:100], np.asarray(v.numpy()), id(v) in trainable] for v in _own_variables(layer)],
            "children": [[names.get(id(c), ""), _layer_tree(c, count, depth + 1)] for c in layer._layers]}


def _keras_description(layer) -> dict:
    """The kernel's side: the whole of a layer or model the answer made (:func:`_layer_tree`), with the
    trainable flags of its layers and weights and its compile settings."""
    return {"tree": _layer_tree(layer, [0]), "flags": [bool(x.trainable) for x in _keras_layers(layer)],
            "weights": [bool(w.trainable) for w in layer.weights], "compile": _compile_settings(layer)}


def _made_keras_description(layer) -> dict:
    """The kernel's side: a layer or model the answer made, described; kept under a number when it holds a
    layer of the answer's own class (whose call runs here)."""
    description = _keras_description(layer)
    if "config" not in description["tree"] or description["tree"]["forwarded"]:
        description["number"] = _keep(layer)
    return description


def _keras_mirror(description, reply: KerasReply | None = None):
    """The grader's side: the layer or model the kernel describes, made of Keras' own classes and stand-ins,
    within what ``reply`` (one for all the models of a reply) may still cost."""
    model = _described_model(description, KerasReply() if reply is None else reply)
    number = description.get("number")
    stand_ins = [x for x in _keras_layers(model) if _is_stand_in(x)]
    if stand_ins and type(number) is not int:
        raise NotData("a malformed Keras model from the student's kernel")
    if stand_ins:
        _attach(model, number)
    if description.get("compile") is not None:
        _recompiled(model, description["compile"])
    return model


def _described_model(description, reply: KerasReply):
    """The model a :func:`_keras_description` describes, its trainable flags set, within the weights it sent
    (and what ``reply`` may still cost)."""
    if not isinstance(description, dict) or not isinstance(description.get("tree"), dict) \
            or not isinstance(description.get("flags"), list) or not isinstance(description.get("weights"), list):
        raise NotData("a malformed Keras model from the student's kernel")
    budget = [_sent_numbers(description["tree"], reply.counted), reply.unbuilt]  # (for as long as the model lives)
    with _within(budget):
        model = _rebuilt(description["tree"], reply)
    layers = _keras_layers(model)
    for layer in layers:
        object.__setattr__(layer, "_judge_budget", budget)  # a layer built later here (an unbuilt Sequential)
        for node in getattr(layer, "_inbound_nodes", ()):  # its outputs, where a symbolic input gave their shapes
            for tensor in getattr(node, "output_tensors", ()):
                if _per_example(tensor.shape) > MAX_ACTIVATIONS:
                    raise NotData(f"a Keras model with an output of more than {MAX_ACTIVATIONS} numbers per example")
    if len(layers) != len(description["flags"]) or len(model.weights) != len(description["weights"]):
        raise NotData("a Keras model from the student's kernel that could not be made again here")
    _set_trainable(model, description["flags"], description["weights"])
    return model


def _sent_numbers(node, counted: set, depth: int = 0) -> int:
    """How many numbers a :func:`_layer_tree` node sends (the weights of its layers and of those inside it),
    each array once in a reply (``counted``: the ids of those counted; a reply may name one array many times)."""
    import numpy as np

    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return 0
    values = node.get("values") if isinstance(node.get("values"), list) else \
        [v[1] for v in node.get("variables") or () if isinstance(v, list) and len(v) == 3]
    own = 0
    for value in values:
        if isinstance(value, np.ndarray) and id(value) not in counted:
            counted.add(id(value))
            own += int(value.size)
    children = node.get("children") if isinstance(node.get("children"), list) else []
    return own + sum(_sent_numbers(c[1], counted, depth + 1) for c in children if isinstance(c, list) and len(c) == 2)


def _rebuilt(node, reply: KerasReply, depth: int = 0):
    """One :func:`_layer_tree` node made here: a layer of Keras' own from its checked configuration, or a stand-in."""
    import keras
    import numpy as np

    if not isinstance(node, dict) or depth > MAX_DEPTH:
        raise NotData("a malformed Keras model from the student's kernel")
    if "config" in node:
        config, values = _parsed_config(node["config"], reply), node.get("values")
        if not isinstance(values, list):
            raise NotData("a malformed Keras model from the student's kernel")
        try:
            layer = keras.saving.deserialize_keras_object(config, custom_objects={}, safe_mode=True)
            layer.set_weights(values)
        except NotData:
            raise
        except Exception as error:  # noqa: BLE001 - what Keras refuses in a (checked) configuration
            raise NotData(f"a Keras layer that could not be made again from its configuration ({_text(error)})") from None
        if not _is_keras_layer(layer):
            raise NotData("a Keras configuration of something other than a layer")
        forwarded, layers = node.get("forwarded"), _keras_layers(layer)
        if not isinstance(forwarded, list) or not all(type(k) is int and 0 <= k < len(layers) for k in forwarded):
            raise NotData("a malformed Keras model from the student's kernel")
        for k in forwarded:  # Keras' own class, whose configuration was sent without what the grader cannot make
            object.__setattr__(layers[k], "call", functools.partial(_kernel_call, layers[k]))
            object.__setattr__(layers[k], "_kernel_forwarded", True)
        return layer
    reply.spend_layers(1)
    variables, children = node.get("variables"), node.get("children")
    if node.get("dtype") not in DTYPE_POLICIES or not isinstance(variables, list) or not isinstance(children, list):
        raise NotData("a malformed Keras layer from the student's kernel")
    layer = (_kernel_model_class() if node.get("model") is True else _kernel_layer_class())(dtype=node["dtype"])
    for entry in variables:
        name, value, trainable = entry if isinstance(entry, list) and len(entry) == 3 else (None, None, None)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or type(trainable) is not bool:
            raise NotData("a malformed variable of a Keras layer from the student's kernel")
        variable = layer.add_weight(shape=value.shape, dtype=value.dtype.name, initializer="zeros", trainable=trainable,
                                    name=name if isinstance(name, str) and name.isidentifier() else None)
        variable.assign(value)
    names = []
    for entry in children:
        name, child = entry if isinstance(entry, list) and len(entry) == 2 else (None, None)
        made = _rebuilt(child, reply, depth + 1)
        layer._layers.append(made)  # Keras' own list of a layer's layers (in the kernel's order)
        if isinstance(name, str) and name.isidentifier() and not name.startswith("_") \
                and not hasattr(type(layer), name) and name not in vars(layer):
            object.__setattr__(layer, name, made)  # `model.conv`, without a second entry in Keras' tracking
            names.append(name)
    shape = node.get("input_shape")
    if isinstance(shape, list) and len(shape) <= MAX_DEPTH and all(d is None or type(d) is int for d in shape):
        object.__setattr__(layer, "kernel_input_shape", tuple(shape))
    object.__setattr__(layer, "kernel_class", str(node.get("class", "?"))[:200])
    object.__setattr__(layer, "_kernel_names", names)
    layer.built = True
    return layer


def _parsed_config(text, reply: KerasReply) -> dict:
    """The configuration of a layer of Keras' own, checked (:func:`_checked_config`), its layers and calls of
    layers counted against ``reply``."""
    if not isinstance(text, str) or len(text) > CONFIG_BYTES:
        raise NotData("a malformed Keras configuration")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        raise NotData("a malformed Keras configuration") from None
    reply.spend_layers(_checked_config(config))
    if not isinstance(config, dict):
        raise NotData("a malformed Keras configuration")
    return _uncompiled(config)


def _uncompiled(config, depth: int = 0):
    """``config`` without the compile settings of the models in it: a model is compiled apart, from Keras' own
    classes only (:func:`_compiled_settings`), and Keras would compile one from its configuration."""
    if depth > 64:
        raise NotData("a Keras configuration nested too deep")
    if isinstance(config, list):
        return [_uncompiled(v, depth + 1) for v in config]
    if isinstance(config, dict):
        return {k: _uncompiled(v, depth + 1) for k, v in config.items() if k != "compile_config"}
    return config


def _attach(model, number: int) -> None:
    """Each stand-in in ``model`` calls the kernel's model kept under ``number`` (its layer at the same place)."""
    object.__setattr__(model, "_kernel_model", number)
    for index, layer in enumerate(_keras_layers(model)):
        if _is_stand_in(layer) or layer is model:
            object.__setattr__(layer, "_kernel_root", model)
            object.__setattr__(layer, "_kernel_path", index)


def _transplanted(model, description) -> None:
    """The grader's side: the stand-in ``model`` made what the kernel's model became in a call that added
    layers or weights to it (a model of the answer's class that builds its layers on its first call)."""
    fresh = _described_model(description, KerasReply())
    if not isinstance(fresh, type(model)):
        raise AnswerError("the answer's model changed into another kind of layer")
    for name in model.__dict__.get("_kernel_names", []):
        model.__dict__.pop(name, None)
    for name in fresh.__dict__.get("_kernel_names", []):
        object.__setattr__(model, name, fresh.__dict__[name])
    object.__setattr__(model, "_kernel_names", fresh.__dict__.get("_kernel_names", []))
    model._layers[:] = fresh._layers
    model._trainable_variables[:] = fresh._trainable_variables
    model._non_trainable_variables[:] = fresh._non_trainable_variables
    object.__setattr__(model, "_judge_budget", fresh.__dict__["_judge_budget"])
    _attach(model, model._kernel_model)


def _stand_in_state(model) -> dict:
    """The grader's side: what the kernel's model is made before a stand-in's call (the test may have assigned
    its weights or trainable flags)."""
    import numpy as np

    shape = None
    with contextlib.suppress(Exception):  # a built Sequential's or functional model's (the kernel's may be unbuilt)
        shape = [None if d is None else int(d) for d in model.input_shape] if model.built else None
    return {"build": shape, "weights": [np.asarray(w.numpy()) for w in model.weights],
            "flags": [bool(x.trainable) for x in _keras_layers(model)], "trainable": [bool(w.trainable) for w in model.weights]}


def _kernel_keras_synced(model, state):
    """The kernel's side: its kept model made what the grader's stand-in is (weights, trainable flags)."""
    import numpy as np

    object.__setattr__(model, "_judge_state", state)  # again once a layer the call needs is built (_kernel_output)
    values = state.get("weights") if isinstance(state, dict) else None
    if isinstance(values, list) and len(values) == len(model.weights):
        for variable, value in zip(model.weights, values):
            current = np.asarray(variable.numpy())
            if isinstance(value, np.ndarray) and value.shape == current.shape and value.dtype == current.dtype \
                    and value.tobytes() != current.tobytes():
                variable.assign(value)
    if isinstance(state, dict) and isinstance(state.get("flags"), list) and isinstance(state.get("trainable"), list):
        _set_trainable(model, state["flags"], state["trainable"])
    return model


_BOUNDS = threading.local()  # .left: the budget of the model being made here (:func:`_within`)
_BOUND_LOCK = threading.Lock()


@contextlib.contextmanager
def _within(budget: list):
    """While a model is made here, and for its layers later (``_judge_budget``), Keras' ``add_weight`` refuses
    to allocate beyond ``budget`` numbers: a configuration cannot make the grader allocate what the kernel
    never had (``Dense(10**6)``: TensorFlow allocates when the weight is made, deferred by no scope). Installs
    the bounded ``add_weight`` and ``__call__`` (:func:`_bounded_call`) in Keras, once, in the grader."""
    import keras

    with _BOUND_LOCK:
        if not getattr(keras.layers.Layer.add_weight, "_judge_bounded", False):
            keras.layers.Layer.add_weight = _bounded(keras.layers.Layer.add_weight)
            keras.layers.Layer.__call__ = _bounded_call(keras.layers.Layer.__call__)
    _BOUNDS.left = budget
    try:
        yield
    finally:
        _BOUNDS.left = None


def _bounded(add_weight):
    @functools.wraps(add_weight)
    def bounded(self, *args, **kwargs):
        budget = self.__dict__.get("_judge_budget") or getattr(_BOUNDS, "left", None)
        if budget is not None:
            shape = kwargs.get("shape", args[0] if args else ())
            try:
                size = math.prod(int(d) for d in (shape or ()))
            except (TypeError, ValueError):
                raise NotData("a weight of an unknown shape") from None
            if 0 <= size <= budget[0]:  # the weights the kernel sent
                budget[0] -= size
            elif 0 <= size <= budget[1][0]:  # a layer the kernel has not built yet
                budget[1][0] -= size
            else:
                raise NotData("a Keras model whose layers would make more weights than the student's kernel sent")
        return add_weight(self, *args, **kwargs)

    bounded._judge_bounded = True
    return bounded


def _kernel_call(layer, *args, training=None, **kwargs):
    """A stand-in's call (or a layer's whose call runs in the kernel): the kernel's layer at the same place, on
    the test's inputs, after the kernel's model is made what the grader's is."""
    root = layer.__dict__.get("_kernel_root")
    call = getattr(root, "_kernel_call", None)
    if call is None:
        raise RuntimeError("this layer was made in the student's kernel and has no connection to it now")
    if training is not None:
        kwargs["training"] = training
    found = call(FORWARD, (root, layer.__dict__.get("_kernel_path", 0), list(args), dict(kwargs)), {})
    if not (isinstance(found, list) and len(found) == 2 and isinstance(found[1], list) and len(found[1]) <= MAX_LOSSES
            and all(type(v) is float for v in found[1])):
        raise AnswerError("the student's kernel sent a malformed output of a layer")
    keras = sys.modules["keras"]  # (a Keras layer called it)
    for value in found[1]:  # what the kernel's layer added to its losses (Keras' model.losses): here too
        layer.add_loss(keras.ops.convert_to_tensor(value))
    return found[0]


def _kernel_output(model, layer, args, kwargs) -> list:
    """The kernel's side of a stand-in's call: the output of its layer there, and that layer's losses then
    (a regularizer's, or what its call added: the stand-in adds them to its own). A layer of Keras' own that
    the grader built (an unbuilt Sequential's, on its first call) is built here first, and given its weights."""
    import numpy as np

    state = model.__dict__.get("_judge_state")
    shape = state.get("build") if isinstance(state, dict) else None
    if not model.built and isinstance(shape, list) and _own_keras_class(type(model)):
        with contextlib.suppress(Exception):  # (built by its call, then)
            model.build(tuple(shape))
    if not layer.built and args and hasattr(args[0], "shape") and _own_keras_class(type(layer)):
        with contextlib.suppress(Exception):
            layer.build(tuple(args[0].shape))
    _kernel_keras_synced(model, state)
    output = layer(*args, **kwargs)
    return [output, [float(np.sum(np.asarray(x))) for x in layer.losses][:MAX_LOSSES]]


def _is_stand_in(layer) -> bool:
    """A layer here whose call runs in the student's kernel."""
    return isinstance(layer, _KernelCalls) or layer.__dict__.get("_kernel_forwarded") is True


def _bounded_call(call):
    """Keras' ``Layer.__call__``, refusing to compute here an output of more than :data:`MAX_ACTIVATIONS` numbers
    per example in a layer made from a kernel's configuration (``Conv2D(2**20, 1)`` in a model whose input
    shape was not known when it was made: checked when its shape is)."""
    @functools.wraps(call)
    def bounded(self, *args, **kwargs):
        if "_judge_budget" in self.__dict__ and not _is_stand_in(self) and type(self).__name__ in MADE_HERE:
            _check_output_size(self, args[0] if args else kwargs.get("inputs"))
        return call(self, *args, **kwargs)

    bounded._judge_bounded = True
    return bounded


def _check_output_size(layer, inputs) -> None:
    """Refuse to call ``layer`` (one of :data:`MADE_HERE`, which take one input) where its output would hold more
    than :data:`MAX_ACTIVATIONS` numbers per example."""
    try:
        out = layer.compute_output_shape(tuple(inputs.shape))
    except Exception:  # noqa: BLE001 - not a tensor: Keras' own call refuses it
        return
    for found in (out if isinstance(out, (list, tuple)) and out and isinstance(out[0], (list, tuple)) else [out]):
        if isinstance(found, (list, tuple)) and _per_example(found) > MAX_ACTIVATIONS:
            raise NotData(f"a layer whose output would hold more than {MAX_ACTIVATIONS} numbers per example")


def _per_example(shape) -> int:
    """The numbers per example of an output of ``shape`` (batch first), its unknown dimensions left out."""
    return math.prod(int(d) for d in list(shape)[1:] if d is not None)


class _KernelCalls:
    """What a stand-in for a layer of the answer's own class does: Keras' ``__call__`` here (inputs cast to
    its dtype), ``call`` in the student's kernel after sending it the stand-in's weights, gradients from there."""

    def call(self, *args, training=None, **kwargs):  # (named, or Keras' __call__ would drop it)
        return _kernel_call(self, *args, training=training, **kwargs)

    @property
    def input_shape(self):
        if "kernel_input_shape" not in self.__dict__:
            raise AttributeError("this layer of the student's class has no input shape")
        return self.__dict__["kernel_input_shape"]

    def __repr__(self) -> str:
        return f"<the student's {self.__dict__.get('kernel_class', '?')}>"


@functools.cache
def _kernel_layer_class():
    import keras

    class KernelLayer(_KernelCalls, keras.layers.Layer):
        """The grader's stand-in for a layer of the answer's own class (:class:`_KernelCalls`)."""

    KernelLayer.__module__ = __name__
    return KernelLayer


@functools.cache
def _kernel_model_class():
    import keras

    class KernelModel(_KernelCalls, keras.Model):
        """The grader's stand-in for a model of the answer's own class (:class:`_KernelCalls`): a Keras model
        here, to compile, count and look into."""

    KernelModel.__module__ = __name__
    return KernelModel


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
    config = entry.get("config")
    schedule = None
    if module == "optimizers" and isinstance(config, dict) and isinstance(config.get("learning_rate"), dict):
        config = dict(config)
        schedule = {"learning_rate": _schedule(config.pop("learning_rate"))}
    try:
        return found(**_plain_config(config), **(schedule or {}))  # the constructor, not from_config (above)
    except NotData:
        raise
    except Exception as error:  # noqa: BLE001 - whatever Keras' constructor raises on the kernel's arguments
        raise NotData(f"compile settings that Keras' {found.__name__} refuses ({_text(error)})") from None


def _schedule(entry):
    """A learning-rate schedule of Keras' own (``ExponentialDecay``), made from its configuration of numbers
    (of any size: a schedule allocates nothing), short strings and short lists."""
    import keras

    schedules = keras.optimizers.schedules
    name = entry.get("class_name") if isinstance(entry, dict) else None
    found = getattr(schedules, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not (isinstance(found, type) and issubclass(found, schedules.LearningRateSchedule)
            and found is not schedules.LearningRateSchedule and found.__module__.startswith("keras.")):
        raise NotData(f"a learning rate schedule that is not one of Keras' own ({str(name)[:100]})")

    def plain(v):
        return v is None or type(v) in (bool, int, float) or (type(v) is str and len(v) <= 200) \
            or (type(v) is list and len(v) <= 50 and all(type(x) in (int, float) for x in v))

    config = entry.get("config")
    if not isinstance(config, dict) or len(config) > 20 or not all(
            isinstance(k, str) and k.isidentifier() and plain(v) for k, v in config.items()):
        raise NotData("a learning rate schedule whose configuration is not plain data")
    try:
        return found(**config)
    except Exception as error:  # noqa: BLE001 - whatever Keras' constructor raises on the kernel's arguments
        raise NotData(f"a learning rate schedule that Keras' {found.__name__} refuses ({_text(error)})") from None


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
