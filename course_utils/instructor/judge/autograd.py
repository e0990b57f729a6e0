"""Autograd across the boundary: the kernel keeps a call's graph (or tape), the grader's backward pass asks it."""
from __future__ import annotations

import contextlib
import functools
import sys

from course_utils.instructor.judge.base import (
    _NUMBERS,
    MAX_DEPTH,
    AnswerError,
    NotData,
    _error_name,
    _framework,
    _leaves,
    _text,
)
from course_utils.instructor.judge.codec import encode
from course_utils.instructor.judge.keras_models import _is_keras_layer


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
        for tensor in _tf_grad_inputs(args):
            tape.watch(_tf_variable(tensor))  # (a Keras variable: TensorFlow's inside it)
        yield tape


BACKWARD = "<backward>"  # the request for the gradients of a kept graph (not a name an answer can define)
KEPT_GRAPHS = 64         # the kernel keeps the graphs of this many recent calls
_GRAPHS: dict = {}       # the kernel's: number -> (inputs, outputs) of a call's graph


def _grad_tensors(value) -> list:
    """The PyTorch tensors that require gradients."""
    torch = sys.modules.get("torch")
    return [] if torch is None else _leaves(value, lambda v: isinstance(v, torch.Tensor) and v.requires_grad
                                             and v.is_floating_point())


def _tf_grad_tensors(value) -> list:
    """The TensorFlow float tensors (not variables)."""
    return _leaves(value, lambda v: _framework(v) == "tf" and not hasattr(v, "assign") and v.dtype.is_floating)


def _tf_grad_inputs(value) -> list:
    """What a call's TensorFlow gradients may flow to: its float tensors and float variables, trainable or not
    (the kernel's copy of a variable is trainable: one rule on both sides), TensorFlow's or Keras' (whose
    ``dtype`` is a string)."""
    tf = sys.modules.get("tensorflow")
    return [] if tf is None else _leaves(value, lambda v: _framework(v) == "tf" and tf.as_dtype(v.dtype).is_floating)


def _graph_inputs(args) -> tuple[list, list]:
    """A call's differentiable arguments, TensorFlow's and PyTorch's, taken before the call (on both sides:
    an answer may replace them in a list, ``lst[0] = lst[0] * 2``)."""
    return _tf_grad_inputs(args), _grad_tensors(args)


def _kept_graph(result, args, modules: list, tape=None, before: tuple = ([], []), was: dict | None = None
                ) -> tuple[dict, dict] | tuple[None, None]:
    """The kernel's side, after a call: keep the graph from the call's differentiable inputs (its arguments
    ``before`` the call, the parameters of the models the grader sent) to the tensors that depend on them in
    the result and, new since the call (not in ``was``), in the arguments (PyTorch's graph, or TensorFlow's
    ``tape`` when the test's tape recorded the call); what the grader needs to join them:
    ``({id(output): number}, {"number", "inputs"})``."""
    torch = sys.modules.get("torch")
    was = was or {}
    if tape is not None:
        outputs = _tf_grad_tensors([result, [t for t in _tf_grad_tensors(args) if id(t) not in was]])
        inputs = [(t, {"arg": k}) for k, t in enumerate(before[0])]
        inputs += [(w, {"module": i, "weight": j}) for i, m in enumerate(modules) if _is_keras_layer(m)
                   for j, w in enumerate(m.trainable_weights)]  # (a stand-in's weights are the kernel's model's)
    elif torch is None or not torch.is_grad_enabled():
        return None, None
    else:
        outputs = [t for t in _grad_tensors([result, [t for t in _grad_tensors(args) if id(t) not in was]])
                   if t.grad_fn is not None]
        inputs = [(t, {"arg": k}) for k, t in enumerate(before[1])]
        inputs += [(p, {"module": i, "parameter": name}) for i, m in enumerate(modules) if hasattr(m, "named_parameters")
                   for name, p in m.named_parameters() if p.requires_grad]
    if not outputs or not inputs:
        return None, None
    number = next(_NUMBERS)
    _GRAPHS[number] = ([t for t, _ in inputs], outputs, tape)
    while len(_GRAPHS) > KEPT_GRAPHS:
        _GRAPHS.pop(next(iter(_GRAPHS)))
    return {id(t): k for k, t in enumerate(outputs)}, {"number": number, "inputs": [r for _, r in inputs]}


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


def _joined_to_kernel_graph(result, outputs: dict, graph: dict, before: tuple, sent, again, args=None):
    """``result`` with the tensors the kernel marked made outputs of one autograd function of the call's
    differentiable inputs here (``before``: :func:`_graph_inputs` of the test's arguments before the call);
    its backward asks the kernel for the gradients (:func:`_backward_answer`). TensorFlow's through
    ``tf.custom_gradient`` (:func:`_joined_tf`). Outputs the call put into the test's ``args`` (lists and
    dicts) are put there joined too."""
    numbered = [outputs[k] for k in sorted(outputs)]
    tf_graph = _framework(numbered[0]) == "tf" if numbered else False
    mine = before[0] if tf_graph else before[1]
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
        if not isinstance(found, list) or len(found) != len(inputs) or not all(
                g is None or (_framework(g) == _framework(x) and tuple(g.shape) == tuple(x.shape) and _floating(g))
                for g, x in zip(found, inputs)):
            raise AnswerError("the student's kernel sent malformed gradients (not one float tensor of its input's "
                              "shape for each input)")
        return found

    joined = _joined_tf(backward, inputs, numbered) if tf_graph else \
        _kernel_function().apply(backward, len(inputs), *inputs, *numbered)
    mapping = {id(t): j for t, j in zip(numbered, joined)}
    seen: set = set()
    _joined_value(args, mapping, seen)  # the test's lists and dicts first, in place
    return _joined_value(result, mapping, seen)


def _joined_value(value, mapping: dict, seen: set, depth: int = 0):
    """``value`` with the tensors ``mapping`` names (by id) replaced by their joined ones: lists and dicts
    changed in place (a list the test passed and the answer returned stays that list), a tuple made again
    where one of its items changed; each container once (a reply can make a list hold itself)."""
    if id(value) in mapping:
        return mapping[id(value)]
    if depth > MAX_DEPTH or id(value) in seen or not isinstance(value, (list, dict, tuple)):
        return value
    seen.add(id(value))
    if isinstance(value, tuple):
        items = [_joined_value(item, mapping, seen, depth + 1) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else tuple(items)
    for key, item in list(value.items() if isinstance(value, dict) else enumerate(value)):
        joined = _joined_value(item, mapping, seen, depth + 1)
        if joined is not item:
            value[key] = joined
    return value


def _joined_tf(backward, inputs: list, outputs: list) -> list:
    """The kernel's outputs as one function of the test's tensors and variables, for the test's tape."""
    tf = sys.modules["tensorflow"]
    # a variable that is not trainable is read first (the test's tape watches the read): tf.custom_gradient
    # passes the trainable ones only
    reads = [tf.convert_to_tensor(x) if hasattr(x, "assign") and not getattr(x, "trainable", True) else x for x in inputs]
    tensors = [x for x in reads if not hasattr(x, "assign")]
    variables = [x for x in reads if hasattr(x, "assign")]

    def split(found, used):
        by_variable = {id(_tf_variable(v)): g for v, g in zip(variables, found[len(tensors):])}
        return found[:len(tensors)], [by_variable.get(id(v)) for v in used or ()]

    def ordered(found):  # the kernel answers in the order of ``inputs``; here tensors first, then variables
        position = {id(x): k for k, x in enumerate(reads)}
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


def _floating(tensor) -> bool:
    """A PyTorch or TensorFlow tensor of floats."""
    if _framework(tensor) == "torch":
        return tensor.is_floating_point()
    return sys.modules["tensorflow"].as_dtype(tensor.dtype).is_floating


def _tf_variable(variable):
    """TensorFlow's variable that a tape names: a Keras variable's ``value`` (a property), a tf.Variable itself."""
    inner = getattr(variable, "value", None)
    return variable if inner is None or callable(inner) else inner


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
