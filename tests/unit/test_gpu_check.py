"""benchmarks/gpu_check.py (issue 15's GPU check) runs on a CPU and reports every section.

One ``--quick --profile smoke`` run on lesson 05's notebook, the fastest in smoke: the JSON
has every section, the notebook ran, and nothing a bare GPU machine lacks (TensorFlow,
Jupyter, nbclient, nbformat, IPython) was imported, neither by the script nor by the
notebook. No timing is asserted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.gpu_check import ipython_free_source, run_notebook
from tests.harness import ROOT

pytestmark = pytest.mark.notebooks  # it executes a lesson notebook from top to bottom

SECTIONS = ("device", "lesson01_epoch", "lstm", "float32_exact", "notebooks")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--quick", "--profile", "smoke", "--lessons", "05_lstm",
         "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"gpu_check failed:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    return done.stdout, json.loads(out.read_text(encoding="utf-8"))


def test_every_section_is_reported_and_passes(report):
    stdout, document = report
    for section in SECTIONS:
        assert document[section]["status"] in ("pass", "cpu"), (section, document[section])
        assert document[section]["message"] in stdout
    assert document["failures"] == []
    assert {row["batch"] for row in document["lesson01_epoch"]["rows"]} == {32, 256}
    assert document["lesson01_epoch"]["rows"][0]["plain"]["epoch_s"] > 0
    assert document["lstm"]["outputs_rel_error"] <= 1e-5
    assert set(document["float32_exact"]["outside_tf32"]) == {"conv2d", "matmul"}


def test_the_notebook_ran_in_the_smoke_profile(report):
    _, document = report
    notebooks = document["notebooks"]
    assert notebooks["profile"] == "smoke" and notebooks["skipped"] == []
    (run,) = notebooks["runs"]
    assert run["lesson"] == "05_lstm" and run["ok"], run.get("traceback") or run["output_tail"]
    assert not run["timed_out"] and run["code_cells"] > 10


def test_nothing_a_bare_gpu_machine_lacks_is_imported(report):
    _, document = report
    assert document["absent_packages_imported"] == []
    assert document["notebooks"]["runs"][0]["absent_packages_imported"] == []


def test_ipython_syntax_is_stripped():
    source = "%%time\nx = 1\n%matplotlib inline\nif x:\n    !ls\n%time y = x + 1\nz = 3"
    cleaned, changed = ipython_free_source(source)
    assert cleaned == "x = 1\npass\nif x:\n    pass\ny = x + 1\nz = 3"
    assert changed == 4
    compile(cleaned, "cell", "exec")


def notebook(tmp_path, *sources):
    path = tmp_path / "nb.ipynb"
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]}]
    cells += [{"cell_type": "code", "metadata": {}, "source": [s], "outputs": [], "execution_count": None} for s in sources]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_a_failing_cell_is_reported_with_its_index(tmp_path):
    path = notebook(tmp_path, "import os\nx = os.environ['COURSE_PROFILE']", "assert __name__ == '__main__'",
                    "raise ValueError(x)", "never = True")
    run = run_notebook(path, "smoke", timeout_s=60)
    assert not run["ok"] and not run["timed_out"]
    assert run["failed_cell"] == 3 and run["exception"] == "ValueError: smoke"
    assert run["code_cells"] == 3


def test_a_notebook_past_its_time_limit_is_stopped(tmp_path):
    run = run_notebook(notebook(tmp_path, "import time\ntime.sleep(60)"), "smoke", timeout_s=2)
    assert run["timed_out"] and not run["ok"] and run["wall_s"] < 30
    assert "timed out" in run["exception"]
