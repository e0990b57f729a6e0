"""nbgrader's ``Execute`` with the outputs it keeps bounded, in bytes, per cell and per notebook.

nbgrader's ``LimitOutput`` counts lines after the run, so a 50 MB single-line print is kept
whole (and everything a kernel prints is held in the grader's memory first). Here each output
is measured as it arrives (nbclient's ``output``): once a cell has kept
``cell_output_bytes`` or the notebook ``notebook_output_bytes``, the rest of that cell's
outputs are dropped and one note says so. Errors are always kept (shortened), so a failing
test still fails.

It also talks to the grading kernel (:mod:`.guard`): each request says whether the cell is one of
the release's (``trusted``), a test (``test``) or the student's, as the pre-check marked it; the
first carries a fresh key and the modules the test cells import (the kernel records them before
any student code runs), and every request is signed with the key (a request that another process
of the sandbox sends to the kernel cannot claim to be the release's); a test cell whose run does
not end with the kernel's receipt under that key (a kernel whose guard was bypassed or died)
gets an error output: it scores zero.

A test cell the pre-check marks as judged (:mod:`.judge`) runs in this process instead, calling the
answers in the kernel with data only; the kernel runs only the cell's static checks.
"""
from __future__ import annotations

import ast
import hmac
import json
import queue
import secrets

from jupyter_core.utils import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

from course_utils.instructor.guard import META, MIME, NO_RECEIPT, STUDENT, TEST, receipt, request_mac
from course_utils.instructor.judge import JUDGED, Judge, KernelLink, names_used_after, static_part

NOTE = "[output truncated by the grader: more than {limit} bytes]\n"


def output_size(out) -> int:
    if out.get("output_type") == "stream":
        return len(str(out.get("text", "")).encode("utf-8", "replace"))
    return len(json.dumps(out.get("data", {}), default=str)) + len(json.dumps(out.get("traceback", []), default=str))


def imported_modules(source: str) -> set[str]:
    """Modules a cell imports (the kernel imports the tests' own before any student code runs)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


class BoundedExecute(Execute):
    """``Execute`` keeping at most ``cell_output_bytes`` of outputs per cell, ``notebook_output_bytes`` per notebook."""

    cell_output_bytes = Integer(1 << 20, help="outputs kept per cell, in bytes").tag(config=True)
    notebook_output_bytes = Integer(8 << 20, help="outputs kept per notebook, in bytes").tag(config=True)
    _judge: Judge | None = None

    def preprocess(self, nb, resources=None, km=None):
        self._kept: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._total = 0
        self._key, self._key_sent, self._receipts, self._request = secrets.token_hex(16), False, set(), {}
        self._test_imports = sorted({name for cell in nb.cells if cell.cell_type == "code"
                                     and cell.get("metadata", {}).get(META, {}).get("role") == TEST
                                     for name in imported_modules(cell.source)})
        plan = nb.get("metadata", {}).get(META, {}).get("judge")
        judged = any(c.get("metadata", {}).get(META, {}).get(JUDGED) for c in nb.cells if c.cell_type == "code")
        self._judge = Judge(str(plan.get("setup", "")), list(plan.get("answers", []))) \
            if judged and isinstance(plan, dict) else None
        self._used_after = names_used_after([c.source if c.cell_type == "code" else "" for c in nb.cells]) \
            if self._judge else []
        try:
            return super().preprocess(nb, resources, km)
        finally:
            nb.get("metadata", {}).pop(META, None)  # the grader's plan for the judge stays with the grader
            if self._judge is not None and self._judge.link is not None:
                self._judge.link.close()

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        role = cell.get("metadata", {}).get(META, {}).get("role", STUDENT) if cell.cell_type == "code" else None
        if role is not None and self.kc is not None and getattr(self.kc.execute, "__self__", None) is not self:
            self.kc.execute = self._execute  # nbclient's execute, with the guard's metadata in the request
        judged = role == TEST and self._judge is not None and bool(cell.metadata.get(META, {}).get(JUDGED))
        source = cell.source
        if judged:  # the kernel runs the static checks only; the rest runs here (:mod:`.judge`)
            cell.source = static_part(source, self._used_after[cell_index])
        self._request = {"role": role, "cell": cell.get("id", ""), "code": cell.source}
        try:
            result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            ran, cell.source = cell.source, source
        if role == TEST and ran.strip() and cell_index not in self._receipts:
            message = f"{NO_RECEIPT}; it scores zero"
            cell.outputs.append(new_output("error", ename="GradingRefused", evalue=message,
                                           traceback=[f"GradingRefused: {message}"]))
        if judged and not any(out.get("output_type") == "error" for out in cell.outputs):
            if self._run_judged(cell) == "TimeoutError":
                await self.km.interrupt_kernel()  # the answer still runs: the next cells need the kernel
            await self._drop_call_messages()
        return result

    async def _drop_call_messages(self) -> None:
        """Empty nbclient's queue of what the kernel published for the judge's calls (it was not read while
        they ran): a full queue drops messages, and the next cell's would be lost."""
        while True:
            try:
                await self.kc.iopub_channel.get_msg(timeout=0)
            except queue.Empty:
                return

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own coroutine here

    def _run_judged(self, cell) -> str | None:
        """The grader's own run of a judged test cell (:mod:`.judge`); the name of its error, if any."""
        judge = self._judge
        if judge.link is None:
            judge.link = KernelLink(self.km.get_connection_info(session=False), self._key.encode(),
                                    float(self.timeout or 600))
        printed, error = judge.run(str(cell.get("id", "")), cell.source)
        if printed:
            cell.outputs.append(new_output("stream", name="stdout", text=printed[:4000]))
        if error is not None:
            cell.outputs.append(new_output("error", ename=error["ename"], evalue=error["evalue"],
                                           traceback=error["traceback"]))
            return error["ename"]
        return None

    def _execute(self, code, silent=False, store_history=True, user_expressions=None, allow_stdin=None,
                 stop_on_error=True):
        content = {"code": code, "silent": silent, "store_history": store_history,
                   "user_expressions": user_expressions or {}, "allow_stdin": bool(allow_stdin),
                   "stop_on_error": stop_on_error}
        meta = {"role": self._request["role"], "cell": self._request["cell"]}
        if not self._key_sent:  # the key goes out once; every request is then signed with it
            meta["key"], meta["imports"], self._key_sent = self._key, self._test_imports, True
        msg = self.kc.session.msg("execute_request", content, metadata={META: meta})
        meta["mac"] = request_mac(self._key.encode(), msg["header"]["msg_id"], meta["role"], meta["cell"])
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def clear_output(self, outs, msg, cell_index):
        """A test's outputs are never cleared (a hook calling ``clear_output`` would remove its error)."""
        if self._request.get("role") == TEST:
            return
        super().clear_output(outs, msg, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Comms are ignored: an Output widget opened by the kernel would take a test's error out of its cell."""
        return None

    def output(self, outs, msg, display_id, cell_index):
        data = msg.get("content", {}).get("data") if msg.get("msg_type") == "display_data" else None
        if isinstance(data, dict) and isinstance(data.get(MIME), dict) and "receipt" in data[MIME]:
            request = self._request
            expected = receipt(self._key.encode(), str(request.get("cell", "")), request.get("code", ""))
            if hmac.compare_digest(str(data[MIME]["receipt"]), expected):
                self._receipts.add(cell_index)
            return None  # receipts never reach the notebook
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or not outs or outs[-1] is not out:
            return out
        size = output_size(out)
        if out.get("output_type") == "error":
            out["traceback"] = [line[:2000] for line in out.get("traceback", [])[-50:]]
            out["evalue"] = str(out.get("evalue", ""))[:2000]
            return out
        kept = self._kept.get(cell_index, 0)
        if kept + size > self.cell_output_bytes or self._total + size > self.notebook_output_bytes:
            outs.pop()
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                limit = min(self.cell_output_bytes, self.notebook_output_bytes)
                outs.append(new_output("stream", name="stdout", text=NOTE.format(limit=limit)))
            return None
        self._kept[cell_index] = kept + size
        self._total += size
        return out
