"""The data that crosses: values as text (JSON, inline arrays or an ``.npz``), never a pickle from the kernel;
and :func:`write_back`, which changes the test's arguments as the call changed their copies."""
from __future__ import annotations

import base64
import io
import json
import math
import sys
import zipfile

from course_utils.instructor.judge.base import (
    INLINE_BYTES,
    INLINE_KINDS,
    INLINE_PREFIX,
    INLINE_TEXT,
    JSON_PREFIX,
    KEPT_MODELS,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_TREE_BYTES,
    NotData,
    _framework,
    _plain_attributes,
    _plain_key,
    _text,
    _write_back_array,
)
from course_utils.instructor.judge.keras_models import (
    KerasReply,
    _check_keras_apart,
    _is_keras_layer,
    _keras_layers,
    _keras_made,
    _keras_mirror,
    _keras_spec,
    _keras_state,
    _made_keras_description,
    _stand_in_state,
    _write_back_keras,
)
from course_utils.instructor.judge.pickles import _is_test_instance, _pickled, _test_instance, _unpickled
from course_utils.instructor.judge.torch_models import (
    _kernel_model,
    _made_description,
    _mirror,
    _mirror_state,
    _module_state,
    _optimizer_made,
    _write_back_attributes,
    _write_back_module,
)


def encode(value, *, send: list | None = None, known: list | None = None, before: list | None = None,
           graph: dict | None = None, same: dict | None = None, was: dict | None = None) -> str:
    """``value`` as text: an ``.npz`` (arrays, and the structure as JSON) in base64; small numeric
    arrays inline in the JSON instead, and a value without arrays as JSON alone.

    Models a test passes: the grader's side gives ``send``, a list that collects them; PyTorch's travel
    pickled (to the kernel only, :func:`_pickled`), Keras' as data (:func:`_keras_spec`); the kernel's side gives
    ``known``, the modules it was sent: one of those goes back by its number, with its state after
    the call when ``before`` (each module's parameters before it) is given, and any other is not data;
    ``graph`` numbers the result's tensors whose autograd graph the kernel keeps (:func:`_kept_graph`);
    ``was`` numbers the call's own arrays, tensors, lists, tuples and dicts before it (:func:`_objects`):
    each part of the arguments after the call that is one of them says which (the grader then tells an
    array changed in place from one replaced); ``same``, the same numbers for a result: one that is an
    argument goes as its number, and the grader gives back the test's own object
    (``dropout(x, training=False) is x``).
    """
    arrays: list = []
    np = sys.modules.get("numpy")  # no numpy imported: no array to send (a framework-free lesson)
    torch = sys.modules.get("torch")
    # id -> (number, the object: kept, so that its id is not reused by a temporary array) of the arrays,
    # tensors and variables sent so far: one passed twice goes once, the second time by its number
    sent_once: dict = {}

    def node(v, depth=0):
        leaf = (np is not None and isinstance(v, np.ndarray)) or _framework(v) is not None
        if leaf and id(v) in sent_once and not (same and id(v) in same):
            found = {"alias": sent_once[id(v)][0]}
        else:
            found = value_node(v, depth)
            if leaf and isinstance(found, dict) and "array" in found:
                sent_once[id(v)] = (len(sent_once), v)
        if was and id(v) in was and isinstance(found, dict):
            found["was"] = was[id(v)]
        return found

    def value_node(v, depth):
        if depth > MAX_DEPTH:
            raise NotData(f"nested deeper than {MAX_DEPTH} levels")
        if v is None or isinstance(v, (bool, str)) or type(v) in (int, float):
            return v
        if same and id(v) in same:
            return {"same": same[id(v)]}
        if np is not None and isinstance(v, np.generic):  # first: np.float64 is a float too, and stays np.float64
            arrays.append(np.asarray(v))
            return {"array": len(arrays) - 1, "kind": "numpy scalar"}
        if isinstance(v, int):  # an int subclass (IntEnum): its value
            return int(v)
        if isinstance(v, float):
            return float(v)
        if isinstance(v, complex):
            return {"complex": [v.real, v.imag]}
        if np is not None and isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise NotData("a numpy array of Python objects")
            arrays.append(v.copy(order="C"))  # (np.ascontiguousarray makes a 0-d array 1-d)
            return {"array": len(arrays) - 1, "kind": "numpy"}
        if np is not None and isinstance(v, np.dtype):
            return {"dtype": str(v), "kind": "numpy"}
        if (torch is not None and isinstance(v, torch.nn.Module)) or _is_keras_layer(v) or _is_test_instance(v):
            return module(v, depth)
        if torch is not None and isinstance(v, torch.optim.Optimizer):
            return optimizer(v, depth)
        kind = _framework(v)
        if kind == "torch":
            t = v.detach().cpu().resolve_conj().resolve_neg()
            found = {"array": len(arrays), "kind": "torch", "grad": bool(v.requires_grad)}
            if graph and id(v) in graph:
                found["graph"] = graph[id(v)]
            if t.dtype in (sys.modules["torch"].bfloat16,):  # no numpy dtype: sent as float32, exactly
                found["kind"], t = "torch bfloat16", t.float()
            arrays.append(t.numpy())
            return found
        if kind == "tf":
            arrays.append(sys.modules["numpy"].asarray(v.numpy()))
            if not (hasattr(v, "assign") and callable(v.assign)):
                if graph and id(v) in graph:
                    return {"array": len(arrays) - 1, "kind": "tf", "graph": graph[id(v)]}
                return {"array": len(arrays) - 1, "kind": "tf"}
            keras = type(v).__module__.startswith("keras")  # keras.Variable (`.value` a property) or tf.Variable
            return {"array": len(arrays) - 1, "kind": "keras variable" if keras else "tf variable"}
        if torch is not None and isinstance(v, torch.Size):
            return {"size": [int(d) for d in v]}
        if torch is not None and isinstance(v, torch.dtype):
            return {"dtype": str(v).removeprefix("torch."), "kind": "torch"}
        tf = sys.modules.get("tensorflow")
        if tf is not None and isinstance(v, tf.dtypes.DType):
            return {"dtype": v.name, "kind": "tf"}
        if isinstance(v, tuple):
            return {"tuple": [node(x, depth + 1) for x in v]}
        if isinstance(v, list):
            return {"list": [node(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            if not all(_plain_key(k) for k in v):
                raise NotData("a dict whose keys are not strings or small integers")
            return {"dict": [[k, node(x, depth + 1)] for k, x in v.items()]}
        raise NotData(f"{type(v).__module__}.{type(v).__qualname__}")

    def module(v, depth):
        keras = _is_keras_layer(v)
        if send is not None:
            for index, sent in enumerate(send):
                if sent is v:
                    return {"module": index}
            if isinstance(getattr(v, "_kernel_model", None), int) and getattr(v, "_kernel_root", None) is v:
                send.append(v)  # a model the kernel made (a mirror): its number there and the state the test gave it
                state = _stand_in_state(v) if keras else _mirror_state(v)
                return {"module": len(send) - 1, "kernel": v._kernel_model, "state": node(state, depth + 1)}
            if _is_test_instance(v):
                send.append(v)  # a plain object of the test's class (a callable standing in for a model): its attributes
                return {"module": len(send) - 1, "instance": type(v).__qualname__, "state": node(vars(v), depth + 1)}
            if keras:  # data, not a pickle: its configuration, trainable flags and weights
                for index, sent in enumerate(send):  # a layer of a model sent before it (`base` after `model`)
                    if _is_keras_layer(sent):
                        for number, layer in enumerate(_keras_layers(sent)):
                            if layer is v and number:
                                return {"module": index, "layer": number}
                _check_keras_apart(v, [m for m in send if _is_keras_layer(m)])
                send.append(v)
                return {"module": len(send) - 1, "keras": _keras_spec(v),
                        "weights": [node(np.asarray(w.numpy()), depth + 1) for w in v.weights]}
            send.append(v)
            return {"module": len(send) - 1}
        for index, sent in enumerate(known or ()):
            if sent is v:
                if before is None or index >= len(before):
                    return {"module": index}
                if before[index] is None:  # a test's plain object: its plain attributes (a count of its calls)
                    return {"module": index, "state": node({"attributes": {"": _plain_attributes(v)}}, depth + 1)}
                state = _keras_state(v, before[index]) if keras else _module_state(v, before[index])
                return {"module": index, "state": node(state, depth + 1)}
        for index, sent in enumerate(known or ()):  # a layer of a model the grader sent (`model[0]`)
            if not (_is_keras_layer(sent) or hasattr(sent, "named_modules")):
                continue
            if _is_keras_layer(sent):
                for number, layer in enumerate(_keras_layers(sent)):
                    if layer is v and number:
                        return {"module": index, "layer": number}
                continue
            for path, layer in sent.named_modules():
                if layer is v and path:
                    return {"module": index, "path": path}
        if known is not None and torch is not None and isinstance(v, torch.nn.Module):
            known.append(v)  # a model the answer made: kept in the kernel, described to the grader (a mirror)
            return {"module": len(known) - 1, "made": node(_made_description(v), depth + 1)}
        if known is not None and keras and not any(_is_keras_layer(m) and v in _keras_layers(m) for m in known):
            description = _made_keras_description(v)  # made again there (a stand-in for the answer's own classes)
            known.append(v)
            return {"module": len(known) - 1, "made_keras": node(description, depth + 1)}
        raise NotData(f"a model made in your kernel ({type(v).__qualname__}): the test passes the model it checks, "
                      "return that one (or data)")

    def optimizer(v, depth):
        """An optimizer over the parameters of the models the grader sent: its class, settings and state,
        each parameter named by its model and path (the grader makes the same optimizer over its own)."""
        if known is None:
            raise NotData(f"an optimizer ({type(v).__qualname__}): this test cannot be judged outside the kernel")
        names = {id(p): {"module": index, "parameter": name} for index, sent in enumerate(known)
                 if hasattr(sent, "named_parameters") for name, p in sent.named_parameters()}

        def reference(p):
            if id(p) not in names:
                raise NotData("an optimizer over tensors that are not parameters of the model the test passes")
            return names[id(p)]

        groups = [{"params": [reference(p) for p in group["params"]],
                   "settings": node({k: x for k, x in group.items() if k != "params"}, depth + 1)}
                  for group in v.param_groups]
        state = [[reference(p), node(dict(values), depth + 1)] for p, values in v.state.items()]
        cls = type(v)
        return {"optimizer": f"{cls.__module__}.{cls.__qualname__}", "groups": groups, "state": state}

    root = node(value)
    tree = json.dumps(root)
    if not arrays and not send:  # the structure alone, as JSON
        if len(tree) > MAX_TREE_BYTES:
            raise NotData(f"more than {MAX_TREE_BYTES >> 20} MB of numbers and strings")
        return JSON_PREFIX + tree
    if not send and sum(a.nbytes for a in arrays) <= INLINE_BYTES and all(a.dtype.kind in INLINE_KINDS for a in arrays):
        text = json.dumps({"tree": root, "arrays": [
            [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode("ascii")] for a in arrays]})
        if len(text) <= INLINE_TEXT:  # what _from_inline reads; a longer one goes as an .npz
            return INLINE_PREFIX + text
    members = {f"a{i}": a for i, a in enumerate(arrays)}
    if send:  # PyTorch's models pickled (Keras' and the test's plain objects went as data, above: None in their place)
        members["modules"] = np.frombuffer(_pickled([None if _is_keras_layer(m) or _is_test_instance(m)
                                                     or hasattr(m, "_kernel_model") else m for m in send]), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, tree=np.frombuffer(tree.encode(), dtype=np.uint8), **members)
    data = buffer.getvalue()
    if len(data) > MAX_BYTES:
        raise NotData(f"more than {MAX_BYTES >> 20} MB of data")
    return base64.b64encode(data).decode("ascii")


def decode(text, modules: list | None = None, unpickle: list | None = None, states: bool = False,
           graph: dict | None = None, originals: list | None = None, identities: dict | None = None) -> object:
    """The value :func:`encode` wrote. A module comes as one of ``modules`` (those the grader sent, by
    number), or, on the kernel's side only (the grader's request), from the pickle the grader sent:
    ``unpickle`` is then a list that receives them. The grader's side never unpickles anything. A model's
    state after a call (:class:`ModuleState`) is read only with ``states`` (what a call did to its arguments);
    ``graph`` receives the tensors the kernel marked as outputs of a graph it keeps, by their number;
    ``originals``: the call's own objects here (:func:`_objects`), which a result may name by number;
    ``identities`` receives, for each part that says which of them it was, that number."""
    if not isinstance(text, str) or len(text) > MAX_BYTES * 4 // 3 + 4:
        raise NotData("not an encoded value, or too large")
    if text.startswith(JSON_PREFIX):
        if len(text) > MAX_TREE_BYTES + len(JSON_PREFIX):
            raise NotData("an encoded value beyond the limits")
        return _rebuild(_parsed_json(text[len(JSON_PREFIX):]), {}, modules, states, graph=graph, originals=originals,
                        identities=identities)
    if text.startswith(INLINE_PREFIX):
        return _from_inline(text[len(INLINE_PREFIX):], modules, states, graph, originals, identities)
    import numpy as np

    data = base64.b64decode(text, validate=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise NotData("not an encoded value") from None
    with archive:  # stored, not deflated: what np.load reads is what was sent
        members = archive.infolist()
        tree_size = sum(m.file_size for m in members if m.filename == "tree.npy")
        if len(members) > MAX_NODES or any(m.compress_type != zipfile.ZIP_STORED for m in members) \
                or sum(m.file_size for m in members) > MAX_BYTES or tree_size > MAX_TREE_BYTES:
            raise NotData("an encoded value that is compressed or beyond the limits")
    with np.load(io.BytesIO(data), allow_pickle=False) as files:
        arrays = {name: files[name] for name in files.files}
    tree = _parsed_json(arrays.pop("tree").tobytes().decode(errors="replace"))
    sent = arrays.pop("modules", None)
    if sent is not None:
        if unpickle is None:
            raise NotData("a pickle, where the grader takes data only")
        unpickle.extend(_unpickled(sent.tobytes()))
        return _rebuild(tree, arrays, unpickle, states, from_grader=True)
    return _rebuild(tree, arrays, modules, states, graph=graph, originals=originals, identities=identities)


def _from_inline(text: str, modules: list | None, states: bool, graph: dict | None = None,
                 originals: list | None = None, identities: dict | None = None):
    """The value of an :data:`INLINE_PREFIX` text: numeric arrays only, their dtype, shape and bytes checked."""
    import numpy as np

    if len(text) > INLINE_TEXT:
        raise NotData("an encoded value beyond the limits")
    found = _parsed_json(text)
    listed = found.get("arrays") if isinstance(found, dict) else None
    if not isinstance(listed, list) or len(listed) > MAX_NODES:
        raise NotData("a malformed value")
    arrays, total = {}, 0
    for index, entry in enumerate(listed):
        try:
            dtype_name, shape, data = entry
            if not isinstance(dtype_name, str) or len(dtype_name) > 8:
                raise TypeError("the dtype is not a short name")
            dtype = np.dtype(dtype_name)
            if not isinstance(shape, list) or not all(type(d) is int for d in shape):
                raise TypeError("the shape is not a list of integers")
            shape = tuple(shape)
            raw = base64.b64decode(str(data), validate=True)
        except (TypeError, ValueError) as error:
            raise NotData(f"a malformed array ({_text(error)})") from None
        total += len(raw)
        if dtype.kind not in INLINE_KINDS or len(shape) > MAX_DEPTH or min(shape, default=0) < 0 or total > INLINE_BYTES \
                or len(raw) != dtype.itemsize * math.prod(shape):
            raise NotData("an array whose dtype, shape and bytes do not agree, or beyond the limits")
        try:
            arrays[f"a{index}"] = np.frombuffer(bytearray(raw), dtype=dtype, count=len(raw) // dtype.itemsize).reshape(shape)
        except ValueError as error:  # an empty array of an impossible shape ((0, 2**62): "array is too big")
            raise NotData(f"a malformed array ({_text(error)})") from None
    return _rebuild(found.get("tree"), arrays, modules, states, graph=graph, originals=originals,
                    identities=identities)


def _parsed_json(text: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # malformed, or nested deeper than the parser goes
        raise NotData(f"not an encoded value ({_text(error)[:200]})") from None


def _rebuild(tree, arrays: dict, modules: list | None = None, states: bool = False, from_grader: bool = False,
             graph: dict | None = None, originals: list | None = None, identities: dict | None = None):
    """The value a decoded structure describes, its arrays taken from ``arrays`` (each at most once).
    A Keras model's configuration is read only ``from_grader`` (by the kernel: the grader takes data only)."""
    used, count, given = set(), [0], []
    keras_reply = KerasReply()  # what the Keras models the value describes may still cost the grader

    def value(n, depth=0):
        if isinstance(n, dict) and "alias" in n:  # an array, tensor or variable given earlier in the value
            count[0] += 1  # (a value of many references to one large array is as large as its copies would be)
            if count[0] > MAX_NODES or type(n["alias"]) is not int or not 0 <= n["alias"] < len(given):
                raise NotData("a reference to an array not given before")
            found = given[n["alias"]]
        else:
            found = made_value(n, depth)
            if isinstance(n, dict) and "array" in n:
                given.append(found)
        if identities is not None and isinstance(n, dict) and type(n.get("was")) is int:
            identities[id(found)] = n["was"]
        return found

    def made_value(n, depth):
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise NotData(f"nested deeper than {MAX_DEPTH} levels, or more than {MAX_NODES} values")
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if not isinstance(n, dict) or len(n) > 5:
            raise NotData("a malformed value")
        if "same" in n:
            if originals is None or type(n["same"]) is not int or not 0 <= n["same"] < len(originals):
                raise NotData("a reference to an array the call was not given")
            return originals[n["same"]]
        if "array" in n:
            name = f"a{int(n['array'])}"
            if name in used:
                raise NotData("an array referred to twice")
            used.add(name)
            if name not in arrays:
                raise NotData("a reference to a missing array")
            array, kind = arrays[name], n.get("kind")
            if kind == "numpy":
                return array
            if kind == "numpy scalar":
                return array[()]
            if kind == "torch":
                import torch
                tensor = torch.from_numpy(array.copy())
                if graph is not None and type(n.get("graph")) is int and tensor.is_floating_point():
                    # (made differentiable by call_result, through the kernel; one tensor in the arguments and result)
                    return graph.setdefault(n["graph"], tensor)
                return tensor.requires_grad_(True) if n.get("grad") is True and tensor.is_floating_point() else tensor
            if kind == "torch bfloat16":
                import torch
                tensor = torch.from_numpy(array.astype("float32")).to(torch.bfloat16)
                return tensor.requires_grad_(True) if n.get("grad") is True else tensor
            if kind == "keras variable":
                import keras
                return keras.Variable(array)
            if kind in ("tf", "tf variable"):
                import tensorflow as tf
                if kind == "tf" and graph is not None and type(n.get("graph")) is int and array.dtype.kind == "f":
                    return graph.setdefault(n["graph"], tf.constant(array))  # (joined to the kernel's tape by call_result)
                return tf.Variable(array) if kind == "tf variable" else tf.constant(array)
            raise NotData(f"an array of unknown kind {kind!r}")
        if "dtype" in n:
            name, kind = str(n["dtype"]), n.get("kind")
            if kind == "numpy":
                import numpy as np
                return np.dtype(name)
            if kind == "torch":
                import torch
                found = getattr(torch, name, None) if name.isidentifier() else None
                if not isinstance(found, torch.dtype):
                    raise NotData(f"no torch dtype {name!r}")
                return found
            if kind == "tf":
                import tensorflow as tf
                return tf.as_dtype(name)
            raise NotData(f"a dtype of unknown kind {kind!r}")
        if "module" in n:
            index = n["module"]
            if type(index) is not int or modules is None or not 0 <= index <= len(modules) \
                    or (index == len(modules) and "made" not in n and "made_keras" not in n):
                raise NotData("a model the grader did not send")
            if "kernel" in n:
                if not from_grader:
                    raise NotData("a kernel's model, where the grader takes data only")
                modules[index] = _kernel_model(n["kernel"], value(n.get("state"), depth + 1))
                return modules[index]
            if "made" in n or "made_keras" in n:
                if from_grader or index != len(modules) or len(modules) >= KEPT_MODELS:  # (more than the kernel keeps)
                    raise NotData("a model described out of turn")
                if "made_keras" in n and (states or "keras" not in sys.modules):  # a result of a Keras test's call only
                    raise NotData("a Keras layer made in the kernel where the test expects none")
                modules.append(_mirror(value(n["made"], depth + 1)) if "made" in n
                               else _keras_mirror(value(n["made_keras"], depth + 1), keras_reply))
                return modules[index]
            if "instance" in n:
                if not from_grader:
                    raise NotData("an object of the test's class, where the grader takes data only")
                modules[index] = _test_instance(str(n["instance"]), value(n.get("state"), depth + 1))
                return modules[index]
            if "keras" in n:
                if not from_grader:
                    raise NotData("a model's configuration, where the grader takes data only")
                modules[index] = _keras_made(n["keras"], [value(w, depth + 1) for w in n.get("weights") or []])
                return modules[index]
            if modules[index] is None:
                raise NotData("a model the grader did not send")
            if "state" in n:
                if not states:
                    raise NotData("a model's state where a value was expected")
                return ModuleState(modules[index], value(n["state"], depth + 1))
            if "layer" in n:
                layers = _keras_layers(modules[index]) if _is_keras_layer(modules[index]) else []
                if type(n["layer"]) is not int or not 0 < n["layer"] < len(layers):
                    raise NotData("a layer the grader's model does not have")
                return layers[n["layer"]]
            if "path" in n:
                try:
                    return modules[index].get_submodule(str(n["path"]))
                except AttributeError:
                    raise NotData("a layer the grader's model does not have") from None
            return modules[index]
        if "optimizer" in n:
            return _optimizer_made(n, modules, lambda x: value(x, depth + 1))
        if "complex" in n:
            real, imag = n["complex"]
            return complex(float(real), float(imag))
        if "size" in n:
            import torch
            return torch.Size([int(d) for d in n["size"]])
        if "tuple" in n:
            return tuple(value(x, depth + 1) for x in n["tuple"])
        if "list" in n:
            return [value(x, depth + 1) for x in n["list"]]
        if "dict" in n:
            if not all(_plain_key(k) for k, _ in n["dict"]):
                raise NotData("a dict whose keys are not strings or small integers")
            return {k: value(x, depth + 1) for k, x in n["dict"]}
        raise NotData("a malformed value")

    return value(tree)


class ModuleState:
    """A model the grader sent, as the kernel reports it after a call (PyTorch: which of its modules
    train, its parameters, whether each is still the object it was, and its buffers; Keras: trainable
    flags and weights, :func:`_keras_state`); :func:`write_back` applies it."""

    def __init__(self, module, state):
        self.module, self.state = module, state


def write_back(original, changed, moved: tuple) -> None:
    """Make the test's arguments ``original`` what the call left its copies ``changed``. ``moved``:
    ``(identities, objects)``: the test's arrays, tensors, variables, lists, tuples and dicts of the call,
    numbered before it (:func:`_objects`), and which of them each part of ``changed`` was (:func:`decode`)."""
    _settled(changed, moved)


def _settled(changed, moved: tuple, depth: int = 0):
    """What the test holds where the call left ``changed``: the test's own object that it was, made what the
    call left it (a list's items, a dict's keys and values, an array's values, a model's state, in place), or
    a new one (``d["x"] = d["x"] / 255``: the test's old array stays as it was)."""
    if isinstance(changed, ModuleState):
        module = changed.module
        if _is_test_instance(module):
            _write_back_attributes({"": module}, changed.state)
        else:
            (_write_back_keras if _is_keras_layer(module) else _write_back_module)(module, changed.state)
        return module
    if depth > MAX_DEPTH:
        return changed
    identities, objects = moved
    number = identities.get(id(changed))
    mine = objects[number] if type(number) is int and 0 <= number < len(objects) else None
    if isinstance(changed, list):
        items = [_settled(c, moved, depth + 1) for c in changed]
        if isinstance(mine, list):
            mine[:] = items
            return mine
        return items
    if isinstance(changed, tuple):
        items = tuple(_settled(c, moved, depth + 1) for c in changed)
        if isinstance(mine, tuple) and len(mine) == len(items) and all(map(_same, mine, items)):
            return mine
        return items
    if isinstance(changed, dict):
        items = {key: _settled(c, moved, depth + 1) for key, c in changed.items()}
        if isinstance(mine, dict):
            mine.clear()
            mine.update(items)
            return mine
        return items
    if mine is not None:
        _write_back_array(mine, changed)
        return mine
    return changed


def _same(mine, theirs) -> bool:
    """The same object, or equal numbers or strings (a tuple's items after the call)."""
    if mine is theirs:
        return True
    try:
        return type(mine) is type(theirs) and _immutable(mine) and bool(mine == theirs)
    except Exception:  # noqa: BLE001 - values that do not compare (structured numpy scalars)
        return False


def _immutable(value) -> bool:
    np = sys.modules.get("numpy")
    return isinstance(value, (type(None), bool, int, float, complex, str, bytes)) or (
        np is not None and isinstance(value, np.generic))
