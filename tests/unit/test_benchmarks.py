"""The benchmark suite (``python -m benchmarks``) runs and reports what it promises.

One ``--quick`` run on one lesson model (tiny data, one measured epoch, its four workers
at once): the printed table and the saved JSON have every row and column, and a plot is
saved. No timing is asserted: timings depend on the machine and on what else runs.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import report
from benchmarks.lessons import resolve
from tests.harness import ROOT


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--lessons", "04", "--threads", "1", "--jobs", "4",
         "--no-cuda", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the suite failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    saved = sorted(out.glob("bench-*.json"))
    assert len(saved) == 1, f"expected one JSON file in {out}, found {[p.name for p in out.iterdir()]}"
    return done.stdout, json.loads(saved[0].read_text(encoding="utf-8")), saved[0]


def test_the_printed_table_has_every_column(quick_run):
    stdout, _, _ = quick_run
    header = "| " + " | ".join(report.COLUMNS) + " |"
    assert header in stdout
    for column in ("course PyTorch s", "plain PyTorch s", "Keras fit s", "course PyTorch det. s", "Keras fit det. s",
                   "PyTorch / Keras", "plain / course", "det. / default PyTorch", "det. / default Keras"):
        assert column in report.COLUMNS
    rows = [line for line in stdout.splitlines() if line.startswith("| cpu | 1 |")]
    assert len(rows) == 1, stdout
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == len(report.COLUMNS)
    assert report.MISSING not in cells and report.FAILED not in cells, f"a configuration did not run: {rows[0]}"


def test_the_json_holds_records_tables_and_machine_facts(quick_run):
    _, document, path = quick_run
    assert path.with_suffix(".png").stat().st_size > 0
    machine = document["machine"]
    for key in ("cpu_count", "load_average_start", "load_average_end", "versions"):
        assert key in machine
    assert {"torch", "tensorflow", "keras", "numpy"} <= set(machine["versions"])
    loops = {(r["framework"], r["loop"], r["deterministic"]) for r in document["records"]}
    assert loops == {("pytorch", "course", False), ("pytorch", "plain", False), ("tensorflow", "keras", False),
                     ("pytorch", "course", True), ("tensorflow", "keras", True)}
    for record in document["records"]:
        assert record["error"] is None
        assert record["lesson"] == "04_rnn_bptt" and record["threads"] == 1 and record["device"] == "cpu"
        assert len(record["epoch_s"]) == 1 and record["median_s"] > 0 and record["warmup_s"] > 0
    table = document["tables"]["04_rnn_bptt"]
    assert table["columns"] == list(report.COLUMNS)
    assert [row[:2] for row in table["rows"]] == [["cpu", 1]]
    assert all(isinstance(v, float) for v in table["rows"][0][2:])


def test_an_unknown_lesson_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown lesson '07'.*01_cnn"):
        resolve(["07"])
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--lessons", "04", "lstmm"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown lesson 'lstmm'" in done.stderr
