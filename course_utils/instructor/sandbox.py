"""A throw-away course for one student's lesson, and what its nbgrader and kernel see.

The sandbox holds only nbgrader's configuration (the course's, read once by the grader before
any kernel starts), a gradebook made from the lesson's source (for the checksums and the
hidden tests: :func:`make_template`) and this one student's checked notebooks. No
``solutions/``, no class gradebook, no other submission. Its kernel starts through
:mod:`.isolation`, which hides the sandbox itself, the course, the checkout and the grader's
home from it (:func:`hidden_paths`); its environment is reduced to a few variables
(:func:`sandbox_env`), the lessons' data location among them (:func:`data_locations`).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from course_utils.instructor.isolation import SYSTEM_PRIVATE, Limits, kernel_spec
from course_utils.instructor.runner import run_nbgrader, venv_path

PACKAGE = Path(__file__).resolve().parents[1]  # course_utils/
REPO = PACKAGE.parent  # the clone, where course_utils is an editable install (or site-packages)
SANDBOX_CONFIG = """
# --- grading sandbox (course_utils.instructor.sandbox) ---
c.CourseDirectory.root = '.'
c.CourseDirectory.db_url = {db_url!r}
c.Execute.timeout = {cell_timeout}
c.Execute.kernel_name = 'python3'
# the kernel has no network: zmq over unix sockets, beside the connection file
c.KernelManager.transport = 'ipc'
c.KernelManager.ip = {ipc!r}
# outputs kept per cell and per notebook (course_utils.instructor.execute)
c.Autograde.autograde_preprocessors = [
    'course_utils.instructor.execute.BoundedExecute', 'nbgrader.preprocessors.IgnorePattern',
    'nbconvert.preprocessors.ClearMetadataPreprocessor', 'nbgrader.preprocessors.LimitOutput',
    'nbgrader.preprocessors.SaveAutoGrades', 'nbgrader.preprocessors.AssignLatePenalties',
    'nbgrader.preprocessors.CheckCellMetadata']
c.BoundedExecute.cell_output_bytes = {cell_output}
c.BoundedExecute.notebook_output_bytes = {notebook_output}
"""


def is_checkout(folder: Path) -> bool:
    """A source checkout (editable install), not an installed package's site-packages."""
    return (folder / "pyproject.toml").exists() and folder.name not in ("site-packages", "dist-packages")


def hidden_paths(course: Path, base: Path) -> tuple[list[str], list[str]]:
    """What the kernel must not see (the course, the checkout, the grader's home, the grading folder)
    and what is mounted back read-only inside them (the environment and the package)."""
    hide = [course, base]
    if is_checkout(REPO):
        hide.append(REPO)
    home = Path.home()
    if home != Path("/") and home.is_dir():
        hide.append(home)
    hide = [p.resolve() for p in hide]
    private = [p.resolve() for p in (course, base, *([REPO] if is_checkout(REPO) else []))]
    back, covered = [], [*hide, *(Path(p) for p in SYSTEM_PRIVATE)]
    # the interpreter, the package, and every folder on sys.path (site-packages a .pth file points
    # to, e.g. a venv that borrows another's packages; a venv under /var or /home, as on the hub)
    # - never one that holds a private folder
    for needed in (Path(sys.prefix), Path(sys.base_prefix), PACKAGE, *(Path(p) for p in sys.path if p)):
        if not needed.is_dir():
            continue
        needed = needed.resolve()
        if any(needed.is_relative_to(h) for h in covered) and not any(p.is_relative_to(needed) for p in private):
            back.append(needed)
    return sorted({str(p) for p in hide}), sorted({str(p) for p in back})


def course_config(course: Path) -> str:
    """The course's nbgrader_config.py, read once before any kernel starts."""
    path = course / "nbgrader_config.py"
    return path.read_text(encoding="utf-8") if path.exists() else "c = get_config()  # noqa: F821\n"


def make_template(course: Path, lesson: str, base: Path, source_dir: str, config: str) -> Path:
    """A gradebook holding only ``lesson``'s assignment, made by ``nbgrader generate_assignment``
    from the source (it keeps the hidden tests and checksums, not the solutions). The release
    it writes beside it (``template-LESSON/<release>/LESSON``) is what the pre-check compares with."""
    work = base / f"template-{lesson}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(course / source_dir / lesson, work / source_dir / lesson)
    (work / "nbgrader_config.py").write_text(config + f"\nc.CourseDirectory.db_url = 'sqlite:///{work / 'gradebook.db'}'\n")
    code, log = run_nbgrader(work, ["generate_assignment", lesson, "--force", "--log-level=WARN"], timeout=600)
    if code != 0:
        raise RuntimeError(f"generate_assignment {lesson} failed:\n{log[-3000:]}")
    return work / "gradebook.db"


def build_sandbox(base: Path, course: Path, lesson: str, student: str, notebooks: dict, template_db: Path,
                  limits: Limits, read_only: list[str] = (), *, config: str, isolation: str = "limits") -> Path:
    """A course folder for one student's lesson: config, gradebook from the source, the checked notebooks."""
    import nbformat

    sandbox = Path(tempfile.mkdtemp(prefix=f"{lesson}--{student}-"[:60], dir=base))
    target = sandbox / "submitted" / student / lesson
    target.mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, str(target / f"{name}.ipynb"))
    timestamp = course / "submitted" / student / lesson / "timestamp.txt"
    if timestamp.exists():
        shutil.copy(timestamp, target / "timestamp.txt")
    shutil.copy(template_db, sandbox / "gradebook.db")
    # a short path (unix socket names: 107 bytes), the kernel's sockets and a copy of its connection file only
    runtime = Path(tempfile.mkdtemp(prefix="k", dir=base))
    (sandbox / "runtime").symlink_to(runtime)
    config += SANDBOX_CONFIG.format(ipc=str(runtime / "k"), db_url=f"sqlite:///{sandbox / 'gradebook.db'}",
                                    cell_timeout=limits.cell_timeout,
                                    cell_output=limits.cell_output_kb << 10, notebook_output=limits.output_kb << 10)
    (sandbox / "nbgrader_config.py").write_text(config, encoding="utf-8")
    for sub in ("jupyter/kernels/python3", "home", "data", "tmp"):
        (sandbox / sub).mkdir(parents=True, exist_ok=True)
    hide, back = hidden_paths(course, base)
    spec = kernel_spec(sandbox, limits, hide, [*read_only, *back], isolation, runtime)
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
            "JUPYTER_PATH": str(sandbox / "jupyter"), "JUPYTER_RUNTIME_DIR": str(sandbox / "tmp"), "TMPDIR": str(sandbox / "tmp"),
            "JUPYTER_DATA_DIR": str(sandbox / "data"), "JUPYTER_CONFIG_DIR": str(sandbox / "home" / ".jupyter"),
            "IPYTHONDIR": str(sandbox / "home" / ".ipython"), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(sandbox / "home"),
            "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
            "COURSE_GRADING_ISOLATION": isolation}
