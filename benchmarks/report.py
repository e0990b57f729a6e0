"""Tables and the plot of a benchmark run, from the workers' records (no framework imported).

One table per lesson model, one row per (device, threads), seconds per epoch (the median
of the measured epochs, after a warm-up epoch) in the first columns and their ratios after.
"""
from __future__ import annotations

from .lessons import BY_KEY

# (column, framework, loop, deterministic) of the timed columns
TIMED = (
    ("course PyTorch s", "pytorch", "course", False),
    ("plain PyTorch s", "pytorch", "plain", False),
    ("Keras fit s", "tensorflow", "keras", False),
    ("course PyTorch det. s", "pytorch", "course", True),
    ("Keras fit det. s", "tensorflow", "keras", True),
)
# (column, numerator, denominator): names of timed columns
RATIOS = (
    ("PyTorch / Keras", "course PyTorch s", "Keras fit s"),
    ("plain / course", "plain PyTorch s", "course PyTorch s"),
    ("det. / default PyTorch", "course PyTorch det. s", "course PyTorch s"),
    ("det. / default Keras", "Keras fit det. s", "Keras fit s"),
)
COLUMNS = ("device", "threads", *(c[0] for c in TIMED), *(r[0] for r in RATIOS))
MISSING, FAILED = "-", "error"


def _cell(records: list[dict], lesson: str, device: str, threads: int, framework: str, loop: str, det: bool):
    """The record's median seconds, FAILED, or None when that configuration did not run."""
    for r in records:
        if (r["lesson"], r["device"], r["threads"], r["framework"], r["loop"], r["deterministic"]) == \
                (lesson, device, threads, framework, loop, det):
            return FAILED if r.get("error") else r["median_s"]
    return None


def tables(records: list[dict]) -> dict[str, dict]:
    """{lesson: {"title", "columns", "rows"}}: rows hold floats, FAILED or None."""
    out = {}
    for lesson in dict.fromkeys(r["lesson"] for r in records):
        mine = [r for r in records if r["lesson"] == lesson]
        rows = []
        for device, threads in sorted({(r["device"], r["threads"]) for r in mine}, key=lambda k: (k[0] != "cpu", k)):
            timed = {name: _cell(mine, lesson, device, threads, fw, loop, det) for name, fw, loop, det in TIMED}
            ratios = [timed[a] / timed[b] if all(isinstance(timed[k], float) for k in (a, b)) else None
                      for _, a, b in RATIOS]
            rows.append([device, threads, *timed.values(), *ratios])
        first = mine[0]
        measured = max((len(r.get("epoch_s", [])) for r in mine), default=0)
        title = (f"{lesson}: {BY_KEY[lesson].model} ({first['samples']:,} samples, batch {first['batch_size']}; "
                 f"seconds per epoch, median of {measured} after a warm-up epoch)")
        out[lesson] = {"title": title, "columns": list(COLUMNS), "rows": rows}
    return out


def _fmt(value, column: str) -> str:
    if value is None:
        return MISSING
    if isinstance(value, str) or column in ("device", "threads"):
        return str(value)
    return f"{value:.3f}" if column.endswith(" s") else f"{value:.2f}"


def markdown(table: dict) -> str:
    """A table as Markdown (readable in a terminal, pasteable into the README)."""
    cols = table["columns"]
    lines = [f"**{table['title']}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v, c) for v, c in zip(row, cols)) + " |" for row in table["rows"]]
    return "\n".join(lines)


def plot(all_tables: dict[str, dict], path) -> None:
    """Grouped bars, one panel per lesson model: seconds per epoch of each loop, per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(all_tables)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.8 * n), squeeze=False)
    names = [c[0] for c in TIMED]
    for ax, (lesson, table) in zip(axes[:, 0], all_tables.items()):
        labels = [f"{row[0]}, {row[1]} thr" for row in table["rows"]]
        x = np.arange(len(labels))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            k = table["columns"].index(name)
            heights = [row[k] if isinstance(row[k], float) else np.nan for row in table["rows"]]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, heights, width, label=name)
        ax.set_xticks(x, labels)
        ax.set_ylabel("s / epoch")
        ax.set_title(f"{lesson}: {BY_KEY[lesson].model}", fontsize=10)
    height = fig.get_figheight()
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncols=len(names), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / height))  # room for the legend above the panels
    fig.savefig(path, dpi=110)
    plt.close(fig)
