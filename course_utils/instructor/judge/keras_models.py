"""Keras models a test passes: their configuration and weights to the kernel, their state back as data."""
from __future__ import annotations

import json
import sys

from course_utils.instructor.judge.base import _KERNEL, AnswerError, NotData, _text


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
            "weights": [bool(w.trainable) for w in layer.weights]}


def _keras_made(spec, weights: list):
    """The grader's Keras model, made in the kernel from :func:`_keras_spec` and its weights."""
    import keras

    try:
        # the test's own layer classes (a Recorder) were made from the cell's source (:func:`_made_classes`)
        classes = {name: cls for name, cls in getattr(_KERNEL, "classes", {}).items() if isinstance(cls, type)}
        layer = keras.saving.deserialize_keras_object(json.loads(str(spec["config"])), custom_objects=classes)
        layer.set_weights(weights)
        _set_trainable(layer, spec["layers"], spec["weights"])
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


def _keras_state(layer, before: list) -> dict:
    """After a call: each layer's ``trainable``; each weight's value, whether it is still the variable it was,
    and its own ``trainable``."""
    import numpy as np

    return {"trainable": [bool(x.trainable) for x in _keras_layers(layer)],
            "weights": [[np.asarray(w.numpy()), i < len(before) and w is before[i], bool(w.trainable)]
                        for i, w in enumerate(layer.weights)]}


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
    _set_trainable(model, flags, [w[2] for w in weights])  # checked first: nothing is applied from a state refused
    for variable, value in changed:
        variable.assign(value)
