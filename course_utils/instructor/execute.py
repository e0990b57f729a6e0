"""nbgrader's ``Execute`` with the outputs it keeps bounded, in bytes, per cell and per notebook.

nbgrader's ``LimitOutput`` counts lines after the run, so a 50 MB single-line print is kept
whole (and everything a kernel prints is held in the grader's memory first). Here each output
is measured as it arrives (nbclient's ``output``): once a cell has kept
``cell_output_bytes`` or the notebook ``notebook_output_bytes``, the rest of that cell's
outputs are dropped and one note says so. Errors are always kept (shortened), so a failing
test still fails.
"""
from __future__ import annotations

import json

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

NOTE = "[output truncated by the grader: more than {limit} bytes]\n"


def output_size(out) -> int:
    if out.get("output_type") == "stream":
        return len(str(out.get("text", "")).encode("utf-8", "replace"))
    return len(json.dumps(out.get("data", {}), default=str)) + len(json.dumps(out.get("traceback", []), default=str))


class BoundedExecute(Execute):
    """``Execute`` keeping at most ``cell_output_bytes`` of outputs per cell, ``notebook_output_bytes`` per notebook."""

    cell_output_bytes = Integer(1 << 20, help="outputs kept per cell, in bytes").tag(config=True)
    notebook_output_bytes = Integer(8 << 20, help="outputs kept per notebook, in bytes").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._kept: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._total = 0
        return super().preprocess(nb, resources, km)

    def output(self, outs, msg, display_id, cell_index):
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
