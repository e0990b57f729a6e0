"""A throw-away course for one student's lesson, and what its nbgrader and kernel see.

The sandbox holds only nbgrader's configuration, a gradebook made from the lesson's source
(for the checksums and the hidden tests: :func:`make_template`) and this one student's
checked notebooks. No ``solutions/``, no class gradebook, no other submission. Its kernel
starts through :mod:`.isolation`; its environment is reduced to a few variables
(:func:`sandbox_env`), the lessons' data location among them (:func:`data_locations`).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from course_utils.instructor.isolation import Limits, kernel_spec, private_paths
from course_utils.instructor.runner import run_nbgrader, venv_path

REPO = Path(__file__).resolve().parents[2]  # the clone, where course_utils is an editable install


def make_template(course: Path, lesson: str, base: Path, source_dir: str) -> Path:
    """A gradebook holding only ``lesson``'s assignment, made by ``nbgrader generate_assignment``
    from the source (it keeps the hidden tests and checksums, not the solutions)."""
    work = base / f"template-{lesson}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(course / source_dir / lesson, work / source_dir / lesson)
    config = (course / "nbgrader_config.py").read_text(encoding="utf-8")
    (work / "nbgrader_config.py").write_text(config + f"\nc.CourseDirectory.db_url = 'sqlite:///{work / 'gradebook.db'}'\n")
    code, log = run_nbgrader(work, ["generate_assignment", lesson, "--force", "--log-level=WARN"], timeout=600)
    if code != 0:
        raise RuntimeError(f"generate_assignment {lesson} failed:\n{log[-3000:]}")
    return work / "gradebook.db"


def build_sandbox(base: Path, course: Path, lesson: str, student: str, notebooks: dict, template_db: Path,
                  limits: Limits, read_only: list[str] = ()) -> Path:
    """A course folder for one student's lesson: config, gradebook from the source, the checked notebooks."""
    import nbformat

    sandbox = base / f"{lesson}--{student}"
    shutil.rmtree(sandbox, ignore_errors=True)
    target = sandbox / "submitted" / student / lesson
    target.mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, str(target / f"{name}.ipynb"))
    timestamp = course / "submitted" / student / lesson / "timestamp.txt"
    if timestamp.exists():
        shutil.copy(timestamp, target / "timestamp.txt")
    shutil.copy(template_db, sandbox / "gradebook.db")
    config = (course / "nbgrader_config.py").read_text(encoding="utf-8") if (course / "nbgrader_config.py").exists() else \
        "c = get_config()  # noqa: F821\n"
    config += (
        "\n# --- grading sandbox (course_utils.instructor.sandbox) ---\n"
        "c.CourseDirectory.root = '.'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{sandbox / 'gradebook.db'}'\n"
        f"c.Execute.timeout = {limits.cell_timeout}\n"
        "c.Execute.kernel_name = 'python3'\n"
    )
    (sandbox / "nbgrader_config.py").write_text(config, encoding="utf-8")
    for sub in ("jupyter/kernels/python3", "runtime", "home", "data"):
        (sandbox / sub).mkdir(parents=True, exist_ok=True)
    hide = private_paths(course, REPO) + [str(sandbox / "gradebook.db"), str(sandbox / "gradebook.db-journal")]
    spec = kernel_spec(sandbox, limits, hide, read_only)
    (sandbox / "jupyter/kernels/python3/kernel.json").write_text(json.dumps(spec, indent=1))
    return sandbox


def data_locations(course: Path) -> dict[str, str]:
    """The lessons' data for the kernel: ``COURSE_DATA_DIR`` (as set for the grader, else the course's
    ``datasets/``, else the one beside an editable install) and ``COURSE_WEIGHTS_DIR`` if set.

    The sandbox's environment must name them: an installed (not editable) ``course_utils`` has
    no ``datasets/`` beside it.
    """
    found = {}
    if os.environ.get("COURSE_DATA_DIR"):
        data = Path(os.environ["COURSE_DATA_DIR"])
    else:
        data = next((p for p in (course / "datasets", REPO / "datasets") if p.is_dir()), None)
    if data is not None:
        found["COURSE_DATA_DIR"] = str(data.resolve())
    if os.environ.get("COURSE_WEIGHTS_DIR"):
        found["COURSE_WEIGHTS_DIR"] = str(Path(os.environ["COURSE_WEIGHTS_DIR"]).resolve())
    return found


def sandbox_env(sandbox: Path, isolation: str, data: dict[str, str] | None = None) -> dict[str, str]:
    """The environment nbgrader and the kernel see: no course paths but the data's, no credentials."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TERM")}
    return {**keep, **(data or {}), "PATH": venv_path("/usr/local/bin:/usr/bin:/bin"), "HOME": str(sandbox / "home"),
            "JUPYTER_PATH": str(sandbox / "jupyter"), "JUPYTER_RUNTIME_DIR": str(sandbox / "runtime"),
            "JUPYTER_DATA_DIR": str(sandbox / "data"), "JUPYTER_CONFIG_DIR": str(sandbox / "home" / ".jupyter"),
            "IPYTHONDIR": str(sandbox / "home" / ".ipython"), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(sandbox / "home"),
            "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
            "COURSE_GRADING_ISOLATION": isolation}
