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
A Keras model the answer compiles again comes back compiled here, from Keras' own classes only
(:mod:`.keras_models`). A Keras model the answer makes is made again here: Keras' own layers from their checked
configurations and the kernel's weights, the answer's own classes as stand-ins holding their layers and weights,
whose call runs the kernel's model (kept there) after sending it those weights.

Its parts: :mod:`.cells` (which cells, what of them the kernel runs), :mod:`.codec` (the data that
crosses), :mod:`.torch_models`, :mod:`.keras_models` and :mod:`.pickles` (models and objects of the
test's classes), :mod:`.autograd` (gradients across the boundary), :mod:`.kernel` (the student's side)
and :mod:`.grader` (the grader's side); :mod:`.base` holds what they share.
"""
from course_utils.instructor.judge.base import (
    INLINE_BYTES,
    INLINE_PREFIX,
    JSON_PREFIX,
    MAX_BYTES,
    MAX_NODES,
    AnswerError,
    NotData,
)
from course_utils.instructor.judge.cells import (
    JUDGED,
    KERNEL_PLACEHOLDER,
    LESSON_META,
    STATIC_CHECKS,
    imports_of,
    names_used_after,
    static_part,
    test_classes,
)
from course_utils.instructor.judge.codec import decode, encode, write_back
from course_utils.instructor.judge.grader import (
    Judge,
    KernelLink,
    Remote,
    call_context,
    call_request,
    call_result,
    call_without_kernel,
    grading,
    is_remote,
)
from course_utils.instructor.judge.kernel import answer_call

__all__ = ["INLINE_BYTES", "INLINE_PREFIX", "JSON_PREFIX", "JUDGED", "KERNEL_PLACEHOLDER", "LESSON_META", "MAX_BYTES",
           "MAX_NODES", "STATIC_CHECKS", "AnswerError", "Judge", "KernelLink", "NotData", "Remote", "answer_call",
           "call_context", "call_request", "call_result", "call_without_kernel", "decode", "encode", "grading",
           "imports_of", "is_remote", "names_used_after", "static_part", "test_classes", "write_back"]
