"""Verdicts decided where the student's code never ran: the grader's own run of a test cell.

A test cell that the lesson marks ``course={"judged": true}`` (its answers take and return data:
arrays, tensors, numbers, strings, and tuples, lists and dicts of them) is run **in the grader's
process**, not in the student's kernel: its inputs and references are computed here, and each
call of an answer function (``conv2d(x, w)``) crosses to the student's kernel as data only
(:func:`encode`: an ``.npz`` with ``allow_pickle=False``; the kernel runs the function and sends
its result back the same way). Whatever the student's code does in its own process (patching
the checks, reaching the kernel's key, reading the test's ``expected`` from the notebook's
globals), the comparison happens here, on values it cannot change after the fact. The student's
kernel still runs the cell's static checks (``check_from_scratch``: they read the answer's code)
as a guarded test (:mod:`.guard`), and nothing else of the cell: the references never enter it.

A model the test builds and passes goes to the kernel, PyTorch's pickled (the grader is trusted: only
the kernel unpickles), Keras' as its configuration and weights (the kernel makes it with Keras'
``deserialize_keras_object``), and comes back as data, its state after the call (:class:`ModuleState`:
also the plain attributes a test's model records, ``self.batches``). A plain object of a class the test
defines (a callable standing in for a model) goes as its attributes. A PyTorch model the answer makes
stays in the kernel and the test gets a mirror of it (:func:`_mirror`: torch.nn's classes, the kernel's
parameters; its forward runs the kernel's model). An optimizer the answer returns is made again here,
one of ``torch.optim``'s classes over the test's (or the mirror's) parameters. Gradients cross too: the
kernel keeps a call's autograd graph (or, while the test's GradientTape records, a tape) and the
result joins the test's inputs here through one differentiable function whose backward asks the
kernel (:func:`_joined_to_kernel_graph`); an answer the test traces is traced in the kernel too
(:meth:`Remote._traced`). An answer's random draws use the kernel's generators, seeded from the test's
(PyTorch's at each call; in a TensorFlow notebook Python's, when the test has seeded: :func:`call_context`).
Cells whose answers make Keras models stay in-process (:mod:`.guard`, :mod:`.audit`).
"""
from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import functools
import io
import json
import math
import pickle
import sys
import threading
import time
import traceback
import zipfile

from course_utils.instructor.guard import CALL, META, MIME_CALL, request_mac

JUDGED = "judged"            # the lesson's test-cell metadata: {"course": {"judged": true}}
LESSON_META = "course"
MAX_BYTES = 64 << 20         # a payload larger than this is refused, either way
MAX_DEPTH = 32               # nesting of tuples, lists and dicts
MAX_NODES = 200_000          # values in one payload (numbers, strings, arrays, containers)
MAX_TREE_BYTES = 4 << 20     # the structure's JSON (arrays are apart)
JSON_PREFIX = "json:"        # a value without arrays: its JSON (no numpy needed on either side)
INLINE_PREFIX = "inline:"    # a value with small numeric arrays: their bytes in the JSON (an .npz costs ~0.3 ms each way)
INLINE_BYTES = 64 << 10      # arrays of at most this many bytes in all go inline
INLINE_KINDS = "biufc"       # numpy dtype kinds that go inline: bool, integers, floats, complex
INLINE_TEXT = MAX_TREE_BYTES + INLINE_BYTES * 2  # the longest inline text (base64 makes 4 characters of 3 bytes)
STATIC_CHECKS = {"check_from_scratch"}  # what of a judged cell still runs in the student's kernel
KERNEL_PLACEHOLDER = "# the grader runs this test itself, calling your functions (course_utils.instructor.judge)"
# exceptions an answer may raise that the test sees as themselves (anything else: AnswerError)
KNOWN_ERRORS = {e.__name__: e for e in (ValueError, TypeError, AssertionError, IndexError, KeyError, RuntimeError,
                                        NotImplementedError, ZeroDivisionError, ArithmeticError, LookupError,
                                        AttributeError, NameError, OverflowError, FloatingPointError)}


class AnswerError(RuntimeError):
    """The student's function raised (in its kernel) something the test cannot see as itself."""


class NotData(TypeError):
    """A value that cannot cross between the processes: not an array, number, string or container of them."""


# -- the data that crosses ------------------------------------------------------------------------
def _framework(value) -> str | None:
    module = type(value).__module__ or ""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    if module.startswith(("tensorflow", "keras", "tf_keras")) and hasattr(value, "numpy") and hasattr(value, "dtype"):
        return "tf"
    return None


def _plain_key(key) -> bool:
    """Keys a dict may cross with: strings and small integers (hashes that cannot be made to collide)."""
    return type(key) is str or (type(key) is int and abs(key) < 2**31)


def encode(value, *, send: list | None = None, known: list | None = None, before: list | None = None,
           graph: dict | None = None) -> str:
    """``value`` as text: an ``.npz`` (arrays, and the structure as JSON) in base64; small numeric
    arrays inline in the JSON instead, and a value without arrays as JSON alone.

    Models a test passes: the grader's side gives ``send``, a list that collects them; PyTorch's travel
    pickled (to the kernel only, :func:`_pickled`), Keras' as data (:func:`_keras_spec`); the kernel's side gives
    ``known``, the modules it was sent: one of those goes back by its number, with its state after
    the call when ``before`` (each module's parameters before it) is given, and any other is not data;
    ``graph`` numbers the result's tensors whose autograd graph the kernel keeps (:func:`_kept_graph`).
    """
    arrays: list = []
    np = sys.modules.get("numpy")  # no numpy imported: no array to send (a framework-free lesson)
    torch = sys.modules.get("torch")

    def node(v, depth=0):
        if depth > MAX_DEPTH:
            raise NotData(f"nested deeper than {MAX_DEPTH} levels")
        if v is None or isinstance(v, (bool, str)) or type(v) in (int, float):
            return v
        if isinstance(v, int):  # an int subclass (IntEnum): its value
            return int(v)
        if isinstance(v, float):
            return float(v)
        if isinstance(v, complex):
            return {"complex": [v.real, v.imag]}
        if np is not None and isinstance(v, np.generic):
            arrays.append(np.asarray(v))
            return {"array": len(arrays) - 1, "kind": "numpy scalar"}
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
                return {"module": len(send) - 1, "kernel": v._kernel_model, "state": node(_mirror_state(v), depth + 1)}
            if _is_test_instance(v):
                send.append(v)  # a plain object of the test's class (a callable standing in for a model): its attributes
                return {"module": len(send) - 1, "instance": type(v).__qualname__, "state": node(vars(v), depth + 1)}
            if keras:  # data, not a pickle: its configuration, trainable flags and weights
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
           graph: dict | None = None) -> object:
    """The value :func:`encode` wrote. A module comes as one of ``modules`` (those the grader sent, by
    number), or, on the kernel's side only (the grader's request), from the pickle the grader sent:
    ``unpickle`` is then a list that receives them. The grader's side never unpickles anything. A model's
    state after a call (:class:`ModuleState`) is read only with ``states`` (what a call did to its arguments);
    ``graph`` receives the tensors the kernel marked as outputs of a graph it keeps, by their number."""
    if not isinstance(text, str) or len(text) > MAX_BYTES * 4 // 3 + 4:
        raise NotData("not an encoded value, or too large")
    if text.startswith(JSON_PREFIX):
        if len(text) > MAX_TREE_BYTES + len(JSON_PREFIX):
            raise NotData("an encoded value beyond the limits")
        return _rebuild(_parsed_json(text[len(JSON_PREFIX):]), {}, modules, states, graph=graph)
    if text.startswith(INLINE_PREFIX):
        return _from_inline(text[len(INLINE_PREFIX):], modules, states, graph)
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
    return _rebuild(tree, arrays, modules, states, graph=graph)


def _from_inline(text: str, modules: list | None, states: bool, graph: dict | None = None):
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
    return _rebuild(found.get("tree"), arrays, modules, states, graph=graph)


def _parsed_json(text: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # malformed, or nested deeper than the parser goes
        raise NotData(f"not an encoded value ({_text(error)[:200]})") from None


def _rebuild(tree, arrays: dict, modules: list | None = None, states: bool = False, from_grader: bool = False,
             graph: dict | None = None):
    """The value a decoded structure describes, its arrays taken from ``arrays`` (each at most once).
    A Keras model's configuration is read only ``from_grader`` (by the kernel: the grader takes data only)."""
    used, count = set(), [0]

    def value(n, depth=0):
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise NotData(f"nested deeper than {MAX_DEPTH} levels, or more than {MAX_NODES} values")
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if not isinstance(n, dict) or len(n) > 4:
            raise NotData("a malformed value")
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
                    graph.setdefault(n["graph"], tensor)  # (made differentiable by call_result, through the kernel)
                    return tensor
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
                    or (index == len(modules) and "made" not in n):
                raise NotData("a model the grader did not send")
            if "kernel" in n:
                if not from_grader:
                    raise NotData("a kernel's model, where the grader takes data only")
                modules[index] = _kernel_model(n["kernel"], value(n.get("state"), depth + 1))
                return modules[index]
            if "made" in n:
                if from_grader or index != len(modules):
                    raise NotData("a model described out of turn")
                modules.append(_mirror(value(n["made"], depth + 1)))
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


def _optimizer_made(n: dict, modules: list | None, value):
    """The optimizer the kernel describes, made here over the parameters of the grader's own models:
    one of PyTorch's optimizer classes, by name, with the kernel's settings and state (data)."""
    import torch

    module_name, _, name = str(n.get("optimizer", "")).rpartition(".")
    cls = getattr(torch.optim, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls.__module__ == module_name
            and module_name.startswith("torch.optim.")):
        raise NotData(f"an optimizer of a class that is not one of torch.optim's ({str(n.get('optimizer'))[:100]}): "
                      "return torch.optim's own")

    def parameter(ref):
        index, path = (ref.get("module"), ref.get("parameter")) if isinstance(ref, dict) else (None, None)
        if type(index) is not int or modules is None or not 0 <= index < len(modules) \
                or not hasattr(modules[index], "get_parameter") or not isinstance(path, str):
            raise NotData("an optimizer over a parameter the grader did not send")
        try:
            return modules[index].get_parameter(path)
        except AttributeError:
            raise NotData("an optimizer over a parameter the grader's model does not have") from None

    groups, state = n.get("groups"), n.get("state")
    if not isinstance(groups, list) or not isinstance(state, list):
        raise NotData("a malformed optimizer")
    param_groups = []
    for group in groups:
        settings = value(group.get("settings")) if isinstance(group, dict) else None
        if not isinstance(settings, dict) or not isinstance(group.get("params"), list):
            raise NotData("a malformed optimizer")
        param_groups.append({**{k: x for k, x in settings.items() if k != "params"},
                             "params": [parameter(ref) for ref in group["params"]]})
    try:
        made = cls(param_groups)
    except (TypeError, ValueError, RuntimeError) as error:  # settings the class refuses
        raise AnswerError(f"the optimizer could not be made again from its settings: {_text(error)}") from None
    for entry in state:
        if not (isinstance(entry, list) and len(entry) == 2):
            raise NotData("a malformed optimizer")
        values = value(entry[1])
        if not isinstance(values, dict):
            raise NotData("a malformed optimizer")
        made.state[parameter(entry[0])] = values
    return made


# -- models a test passes: PyTorch's pickled to the kernel, Keras' as data; their state sent back as data ------
class ModuleState:
    """A model the grader sent, as the kernel reports it after a call (PyTorch: which of its modules
    train, its parameters, whether each is still the object it was, and its buffers; Keras: trainable
    flags and weights, :func:`_keras_state`); :func:`write_back` applies it."""

    def __init__(self, module, state):
        self.module, self.state = module, state


def _module_state(module, before: dict) -> dict:
    return {"training": {name: bool(m.training) for name, m in module.named_modules()},
            "parameters": {name: [p, before.get(name) is p] for name, p in module.named_parameters()},
            "buffers": {name: b for name, b in module.named_buffers() if b is not None},
            "attributes": {name: _plain_attributes(m) for name, m in module.named_modules()}}


def _is_plain(value, depth=0) -> bool:
    """Numbers, strings, None and tuples, lists and dicts of them (a module's settings and records)."""
    if depth > 4:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (tuple, list):
        return len(value) <= 10_000 and all(_is_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return len(value) <= 1_000 and all(_plain_key(k) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _plain_attributes(module) -> dict:
    """A module's own attributes that are plain data (``stride``, a test's record ``self.batches``):
    what an answer may change in them crosses back like its parameters."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _is_plain(v)}


# -- PyTorch models an answer makes: kept in the kernel, a mirror of them in the grader ------------------------
FORWARD = "<forward>"    # the request that runs a kept model (a layer of it) on the test's inputs
KEPT_MODELS = 64         # the kernel keeps this many models its answers made
_KERNEL_MODELS: dict = {}  # the kernel's: number -> model


def _made_description(model) -> dict:
    """The kernel's side: a model the answer made, kept under a number, described as data: for each of its
    modules (parents first) its path, PyTorch's class or the answer's own (by name), its plain attributes
    and mode; its parameters (with ``requires_grad``) and buffers, and the slots left empty (``bias=False``)."""
    import torch

    _GRAPH_COUNT[0] += 1
    _KERNEL_MODELS[_GRAPH_COUNT[0]] = model
    while len(_KERNEL_MODELS) > KEPT_MODELS:
        _KERNEL_MODELS.pop(next(iter(_KERNEL_MODELS)))
    entries = []
    for path, m in model.named_modules():
        cls = type(m)
        library = cls.__module__.startswith("torch.nn.modules.") and getattr(torch.nn, cls.__name__, None) is cls
        entries.append([path, "torch" if library else "own", cls.__qualname__, _plain_attributes(m), bool(m.training),
                        [k for k, v in m._parameters.items() if v is None], [k for k, v in m._buffers.items() if v is None]])
    return {"number": _GRAPH_COUNT[0], "modules": entries,
            "parameters": {name: [p.detach(), bool(p.requires_grad)] for name, p in model.named_parameters()},
            "buffers": {name: b for name, b in model.named_buffers()}}


def _mirror(description):
    """The grader's side: the model the kernel describes, made of PyTorch's own classes (an instance of
    ``nn.Conv2d`` is one) or a ``KernelModule`` (:func:`_kernel_class`) for the answer's classes, with the kernel's parameters.
    Its ``forward`` runs the kernel's model (:func:`_mirror_forward`); nothing here runs the answer's code."""
    def fail(what="a malformed model"):
        raise NotData(f"{what} from the student's kernel")

    if not isinstance(description, dict) or type(description.get("number")) is not int:
        fail()
    entries, parameters, buffers = (description.get(k) for k in ("modules", "parameters", "buffers"))
    if not isinstance(entries, list) or not isinstance(parameters, dict) or not isinstance(buffers, dict) or not entries \
            or len(entries) > 10_000:
        fail()
    try:
        return _mirror_made(description["number"], entries, parameters, buffers, fail)
    except NotData:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:  # a name torch refuses
        raise NotData(f"a malformed model from the student's kernel ({_text(error)})") from None


def _mirror_made(number, entries, parameters, buffers, fail):
    import torch

    made = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 7 and isinstance(entry[0], str) and isinstance(entry[3], dict)):
            fail()
        path, kind, name, attributes, training, no_parameters, no_buffers = entry
        parent, _, leaf = path.rpartition(".")
        if path in made or (path and (parent not in made or not leaf or not leaf.replace("_", "a").isalnum())) \
                or (not path and made) or path.count(".") >= MAX_DEPTH:
            fail()
        cls = getattr(torch.nn, str(name), None) if kind == "torch" else _kernel_class()
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module) and cls.__module__.startswith(
                ("torch.nn.modules.", __name__))) or (kind == "torch" and cls.__qualname__ != name):
            fail(f"a model of a class that is not one of torch.nn's ({str(name)[:100]})")
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        for key, value in attributes.items():  # plain settings (stride, hidden_size); never a method's name
            if isinstance(key, str) and key.isidentifier() and not key.startswith("_") and _is_plain(value) \
                    and not hasattr(cls, key):
                module.__dict__[key] = value
        module.training = training is True
        for key in (no_parameters if isinstance(no_parameters, list) else []):
            if isinstance(key, str) and key.isidentifier() and not hasattr(cls, key):
                module.register_parameter(key, None)
        for key in (no_buffers if isinstance(no_buffers, list) else []):
            if isinstance(key, str) and key.isidentifier() and not hasattr(cls, key):
                module.register_buffer(key, None)
        if kind != "torch":
            module.__dict__["kernel_class"] = str(name)[:200]
        if path:
            made[parent].add_module(leaf, module)
        made[path] = module
    root = made[""]
    for kind, values in (("parameters", parameters), ("buffers", buffers)):
        for name, value in values.items():
            tensor, flag = value if kind == "parameters" and isinstance(value, list) and len(value) == 2 else (value, False)
            owner, _, leaf = str(name).rpartition(".")
            if owner not in made or not isinstance(tensor, torch.Tensor) or hasattr(type(made[owner]), leaf):
                fail()
            if kind == "parameters":
                made[owner].register_parameter(leaf, torch.nn.Parameter(tensor.detach(), requires_grad=flag is True))
            else:
                made[owner].register_buffer(leaf, tensor.detach())
    for module in made.values():  # an RNN's lists of its weights (its __init__ makes them), which .to() and copies use
        if isinstance(module, torch.nn.RNNBase):
            names, layers = [n for n, p in module._parameters.items() if p is not None], {}
            for name in names:  # weight_ih_l0, ..., bias_hh_l0_reverse: grouped by layer and direction
                layers.setdefault(name.rpartition("_l")[2], []).append(name)
            module._flat_weights_names, module._all_weights = names, list(layers.values())
            module._init_flat_weights()
    for path, module in made.items():
        object.__setattr__(module, "forward", functools.partial(_mirror_forward, module))
        object.__setattr__(module, "_kernel_root", root)
        object.__setattr__(module, "_kernel_path", path)
    object.__setattr__(root, "_kernel_model", number)
    return root


def _mirror_state(root) -> dict:
    """What the test may have changed in a mirror: modes, parameters (values, ``requires_grad``) and buffers."""
    return {"training": {path: bool(m.training) for path, m in root.named_modules()},
            "parameters": {name: [p.detach(), bool(p.requires_grad)] for name, p in root.named_parameters()},
            "buffers": {name: b for name, b in root.named_buffers()}}


def _kernel_model(number, state):
    """The kernel's side: the kept model, made what the test's mirror of it is (modes, parameters, buffers)."""
    import torch

    model = _KERNEL_MODELS.get(number) if type(number) is int else None
    if model is None:
        raise NotData(f"a model your kernel no longer keeps (it keeps the last {KEPT_MODELS} made)")
    modules, parameters, buffers = dict(model.named_modules()), dict(model.named_parameters()), dict(model.named_buffers())
    for path, flag in (state.get("training") or {}).items():
        if path in modules and isinstance(flag, bool):
            modules[path].training = flag
    with torch.no_grad():
        for kind, values, mine in (("parameters", state.get("parameters") or {}, parameters),
                                   ("buffers", state.get("buffers") or {}, buffers)):
            for name in set(mine) - set(values):  # removed from the mirror by the test (`layer.bias = None`)
                owner, _, leaf = name.rpartition(".")
                setattr(modules[owner], leaf, None)
            for name, value in values.items():
                tensor, flag = value if kind == "parameters" else (value, None)
                target = mine.get(name)
                if not isinstance(tensor, torch.Tensor):
                    continue
                owner, _, leaf = str(name).rpartition(".")
                if target is None and owner in modules and leaf.isidentifier():  # added to the mirror by the test
                    if kind == "parameters":
                        modules[owner].register_parameter(leaf, torch.nn.Parameter(tensor.detach().clone(),
                                                                                   requires_grad=flag is True))
                    else:
                        modules[owner].register_buffer(leaf, tensor.detach().clone())
                    continue
                if target is None:
                    continue
                if target.shape == tensor.shape and target.dtype == tensor.dtype:
                    target.copy_(tensor)
                else:
                    target.data = tensor.detach().clone()
                if isinstance(flag, bool):
                    target.requires_grad_(flag)
    return model


def _mirror_forward(module, *args, **kwargs):
    root = module._kernel_root
    call = getattr(root, "_kernel_call", None)
    if call is None:
        raise RuntimeError("this model was made in the student's kernel and has no connection to it now")
    return call(FORWARD, (root, module._kernel_path, list(args), dict(kwargs)), {})


def _forward_in_kernel(model, path, args, kwargs):
    """The kernel's side of a mirror's call: the kept model's layer ``path`` on the test's inputs."""
    return model.get_submodule(str(path))(*args, **kwargs)


@functools.cache
def _kernel_class():
    import torch

    class KernelModule(torch.nn.Module):
        """The grader's stand-in for a module of the answer's own class: its layers, parameters and buffers
        are here, its ``forward`` runs in the student's kernel."""

        def extra_repr(self) -> str:
            return f"the student's {self.__dict__.get('kernel_class', '?')}"

    KernelModule.__module__ = __name__
    return KernelModule


# -- Keras models a test passes: their configuration and weights to the kernel, their state back as data ------
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


class _TestClassPickler(pickle.Pickler):
    """A class the test cell defines (``FixedScores``) goes by name: the kernel makes it from the cell's source."""

    def reducer_override(self, obj):
        if isinstance(obj, type) and obj.__module__ == "__main__":
            return _test_class, (obj.__qualname__,)
        return NotImplemented


def _pickled(modules: list) -> bytes:
    """The grader's models for the kernel (the kernel is the only side that unpickles: it trusts the grader)."""
    buffer = io.BytesIO()
    try:
        _TestClassPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(modules)
    except Exception as error:  # noqa: BLE001 - a lambda or a function of the test inside the model
        raise NotData(f"a model that cannot be copied into the kernel ({_text(error)})") from None
    return buffer.getvalue()


_KERNEL = threading.local()  # .classes: the test cell's classes while the kernel reads the grader's request


_MADE: dict[str, dict] = {}  # the test classes made from a source, reused by the cell's next calls (hundreds, at times)


def _made_classes(source: str, names: list) -> dict:
    if source not in _MADE:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(source, "<the test's classes>", "exec"), namespace)  # noqa: S102 - the grader's code
        if len(_MADE) >= 8:
            _MADE.clear()
        _MADE[source] = {n: namespace.get(n) for n in names}
    return _MADE[source]


def _test_class(name: str):
    found = getattr(_KERNEL, "classes", {}).get(name)
    if not isinstance(found, type):
        raise NotData(f"the test's class {name!r} did not come with the request")
    return found


def _is_test_instance(value) -> bool:
    """A plain object of a class the test cell defines (``__main__`` in the grader's namespace): not a
    class, and not a model (those cross as models)."""
    torch = sys.modules.get("torch")
    return type(value).__module__ == "__main__" and not isinstance(value, type) and hasattr(value, "__dict__") \
        and not (torch is not None and isinstance(value, torch.nn.Module)) and not _is_keras_layer(value)


def _test_instance(name: str, state) -> object:
    """The grader's object of a test class, made in the kernel from its attributes (its ``__init__`` not run again)."""
    if not isinstance(state, dict):
        raise NotData("a malformed object of the test's class")
    cls = _test_class(name)
    made = cls.__new__(cls)
    made.__dict__.update(state)
    return made


class _ModelUnpickler(pickle.Unpickler):
    """What a pickle of the grader's models may name: PyTorch's own classes and rebuild functions, plain
    containers, and the test's classes (:func:`_test_class`); nothing that runs a program or a file."""

    def find_class(self, module, name):
        from course_utils.instructor.audit import allowed_pickle

        if (module, name) == (__name__, "_test_class") or allowed_pickle(module, name):
            return super().find_class(module, name)
        if module.startswith(("torch.nn.modules.", "torch.nn.parameter")) and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise NotData(f"the grader's models name {module}.{name}, which is not a PyTorch class or rebuild function")


def _unpickled(data: bytes) -> list:
    found = _ModelUnpickler(io.BytesIO(data)).load()  # the grader's request (signed: .guard), read in the kernel
    if not isinstance(found, list):
        raise NotData("a malformed list of models")
    return found


def imports_of(source: str) -> str:
    """The import statements of a cell (the set-up's), as source."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(s) for s in body if _is_import(s))


def _is_import(statement) -> bool:
    return isinstance(statement, (ast.Import, ast.ImportFrom))


def test_classes(source: str) -> dict[str, str]:
    """The classes a test cell defines, as source: the kernel needs them to make the models the test passes."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return {}
    return {s.name: ast.unparse(s) for s in body if isinstance(s, ast.ClassDef)}


def _write_back_attributes(objects: dict, state) -> None:
    """Plain attributes the objects (by path) have here, set to the plain data the kernel reports."""
    attributes = state.get("attributes") if isinstance(state, dict) and isinstance(state.get("attributes"), dict) else {}
    for name, values in attributes.items():
        mine = _plain_attributes(objects[name]) if name in objects else {}
        for key, value in (values.items() if isinstance(values, dict) else ()):
            if key in mine and _is_plain(value) and value != mine[key]:
                setattr(objects[name], key, value)


def _write_back_module(module, state) -> None:
    """Make ``module`` what the kernel's copy became: training flags; parameters changed in place (also
    to another dtype), replaced (so that a test can tell), added or removed; buffers. Layers added or
    removed cannot be copied: the call fails, naming them."""
    import torch

    modules = dict(module.named_modules())
    training = state.get("training") if isinstance(state, dict) else None
    if not isinstance(training, dict):
        raise AnswerError("the student's kernel sent a malformed model state")
    changed = sorted(set(training) ^ set(modules))
    if changed:
        raise AnswerError(f"the answer added or removed layers of the model ({', '.join(map(str, changed[:5]))}): "
                          "the test gets back a model's modes, parameters and buffers, not new layers")
    for name, flag in training.items():
        if isinstance(flag, bool):
            modules[name].training = flag
    _write_back_attributes(modules, state)
    try:
        for kind in ("parameters", "buffers"):
            current = dict(module.named_parameters() if kind == "parameters" else module.named_buffers())
            reported = state.get(kind) if isinstance(state.get(kind), dict) else {}
            for name in set(current) - set(reported):  # removed (or set to None) in the kernel
                owner, _, leaf = name.rpartition(".")
                setattr(modules[owner], leaf, None)
            for name, entry in reported.items():
                value, same = entry if kind == "parameters" and isinstance(entry, list) and len(entry) == 2 else (entry, True)
                owner, _, leaf = str(name).rpartition(".")
                if not isinstance(value, torch.Tensor) or owner not in modules or not leaf.isidentifier():
                    continue
                original = current.get(name)
                if original is not None and same is True:
                    if value.shape == original.shape and value.dtype == original.dtype:
                        write_back(original, value)
                    else:  # `.double()`, `.data = ...`: the same object, other data
                        original.data = value.detach().clone()
                    if kind == "parameters" and original.requires_grad != value.requires_grad:
                        original.requires_grad_(value.requires_grad)
                elif kind == "parameters":
                    replacement = torch.nn.Parameter(value.detach().clone(), requires_grad=bool(value.requires_grad))
                    modules[owner].register_parameter(leaf, replacement)
                else:
                    modules[owner].register_buffer(leaf, value.detach().clone())
    except (RuntimeError, TypeError, KeyError, AttributeError) as error:
        raise AnswerError(f"the model came back in a form the grader cannot apply: {_text(error)}") from None


# -- the student's side: run by the grading kernel (:mod:`.guard`) -----------------------------
def answer_call(user_ns: dict, request: str, arm=lambda on: None) -> dict:
    """Run one call the grader asks for; the display data that carries its result (or its error) back.
    ``arm`` switches the audit hook on for all of it: reading the request runs the kernel's classes too."""
    arm(True)
    try:
        return _read_and_answer(user_ns, request)
    finally:
        arm(False)


def _read_and_answer(user_ns: dict, request: str) -> dict:
    try:
        asked = json.loads(request)
        name = str(asked["name"])
        classes = asked.get("classes") or {}
        if classes:  # the test's own classes, for the models it passes, made with the set-up's imports only
            _KERNEL.classes = _made_classes("\n".join([str(asked.get("imports", "")), *map(str, classes.values())]),
                                            list(classes))
        modules: list = []
        try:
            args, kwargs = decode(asked["args"], unpickle=modules)
        finally:
            _KERNEL.classes = {}
    except Exception as error:  # noqa: BLE001 - a malformed request: say so
        return {"error": ["NotData", f"the grader's request could not be read: {error}"[:2000]]}
    before = [list(m.weights) if _is_keras_layer(m) else dict(m.named_parameters()) if hasattr(m, "named_parameters")
              else None for m in modules]
    if name == BACKWARD:
        return _backward_answer(args)
    function = _forward_in_kernel if name == FORWARD else user_ns.get(name)
    if function is None:
        return {"error": ["NameError", f"name {name!r} is not defined: run the cell that defines it"]}
    return _answer(function, name, args, kwargs, asked.get("context"), modules, before)


def _answer(function, name, args, kwargs, context, modules, before) -> dict:
    try:
        with _entered(context), _recording(context, [args, kwargs]) as tape:
            result = _traced_call(function, args, kwargs, context)
    except BaseException as error:  # noqa: BLE001 - the answer's error goes to the test
        return {"error": [_error_name(error), _text(error)]}
    answer = {}
    try:  # what the call did to its arguments, which the test may look at; first, as the grader reads them
        answer["args"] = encode([args, kwargs], known=modules, before=before)
    except Exception as error:  # noqa: BLE001
        return {"error": ["NotData", f"{name} changed its arguments into something the grader cannot compare: "
                                     f"{_text(error)}"]}
    try:
        marked, graph = _kept_graph(result, [args, kwargs], modules, tape)
        answer["result"] = encode(result, known=modules, graph=marked)
        if graph is not None:
            answer["graph"] = graph
    except Exception as error:  # noqa: BLE001 - NotData, or a value whose conversion fails
        return {"error": ["NotData", f"{name} returned {_text(error)}: the grader compares arrays, tensors, numbers, "
                                     "strings and tuples, lists and dicts of them"]}
    return answer


def _traced_call(function, args, kwargs, context):
    """The answer, run as the test runs it: traced by ``tf.function`` with the test's input signature
    (dimensions unknown where the test's are) when the test traced the call."""
    traced = context.get("traced") if isinstance(context, dict) else None
    if not isinstance(traced, dict) or "tensorflow" not in sys.modules:
        return function(*args, **kwargs)
    tf = sys.modules["tensorflow"]
    positions, specs = traced.get("positions"), traced.get("specs")
    signature = [tf.TensorSpec([None if d is None else int(d) for d in shape], tf.as_dtype(str(dtype)))
                 for shape, dtype in specs]

    def run(*tensors):
        full = list(args)
        for k, t in zip(positions, tensors):
            full[k] = t
        return function(*full, **kwargs)

    return tf.function(run, input_signature=signature)(*[args[k] for k in positions])


def _error_name(error: BaseException) -> str:
    """The first class in the error's ancestry the test can see as itself (a ``ValueError`` subclass: ``ValueError``)."""
    for cls in type(error).__mro__:
        if cls.__name__ in KNOWN_ERRORS and cls is KNOWN_ERRORS[cls.__name__]:
            return cls.__name__
    return type(error).__name__


# -- the test's context around a call (grad mode, a refusal of autograd), applied in the kernel too ------
def call_context(imports: str = "") -> dict:
    """What of the grader's state around a call the answer must run under as well; ``imports``, the
    set-up's, say which framework's generator the test seeds (the grader may have both imported)."""
    context = {}
    torch = sys.modules.get("torch")
    # the answer's draws come from the test's generator: a seed drawn from it (so the test's
    # manual_seed or set_random_seed makes them repeat and each call draws afresh), never the
    # generator's state itself (a state the kernel sent back could choose the test's next "random" inputs)
    if "tensorflow" in sys.modules and _imports_framework(imports) == "tensorflow":
        import random

        # Seeding TensorFlow clears its cache of op kernels (every op of the answer then costs a
        # millisecond or more to make again), so the kernel is seeded only when the test has seeded (or
        # drawn) since the last call, and goes on drawing afresh from its generators otherwise. The seed
        # comes from Python's generator, which keras.utils.set_random_seed and cu.seed_everything seed.
        if random.getstate() != _TF_SEEDED.get("after"):
            context["seed"] = random.getrandbits(62)
            _TF_SEEDED["after"] = random.getstate()
        if _tape_recording():
            context["tape"] = True  # the test's GradientTape is recording: the kernel records the call too
    elif torch is not None:
        context["seed"] = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    if torch is not None:
        context["grad"] = bool(torch.is_grad_enabled())
        refusing = sys.modules.get("course_utils.torch")
        message = refusing.autograd_refused() if refusing is not None else None
        if message:
            context["no_autograd"] = str(message)
    return context


_TF_SEEDED: dict = {}  # the grader's: Python's generator state after the last seed it drew for a TensorFlow call


def _tape_recording() -> bool:
    """Whether a GradientTape of the test is recording here (TensorFlow has no public way to ask)."""
    try:
        from tensorflow.python.eager import record
        return bool(record.could_possibly_record())
    except (ImportError, AttributeError):
        return False


@contextlib.contextmanager
def _recording(context, args):
    """The kernel's side: a persistent tape around the answer when the test's tape records, watching
    the call's float tensors (the variables of the models it got are watched as they are read)."""
    if not (isinstance(context, dict) and context.get("tape") is True and "tensorflow" in sys.modules):
        yield None
        return
    tape = sys.modules["tensorflow"].GradientTape(persistent=True)
    with tape:
        for tensor in _tf_grad_tensors(args):
            tape.watch(tensor)
        yield tape


def _imports_framework(imports: str) -> str | None:
    """``"tensorflow"`` or ``"torch"``: the framework a set-up's imports bring in (TensorFlow's if both)."""
    try:
        body = ast.parse(imports).body
    except SyntaxError:
        return None
    names = set()
    for statement in body:
        if isinstance(statement, ast.Import):
            names |= {alias.name.split(".")[0] for alias in statement.names}
        elif isinstance(statement, ast.ImportFrom) and statement.module:
            names.add(statement.module.split(".")[0])
    return "tensorflow" if names & {"tensorflow", "keras"} else "torch" if "torch" in names else None


def _entered(context) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    if isinstance(context, dict) and "grad" in context and "torch" in sys.modules:
        stack.enter_context(sys.modules["torch"].set_grad_enabled(bool(context["grad"])))
    if isinstance(context, dict) and type(context.get("seed")) is int:
        import random

        seed = context["seed"]
        # the generators cu.seed_everything seeds, without its switch of deterministic algorithms,
        # which is the notebook's to set
        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed % 2**32)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)
        if "keras" in sys.modules:  # TensorFlow's global seed and Keras' own generator
            sys.modules["keras"].utils.set_random_seed(seed % 2**32)
        elif "tensorflow" in sys.modules:
            sys.modules["tensorflow"].random.set_seed(seed)
    if isinstance(context, dict) and isinstance(context.get("no_autograd"), str):
        from course_utils.torch import refuse_autograd

        stack.enter_context(refuse_autograd(context["no_autograd"]))
    return stack


def _text(error) -> str:
    try:
        return str(error)[:2000]
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        return f"<{type(error).__name__}>"


# -- the grader's side -----------------------------------------------------------------------------
def static_part(source: str, used_later=frozenset()) -> str:
    """What of a judged test cell the student's kernel runs: its imports, the functions and classes it
    defines that later cells of the notebook use (``used_later``; defining computes nothing), and its
    static checks of the answer's code (:data:`STATIC_CHECKS`) with the statements that make what
    they use. Never a reference value: that is computed in the grader only."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return KERNEL_PLACEHOLDER
    checks = [s for s in body if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in STATIC_CHECKS
                                     for n in ast.walk(s))]
    definitions = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    keep = {id(s) for s in checks} | {id(s) for s in body if _is_import(s)
                                      or (isinstance(s, definitions) and s.name in used_later)}
    needed = {n.id for s in checks for n in ast.walk(s) if isinstance(n, ast.Name)}  # what a definition uses runs later, if ever
    grew = True
    while grew:  # the statements that make the names the checks use, and the names those use
        grew = False
        for s in body:
            if id(s) not in keep and not isinstance(s, definitions) and _defined(s) & needed:
                keep.add(id(s))
                needed |= {n.id for n in ast.walk(s) if isinstance(n, ast.Name)}
                grew = True
    kept = "\n".join(ast.unparse(s) for s in body if id(s) in keep)
    return kept or KERNEL_PLACEHOLDER


def names_used_after(sources: list[str]) -> list[set[str]]:
    """For each cell, the names the cells after it read (cells that do not parse read nothing)."""
    after, ahead = [set() for _ in sources], set()
    for index in range(len(sources) - 1, -1, -1):
        after[index] = set(ahead)
        try:
            ahead |= {n.id for n in ast.walk(ast.parse(sources[index])) if isinstance(n, ast.Name)}
        except SyntaxError:
            pass
    return after


def _defined(statement) -> set[str]:
    """The names a statement binds or changes anywhere in it (``x = ...``, ``x += ...``, ``x.append(...)``)."""
    found = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.attr in ("append", "extend", "insert", "update", "add", "setdefault"):
            found.add(node.func.value.id)
    return found


class Remote:
    """An answer function of the student's kernel, as the judged test calls it: data in, data out."""

    def __init__(self, name: str, call):
        """``call(name, args, kwargs)`` makes the crossing: :meth:`KernelLink.call`, or
        :func:`call_without_kernel` in the lessons' tests."""
        self.__name__ = self.__qualname__ = name
        self._call = call

    def __call__(self, *args, **kwargs):
        tf = sys.modules.get("tensorflow")
        if tf is not None and tf.inside_function():
            return self._traced(tf, args, kwargs)
        return self._call(self.__name__, args, kwargs)

    def _traced(self, tf, args, kwargs):
        """Called while the test's ``tf.function`` traces (its inputs symbolic, of unknown batch size):
        the call is made when the traced function runs (``tf.py_function``), and the kernel runs the
        answer traced too, with the same input signature, so that what fails in a graph fails there."""
        positions = [k for k, a in enumerate(args) if tf.is_symbolic_tensor(a)]
        if not positions or any(tf.is_symbolic_tensor(v) for v in kwargs.values()):
            raise NotData(f"{self.__name__} is traced with symbolic values the judge does not send "
                          "(symbolic tensors are sent as positional arguments only)")
        traced = {"positions": positions,
                  "specs": [[[None if d is None else int(d) for d in args[k].shape], args[k].dtype.name] for k in positions]}

        def run(*values):
            concrete = list(args)
            for k, v in zip(positions, values):
                concrete[k] = v
            return self._call(self.__name__, tuple(concrete), kwargs, traced=traced)

        return tf.py_function(run, [args[k] for k in positions], Tout=args[positions[0]].dtype)

    def __repr__(self) -> str:
        return f"<the student's {self.__name__}, called in their kernel>"


_GRADING = threading.local()  # set while the grader runs a judged test (never in the student's kernel)


def is_remote(value) -> bool:
    """An answer as the grader's own run of a judged test sees it (there, static checks are the kernel's)."""
    return type(value) is Remote and getattr(_GRADING, "on", False)


@contextlib.contextmanager
def grading():
    """The grader's run of a judged test: :func:`is_remote` holds for its answers."""
    _GRADING.on = True
    try:
        yield
    finally:
        _GRADING.on = False


class KernelLink:
    """A second connection to the student's kernel (plain zmq, beside nbclient's), for the calls."""

    def __init__(self, info: dict, key: bytes, timeout: float):
        import zmq
        from jupyter_client.session import Session

        self.key, self.timeout, self.cell = key, timeout, ""
        self.deadline = float("inf")  # the running test cell's: all its calls share the cell's time limit
        self.session = Session(key=info["key"], signature_scheme=info.get("signature_scheme", "hmac-sha256"))
        self.context = zmq.Context()
        sep = ":" if info.get("transport", "tcp") == "tcp" else "-"
        url = f"{info.get('transport', 'tcp')}://{info['ip']}{sep}"
        self.shell = self.context.socket(zmq.DEALER)
        self.shell.linger = 0
        self.shell.connect(f"{url}{info['shell_port']}")
        self.iopub = self.context.socket(zmq.SUB)
        self.iopub.linger = 0
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        for socket in (self.shell, self.iopub):  # a larger message is dropped: the call then fails in time
            socket.setsockopt(zmq.MAXMSGSIZE, 4 * MAX_BYTES)
        self.iopub.connect(f"{url}{info['iopub_port']}")
        self._ready = False
        self.printed: list[str] = []  # what the answers printed during this cell's calls (shown in the cell)

    def close(self) -> None:
        self.iopub.close()
        self.shell.close()
        self.context.term()

    def _wait_ready(self) -> None:
        """A SUB socket misses what is published before it has joined: ask until the kernel's status arrives."""
        deadline = time.monotonic() + 30
        while not self._ready and time.monotonic() < deadline:
            msg = self.session.msg("kernel_info_request", {})
            self.session.send(self.shell, msg)
            self._exchange(msg["header"]["msg_id"], time.monotonic() + 1.0, ready_check=True)

    def _exchange(self, msg_id: str, deadline: float, ready_check: bool = False):
        import zmq

        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        answer, replied, idle = None, False, False
        while not (replied and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                if ready_check:
                    return None
                raise TimeoutError(f"your kernel did not answer within the test's {self.timeout:.0f} s")
            for socket, _ in poller.poll(left * 1000):
                _, msg = self.session.recv(socket, mode=zmq.NOBLOCK)
                if not msg or (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                    continue
                if socket is self.shell:
                    replied = True
                elif msg["msg_type"] == "status":
                    self._ready = True
                    idle = msg["content"].get("execution_state") == "idle"
                elif msg["msg_type"] == "stream" and sum(map(len, self.printed)) < 4000:
                    self.printed.append(str((msg.get("content") or {}).get("text", ""))[:4000])
                elif msg["msg_type"] == "display_data" and answer is None:
                    data = (msg.get("content") or {}).get("data") or {}
                    found = data.get(MIME_CALL)
                    if isinstance(found, dict) and found.get("call") == msg_id:
                        answer = found
        return answer

    def call(self, name: str, args, kwargs, classes: dict | None = None, imports: str = "", traced: dict | None = None):
        """Call ``name`` in the kernel; ``classes`` and ``imports``: the test cell's classes and the
        set-up's imports, which the kernel needs to make the models the test passes; ``traced``: the
        input signature when the test traces the call (:meth:`Remote._traced`)."""
        self._wait_ready()
        sent: list = []
        # silent: no execute_input and no execution count per call (a test may make hundreds of calls)
        content = {"code": call_request(name, args, kwargs, sent, classes, imports, traced), "silent": True,
                   "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": False}
        msg = self.session.msg("execute_request", content)
        msg_id = msg["header"]["msg_id"]
        msg["metadata"] = {META: {"role": CALL, "cell": self.cell,
                                  "mac": request_mac(self.key, msg_id, CALL, self.cell)}}
        self.session.send(self.shell, msg)
        answer = self._exchange(msg_id, min(self.deadline, time.monotonic() + self.timeout))
        return call_result(name, answer, args, kwargs, sent, again=self.call)


def call_request(name: str, args, kwargs, sent: list | None = None, classes: dict | None = None, imports: str = "",
                 traced: dict | None = None) -> str:
    """The text of a call the kernel runs with :func:`answer_call`; the models it passes are added to ``sent``."""
    sent = [] if sent is None else sent
    try:
        payload = encode([list(args), dict(kwargs)], send=sent)
    except NotData as error:
        raise NotData(f"the test passes {error} to {name}: this test cannot be judged outside the kernel") from None
    # (a backward pass draws nothing: no seed taken from the test's generator for it)
    request = {"name": name, "args": payload, "context": call_context(imports) if name != BACKWARD else {}}
    if traced:
        request["context"]["traced"] = traced
    if sent and classes:
        request["classes"], request["imports"] = dict(classes), imports
    return json.dumps(request)


def call_result(name: str, answer, args=(), kwargs=None, sent: list | None = None, again=None):
    """The value an :func:`answer_call` answer carries, or the answer's error raised here; what the
    call changed in its arguments (arrays, tensors, variables, lists, dicts, the models in ``sent``) is
    changed in ``args`` and ``kwargs`` too, as if the function had run here. Tensors of the result that
    depend on the call's differentiable inputs in the kernel are joined to those inputs here
    (:func:`_joined_to_kernel_graph`): a backward pass asks the kernel, through ``again``, for the gradients."""
    if not isinstance(answer, dict):
        raise AnswerError(f"{name}: the student's kernel sent no result")
    if "error" in answer:
        ename, evalue = (list(answer["error"]) + ["", ""])[:2]
        known = KNOWN_ERRORS.get(str(ename))
        raise known(str(evalue)) if known else AnswerError(f"{ename}: {evalue}")
    if "args" in answer:  # first: a result may name the parameters the call replaced (an optimizer over them)
        write_back([list(args), dict(kwargs or {})], decode(answer["args"], modules=sent, states=True))
    outputs: dict = {}
    result = decode(answer.get("result"), modules=sent, graph=outputs)
    for model in sent or ():  # models the answer made: their mirrors call the kernel through the same crossing
        if hasattr(model, "_kernel_model") and getattr(model, "_kernel_call", None) is None:
            object.__setattr__(model, "_kernel_call", again)
    if outputs and again is not None and isinstance(answer.get("graph"), dict):
        result = _joined_to_kernel_graph(result, outputs, answer["graph"], [list(args), dict(kwargs or {})], sent, again)
    return result


def call_without_kernel(namespace: dict, name: str, args, kwargs, classes: dict | None = None, imports: str = "",
                        traced: dict | None = None):
    """The same crossing with the answer's functions in ``namespace`` of this process, for the lessons' tests
    (tests/harness.py): the call runs in another thread, so the test's grad mode and torch function modes
    reach it only through the request, as in a kernel, and the random generators the answer uses are
    put back afterwards, as if they were another process's."""
    sent: list = []
    request, answer = call_request(name, args, kwargs, sent, classes, imports, traced), {}
    worker = threading.Thread(target=lambda: answer.update(answer_call(namespace, request)))
    with _generators_kept():
        worker.start()
        worker.join()
    return call_result(name, answer, args, kwargs, sent, again=functools.partial(call_without_kernel, namespace))


# -- autograd across the boundary: the kernel keeps a call's graph, the grader's backward pass asks it ------
BACKWARD = "<backward>"  # the request for the gradients of a kept graph (not a name an answer can define)
KEPT_GRAPHS = 64         # the kernel keeps the graphs of this many recent calls
_GRAPHS: dict = {}       # the kernel's: number -> (inputs, outputs) of a call's graph
_GRAPH_COUNT = [0]


def _grad_tensors(value, depth=0) -> list:
    """The tensors that require gradients in a call's arguments, in one order on both sides."""
    torch = sys.modules.get("torch")
    if torch is None or depth > MAX_DEPTH:
        return []
    if isinstance(value, torch.Tensor):
        return [value] if value.requires_grad and value.is_floating_point() else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _grad_tensors(v, depth + 1)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _grad_tensors(v, depth + 1)]
    return []


def _tf_grad_tensors(value, depth=0) -> list:
    """The float tensors (not variables) of a call's arguments or result, in one order on both sides."""
    if depth > MAX_DEPTH:
        return []
    if _framework(value) == "tf":
        return [value] if not hasattr(value, "assign") and value.dtype.is_floating else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tf_grad_tensors(v, depth + 1)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tf_grad_tensors(v, depth + 1)]
    return []


def _kept_graph(result, args, modules: list, tape=None) -> tuple[dict, dict] | tuple[None, None]:
    """The kernel's side, after a call: keep the graph from the call's differentiable inputs (its arguments,
    the parameters of the models the grader sent) to the result's tensors that depend on them (PyTorch's
    graph, or TensorFlow's ``tape`` when the test's tape recorded the call); what the grader needs to join
    them: ``({id(output): number}, {"number", "inputs"})``."""
    torch = sys.modules.get("torch")
    if tape is not None:
        outputs = _tf_grad_tensors(result)
        inputs = [(t, {"arg": k}) for k, t in enumerate(_tf_grad_tensors(args))]
        inputs += [(w, {"module": i, "weight": j}) for i, m in enumerate(modules) if _is_keras_layer(m)
                   for j, w in enumerate(m.trainable_weights)]
    elif torch is None or not torch.is_grad_enabled():
        return None, None
    else:
        outputs = [t for t in _grad_tensors(result) if t.grad_fn is not None]
        inputs = [(t, {"arg": k}) for k, t in enumerate(_grad_tensors(args))]
        inputs += [(p, {"module": i, "parameter": name}) for i, m in enumerate(modules) if hasattr(m, "named_parameters")
                   for name, p in m.named_parameters() if p.requires_grad]
    if not outputs or not inputs:
        return None, None
    _GRAPH_COUNT[0] += 1
    _GRAPHS[_GRAPH_COUNT[0]] = ([t for t, _ in inputs], outputs, tape)
    while len(_GRAPHS) > KEPT_GRAPHS:
        _GRAPHS.pop(next(iter(_GRAPHS)))
    return {id(t): k for k, t in enumerate(outputs)}, {"number": _GRAPH_COUNT[0], "inputs": [r for _, r in inputs]}


def _backward_answer(args) -> dict:
    """The kernel's side of a backward pass: the gradients of a kept graph's inputs for the outputs' gradients."""
    number, grads = (list(args[0]) + [None, None])[:2] if args and isinstance(args[0], (list, tuple)) else (None, None)
    kept = _GRAPHS.get(number) if type(number) is int else None
    if kept is None:
        return {"error": ["RuntimeError", "the graph of that call is no longer kept in your kernel: "
                                          f"backward within {KEPT_GRAPHS} calls of the call"]}
    inputs, outputs, tape = kept
    kind = "tf" if tape is not None else "torch"
    if not isinstance(grads, list) or len(grads) != len(outputs) or not all(_framework(g) == kind for g in grads):
        return {"error": ["NotData", "a malformed backward request"]}
    try:
        if tape is not None:
            found = tape.gradient(outputs, inputs, output_gradients=grads)
        else:
            found = sys.modules["torch"].autograd.grad(outputs, inputs, grads, retain_graph=True, allow_unused=True)
        return {"result": encode(list(found))}
    except Exception as error:  # noqa: BLE001 - autograd's own error (a second backward through a freed graph)
        return {"error": [_error_name(error), _text(error)]}


def _joined_to_kernel_graph(result, outputs: dict, graph: dict, args, sent, again):
    """``result`` with the tensors the kernel marked made outputs of one autograd function of the call's
    differentiable inputs here; its backward asks the kernel for the gradients (:func:`_backward_answer`).
    TensorFlow's through ``tf.custom_gradient`` (:func:`_joined_tf`)."""
    numbered = [outputs[k] for k in sorted(outputs)]
    tf_graph = _framework(numbered[0]) == "tf" if numbered else False
    mine = _tf_grad_tensors(args) if tf_graph else _grad_tensors(args)
    refs = graph.get("inputs") if isinstance(graph.get("inputs"), list) else []
    weights = sum(len(m.trainable_weights) if _is_keras_layer(m) else len(list(m.parameters()))
                  for m in sent or () if _is_keras_layer(m) or hasattr(m, "parameters"))
    if len(refs) > len(mine) + weights:  # more inputs than the call has: a reply made to cost time here
        raise NotData("a malformed graph")
    inputs = []
    for ref in refs:
        if isinstance(ref, dict) and type(ref.get("arg")) is int and 0 <= ref["arg"] < len(mine):
            inputs.append(mine[ref["arg"]])
        elif tf_graph and isinstance(ref, dict) and type(ref.get("module")) is int and sent \
                and 0 <= ref["module"] < len(sent) and _is_keras_layer(sent[ref["module"]]) and type(ref.get("weight")) is int \
                and 0 <= ref["weight"] < len(sent[ref["module"]].trainable_weights):
            inputs.append(sent[ref["module"]].trainable_weights[ref["weight"]])
        elif isinstance(ref, dict) and type(ref.get("module")) is int and sent and 0 <= ref["module"] < len(sent) \
                and hasattr(sent[ref["module"]], "get_parameter") and isinstance(ref.get("parameter"), str):
            try:
                inputs.append(sent[ref["module"]].get_parameter(ref["parameter"]))
            except AttributeError:
                raise NotData("a gradient for a parameter the grader's model does not have") from None
        else:
            raise NotData("a malformed graph")
    if not inputs or sorted(outputs) != list(range(len(outputs))) \
            or any((_framework(t) == "tf") != tf_graph for t in numbered):
        raise NotData("a malformed graph")
    number = graph.get("number")

    def backward(grads):
        found = again(BACKWARD, ([number, list(grads)],), {})
        if not isinstance(found, list) or len(found) != len(inputs):
            raise AnswerError("the student's kernel sent malformed gradients")
        return found

    joined = _joined_tf(backward, inputs, numbered) if tf_graph else \
        _kernel_function().apply(backward, len(inputs), *inputs, *numbered)
    mapping = {id(t): j for t, j in zip(numbered, joined)}

    def replaced(v, depth=0):
        if id(v) in mapping:
            return mapping[id(v)]
        if depth > MAX_DEPTH:
            return v
        if isinstance(v, tuple):
            return tuple(replaced(x, depth + 1) for x in v)
        if isinstance(v, list):
            return [replaced(x, depth + 1) for x in v]
        if isinstance(v, dict):
            return {k: replaced(x, depth + 1) for k, x in v.items()}
        return v

    return replaced(result)


def _joined_tf(backward, inputs: list, outputs: list) -> list:
    """The kernel's outputs as one function of the test's tensors and variables, for the test's tape."""
    tf = sys.modules["tensorflow"]
    tensors = [x for x in inputs if not hasattr(x, "assign")]
    variables = [x for x in inputs if hasattr(x, "assign")]

    def split(found, used):
        by_variable = {id(getattr(v, "value", v)): g for v, g in zip(variables, found[len(tensors):])}
        return found[:len(tensors)], [by_variable.get(id(v)) for v in used or ()]

    def ordered(found):  # the kernel answers in the order of ``inputs``; here tensors first, then variables
        position = {id(x): k for k, x in enumerate(inputs)}
        return [found[position[id(x)]] for x in tensors + variables]

    @tf.custom_gradient
    def joined(*xs):
        for variable in variables:  # read here, so that the tape sees the outputs depend on them
            tf.convert_to_tensor(variable)
        copies = [tf.identity(o) for o in outputs]

        def filled(dys):  # an output the loss does not use: a zero gradient
            return [tf.zeros_like(o) if d is None else d for d, o in zip(dys, copies)]

        if variables:
            def gradient(*dys, variables=None):
                return split(ordered(backward(filled(dys))), variables)
        else:
            def gradient(*dys):
                return split(ordered(backward(filled(dys))), ())[0]
        return copies, gradient

    return joined(*tensors)


@functools.cache
def _kernel_function():
    import torch

    class KernelGraph(torch.autograd.Function):
        """Outputs computed in the kernel from ``inputs``; their gradients come from the kernel too."""

        @staticmethod
        def forward(ctx, backward, count, *tensors):
            ctx.backward, ctx.count, ctx.outputs = backward, count, len(tensors) - count
            return tuple(t.clone() for t in tensors[count:])

        @staticmethod
        @torch.autograd.function.once_differentiable  # the kernel's gradients carry no graph here: say so
        def backward(ctx, *grads):
            found = ctx.backward(grads)
            return (None, None, *found, *([None] * ctx.outputs))

    return KernelGraph


@contextlib.contextmanager
def _generators_kept():
    """The global random generators (Python's, numpy's, PyTorch's) as they were before the block; inside
    it, as the previous block left them (the kernel's own, going on from call to call as in another process)."""
    import random

    generators = [("random", random.getstate, random.setstate)]
    if "numpy" in sys.modules:
        generators.append(("numpy", sys.modules["numpy"].random.get_state, sys.modules["numpy"].random.set_state))
    if "torch" in sys.modules:
        generators.append(("torch", sys.modules["torch"].get_rng_state, sys.modules["torch"].set_rng_state))
    kept = [(put, get()) for _, get, put in generators]
    for name, _, put in generators:
        if name in _KERNELS_GENERATORS:
            put(_KERNELS_GENERATORS[name])
    try:
        yield
    finally:
        for name, get, _ in generators:
            _KERNELS_GENERATORS[name] = get()
        for put, state in kept:
            put(state)


_KERNELS_GENERATORS: dict = {}  # call_without_kernel's stand-in for the kernel's generators (the lessons' tests)


def write_back(original, changed, depth=0) -> None:
    """Change ``original`` in place where ``changed`` (its copy after the call) differs."""
    if depth > MAX_DEPTH:
        return
    if isinstance(changed, ModuleState):
        if changed.module is original:
            if _is_test_instance(original):
                _write_back_attributes({"": original}, changed.state)
            else:
                (_write_back_keras if _is_keras_layer(original) else _write_back_module)(original, changed.state)
        return
    if isinstance(original, list) and isinstance(changed, list):
        if len(original) != len(changed):
            original[:] = changed
            return
        for o, c in zip(original, changed):
            write_back(o, c, depth + 1)
    elif isinstance(original, tuple) and isinstance(changed, tuple):
        for o, c in zip(original, changed):
            write_back(o, c, depth + 1)
    elif isinstance(original, dict) and isinstance(changed, dict):
        for key in list(original):
            if key in changed:
                write_back(original[key], changed[key], depth + 1)
    elif "numpy" in sys.modules and isinstance(original, sys.modules["numpy"].ndarray) \
            and isinstance(changed, sys.modules["numpy"].ndarray):
        np = sys.modules["numpy"]
        if original.shape == changed.shape and original.dtype == changed.dtype and original.flags.writeable \
                and original.tobytes() != changed.tobytes():
            np.copyto(original, changed)
    elif _framework(original) == "torch" and _framework(changed) == "torch":
        import torch

        before = original.detach().cpu().numpy()
        after = changed.detach().numpy()
        if before.shape == after.shape and before.dtype == after.dtype and before.tobytes() != after.tobytes():
            with torch.no_grad():
                original.copy_(changed.to(original.device))
    elif _framework(original) == "tf" and hasattr(original, "assign") and _framework(changed) == "tf":
        np = sys.modules["numpy"]
        before, after = np.asarray(original.numpy()), np.asarray(changed.numpy())
        if before.shape == after.shape and before.dtype == after.dtype and before.tobytes() != after.tobytes():
            original.assign(after)


class Judge:
    """The grader's namespace for one notebook: its set-up cell, then its judged test cells."""

    def __init__(self, setup: str, answers: list[str]):
        self.link: KernelLink | None = None  # attached once the student's kernel runs
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self._setup_error: BaseException | None = None
        self._answers = [a for a in answers if isinstance(a, str) and a.isidentifier()]
        self._imports = imports_of(setup)
        self._thread = threading.Thread(target=self._set_up, args=(setup,), daemon=True)
        self._thread.start()  # imports overlap with the student's kernel running the notebook

    def _set_up(self, setup: str) -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(setup, "<set-up>", "exec"), self.namespace)  # noqa: S102 - the release's own cell
        except BaseException as error:  # noqa: BLE001 - reported with the first judged test
            self._setup_error = error

    def run(self, cell_id: str, source: str) -> tuple[str, dict | None]:
        """Run one judged test cell: (what it printed, an error output or None)."""
        self._thread.join()
        if self._setup_error is not None:
            return "", _error_output(RuntimeError(f"the grader's set-up failed: {_text(self._setup_error)}"))
        if self.link is None:
            return "", _error_output(RuntimeError("the grader has no connection to your kernel"))
        call = functools.partial(self.link.call, classes=test_classes(source), imports=self._imports)
        for name in self._answers:
            self.namespace[name] = Remote(name, call)
        self.link.cell, self.link.deadline, self.link.printed = cell_id, time.monotonic() + self.link.timeout, []
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed), grading():
                exec(compile(source, f"<test {cell_id}>", "exec"), self.namespace)  # noqa: S102 - the release's test
        except Exception as failure:  # noqa: BLE001 - the test's failure is the verdict
            error = _error_output(failure)
        return "".join(self.link.printed)[:4000] + printed.getvalue(), error


def _error_output(error: BaseException) -> dict:
    ename, evalue = type(error).__name__, _text(error)
    lines = traceback.format_exception_only(type(error), error)
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": ["[grader] this test ran in the grader, calling your functions in your kernel with data:",
                          *(line.rstrip("\n")[:2000] for line in lines[-5:])]}

