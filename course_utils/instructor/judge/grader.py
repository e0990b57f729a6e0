"""The grader's side: a judged test cell run here, each answer a :class:`Remote` that calls the student's kernel."""
from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import io
import json
import sys
import threading
import time
import traceback

from course_utils.instructor.guard import CALL, META, MIME_CALL, request_mac
from course_utils.instructor.judge.autograd import BACKWARD, _graph_inputs, _joined_to_kernel_graph, _tape_recording
from course_utils.instructor.judge.base import KNOWN_ERRORS, MAX_BYTES, AnswerError, NotData, _objects, _text
from course_utils.instructor.judge.cells import imports_of, test_classes
from course_utils.instructor.judge.codec import decode, encode, write_back
from course_utils.instructor.judge.kernel import answer_call


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
        return call_result(name, answer, args, kwargs, sent, again=functools.partial(self.call, imports=imports))


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
    objects = _objects([list(args), dict(kwargs or {})])  # numbered as the kernel numbered its copies
    inputs = _graph_inputs([list(args), dict(kwargs or {})])  # before the write-back, as the kernel took them
    outputs: dict = {}
    if "args" in answer:  # first: a result may name the parameters the call replaced (an optimizer over them)
        identities = {}
        changed = decode(answer["args"], modules=sent, states=True, identities=identities, graph=outputs)
        write_back([list(args), dict(kwargs or {})], changed, moved=(identities, objects))
    result = decode(answer.get("result"), modules=sent, graph=outputs, originals=objects)
    for model in sent or ():  # models the answer made: their mirrors call the kernel through the same crossing
        if hasattr(model, "_kernel_model") and getattr(model, "_kernel_call", None) is None:
            object.__setattr__(model, "_kernel_call", again)
    if outputs and again is not None and isinstance(answer.get("graph"), dict):
        result = _joined_to_kernel_graph(result, outputs, answer["graph"], inputs, sent, again,
                                         [list(args), dict(kwargs or {})])
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
    return call_result(name, answer, args, kwargs, sent, again=functools.partial(call_without_kernel, namespace,
                                                                                imports=imports))


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
