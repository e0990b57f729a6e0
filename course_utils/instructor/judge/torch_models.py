"""PyTorch models across the boundary: the state of a model the test passed, a mirror of one the answer made
(kept in the kernel, run there), and an optimizer the answer returns, made again in the grader."""
from __future__ import annotations

import functools

from course_utils.instructor.judge.base import (
    FORWARD,
    MAX_DEPTH,
    AnswerError,
    NotData,
    _is_plain,
    _keep,
    _kept,
    _plain_attributes,
    _text,
    _write_back_array,
)
from course_utils.instructor.judge.keras_models import _is_keras_layer, _keras_layers, _kernel_keras_synced, _kernel_output


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


def _module_state(module, before: dict) -> dict:
    return {"training": _modes(module),
            "parameters": {name: [p, before.get(name) is p] for name, p in module.named_parameters()},
            "buffers": {name: b for name, b in module.named_buffers() if b is not None},
            "attributes": {name: _plain_attributes(m) for name, m in module.named_modules()}}




def _made_description(model) -> dict:
    """The kernel's side: a model the answer made, kept under a number, described as data: for each of its
    modules (parents first) its path, PyTorch's class or the answer's own (by name), its plain attributes
    and mode; its parameters (with ``requires_grad``) and buffers, and the slots left empty (``bias=False``)."""
    import torch

    number = _keep(model)
    entries = []
    for path, m in model.named_modules():
        cls = type(m)
        library = cls.__module__.startswith("torch.nn.modules.") and getattr(torch.nn, cls.__name__, None) is cls
        entries.append([path, "torch" if library else "own", cls.__qualname__, _plain_attributes(m), bool(m.training),
                        [k for k, v in m._parameters.items() if v is None], [k for k, v in m._buffers.items() if v is None]])
    return {"number": number, "modules": entries, **_tensors_of(model)}


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


def _tensors_of(model) -> dict:
    """A made model's parameters (values and ``requires_grad``) and buffers, by path."""
    return {"parameters": {name: [p.detach(), bool(p.requires_grad)] for name, p in model.named_parameters()},
            "buffers": {name: b for name, b in model.named_buffers()}}


def _modes(model) -> dict:
    return {path: bool(m.training) for path, m in model.named_modules()}


def _mirror_state(root) -> dict:
    """What the test may have changed in a mirror: modes, parameters (values, ``requires_grad``) and buffers."""
    return {"training": _modes(root), **_tensors_of(root)}


def _kernel_model(number, state):
    """The kernel's side: the kept model, made what the test's mirror of it is (modes, parameters, buffers)."""
    model = _kept(number)
    if _is_keras_layer(model):  # (no import of torch in a TensorFlow kernel)
        return _kernel_keras_synced(model, state)
    import torch

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
    """The kernel's side of a mirror's call: the kept model's layer ``path`` on the test's inputs (a kept
    Keras layer itself)."""
    if _is_keras_layer(model):  # a layer of a kept Keras model: its place in Keras' order of its layers
        layers = _keras_layers(model)
        if type(path) is not int or not 0 <= path < len(layers):
            raise NotData("a layer the kernel's model does not have")
        return _kernel_output(model, layers[path], args, kwargs)
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
                        _write_back_array(original, value)
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
