"""The student's side: run by the grading kernel (:mod:`course_utils.instructor.guard`) for each call the grader asks for."""
from __future__ import annotations

import contextlib
import json
import sys

from course_utils.instructor.judge.autograd import BACKWARD, _backward_answer, _graph_inputs, _kept_graph, _recording
from course_utils.instructor.judge.base import _KERNEL, FORWARD, _error_name, _objects, _text
from course_utils.instructor.judge.codec import decode, encode
from course_utils.instructor.judge.keras_models import _is_keras_layer, _keras_before
from course_utils.instructor.judge.pickles import _made_classes
from course_utils.instructor.judge.torch_models import _forward_in_kernel


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
    # what the models were before the call
    before = [_keras_before(m) if _is_keras_layer(m) else dict(m.named_parameters())
              if hasattr(m, "named_parameters") else None for m in modules]
    if name == BACKWARD:
        return _backward_answer(args)
    function = _forward_in_kernel if name == FORWARD else user_ns.get(name)
    if function is None:
        return {"error": ["NameError", f"name {name!r} is not defined: run the cell that defines it"]}
    return _answer(function, name, args, kwargs, asked.get("context"), modules, before)


def _answer(function, name, args, kwargs, context, modules, before) -> dict:
    objects = _objects([args, kwargs])  # kept (their ids stay theirs): which of them the call leaves or returns
    was = {id(v): k for k, v in enumerate(objects)}
    inputs = _graph_inputs([args, kwargs])  # before the call, which may replace them in a list
    try:
        with _entered(context), _recording(context, [args, kwargs]) as tape:
            result = _traced_call(function, args, kwargs, context)
    except BaseException as error:  # noqa: BLE001 - the answer's error goes to the test
        return {"error": [_error_name(error), _text(error)]}
    answer = {}
    try:
        marked, graph = _kept_graph(result, [args, kwargs], modules, tape, inputs, was)
    except Exception as error:  # noqa: BLE001
        return {"error": ["NotData", f"{name} returned {_text(error)}"]}
    try:  # what the call did to its arguments, which the test may look at; first, as the grader reads them
        answer["args"] = encode([args, kwargs], known=modules, before=before, was=was, graph=marked)
    except Exception as error:  # noqa: BLE001
        return {"error": ["NotData", f"{name} changed its arguments into something the grader cannot compare: "
                                     f"{_text(error)}"]}
    try:
        answer["result"] = encode(result, known=modules, graph=marked, same=was)  # an argument returned as it is
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
