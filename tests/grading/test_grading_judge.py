"""Judged test cells (course_utils.instructor.judge): run by the grader, calling the answers in the kernel with data.

Each notebook is executed as the grader executes it (``BoundedExecute``, roles as the pre-check
marks them, the judge's plan in the notebook's metadata). A judged test's references never enter
the student's kernel, and its verdict holds even against a kernel that forges every in-process
verdict (tests/fixtures/grading/forging_kernel.py).
"""
import base64
import functools
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.instructor import judge
from course_utils.instructor.execute import BoundedExecute
from course_utils.instructor.guard import META, STUDENT, TEST, TRUSTED
from course_utils.instructor.judge import autograd, grader, pickles, torch_models
from course_utils.instructor.judge import base as judge_base

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "grading"
SETUP = "import numpy as np\nfrom course_utils.checks import check_close\nfrom course_utils.guards import check_from_scratch"
TEST_NORMALISE = """\
check_from_scratch(normalise, [np.linalg.norm], name="normalise")
rng = np.random.default_rng(0)
x = rng.normal(size=(4, 3))
expected = x / np.sqrt((x ** 2).sum(axis=1, keepdims=True))
check_close(normalise(x.copy()), expected, name="normalise")
"""
RIGHT = "def normalise(x):\n    return x / np.sqrt((x * x).sum(axis=1, keepdims=True))"
TEST_SCALE = "check_close(scale(np.ones(3), 2.0), np.full(3, 2.0), name='scale')"


def notebook(answer: str, judged=True, test=TEST_NORMALISE, answers=("normalise",)):
    cells = [new_code_cell(SETUP), new_code_cell(answer), new_code_cell(test)]
    for cell, role in zip(cells, (TRUSTED, STUDENT, TEST)):
        cell.metadata[META] = {"role": role}
    if judged:
        cells[2].metadata[META][judge.JUDGED] = True
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        META: {"judge": {"setup": SETUP, "answers": list(answers)}}})


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """The grading kernel, and a kernel that forges every in-process verdict."""
    for name, argv in (("guarded", ["-m", "course_utils.instructor.guard"]),
                       ("forging", [str(FIXTURES / "forging_kernel.py")])):
        folder = tmp_path / "kernels" / name
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-P", *argv, "-f", "{connection_file}"], "display_name": name, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    return tmp_path


def run(nb, kernel="guarded", timeout=60):
    executor = BoundedExecute(kernel_name=kernel, timeout=timeout, allow_errors=True, interrupt_on_timeout=True)
    executor.preprocess(nb, {"metadata": {"path": "."}})
    return nb


def errors(cell):
    return [f"{out.ename}: {out.evalue}" for out in cell.outputs if out.output_type == "error"]


def test_a_right_answer_passes_a_judged_test_and_the_plan_leaves_the_notebook(kernels):
    nb = run(notebook(RIGHT))
    assert [errors(c) for c in nb.cells] == [[], [], []]
    assert META not in nb.metadata


def test_a_wrong_answer_fails_a_judged_test(kernels):
    nb = run(notebook("def normalise(x):\n    return x / np.abs(x).sum(axis=1, keepdims=True)"))
    assert any("normalise" in e for e in errors(nb.cells[2])), nb.cells[2].outputs


def test_the_tests_reference_never_enters_the_kernel(kernels):
    """An answer returning the test's own ``expected`` passes an in-process test, not a judged one."""
    cheat = "def normalise(x):\n    return expected.copy()"
    assert errors(run(notebook(cheat, judged=False)).cells[2]) == []  # the hole the judge closes
    assert any("NameError" in e and "expected" in e for e in errors(run(notebook(cheat)).cells[2]))


def test_a_kernel_that_forges_every_in_process_verdict_cannot_pass_a_judged_test(kernels):
    wrong = "def normalise(x):\n    return x * 0"
    assert errors(run(notebook(wrong, judged=False), kernel="forging").cells[2]) == []  # forged in-process
    assert any("normalise" in e for e in errors(run(notebook(wrong), kernel="forging").cells[2]))
    assert errors(run(notebook(RIGHT), kernel="forging").cells[2]) == []


def test_the_static_checks_still_run_in_the_kernel(kernels):
    nb = run(notebook("def normalise(x):\n    return x / np.linalg.norm(x, axis=1, keepdims=True)"))
    assert any("from scratch" in e and "norm" in e for e in errors(nb.cells[2])), nb.cells[2].outputs


def test_an_answers_error_reaches_the_test_as_itself(kernels):
    test = "try:\n    scale(np.ones(3), -1.0)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n" \
           "    raise AssertionError('scale should refuse a negative factor')"
    answer = "def scale(x, k):\n    if k < 0:\n        raise ValueError('a negative factor')\n    return x * k"
    assert errors(run(notebook(answer, test=test, answers=("scale",))).cells[2]) == []
    nb = run(notebook("def scale(x, k):\n    return x * k", test=test, answers=("scale",)))
    assert any("should refuse" in e for e in errors(nb.cells[2]))


def test_an_answer_returning_an_object_fails_with_a_message(kernels):
    nb = run(notebook("def scale(x, k):\n    return object()", test=TEST_SCALE, answers=("scale",)))
    assert any("NotData" in e and "arrays" in e for e in errors(nb.cells[2])), nb.cells[2].outputs


def test_an_answer_that_never_returns_fails_in_time_and_the_kernel_goes_on(kernels):
    nb = notebook("import time\ndef scale(x, k):\n    time.sleep(600)", test=TEST_SCALE, answers=("scale",))
    nb.cells.append(new_code_cell("assert 1 + 1 == 2"))
    nb.cells[3].metadata[META] = {"role": TEST}
    run(nb, timeout=5)
    assert any("TimeoutError" in e for e in errors(nb.cells[2]))
    assert errors(nb.cells[3]) == []


@pytest.mark.parametrize("value", [
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(2.5), np.int64(3), np.float16(1.5), np.float64(0.1),
    [np.float64(2.5), np.bool_(True)], 3, 2.5, -0.0,
    float("inf"), True, None, "text", 1 + 2j, (1, (2.0, "a")), [np.zeros(0), [None]],
    {"a": 1, 2: np.ones((1, 1), dtype=bool)}, np.dtype("int8"),
    np.arange(3 * judge.INLINE_BYTES // 8, dtype=np.float64).reshape(3, -1), np.array(["a", "bc"])])  # .npz, not inline
def test_data_crosses_unchanged(value):
    got = judge.decode(judge.encode(value))
    assert type(got) is type(value)
    assert repr(got) == repr(value)
    if isinstance(value, np.ndarray):
        assert np.array_equal(got, value) and got.dtype == value.dtype and got.flags.writeable


def inline(*arrays) -> str:
    return judge.INLINE_PREFIX + json.dumps({"tree": {"list": [{"array": i, "kind": "numpy"} for i in range(len(arrays))]},
                                             "arrays": list(arrays)})


def test_small_arrays_cross_inline_and_a_malformed_one_is_refused():
    assert judge.encode(np.zeros((2, 3), dtype=np.float32)).startswith(judge.INLINE_PREFIX)
    assert not judge.encode(np.zeros(judge.INLINE_BYTES // 8 + 1)).startswith(judge.INLINE_PREFIX)
    eight = base64.b64encode(bytes(8)).decode()
    assert judge.decode(inline(["<f4", [2], eight]))[0].tolist() == [0.0, 0.0]
    for entry in (["|O", [1], eight], ["i4,i4", [1], eight], ["<f8", [2], eight], ["<f8", [-1, -1], eight],
                  ["<f8", [2**62, 2**62], ""], ["<f8", [0, 2**62], ""], ["<f8", [1], "not base64!"], ["<f8", "1", eight],
                  ["<f8", [1]], ["<f8" + " " * 100, [1], eight]):
        with pytest.raises(judge.NotData):
            judge.decode(inline(entry))
    for text in (judge.INLINE_PREFIX + "[" * 100_000, judge.JSON_PREFIX + "{"):  # too deep for the parser; malformed
        with pytest.raises(judge.NotData, match="not an encoded value"):
            judge.decode(text)
    many = ["x" * 3_500_000, [np.float32(i) for i in range(16_000)]]  # few bytes, but a long inline text: an .npz
    assert not judge.encode(many).startswith(judge.INLINE_PREFIX) and len(judge.decode(judge.encode(many))[1]) == 16_000
    with pytest.raises(judge.NotData, match="limits"):  # many small arrays, too many bytes in all
        judge.decode(inline(*[["|u1", [judge.INLINE_BYTES // 2], base64.b64encode(bytes(judge.INLINE_BYTES // 2)).decode()]] * 3))


def test_tensors_cross_with_their_framework_and_dtype():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    got = judge.decode(judge.encode({"x": x, "size": x.shape, "dtype": torch.int16}))
    assert isinstance(got["x"], torch.Tensor) and got["x"].dtype == torch.float64 and torch.equal(got["x"], x.detach())
    assert got["size"] == torch.Size([2, 3]) and isinstance(got["size"], torch.Size) and got["dtype"] is torch.int16


@pytest.mark.parametrize("value", [object(), np.array([object()], dtype=object), print, sys, [1, {2: lambda: 3}]])
def test_what_is_not_data_does_not_cross(value):
    with pytest.raises(judge.NotData):
        judge.encode(value)


def test_a_pickle_or_an_object_array_is_never_loaded():
    with pytest.raises(judge.NotData):
        judge.decode(base64.b64encode(pickle.dumps([1])).decode())
    buffer = io.BytesIO()
    np.savez(buffer, tree=np.frombuffer(b'{"array": 0, "kind": "numpy"}', dtype=np.uint8),
             a0=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        judge.decode(base64.b64encode(buffer.getvalue()).decode())
    for tree in (b'{"array": 0, "kind": "pickle"}', b'{"dtype": "__class__", "kind": "torch"}', b'{"eval": "1"}'):
        buffer = io.BytesIO()
        np.savez(buffer, tree=np.frombuffer(tree, dtype=np.uint8), a0=np.zeros(1))
        with pytest.raises(judge.NotData):
            judge.decode(base64.b64encode(buffer.getvalue()).decode())


def test_the_kernel_runs_only_the_static_checks_and_what_they_name():
    part = judge.static_part(TEST_NORMALISE + "FORBIDDEN = [np.linalg.svd]\ncheck_from_scratch(normalise, FORBIDDEN)\n")
    assert "check_from_scratch(normalise, [np.linalg.norm]" in part and "FORBIDDEN = [np.linalg.svd]" in part
    assert "expected" not in part and "rng" not in part
    assert judge.static_part(TEST_SCALE) == judge.KERNEL_PLACEHOLDER
    helper = "def _reference(x):\n    return x\ndef shown(x):\n    return x\n" + TEST_SCALE
    assert "def shown" in judge.static_part(helper, {"shown"}) and "_reference" not in judge.static_part(helper, {"shown"})


def call(namespace, name, *args, **kwargs):
    """One call as the judge makes it, without a kernel (course_utils.instructor.judge.call_without_kernel)."""
    return judge.call_without_kernel(namespace, name, args, kwargs)


def test_what_a_call_changes_in_its_arguments_is_changed_for_the_test_too():
    namespace = {}
    exec("def scale_(x, k):\n    x *= k\n    return None\ndef grow(xs):\n    xs.append(len(xs))\n"
         "def same(x):\n    return x", namespace)
    x, xs = np.ones(3), [1.0]
    assert call(namespace, "scale_", x, 2.0) is None and x.tolist() == [2.0, 2.0, 2.0]
    call(namespace, "grow", xs)
    assert xs == [1.0, 1]
    y = np.arange(3.0)
    assert call(namespace, "same", y) is y and y.tolist() == [0.0, 1.0, 2.0]  # returned as it is, unchanged


def test_an_argument_returned_as_it_is_comes_back_as_the_tests_own_object():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec("def dropout(x, training=False):\n    return x * 2 if training else x\ndef swap(x, y):\n    return y, x + 0", namespace)
    x = torch.ones(3, requires_grad=True)
    out = call(namespace, "dropout", x)
    assert out is x  # as in the student's process: the gradient reaches the test's tensor
    out.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    a, b = np.ones(2), np.zeros(2)
    first, second = call(namespace, "swap", a, b)
    assert first is b and second is not a and second.tolist() == [1.0, 1.0]
    for reply in ('json:{"same": 2}', 'json:{"same": "0"}'):  # a number the call does not have
        with pytest.raises(judge.NotData, match="not given"):
            judge.decode(reply, originals=[a, b])
    with pytest.raises(judge.NotData, match="not given"):  # where no call's arrays are named (the kernel's side)
        judge.decode('json:{"same": 0}')
    with pytest.raises(judge.NotData, match="not given before"):  # one array twice: the second names the first
        judge.decode('json:{"list": [{"alias": 0}]}')
    pair = judge.decode(judge.encode([a, a, b]))
    assert pair[0] is pair[1] and pair[2] is not pair[0]


def test_numbers_strings_and_keys_a_call_replaces_in_a_list_or_dict_are_replaced_for_the_test_too():
    namespace = {}
    exec("import numpy as np\ndef bump(xs):\n    xs[0] += 1\n    xs[1] = 'b'\n    xs[2] = np.zeros(2)\n    xs[3] = float(xs[3])\n"
         "def edit(d):\n    d['n'] += 1\n    d['new'] = (1, 2)\n    del d['old']\n    d['t'] = d['t'] + (3,)\n", namespace)
    xs, kept = [1, "a", 7, 2, np.ones(2), True], np.ones(2)
    xs[4] = kept
    call(namespace, "bump", xs)
    assert xs[:2] == [2, "b"] and xs[2].tolist() == [0.0, 0.0] and type(xs[3]) is float and xs[4] is kept
    assert xs[5] is True
    d = {"n": 1, "old": "x", "t": (1, 2), "array": kept}
    call(namespace, "edit", d)
    assert d == {"n": 2, "t": (1, 2, 3), "array": kept, "new": (1, 2)} and d["array"] is kept


AS_IN_PROCESS = """
import numpy as np
def swap_pair(lst):
    x, y = lst[0]
    lst[0] = (y, x)
def double_first(lst):
    lst[0] = (lst[0][0] * 2, lst[0][1])
def reinsert(d):
    a = d.pop("a")
    d["a"] = a
    return d["b"]
def keep_second(lst):
    k = lst[0][1]
    lst[0] = (None, k)
    return k
def grow_inner(lst):
    lst[0][0] += 1
    lst.append(np.zeros(1))
def new_inner(d):
    d["k"] = [x * 2 for x in d["k"]]
def to_list(lst):
    lst[0] = lst[0].tolist()
    return lst
def add_both(x, y):
    x += 1
    y += 1
    return x, y
def bump_all(xs):
    for x in xs:
        x += 1
"""


def _shape_of(value, originals, depth=0):
    """Values, and which of the test's original objects each part is (by number), for comparing two runs."""
    mine = next((k for k, o in enumerate(originals) if o is value), None)
    if isinstance(value, (list, tuple)):
        inner = [_shape_of(v, originals, depth + 1) for v in value]
    elif isinstance(value, dict):
        inner = sorted((k, _shape_of(v, originals, depth + 1)) for k, v in value.items())
    elif isinstance(value, np.ndarray):
        inner = (value.dtype.str, value.tolist())
    else:
        inner = repr(value)
    return (type(value).__name__, mine, inner)


@pytest.mark.parametrize("name, make", [
    ("swap_pair", lambda: [[(np.zeros(1), np.ones(1))]]),
    ("double_first", lambda: [[(np.ones(2), np.zeros(2))]]),
    ("reinsert", lambda: [{"a": np.zeros(1), "b": np.ones(1)}]),
    ("keep_second", lambda: [[(np.zeros(1), np.ones(1))]]),
    ("grow_inner", lambda: [[[np.ones(1)]]]),
    ("new_inner", lambda: [{"k": [np.ones(1), 2.0]}]),
    ("to_list", lambda: [[np.arange(3)]]),
    ("add_both", lambda: [np.zeros(2)] * 2),  # one array passed twice
    ("bump_all", lambda: [[np.zeros(1)] * 2 + [np.ones(1)]]),
])
def test_the_tests_arguments_after_a_call_are_what_they_would_be_in_its_own_process(name, make):
    namespace = {}
    exec(AS_IN_PROCESS, namespace)
    runs = []
    for judged in (False, True):
        args = make()
        originals = [o for a in args for o in grader._objects(a)]
        result = call(namespace, name, *args) if judged else namespace[name](*args)
        runs.append((_shape_of(args, originals), _shape_of(result, originals)))
    assert runs[1] == runs[0]


def test_odd_tensors_cross_and_come_back():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec("def bump(xs):\n    xs[0] += 1\ndef nothing(x):\n    pass", namespace)
    xs = [torch.ones(2, dtype=torch.bfloat16)]
    call(namespace, "bump", xs)
    assert xs[0].dtype == torch.bfloat16 and xs[0].tolist() == [2.0, 2.0]
    conjugate = torch.tensor([1 + 1j]).conj()
    call(namespace, "nothing", conjugate)  # (the conjugate bit is resolved on the way)
    assert conjugate.resolve_conj().tolist() == [1 - 1j]


def test_an_array_a_call_replaces_in_a_list_or_dict_is_replaced_and_one_it_changes_in_place_is_changed():
    namespace = {}
    exec("import numpy as np\ndef scale(d):\n    d['x'] = d['x'] / 255.0\n    d['y'] *= 2\n    d['z'] = d['z'] * 2\n"
         "def swap(xs):\n    xs[0], xs[1] = xs[1], xs[0]\n    xs[0] += 1\n"
         "def grow(xs):\n    xs.append(xs[0])\n    xs.insert(0, np.zeros(1))\n", namespace)
    x, y, z = np.full(2, 255, np.uint8), np.ones(2), np.ones(2)
    d = {"x": x, "y": y, "z": z}
    call(namespace, "scale", d)
    assert d["x"].dtype == np.float64 and d["x"].tolist() == [1.0, 1.0] and x.tolist() == [255, 255]  # replaced
    assert d["y"] is y and y.tolist() == [2.0, 2.0]  # changed in place
    assert d["z"] is not z and d["z"].tolist() == [2.0, 2.0] and z.tolist() == [1.0, 1.0]  # replaced: z unchanged
    a, b = np.zeros(1), np.ones(1)
    xs = [a, b]
    call(namespace, "swap", xs)
    assert xs[0] is b and xs[1] is a and b.tolist() == [2.0]  # moved, and changed in place
    xs = [a]
    call(namespace, "grow", xs)
    assert len(xs) == 3 and xs[1] is a and xs[2] is a and xs[0] is not a


def test_torch_arguments_keep_requires_grad_so_an_in_place_change_fails_as_in_the_kernel():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec("def zero_(w):\n    w.zero_()\n    return w", namespace)
    weight = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        call(namespace, "zero_", weight)
    plain = torch.ones(2)
    call(namespace, "zero_", plain)
    assert plain.tolist() == [0.0, 0.0]


def test_tensorflow_variables_arrive_as_variables_and_their_changes_come_back():
    tf = pytest.importorskip("tensorflow")
    namespace = {}
    exec("def zero(v, t):\n    v.assign(v * 0)\n    return t * 2", namespace)
    variable = tf.Variable([1.0, 2.0])
    out = call(namespace, "zero", variable, tf.constant([3.0]))
    assert isinstance(out, tf.Tensor) and out.numpy().tolist() == [6.0]
    assert variable.numpy().tolist() == [0.0, 0.0]
    keras = pytest.importorskip("keras")
    exec("def value_of(v):\n    out = v.value * 1\n    v.assign(v * 0)\n    return out", namespace)  # a property in Keras
    weights = keras.Variable([1.0, 2.0])
    assert call(namespace, "value_of", weights).numpy().tolist() == [1.0, 2.0]
    assert weights.numpy().tolist() == [0.0, 0.0]


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tree.npy", b"")
        archive.writestr("a0.npy", bytes(judge.MAX_BYTES * 3))  # 192 MB of zeros, a few hundred KB compressed
    with pytest.raises(judge.NotData, match="compressed"):
        judge.decode(base64.b64encode(buffer.getvalue()).decode())


def test_what_the_answer_prints_in_a_judged_test_is_shown_in_the_cell(kernels):
    nb = run(notebook("def scale(x, k):\n    print('scaling by', k)\n    return x * k", test=TEST_SCALE, answers=("scale",)))
    shown = "".join(out.get("text", "") for out in nb.cells[2].outputs if out.output_type == "stream")
    assert "scaling by 2.0" in shown and errors(nb.cells[2]) == []


def stored(tree: bytes, **arrays) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, tree=np.frombuffer(tree, dtype=np.uint8), **arrays)
    return base64.b64encode(buffer.getvalue()).decode()


def test_what_could_make_the_grader_slow_or_large_is_refused():
    colliding = {k * (2**61 - 1): 0 for k in range(1, 4)}  # one hash for every key
    with pytest.raises(judge.NotData, match="keys"):
        judge.encode(colliding)
    with pytest.raises(judge.NotData, match="keys"):
        judge.decode(stored(json.dumps({"dict": [[2**61 - 1, 0], [2 * (2**61 - 1), 0]]}).encode()))
    with pytest.raises(judge.NotData, match="twice"):  # one array, many references: many copies
        judge.decode(stored(b'{"list": [{"array": 0, "kind": "torch"}, {"array": 0, "kind": "torch"}]}', a0=np.zeros(3)))
    with pytest.raises(judge.NotData, match="more than"):
        judge.decode(stored(json.dumps({"list": [{"list": []}] * (judge.MAX_NODES + 1)}).encode()))


def test_an_answers_error_keeps_the_known_class_it_derives_from():
    namespace = {}
    exec("class ModeError(ValueError):\n    pass\ndef pick(mode):\n    raise ModeError('unknown mode')", namespace)
    with pytest.raises(ValueError, match="unknown mode"):
        call(namespace, "pick", "x")


def test_a_result_or_argument_that_cannot_cross_fails_the_call_with_a_message():
    namespace = {}
    exec("class Odd(tuple):\n    def __iter__(self):\n        raise RuntimeError('no')\n"
         "def odd():\n    return Odd()\ndef spoil(xs):\n    xs.append(object())\n    return 0", namespace)
    with pytest.raises(judge.AnswerError, match="NotData"):
        call(namespace, "odd")
    with pytest.raises(judge.AnswerError, match="changed its arguments"):
        call(namespace, "spoil", [1.0])


def test_bfloat16_crosses_exactly():
    torch = pytest.importorskip("torch")
    x = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)
    got = judge.decode(judge.encode(x))
    assert got.dtype == torch.bfloat16 and torch.equal(got, x)


def test_the_tests_grad_mode_and_refusal_of_autograd_reach_the_answer():
    torch = pytest.importorskip("torch")
    from course_utils import torch as cu

    namespace = {}
    exec("import torch\ndef grad_on():\n    return torch.is_grad_enabled()\n"
         "def by_autograd(x):\n    x = x.clone().requires_grad_(True)\n    (x * x).sum().backward()\n"
         "    return x.grad", namespace)
    with torch.no_grad():
        assert call(namespace, "grad_on") is False
    assert call(namespace, "grad_on") is True
    assert call(namespace, "by_autograd", torch.ones(2)).tolist() == [2.0, 2.0]
    with cu.refuse_autograd("by hand, please"), pytest.raises(AssertionError, match="by hand, please"):
        call(namespace, "by_autograd", torch.ones(2))


MODELS = """\
import numpy as np
import torch
from torch import nn
def freeze(model):
    for p in model.parameters():
        p.requires_grad = False
    return model.eval()
def fill_bias(model, value):
    with torch.no_grad():
        model.bias.fill_(value)
    return None
def replace_weight(model):
    model.weight = nn.Parameter(torch.zeros_like(model.weight))
def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).argmax(dim=1)
def fresh():
    return nn.Linear(1, 1)
def draw(n):
    return torch.rand(n)
def draw_numpy(n):
    return np.random.rand(n)
def first_layer(model):
    return model[0]
def to_double(model):
    return model.double()
def add_parameter(model):
    model.extra = nn.Parameter(torch.ones(1))
def drop_bias(model):
    model.bias = None
def add_layer(model):
    model.extra = nn.ReLU()
"""


def test_a_model_the_test_passes_comes_back_as_itself_with_what_the_answer_changed():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(MODELS, namespace)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5))
    assert call(namespace, "freeze", model) is model  # the test's own object: `freeze_base(base) is base` holds
    assert not model.training and not model[1].training and not any(p.requires_grad for p in model.parameters())
    layer = torch.nn.Linear(2, 2)
    weight, bias = layer.weight, layer.bias
    assert call(namespace, "fill_bias", layer, 0.5) is None
    assert layer.bias is bias and bias.tolist() == [0.5, 0.5] and bias.requires_grad  # changed in place
    call(namespace, "replace_weight", layer)
    assert layer.weight is not weight and layer.weight.abs().sum() == 0  # replaced in the kernel: replaced here too


def test_the_tests_own_model_classes_are_made_in_the_kernel_from_the_cells_source():
    torch = pytest.importorskip("torch")
    cell = ("class FixedScores(nn.Module):\n    def __init__(self, scores):\n        super().__init__()\n"
            "        self.scores = scores\n    def forward(self, x):\n        return self.scores[x[:, 0].long()]\n")
    grader = {"__name__": "__main__", "nn": torch.nn}
    exec(cell, grader)
    namespace = {}
    exec(MODELS, namespace)
    scores = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    model, x = grader["FixedScores"](scores), torch.tensor([[2.0], [0.0], [1.0]])
    got = judge.call_without_kernel(namespace, "predict", (model, x), {}, judge.test_classes(cell), "from torch import nn")
    assert got.tolist() == [1, 1, 0]
    with pytest.raises(judge.AnswerError, match="could not be read"):  # the class's source did not come with it
        judge.call_without_kernel(namespace, "predict", (model, x), {}, {})
    namespace["nn"] = None  # the student's names do not reach the test's classes: the set-up's imports do
    assert judge.call_without_kernel(namespace, "predict", (model, x), {}, judge.test_classes(cell),
                                     "from torch import nn").tolist() == [1, 1, 0]


def test_what_an_answer_does_to_a_model_reaches_the_tests_model_as_it_would_in_process():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(MODELS, namespace)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    assert call(namespace, "first_layer", model) is model[0]  # a layer of the test's model, by its path
    weight = model[0].weight
    assert call(namespace, "to_double", model) is model
    assert model[0].weight is weight and weight.dtype == torch.float64  # the same object, other data
    layer = torch.nn.Linear(2, 2)
    call(namespace, "add_parameter", layer)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias", "extra"]
    call(namespace, "drop_bias", layer)
    assert layer.bias is None and [name for name, _ in layer.named_parameters()] == ["weight", "extra"]
    with pytest.raises(judge.AnswerError, match="added or removed layers"):
        call(namespace, "add_layer", torch.nn.Linear(2, 2))


def test_a_kernels_model_state_changes_only_what_an_answer_in_the_process_could():
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 2)
    weight = model.weight
    sent = [model]

    def state(tree):
        return stored(json.dumps(tree).encode(), a0=np.zeros((2, 2), np.float32), a1=np.zeros((2, 2), np.float32))

    answer = {"result": "json:null", "args": state({"list": [{"list": [{"module": 0, "state": {"dict": [
        ["training", {"dict": [["", 1], ["nope", True]]}],
        ["parameters", {"dict": [["weight", {"list": [{"array": 0, "kind": "torch", "grad": True}, True]}]]}],
    ]}}]}, {"dict": []}]})}
    with pytest.raises(judge.AnswerError, match="added or removed layers"):  # a layer the model does not have
        judge.call_result("f", answer, (model,), {}, sent)
    good = json.loads(json.dumps(answer).replace('["nope", true]', '["", false]'))
    good["args"] = state({"list": [{"list": [{"module": 0, "state": {"dict": [
        ["training", {"dict": [["", "yes"]]}],
        ["parameters", {"dict": [["weight", {"list": [{"array": 0, "kind": "torch", "grad": True}, True]}],
                                 ["../escape", {"list": [{"array": 1, "kind": "torch", "grad": True}, False]}]]}],
    ]}}]}, {"dict": []}]})
    judge.call_result("f", good, (model,), {}, sent)
    assert model.training is True and model.weight is weight and weight.abs().sum() == 0  # a flag that is not bool ignored
    assert model.bias is None  # not reported: removed, as an answer setting it to None would
    with pytest.raises(judge.NotData, match="state"):  # a state is what a call did to its arguments, never its result
        judge.call_result("f", {"result": stored(b'{"module": 0, "state": {"dict": []}}', a0=np.zeros(1))}, (), {}, sent)


class _Shell:
    def __reduce__(self):
        import os
        return (os.system, ("echo unpickled",))


def test_the_kernels_reader_of_the_graders_models_names_only_pytorchs_classes():
    torch = pytest.importorskip("torch")
    with pytest.raises(judge.NotData, match="system"):
        pickles._unpickled(pickle.dumps([_Shell()]))
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.LSTM(2, 3), torch.nn.BatchNorm1d(2))
    copy = pickles._unpickled(pickle.dumps([model]))[0]
    assert [type(m) for m in copy.modules()] == [type(m) for m in model.modules()]


def test_a_model_made_in_the_kernel_comes_as_a_mirror_and_the_grader_never_unpickles():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(MODELS, namespace)
    made = call(namespace, "fresh")  # described as data and made here of torch.nn's classes (not unpickled)
    assert type(made) is torch.nn.Linear and made._kernel_model in judge_base._KERNEL_MODELS
    with pytest.raises(judge.NotData, match="pickle"):
        judge.decode(judge.encode([torch.nn.Linear(1, 1)], send=[]))
    with pytest.raises(judge.NotData, match="did not send"):
        judge.decode(stored(b'{"module": 0}', a0=np.zeros(1)), modules=[])


def test_the_answers_draws_follow_the_tests_seed():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(MODELS, namespace)
    torch.manual_seed(0)
    first = call(namespace, "draw", 4)
    torch.manual_seed(0)
    again, then = call(namespace, "draw", 4), call(namespace, "draw", 4)
    assert torch.equal(first, again) and not torch.equal(again, then)  # repeatable, and fresh at each call
    torch.manual_seed(0)
    first = call(namespace, "draw_numpy", 4)
    torch.manual_seed(0)
    assert np.array_equal(call(namespace, "draw_numpy", 4), first)  # numpy's generator too (cu.seed_everything)
    request = json.loads(judge.call_request("draw", (4,), {}))
    assert type(request["context"]["seed"]) is int  # a seed drawn from the test's generator goes out; no state comes back
    assert set(judge.answer_call(namespace, json.dumps(request))) == {"result", "args"}


KERAS_ANSWERS = """
import numpy as np
def freeze_layers(base):
    base.trainable = False
    return base
def freeze_weights(base):
    for weight in base.weights:
        weight.trainable = False
def counts(model):
    return (sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
def fill_bias(layer, value):
    layer.bias.assign(np.full(layer.bias.shape, value))
    return layer
def second_layer(model):
    return model.layers[1]
"""


def keras_model(keras):
    block = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()],
                             name="block")
    return keras.Sequential([keras.Input((6, 6, 3)), block, keras.layers.Flatten(), keras.layers.Dense(2)])


def test_a_keras_model_the_test_passes_crosses_as_data_and_comes_back_as_itself():
    keras = pytest.importorskip("keras")
    namespace = {}
    exec(KERAS_ANSWERS, namespace)
    model = keras_model(keras)
    model.layers[0].layers[0].kernel.trainable = False  # a flag on a weight, not in the model's configuration
    # conv 108 + 4, batch norm 4 + 4 (and 8 moving statistics), dense 64 * 2 + 2; the conv's kernel frozen
    assert call(namespace, "counts", model) == (250 - 108, 8 + 108)
    assert call(namespace, "second_layer", model) is model.layers[1]  # a layer of the test's model, by its place
    assert call(namespace, "freeze_layers", model) is model
    assert model.trainable_weights == [] and not any(layer.trainable for layer in model.layers)
    model = keras_model(keras)
    assert call(namespace, "freeze_weights", model) is None
    assert model.trainable_weights == [] and all(layer.trainable for layer in model.layers)  # the weights' own flags
    layer = keras.layers.Dense(3, dtype="float64")
    layer.build((None, 2))
    bias = layer.bias
    assert call(namespace, "fill_bias", layer, 0.5) is layer
    assert layer.bias is bias and bias.numpy().tolist() == [0.5] * 3  # assigned in place, the same variable


def test_a_keras_model_that_cannot_be_described_as_data_is_not_sent_and_the_grader_never_reads_a_configuration():
    keras = pytest.importorskip("keras")

    class Own(keras.Model):  # a test's class whose __init__ takes an array: no configuration
        def __init__(self, table):
            super().__init__()
            self.table = table

        def call(self, x):
            return x

    with pytest.raises(judge.NotData, match="cannot be judged"):
        judge.call_request("f", (Own(np.zeros(3)),), {})
    sent = [keras.layers.Dense(1)]
    with pytest.raises(judge.NotData, match="configuration"):  # what a kernel could send to make a model here
        judge.decode(stored(b'{"module": 0, "keras": {"config": "{}"}, "weights": []}', a0=np.zeros(1)), modules=sent)


def test_a_kernels_keras_state_changes_only_what_an_answer_in_the_process_could():
    keras = pytest.importorskip("keras")
    layer = keras.layers.Dense(2)
    layer.build((None, 2))
    kernel, sent = layer.kernel, [layer]

    def answer(weights, layers=(True,), bias_shape=(2,)):
        entries = [{"list": [{"array": i, "kind": "numpy"}, same, trainable]} for i, (same, trainable) in enumerate(weights)]
        tree = {"list": [{"list": [{"module": 0, "state": {"dict": [["trainable", {"list": list(layers)}],
                                                                    ["weights", {"list": entries}]]}}]}, {"dict": []}]}
        return {"result": "json:null", "args": stored(json.dumps(tree).encode(), a0=np.ones((2, 2), np.float32),
                                                      a1=np.ones(bias_shape, np.float32))}

    with pytest.raises(judge.AnswerError, match="replaced"):
        judge.call_result("f", answer([(True, True), (False, True)]), (layer,), {}, sent)
    with pytest.raises(judge.AnswerError, match="layers"):
        judge.call_result("f", answer([(True, True), (True, True)], layers=(True, False)), (layer,), {}, sent)
    with pytest.raises(judge.AnswerError, match="added, removed or replaced weights"):
        judge.call_result("f", answer([(True, True)]), (layer,), {}, sent)
    with pytest.raises(judge.AnswerError, match="shape or dtype"):  # the bias's value given the kernel's shape
        judge.call_result("f", answer([(True, True), (True, True)], bias_shape=(2, 2)), (layer,), {}, sent)
    with pytest.raises(judge.AnswerError, match="malformed"):  # a flag that is not a bool
        judge.call_result("f", answer([(True, False), (True, "yes")]), (layer,), {}, sent)
    assert kernel.trainable and kernel.numpy().tolist() != [[1, 1], [1, 1]]  # nothing of a refused state applied
    judge.call_result("f", answer([(True, False), (True, True)]), (layer,), {}, sent)
    assert layer.kernel is kernel and kernel.numpy().tolist() == [[1, 1], [1, 1]] and not kernel.trainable
    assert layer.bias.trainable


KERAS_COMPILE = """
import keras
def fine_tune(model, base, lr):
    base.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"], jit_compile=False)
    return model, base is model.layers[0]
def by_function(model):
    model.compile(optimizer="sgd", loss=keras.losses.categorical_crossentropy, metrics=[keras.metrics.top_k_categorical_accuracy])
def settings(model):
    return type(model.optimizer).__name__, float(model.optimizer.learning_rate), model.loss
def not_compiled(model):
    model.layers[0].trainable = True
def same_optimizer(model):
    model.compile(optimizer=model.optimizer, loss="mse")
"""


def test_a_keras_model_the_answer_compiles_comes_back_compiled_with_kerass_own_classes():
    keras = pytest.importorskip("keras")
    namespace = {}
    exec(KERAS_COMPILE, namespace)
    model = keras_model(keras)
    base = model.layers[0]
    base.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.25), loss="mse")
    assert call(namespace, "settings", model) == ("SGD", 0.25, "mse")  # the test's compile reached the kernel
    returned, same = call(namespace, "fine_tune", model, base, 3e-5)
    assert returned is model and same is True  # `base` went as the layer of `model` it is, not as a copy
    assert base.trainable and len(model.trainable_weights) == 6  # conv, batch norm (gamma, beta), dense
    assert type(model.optimizer) is keras.optimizers.Adam and abs(float(model.optimizer.learning_rate) - 3e-5) < 1e-9
    assert type(model.loss) is keras.losses.CategoricalCrossentropy and model.loss.label_smoothing == 0.1
    assert model.get_compile_config()["metrics"] == ["accuracy"] and model.jit_compile is False
    call(namespace, "by_function", model)  # Keras' own loss and metric functions: the same functions here
    assert type(model.optimizer) is keras.optimizers.SGD and model.loss is keras.losses.categorical_crossentropy
    assert [m.get("config") for m in model.get_compile_config()["metrics"]] == ["top_k_categorical_accuracy"]
    optimizer = model.optimizer
    call(namespace, "not_compiled", model)
    assert model.optimizer is optimizer  # not compiled again by the answer: the test's compile (and its state) stays
    call(namespace, "same_optimizer", model)  # compiled again with its own optimizer: the new loss comes back
    assert model.loss == "mse" and type(model.optimizer) is keras.optimizers.SGD


def test_compile_settings_from_a_kernel_make_only_kerass_own_optimizers_losses_and_metrics():
    keras = pytest.importorskip("keras")
    from course_utils.instructor.judge.keras_models import _compiled_settings

    made = _compiled_settings({"optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                                             "config": {"learning_rate": 0.01, "name": "adam"}},
                               "loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}},
                               "metrics": ["accuracy", {"class_name": "function", "config": "categorical_accuracy"}]})
    assert type(made["optimizer"]) is keras.optimizers.Adam and made["loss"].get_config()["from_logits"] is True
    assert made["metrics"] == ["accuracy", keras.metrics.categorical_accuracy]
    decaying = _compiled_settings({"optimizer": {"class_name": "Adam", "config": {"learning_rate": {
        "class_name": "ExponentialDecay", "config": {"initial_learning_rate": 1e-3, "decay_steps": 10_000,
                                                     "decay_rate": 0.9}}}}})["optimizer"]  # a schedule of Keras' own
    assert type(decaying._learning_rate) is keras.optimizers.schedules.ExponentialDecay
    adam = {"class_name": "Adam", "config": {}}
    for settings in (
            {"optimizer": {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/"}}},
            {"optimizer": {"module": "os", "class_name": "function", "config": "system"}},
            {"optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": "LearningRateSchedule",
                                                                              "config": {}}}}},  # Keras' base class
            {"optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {
                "initial_learning_rate": {"class_name": "ExponentialDecay"}, "decay_steps": 1, "decay_rate": 1}}}}},
            {"optimizer": adam, "loss": {"class_name": "function", "config": "__class__"}},
            {"optimizer": adam, "loss": {"class_name": "Loss", "config": {"__init__": 1}}},
            {"optimizer": adam, "loss": {"class_name": "Dense", "config": {}}},  # not a loss
            {"optimizer": adam, "metrics": "accuracy"},  # not a list
            {"optimizer": adam, "metrics": [{"class_name": "Lambda", "config": {}}]},
            {"optimizer": adam, "run_eagerly": {"os": object.__name__, "deep": [[[[[[1]]]]]]}},
            {"optimizer": adam, "metrics": [{"class_name": "AUC", "config": {"num_thresholds": 10**10}}]},  # memory
            {"optimizer": adam, "metrics": [{"class_name": "MeanIoU", "config": {"num_classes": 2**40}}]},
            {"optimizer": adam, "metrics": ["accuracy"] * 17},
            {"optimizer": adam, "steps_per_execution": 10**9},
            {"optimizer": {"class_name": "Muon", "config": {"exclude_layers": ["(?:.|.|.)*!"]}}},  # a slow regex
            {"optimizer": {"class_name": "LossScaleOptimizer", "config": {"inner_optimizer": "adam"}}},
            {"optimizer": {"class_name": "function", "config": "get"}},
            {"optimizer": adam, "loss": {"class_name": "function", "config": "deserialize"}},  # not a loss
            {"optimizer": adam, "metrics": [{"class_name": "function", "config": "get"}]},
            {"optimizer": adam, "loss": {"class_name": "CategoricalCrossentropy", "config": {"name": "x" * 201}}},
            "not a dict"):
        with pytest.raises(judge.NotData):
            _compiled_settings(settings)


def test_keras_models_that_share_layers_or_are_unbuilt_are_not_sent():
    keras = pytest.importorskip("keras")
    namespace = {}
    exec("import keras\ndef fresh():\n    return keras.layers.Dense(1)\n", namespace)
    made = call(namespace, "fresh")  # a layer the answer makes: made again here, unbuilt as it is there
    assert type(made) is keras.layers.Dense and not made.built and made.units == 1
    model = keras_model(keras)
    with pytest.raises(judge.NotData, match="share"):  # two copies in the kernel would not see each other's changes
        judge.call_request("f", (model.layers[-1], model), {})  # (a layer after its model goes as the model's layer)
    with pytest.raises(judge.NotData, match="unbuilt"):  # the answer would add weights the test's model never had
        judge.call_request("f", (keras.Sequential([keras.layers.Dense(3)]),), {})


RECORDS = """
import torch
def run_in_batches(model, x, size):
    for start in range(0, len(x), size):
        with torch.no_grad():
            model(x[start:start + size])
def tamper(model):
    model.batches = "not a list"
    model.new_record = [1]
    model.stride = object()
def apply(f, x):
    return f(x), f
def apply_twice(f, x):
    return f(f(x))
"""
RECORDER = ("class Recorder(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.batches = []\n        self.stride = (1, 1)\n"
            "    def forward(self, x):\n        self.batches.append(len(x))\n        return x\n"
            "class Scale:\n    def __init__(self, k):\n        self.k, self.calls = k, 0\n"
            "    def __call__(self, x):\n        self.calls += 1\n        return x * self.k\n")


def test_plain_records_on_the_tests_models_and_its_plain_objects_cross_as_data():
    torch = pytest.importorskip("torch")
    grader = {"__name__": "__main__", "nn": torch.nn}
    exec(RECORDER, grader)
    namespace = {}
    exec(RECORDS, namespace)
    classes, imports = judge.test_classes(RECORDER), "from torch import nn"
    recorder = grader["Recorder"]()
    judge.call_without_kernel(namespace, "run_in_batches", (recorder, torch.zeros(23, 2), 10), {}, classes, imports)
    assert recorder.batches == [10, 10, 3]  # what the model recorded in the kernel, as it would have here
    judge.call_without_kernel(namespace, "tamper", (recorder,), {}, classes, imports)
    # a plain attribute the test's model has takes a plain value; a new name or another kind of value does not cross
    assert recorder.batches == "not a list" and recorder.stride == (1, 1) and not hasattr(recorder, "new_record")
    scale = grader["Scale"](torch.tensor(3.0))  # a plain object of the test's class: made in the kernel from its attributes
    result, same = judge.call_without_kernel(namespace, "apply", (scale, torch.ones(2)), {}, classes, imports)
    assert result.tolist() == [3.0, 3.0] and same is scale and scale.calls == 1
    judge.call_without_kernel(namespace, "apply_twice", (scale, torch.ones(2)), {}, classes, imports)
    assert scale.calls == 3  # what the object counted in the kernel comes back, as it would have here
    with pytest.raises(judge.NotData, match="takes data only"):  # a kernel cannot make the grader build one
        judge.decode(stored(b'{"module": 0, "instance": "Scale", "state": {"dict": []}}', a0=np.zeros(1)),
                     modules=[scale])


def test_a_tensorflow_answers_draws_follow_the_tests_keras_seed():
    keras = pytest.importorskip("keras")
    namespace = {}
    exec("import tensorflow as tf\ndef draw(n):\n    return tf.random.uniform((n,))\n", namespace)
    imports = "import tensorflow as tf\nimport keras"
    keras.utils.set_random_seed(3)
    first = judge.call_without_kernel(namespace, "draw", (4,), {}, imports=imports)
    keras.utils.set_random_seed(3)
    again = judge.call_without_kernel(namespace, "draw", (4,), {}, imports=imports)
    then = judge.call_without_kernel(namespace, "draw", (4,), {}, imports=imports)
    assert np.array_equal(first, again) and not np.array_equal(again, then)  # repeatable, and fresh at each call
    assert grader._imports_framework(imports) == "tensorflow" and grader._imports_framework("import torch") == "torch"


OPTIMIZERS = """
import torch
def adam_over_trainable(model, lr):
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, betas=(0.8, 0.9))
def stepped_sgd(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    return optimizer
def over_new_weight(model):
    model.weight = torch.nn.Parameter(torch.zeros_like(model.weight))
    return torch.optim.Adam([model.weight])
def over_own_tensor(model):
    return torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])
class Mine(torch.optim.Adam):
    pass
def own_class(model):
    return Mine(model.parameters())
"""


def test_an_optimizer_over_the_tests_model_is_made_again_over_the_tests_own_parameters():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(OPTIMIZERS, namespace)
    model = torch.nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    optimizer = call(namespace, "adam_over_trainable", model, 3e-5)
    assert type(optimizer) is torch.optim.Adam and optimizer.param_groups[0]["lr"] == 3e-5
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9)
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(model.weight)]  # the test's own parameters
    optimizer = call(namespace, "stepped_sgd", model)
    assert torch.equal(optimizer.state[model.weight]["momentum_buffer"], torch.ones(2, 2))  # its state came too
    optimizer = call(namespace, "over_new_weight", model)
    assert optimizer.param_groups[0]["params"][0] is model.weight and not model.weight.any()  # the replaced parameter
    with pytest.raises(judge.AnswerError, match="not parameters of the model"):
        call(namespace, "over_own_tensor", model)
    with pytest.raises(judge.NotData, match="not one of torch.optim.s"):  # a class of the kernel is not made here
        call(namespace, "own_class", model)
    with pytest.raises(judge.NotData, match="did not send"):
        judge.decode('json:{"optimizer": "torch.optim.adam.Adam", "groups": [{"params": [{"module": 0, "parameter": '
                     '"weight"}], "settings": {"dict": []}}], "state": []}', modules=[])


GRAPHS = """
import torch
def affine(model, x):
    return model(x) * 2, x.sum()
def detached(x):
    return x.detach() * 2
"""


def test_gradients_reach_the_tests_tensors_and_model_through_the_kernels_graph():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(GRAPHS, namespace)
    torch.manual_seed(0)
    model, x = torch.nn.Linear(3, 2), torch.randn(4, 3, requires_grad=True)
    out, total = call(namespace, "affine", model, x)
    assert out.requires_grad and not out.is_leaf  # joined to x and the model's parameters here
    weights = torch.randn(4, 2)
    (weights * out).sum().backward()  # the gradients are computed in the kernel, on its graph
    expected_x, expected_w = weights @ model.weight * 2, weights.T @ x.detach() * 2
    assert torch.allclose(x.grad, expected_x) and torch.allclose(model.weight.grad, expected_w)
    assert torch.allclose(model.bias.grad, weights.sum(0) * 2)
    (grad_x,) = torch.autograd.grad(total, [x])  # another output of the same call
    assert torch.equal(grad_x, torch.ones(4, 3))
    assert call(namespace, "detached", x).grad_fn is None  # what the answer cut stays cut
    torch.manual_seed(1)
    out, _ = call(namespace, "affine", model, x)
    state = torch.get_rng_state()
    out.sum().backward()
    assert torch.equal(torch.get_rng_state(), state)  # a backward pass draws nothing from the test's generator


def test_a_backward_through_a_graph_the_kernel_no_longer_keeps_fails_with_a_message():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(GRAPHS, namespace)
    model, x = torch.nn.Linear(3, 2), torch.randn(4, 3, requires_grad=True)
    first, _ = call(namespace, "affine", model, x)
    for _ in range(autograd.KEPT_GRAPHS):
        call(namespace, "affine", model, x)
    with pytest.raises(RuntimeError, match="no longer kept"):
        first.sum().backward()
    answer = {"result": judge.encode(torch.ones(2, requires_grad=True) * 2, graph=None), "graph": {"number": 1,
              "inputs": [{"module": 5, "parameter": "weight"}]}}
    answer["result"] = answer["result"].replace('"grad": true', '"grad": true, "graph": 0')
    with pytest.raises(judge.NotData, match="malformed graph"):  # a kernel naming inputs the test never passed
        judge.call_result("f", answer, (x,), {}, [], again=lambda *a: None)


MAKERS = """
import torch
from torch import nn
def build():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 3, bias=False))
class Own(nn.Module):
    def __init__(self, power):
        super().__init__()
        self.power, self.seen = power, []
        self.lin = nn.Linear(2, 2)
        self.bn = nn.BatchNorm1d(2)
    def forward(self, x):
        self.seen.append(len(x))
        return self.bn(self.lin(x)) ** self.power
def trio():
    model = Own(2)
    return model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
"""


def test_a_model_the_answer_makes_is_mirrored_here_and_runs_in_the_kernel():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    namespace = {}
    exec(MAKERS, namespace)
    torch.manual_seed(0)
    model = call(namespace, "build")
    # PyTorch's own classes, with their settings, parameters and empty slots
    assert [type(m) for m in model] == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.Dropout, torch.nn.Flatten, torch.nn.Linear]
    assert model[0].stride == (1, 1) and model[2].p == 0.5 and model[4].bias is None and judge.is_remote(model) is False
    x = torch.rand(2, 1, 4, 4)

    def reference(x):
        return F.linear(F.relu(F.conv2d(x, model[0].weight, model[0].bias)).flatten(1), model[4].weight)

    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x))
        for p in model.parameters():  # what the test sets in the mirror is what the kernel's model computes with
            p.normal_()
        assert torch.allclose(model(x), reference(x))
    model.train()  # the mode reaches the kernel: dropout draws there
    assert not torch.allclose(model(x), reference(x))
    own, loss_fn, optimizer = call(namespace, "trio")
    assert type(loss_fn) is torch.nn.BCEWithLogitsLoss and type(optimizer) is torch.optim.Adam
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in own.parameters()}
    assert isinstance(own, torch.nn.Module) and own.power == 2 and type(own.lin) is torch.nn.Linear
    xx = torch.randn(4, 2, requires_grad=True)
    out = own(xx)
    out.sum().backward()  # through the kernel's graph, into the mirror's parameters and the test's input
    assert xx.grad is not None and own.lin.weight.grad is not None
    assert own.seen == [4] and own.bn.running_mean.abs().sum() > 0  # its records and running statistics came back
    assert float(loss_fn(torch.tensor([[0.0]]), torch.tensor([[1.0]]))) == pytest.approx(float(np.log(2)))
    made = judge.Remote("Own", lambda name, args, kwargs: judge.call_without_kernel(namespace, name, args, kwargs))
    assert made(3)(torch.ones(3, 2)).shape == (3, 2)  # a class of the answer, made and run in the kernel
    model.eval()
    model[0].bias = None  # a parameter the test removes is removed in the kernel's model too
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x)) and model[0].bias is None


def made_description(**changes):
    entry = ["", "torch", "Linear", {"in_features": 1}, True, [], []]
    description = {"number": 1, "modules": [entry], "parameters": {}, "buffers": {}}
    for key, value in changes.items():
        if key in description:
            description[key] = value
        else:
            entry[["path", "kind", "name", "attributes"].index(key)] = value
    return {"module": 0, "made": description}


def test_a_kernels_description_of_its_model_is_read_as_data_only():
    torch = pytest.importorskip("torch")

    def made(**changes):
        return judge.decode("json:" + json.dumps(judge_tree(made_description(**changes))), modules=[])

    def judge_tree(value):  # the codec's JSON form of plain containers
        if isinstance(value, dict) and "module" not in value:
            return {"dict": [[k, judge_tree(v)] for k, v in value.items()]}
        if isinstance(value, dict):
            return {k: judge_tree(v) if k == "made" else v for k, v in value.items()}
        if isinstance(value, list):
            return {"list": [judge_tree(v) for v in value]}
        return value

    layer = made(attributes={"in_features": 1, "forward": 1, "parameters": 2, "_modules": 3})
    assert type(layer) is torch.nn.Linear and layer.in_features == 1 and callable(layer.parameters)
    for name in ("functional", "Parameter", "init", "Sequential.__init__"):  # torch.nn's, but not a module class
        with pytest.raises(judge.NotData, match="not one of torch.nn's|malformed"):
            made(name=name)
    with pytest.raises(judge.NotData, match="not one of torch.nn's"):
        made(name="KernelModule")  # the stand-in for the answer's classes is not named by the kernel
    with pytest.raises(judge.NotData, match="malformed"):
        made(path="a.b")
    with pytest.raises(judge.NotData, match="takes data only"):  # a kernel cannot name a model of its own to the grader
        judge.decode('json:{"module": 0, "kernel": 1, "state": {"dict": []}}', modules=[torch.nn.Linear(1, 1)])
    with pytest.raises(judge.NotData, match="out of turn"):
        judge.decode("json:" + json.dumps(judge_tree(made_description())), modules=[torch.nn.Linear(1, 1)])


def test_gradients_reach_the_tests_tape_through_the_kernels_tape():
    keras = pytest.importorskip("keras")
    import tensorflow as tf
    namespace = {}
    exec("import tensorflow as tf\ndef apply(layer, x):\n    return layer(x) * 2, tf.reduce_sum(x)\n", namespace)
    imports = "import tensorflow as tf\nimport keras"
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 3)), tf.float32)
    weights = tf.constant(np.random.default_rng(1).normal(size=(4, 2)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:  # the kernel records the call only while the test's tape does
        tape.watch(x)
        out, total = judge.call_without_kernel(namespace, "apply", (layer, x), {}, imports=imports)
        loss = tf.reduce_sum(weights * out)
    grad_x, grad_kernel, grad_bias = tape.gradient(loss, [x, layer.kernel, layer.bias])
    assert np.allclose(grad_x, 2 * weights.numpy() @ layer.kernel.numpy().T, atol=1e-5)
    assert np.allclose(grad_kernel, 2 * x.numpy().T @ weights.numpy(), atol=1e-5)
    assert np.allclose(grad_bias, 2 * weights.numpy().sum(0), atol=1e-5)
    assert np.allclose(tape.gradient(total, x), np.ones((4, 3)))  # another output of the same call
    out, _ = judge.call_without_kernel(namespace, "apply", (layer, x), {}, imports=imports)  # no tape: no graph kept
    with tf.GradientTape() as tape:
        tape.watch(x)
        assert tape.gradient(tf.reduce_sum(out), x) is None


def tf_call(namespace, name, *args):
    """One call of a TensorFlow notebook's answer, without a kernel (the set-up imports TensorFlow)."""
    return judge.call_without_kernel(namespace, name, args, {}, imports="import tensorflow as tf")


def test_a_gradient_reaches_a_tensorflow_variable_the_test_passes():
    keras = pytest.importorskip("keras")
    import tensorflow as tf
    namespace = {}
    exec("import tensorflow as tf\ndef cube(v):\n    return v ** 3\n", namespace)
    for variable in (tf.Variable([1.0, 2.0]), tf.Variable([1.0, 2.0], trainable=False), keras.Variable([1.0, 2.0])):
        with tf.GradientTape() as tape:
            if not variable.trainable:
                tape.watch(variable)
            out = tf_call(namespace, "cube", variable)
            total = tf.reduce_sum(out)
        assert np.allclose(tape.gradient(total, variable), [3.0, 12.0])  # was None: a variable was no input


def test_a_tensor_given_twice_gets_its_gradient_once():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec("def mul(a, b):\n    return a * b\ndef pair(a):\n    y = a * 3\n    return y, y\n", namespace)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    call(namespace, "mul", t, t).sum().backward()
    assert t.grad.tolist() == [2.0, 4.0]  # d(t * t)/dt = 2t (was 4t: the same tensor counted as two inputs)
    t.grad = None
    first, second = call(namespace, "pair", t)
    assert first is second
    (first.sum() + second.sum()).backward()
    assert t.grad.tolist() == [6.0, 6.0]
    pytest.importorskip("keras")
    import tensorflow as tf
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf_call(namespace, "mul", x, x)
    assert tape.gradient(out, x).numpy().tolist() == [2.0, 4.0]


def test_a_tensor_the_answer_puts_into_the_tests_list_or_dict_keeps_its_graph():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec("def double_first(lst):\n    lst[0] = lst[0] * 2\n"
         "def square_into(d):\n    d['y'] = d['x'] ** 2\n    return d['y'], d['x'] * 3\n"
         "def append_pair(lst, x):\n    lst.append((x * 2, x * 3))\n    return lst\n", namespace)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    lst = [t]
    call(namespace, "double_first", lst)
    assert lst[0] is not t and t.tolist() == [1.0, 2.0]
    lst[0].sum().backward()
    assert t.grad.tolist() == [2.0, 2.0]  # was None: the new tensor in the list had no graph
    t.grad = None
    d = {"x": t}
    y, z = call(namespace, "square_into", d)
    assert d["y"] is y and d["x"] is t
    (d["y"].sum() + z.sum()).backward()
    assert t.grad.tolist() == [5.0, 7.0]  # 2t + 3
    t.grad = None
    lst = []
    assert call(namespace, "append_pair", lst, t) is lst  # the test's own list, returned as it is
    (lst[0][0].sum() + lst[0][1].sum()).backward()  # tensors in a tuple in the list
    assert t.grad.tolist() == [5.0, 5.0]
    pytest.importorskip("keras")
    import tensorflow as tf
    x = tf.constant([1.0, 2.0])
    lst = [x]
    with tf.GradientTape() as tape:
        tape.watch(x)
        tf_call(namespace, "double_first", lst)
        total = tf.reduce_sum(lst[0])
    assert tape.gradient(total, x).numpy().tolist() == [2.0, 2.0]


def test_a_reply_that_makes_the_tests_list_hold_itself_does_not_hang_the_grader():
    torch = pytest.importorskip("torch")
    import base64

    t = torch.tensor([1.0, 2.0], requires_grad=True)
    lst = [t]
    tensor = {"array": 0, "kind": "torch", "graph": 0}
    itself = {"list": [{"list": [], "was": 2}] * 3 + [tensor], "was": 2}  # the list, three times inside itself
    tree = {"list": [{"list": [itself], "was": 1}, {"dict": [], "was": 4}], "was": 0}
    array = np.array([5.0, 6.0], np.float32)
    args = judge.INLINE_PREFIX + json.dumps({"tree": tree, "arrays": [
        [array.dtype.str, list(array.shape), base64.b64encode(array.tobytes()).decode()]]})
    answer = {"args": args, "result": "json:null", "graph": {"number": 1, "inputs": [{"arg": 0}]}}
    assert judge.call_result("f", answer, (lst,), {}, [], again=lambda *a: [torch.ones(2)]) is None  # (it returned)


def test_gradients_from_the_kernel_of_another_shape_or_kind_are_refused():
    pytest.importorskip("keras")
    import tensorflow as tf
    namespace = {}
    exec("import tensorflow as tf\ndef double(x):\n    return x * 2\n", namespace)
    x = tf.constant([1.0, 2.0])
    real = judge.call_without_kernel
    for wrong in ([tf.ones(5)], [tf.constant([1, 2])], ["text"], [1.0, 2.0]):
        def forged(ns, name, args, kwargs, wrong=wrong, **rest):  # the kernel's answer to the backward request
            return wrong if name == autograd.BACKWARD else real(ns, name, args, kwargs, **rest)

        answer = json.loads(grader.call_request("double", (x,), {}, imports="import tensorflow as tf"))
        assert answer["context"].get("tape") is not True  # (no tape yet)
        with tf.GradientTape() as tape:
            tape.watch(x)
            request = grader.call_request("double", (x,), {}, [], imports="import tensorflow as tf")
            reply = judge.answer_call(namespace, request)
            out = judge.call_result("double", reply, (x,), {}, [], again=lambda n, a, k, f=forged: f(namespace, n, a, k))
            total = tf.reduce_sum(out)
        with pytest.raises(judge.AnswerError, match="malformed gradients"):
            tape.gradient(total, x)


KERAS_LAYER = """import tensorflow as tf
import keras
class Cube(keras.layers.Layer):
    def __init__(self, k=1.0, **kwargs):
        super().__init__(**kwargs)
        self.k = k
    def call(self, x):
        return self.k * x ** 3
class Weighted(keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones")
    def call(self, x, training=False):
        return x * self.w * (2.0 if training else 1.0)
def made_weighted():
    layer = Weighted()
    layer.build((None, 2))
    return layer
def made_dense():
    return keras.layers.Dense(1)
"""


def keras_answers(source: str):
    """The answers ``source`` defines, and each as the judge calls it in a Keras notebook, without a kernel."""
    namespace = {}
    exec(source, namespace)
    call = functools.partial(judge.call_without_kernel, namespace, imports="import tensorflow as tf\nimport keras")
    return namespace, lambda name: judge.Remote(name, call)


def test_a_keras_layer_of_the_answers_class_stands_in_here_and_runs_in_the_kernel():
    keras = pytest.importorskip("keras")
    import tensorflow as tf
    _, remote = keras_answers(KERAS_LAYER)
    made = []
    with judge.grading():
        layer = remote("Cube")(2.0, dtype="float64")
        made.append(layer)
        assert isinstance(layer, keras.layers.Layer) and "Cube" in repr(layer) and not layer.weights
        x = tf.Variable([[1.0, 2.0]], dtype=tf.float64)
        with tf.GradientTape() as tape:
            y = layer(x)  # Keras' __call__ here, the layer's call in the kernel
            total = tf.reduce_sum(y)
        assert y.dtype == tf.float64 and np.allclose(y, [[2.0, 16.0]])  # the kernel's layer, its dtype and k
        assert np.allclose(tape.gradient(total, x), [[6.0, 24.0]])
        x32 = tf.constant([[1.0, -1.0]])
        with tf.GradientTape() as tape:
            tape.watch(x32)
            total = tf.reduce_sum(remote("Cube")()(x32))
        assert np.allclose(tape.gradient(total, x32), [[3.0, 3.0]])
        weighted = remote("made_weighted")()  # its weights are here too, and sent to the kernel's
        assert [tuple(w.shape) for w in weighted.weights] == [(2,)] and np.allclose(weighted(x32), [[1.0, -1.0]])
        assert np.allclose(weighted(x32, training=True), [[2.0, -2.0]])  # training= reaches the kernel's call
        weighted.weights[0].assign([3.0, 1.0])
        assert np.allclose(weighted(x32), [[3.0, -1.0]])  # the kernel's layer runs with the weights given here
        assert type(remote("made_dense")()) is keras.layers.Dense  # Keras' own class: made here
    keras_models = sys.modules["course_utils.instructor.judge.keras_models"]
    tree = {"class": "Cube", "model": False, "dtype": "float32", "input_shape": None, "variables": [], "children": []}
    with pytest.raises(RuntimeError, match="no connection"):
        keras_models._keras_mirror({"number": 1, "tree": tree, "flags": [True], "weights": []})(x32)
    for description in ({"number": 1, "tree": {**tree, "dtype": "os.system"}, "flags": [True], "weights": []},
                        {"number": "1", "tree": tree, "flags": [True], "weights": []},
                        {"tree": tree, "flags": [True], "weights": []}, []):
        with pytest.raises(judge.NotData, match="malformed"):
            keras_models._keras_mirror(description)
    described = json.loads(judge.encode({"number": 1, "tree": tree, "flags": [True], "weights": []})[len("json:"):])
    made = {"module": 0, "made_keras": described}
    layer = judge.decode("json:" + json.dumps(made), modules=[])
    assert "Cube" in repr(layer) and layer._kernel_model == 1
    many = "json:" + json.dumps({"list": [{**made, "module": k} for k in range(judge_base.KEPT_MODELS + 1)]})
    with pytest.raises(judge.NotData, match="out of turn"):  # more than the kernel keeps: refused, not built
        judge.decode(many, modules=[])
    with pytest.raises(judge.NotData, match="expects none"):  # in what the call did to its arguments
        judge.decode("json:" + json.dumps(made), modules=[], states=True)


KERAS_MODELS = """import tensorflow as tf
import keras
def relu(x):  # named like Keras' relu, and not it: Keras writes it as "relu"
    return tf.nn.leaky_relu(x, 0.5)
def sequential():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model
def functional():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.ReLU()(keras.layers.Dense(3)(inputs)))
    return keras.Model(inputs, outputs)
def impostor():
    return keras.Sequential([keras.layers.Dense(3, activation=relu), keras.layers.Dense(2)])
class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(3, activation=lambda x: tf.nn.relu(x) - 1.0)
        self.out = keras.layers.Dense(2)
    def call(self, x):
        self.add_loss(tf.constant(0.25))
        return self.out(self.hidden(x))
def subclass():
    model = Net()
    model.compile(optimizer="adam", loss="mse")
    return model
"""


def test_a_keras_model_the_answer_builds_is_made_again_here_of_keras_own_classes():
    keras = pytest.importorskip("keras")
    import tensorflow as tf
    namespace, remote = keras_answers(KERAS_MODELS)
    keras_models = sys.modules["course_utils.instructor.judge.keras_models"]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32") * 3
    with judge.grading():
        for name, kind in (("sequential", keras.Sequential), ("functional", keras.Model), ("impostor", keras.Sequential),
                           ("subclass", keras.Model)):
            model = remote(name)()
            theirs = namespace[name]()  # the same answer here, to compare with
            model(x), theirs(x)  # (an unbuilt model is built by its first call, on both sides)
            assert isinstance(model, kind) and [type(d) for d in model.layers if isinstance(d, keras.layers.Dense)] \
                == [keras.layers.Dense] * 2, name
            assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in theirs.weights], name
            rng = np.random.default_rng(1)
            for mine, other in zip(model.weights, theirs.weights):  # the test's weights, sent with each call
                value = rng.normal(size=mine.shape).astype("float32")
                mine.assign(value)
                other.assign(value)
            assert np.allclose(model(x), theirs(x), atol=1e-6), name
            stand_ins = [layer for layer in keras_models._keras_layers(model) if keras_models._is_stand_in(layer)]
            # Keras' own layers run here; the answer's class and its own activations run in the kernel
            assert len(stand_ins) == {"sequential": 0, "functional": 0, "impostor": 1, "subclass": 2}[name], name
        assert type(remote("sequential")().optimizer) is keras.optimizers.Adam  # compiled here too
        model = remote("subclass")()
        assert float(model.evaluate(x, np.zeros((5, 2), "float32"), verbose=0)) > 0  # run eagerly: it calls the kernel
        model(x)
        assert [float(loss) for loss in model.losses] == [0.25]  # what the kernel's call added
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(model(x))
        assert all(g is not None for g in tape.gradient(total, model.trainable_weights))  # through the kernel


def test_a_keras_description_naming_more_than_keras_own_small_layers_is_refused_before_anything_is_made():
    keras = pytest.importorskip("keras")
    import time

    keras_models = sys.modules["course_utils.instructor.judge.keras_models"]
    dense = json.loads(json.dumps(keras.saving.serialize_keras_object(keras.layers.Dense(2))))
    lam = {"module": "keras.layers", "class_name": "Lambda", "config": {"function": "x"}, "registered_name": None}
    refused = [lam, {**dense, "registered_name": "my>Dense"}, {**dense, "module": "os"},
               {"module": "keras.layers", "class_name": "StringLookup", "config": {}, "registered_name": None},
               {**dense, "config": {**dense["config"], "activation": {"class_name": "__lambda__", "config": {}}}},
               {**dense, "config": {**dense["config"], "activation": {"value": ["code", None, None]}}},
               {**dense, "config": {**dense["config"], "activation": {"module": "builtins", "class_name": "function",
                                                                    "config": "eval", "registered_name": "function"}}},
               {**dense, "config": {**dense["config"], "name": "x" * 2000}},
               {**dense, "config": {**dense["config"], "dtype": "int8_from_float32"}},  # Keras' quantized layers
               {"module": "keras.layers", "class_name": "UpSampling2D", "config": {"size": [9, 9]}, "registered_name": None}]
    for config in refused:
        with pytest.raises(judge.NotData):
            keras_models._checked_config(config)
        described = {"tree": {"config": json.dumps(config), "forwarded": [], "values": []}, "flags": [True],
                     "weights": []}
        with pytest.raises(judge.NotData):
            keras_models._keras_mirror(described)
    keras_models._checked_config(dense)  # (what the kernel sends for Dense(2) passes)
    big = json.loads(json.dumps(keras.saving.serialize_keras_object(keras.layers.Dense(10**6))))
    big["build_config"] = {"input_shape": [None, 10**4]}
    started = time.monotonic()
    with pytest.raises(judge.NotData, match="more weights"):  # refused before TensorFlow allocates 40 GB
        keras_models._keras_mirror({"tree": {"config": json.dumps(big), "forwarded": [], "values": []},
                                    "flags": [True], "weights": [True, True]})
    assert time.monotonic() - started < 10
    one = np.zeros(2**16, "float32")  # one array named 2,000 times: sent once, counted once
    with pytest.raises(judge.NotData, match="more weights"):
        keras_models._keras_mirror({"tree": {"config": json.dumps(big), "forwarded": [], "values": [one] * 2000},
                                    "flags": [True], "weights": [True, True]})
    wide = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Conv2D(2**13, 1)])  # 16,384 weights
    with pytest.raises(judge.NotData, match="output of more than"):  # and an output of 2**25 numbers per example
        keras_models._keras_mirror(keras_models._keras_description(wide))
    unknown = keras_models._keras_mirror(keras_models._keras_description(keras.Sequential([keras.layers.Conv2D(2**13, 1)])))
    with pytest.raises(judge.NotData, match="would hold more than"):  # its input's shape known when it is called
        unknown(np.zeros((1, 64, 64, 1), "float32"))
    for cls in (keras.layers.UpSampling2D, keras.layers.Dot, keras.layers.MultiHeadAttention, keras.layers.Lambda):
        assert not keras_models._own_keras_class(cls)  # made larger outputs than inputs and weights, or runs code
    many = keras.Sequential([keras.Input((2,))] + [keras.layers.Identity() for _ in range(keras_models.MADE_LAYERS)])
    with pytest.raises(judge.NotData, match="layers and calls of layers"):  # (each costs the grader time)
        keras_models._keras_mirror(keras_models._keras_description(many))
    deep = {"class": "Deep", "model": False, "dtype": "float32", "input_shape": None, "variables": [], "children": []}
    for _ in range(40):
        deep = {**deep, "children": [["inner", deep]]}
    with pytest.raises(judge.NotData, match="malformed"):
        keras_models._keras_mirror({"number": 1, "tree": deep, "flags": [True] * 41, "weights": []})


def test_a_kernels_graph_or_model_description_beyond_what_the_call_has_is_refused():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, requires_grad=True)
    answer = {"result": judge.encode(torch.ones(2)).replace('"grad": false', '"grad": true, "graph": 0'),
              "graph": {"number": 1, "inputs": [{"arg": 0}] * 1000}}
    with pytest.raises(judge.NotData, match="malformed graph"):  # more inputs than the call has
        judge.call_result("f", answer, (x,), {}, [], again=lambda *a: None)
    entries = [["", "torch", "Sequential", {}, True, [], []], ["forward", "torch", "ReLU", {}, True, [], []]]
    with pytest.raises(judge.NotData, match="malformed"):  # a layer named like a method of its parent
        torch_models._mirror({"number": 1, "modules": entries, "parameters": {}, "buffers": {}})
    deep = [["", "torch", "Sequential", {}, True, [], []]] + [
        [".".join(["a"] * k), "torch", "Sequential", {}, True, [], []] for k in range(1, 40)]
    with pytest.raises(judge.NotData, match="malformed"):
        torch_models._mirror({"number": 1, "modules": deep, "parameters": {}, "buffers": {}})


def test_an_answer_the_test_traces_runs_traced_in_the_kernel_with_the_tests_signature():
    pytest.importorskip("keras")
    import functools

    import tensorflow as tf
    namespace = {}
    exec("import tensorflow as tf\ndef flat(x):\n    return tf.reshape(x, (tf.shape(x)[0], -1)) / 2\n"
         "def flat_static(x):\n    return tf.reshape(x, (x.shape[0], -1)) / 2\n", namespace)

    def remote(name):
        return judge.Remote(name, functools.partial(judge.call_without_kernel, namespace, imports="import tensorflow as tf"))

    signature = [tf.TensorSpec((None, 2, 2), tf.float32)]
    assert tf.function(lambda t: remote("flat")(t), input_signature=signature)(tf.ones((3, 2, 2))).shape == (3, 4)
    assert remote("flat_static")(tf.ones((3, 2, 2))).shape == (3, 4)  # eagerly the batch size is known
    with pytest.raises(Exception, match="None"):  # traced in the kernel too, the batch size is unknown there
        tf.function(lambda t: remote("flat_static")(t), input_signature=signature)(tf.ones((3, 2, 2)))
