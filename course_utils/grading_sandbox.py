"""Autograde a class one submission at a time, each in a throw-away course copy.

nbgrader's own ``autograde`` does the grading; this module only decides what it sees:

* **pre-check** (:func:`precheck`): every submitted file is read before nbgrader sees it.
  Empty files, non-JSON, non-notebooks are left out (the notebook scores zero, the reason
  is recorded); older nbformat versions are converted; duplicate or missing cell ids are
  renumbered (nbgrader can abort a whole run on them, issues #1083/#1941); a notebook
  under a wrong file name is renamed when its nbgrader cells say which notebook it is;
  extra notebooks are left out; suspicious answer code is flagged for review.
* **sandbox** (:func:`build_sandbox`): a fresh course folder holding only nbgrader's
  configuration, a gradebook made from the lesson's source (for the checksums and the
  hidden tests), and this one student's checked notebooks. No ``solutions/``, no class
  gradebook, no other submission.
* **kernel limits** (:func:`kernel_main`): the notebook kernel starts through a kernel spec
  that sets resource limits (address space, CPU time, file size, no core dumps), kills
  itself with its grader, and, when run as root where ``unshare`` works, gets its own
  mount and PID namespaces in which the class's files (solutions, sources, gradebooks,
  submissions, other sandboxes, tests, .git) are covered by empty folders.
* **one process per submission** forked from the grading process, at most ``workers`` at
  a time, with a wall-clock limit; only the parent writes the class gradebook, one
  submission after another (:func:`merge_into_gradebook`), so a crash or a timeout loses
  nothing already graded.

Results land in the class gradebook (nbgrader's API), ``autograded/<student>/<lesson>/``
(for feedback) and ``grading_report.json`` (status, reason, notes, flags, seconds and a
fingerprint per submission: grading again skips unchanged submissions).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = "grading_report.json"
# Folders and files of a course that a student's kernel must not see.
PRIVATE = ["solutions", "source", "lessons", "submitted", "autograded", "feedback", "feedback_full",
           "downloaded", "tests", ".git", "gradebook.db", "gradebook.db-journal", REPORT]


@dataclass
class Limits:
    cell_timeout: int = 120      # s per cell (nbgrader's Execute.timeout)
    task_timeout: int = 900      # s for one student's lesson, all notebooks
    memory_mb: int = 8192        # address space of the kernel
    cpu_s: int = 1800            # CPU seconds of the kernel
    file_mb: int = 256           # largest file the kernel may write


@dataclass
class Outcome:
    status: str                  # graded | failed | zero | skipped
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""
    isolation: str = ""


# --------------------------------------------------------------------------- pre-check

SUSPICIOUS_IMPORTS = {"subprocess", "ctypes", "socket", "shutil", "sqlite3", "signal", "gc", "inspect",
                      "importlib", "builtins", "pickle", "multiprocessing", "pty"}
SUSPICIOUS_CALLS = {"open", "eval", "exec", "compile", "__import__", "setattr", "delattr", "globals", "getattr"}
SUSPICIOUS_OS = {"system", "popen", "remove", "unlink", "rmdir", "rename", "replace", "kill", "killpg", "_exit",
                 "listdir", "scandir", "walk", "chdir", "fork", "execv", "execvp", "spawnv"}
SUSPICIOUS_WORDS = ("solutions", "gradebook", "submitted", "autograded", "hidden tests", "source/")
SHADOWED_BUILTINS = {"abs", "all", "any", "float", "int", "isinstance", "len", "max", "min", "print", "range",
                     "round", "sorted", "str", "sum", "type", "AssertionError", "Exception", "assert_"}


def suspicious(source: str) -> list[str]:
    """Why a piece of answer code deserves a human look (monkey-patching, file access...)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    modules = {"__builtins__", "builtins"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                modules.add((alias.asname or alias.name).split(".")[0])
    found = []

    def root_name(expr):
        while isinstance(expr, ast.Attribute | ast.Subscript):
            expr = expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"imports {n}" for n in names if n.split(".")[0] in SUSPICIOUS_IMPORTS]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                name = root_name(target)
                if isinstance(target, ast.Attribute | ast.Subscript) and name in modules:
                    found.append(f"changes {ast.unparse(target)} (a module's attribute)")
                elif isinstance(target, ast.Name) and target.id in SHADOWED_BUILTINS:
                    found.append(f"redefines the built-in {target.id}")
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in SHADOWED_BUILTINS:
            found.append(f"redefines the built-in {node.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in SUSPICIOUS_CALLS:
                found.append(f"calls {func.id}()")
            elif isinstance(func, ast.Attribute) and root_name(func) == "os" and func.attr in SUSPICIOUS_OS:
                found.append(f"calls os.{func.attr}()")
            elif isinstance(func, ast.Attribute) and func.attr in {"read_text", "read_bytes", "write_text", "write_bytes"}:
                found.append(f"calls .{func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"mentions {word!r}" for word in SUSPICIOUS_WORDS if word in node.value.lower()]
    return sorted(set(found))


def grade_ids(nb) -> set[str]:
    return {c.metadata.nbgrader["grade_id"] for c in nb.cells
            if "grade_id" in c.get("metadata", {}).get("nbgrader", {})}


def read_notebook(path: Path):
    """(notebook as nbformat 4, notes) or (None, notes with the reason it is unusable)."""
    import nbformat

    data = path.read_bytes()
    if not data.strip():
        return None, [f"{path.name}: empty file"]
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"{path.name}: not a notebook (not JSON: {error})"]
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, [f"{path.name}: not a notebook (JSON without 'nbformat')"]
    notes = []
    try:
        version = int(raw["nbformat"])
        nb = nbformat.reads(json.dumps(raw), as_version=4, capture_validation_error={})
    except Exception as error:  # nbformat raises many kinds for broken documents
        return None, [f"{path.name}: not a readable notebook ({type(error).__name__}: {error})"]
    if version != 4:
        notes.append(f"{path.name}: converted from nbformat {version} to 4")
    seen, renumbered = set(), 0
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for cell in nb.cells:
        if not cell.get("id") or cell.id in seen or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", str(cell.id)):
            cell.id = uuid.uuid4().hex[:12]
            renumbered += 1
        seen.add(cell.id)
    if renumbered:
        notes.append(f"{path.name}: {renumbered} missing or duplicate cell id(s) renumbered")
    counts: dict[str, int] = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            counts[gid] = counts.get(gid, 0) + 1
    for gid, n in sorted(counts.items()):
        if n > 1:  # keep nbgrader's metadata on the last copy only (nbgrader's own DeduplicateIds crashes here)
            copies = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
            for cell in copies[:-1]:
                del cell.metadata["nbgrader"]
            notes.append(f"{path.name}: cell {gid!r} appears {n} times (all run, the last one is graded)")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return None, notes + [f"{path.name}: invalid notebook ({error.message})"]
    return nb, notes


def precheck(folder: Path, expected: dict[str, set[str]]):
    """Check one student's submitted lesson folder.

    ``expected`` maps each notebook name of the lesson (without ``.ipynb``) to its nbgrader
    grade ids. Returns ``(notebooks, notes, flags)``: the usable notebooks by expected name,
    what was changed or left out, and suspicious answer code for review.
    """
    notebooks, notes, flags, strays = {}, [], [], []
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    for path in files:
        if path.name == "timestamp.txt":  # nbgrader's own
            continue
        if "ipynb" not in path.name:  # lesson_a.ipynb.txt and the like are still read
            notes.append(f"{path.name}: not a notebook, left out")
            continue
        nb, why = read_notebook(path)
        notes += why
        if nb is None:
            continue
        stem = path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.stem
        if stem in expected and stem not in notebooks:
            notebooks[stem] = nb
        else:
            strays.append((path.name, nb))
    for name, nb in strays:
        ids = grade_ids(nb)
        match = max(expected, key=lambda n: len(expected[n] & ids), default=None)
        if match and match not in notebooks and expected[match] & ids:
            notebooks[match] = nb
            notes.append(f"{name}: graded as {match}.ipynb (wrong file name)")
        else:
            notes.append(f"{name}: extra notebook, left out")
    notes += [f"{name}.ipynb: missing, scores zero" for name in sorted(set(expected) - set(notebooks))]
    for name, nb in notebooks.items():
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and not meta.get("locked"):
                flags += [f"{name}.ipynb: {why}" for why in suspicious(cell.source)]
    return notebooks, notes, sorted(set(flags))


def fingerprint(*folders: Path) -> str:
    """A hash of the files in ``folders`` (a submission and the lesson's source): unchanged means graded already."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the kernel

def namespaces_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return probe.returncode == 0


MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def isolation_mode() -> str:
    """``namespace`` (root, unshare works) or ``limits``; COURSE_GRADING_ISOLATION=limits forces the latter."""
    if os.environ.get("COURSE_GRADING_ISOLATION") == "limits":
        return "limits"
    return "namespace" if namespaces_available() else "limits"


def _mount(source: str, target: str, fstype: str | None = None, flags: int = 0, options: str | None = None) -> None:
    """mount(2) itself: mount(8) would canonicalise /proc/self/fd/N into a covered path."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                  options.encode() if options else None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target} failed")


def _hide(paths: list[str], keep: str) -> None:
    """In a private mount namespace: cover ``paths`` with empty read-only folders (files with
    /dev/null), and the folder holding ``keep`` with an empty one in which ``keep`` alone is
    mounted again at the same path."""
    keep_path = Path(keep)
    fd = os.open(keep_path, os.O_RDONLY | os.O_DIRECTORY)
    cwd = os.getcwd()
    _mount("tmpfs", str(keep_path.parent), "tmpfs", 0, "size=1m,mode=755")
    keep_path.mkdir()
    _mount(f"/proc/self/fd/{fd}", str(keep_path), None, MS_BIND)
    os.close(fd)
    empty = keep_path.parent / ".empty"
    empty.touch(mode=0o444)
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=4k,mode=555")
        elif os.path.isfile(path):  # an empty read-only file in its place
            _mount(str(empty), path, None, MS_BIND)
            _mount(str(empty), path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    empty.unlink()  # the mounts keep it
    os.chdir(cwd)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def kernel_main(argv: list[str]) -> int:
    """``python -m course_utils.grading_sandbox kernel [options] -- KERNEL ARGV``: the kernel spec's command."""
    import argparse
    import resource

    parser = argparse.ArgumentParser(prog="grading_sandbox kernel")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-s", type=int, default=0)
    parser.add_argument("--file-mb", type=int, default=0)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--keep", default="")
    parser.add_argument("--in-namespace", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.in_namespace:
        _die_with_parent()
        if args.keep and os.environ.get("COURSE_GRADING_ISOLATION") == "namespace":
            again = [sys.executable, "-m", "course_utils.grading_sandbox", "kernel", *argv]
            again.insert(again.index("--") if "--" in again else len(again), "--in-namespace")
            os.execvp("unshare", ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
                                  "--propagation", "private", *again])
    else:
        _hide(args.hide, args.keep)
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb << 20), (resource.RLIMIT_CPU, args.cpu_s),
                         (resource.RLIMIT_FSIZE, args.file_mb << 20)):
        if value > 0:
            resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execvp(command[0], command)
    return 1  # not reached


# --------------------------------------------------------------------------- the sandbox

def kernel_spec(sandbox: Path, limits: Limits, hide: list[str]) -> dict:
    wrapper = [sys.executable, "-m", "course_utils.grading_sandbox", "kernel", f"--memory-mb={limits.memory_mb}",
               f"--cpu-s={limits.cpu_s}", f"--file-mb={limits.file_mb}", f"--keep={sandbox}"]
    wrapper += [f"--hide={path}" for path in hide]
    return {"argv": [*wrapper, "--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (grading sandbox)", "language": "python", "metadata": {"debugger": False}}


def private_paths(*roots: Path) -> list[str]:
    return sorted({str(root / name) for root in roots for name in PRIVATE if (root / name).exists()})


def build_sandbox(base: Path, course: Path, lesson: str, student: str, notebooks: dict, template_db: Path,
                  limits: Limits) -> Path:
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
        "\n# --- grading sandbox (course_utils.grading_sandbox) ---\n"
        "c.CourseDirectory.root = '.'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{sandbox / 'gradebook.db'}'\n"
        f"c.Execute.timeout = {limits.cell_timeout}\n"
        "c.Execute.kernel_name = 'python3'\n"
    )
    (sandbox / "nbgrader_config.py").write_text(config, encoding="utf-8")
    for sub in ("jupyter/kernels/python3", "runtime", "home", "data"):
        (sandbox / sub).mkdir(parents=True, exist_ok=True)
    hide = private_paths(course, REPO) + [str(sandbox / "gradebook.db"), str(sandbox / "gradebook.db-journal")]
    spec = kernel_spec(sandbox, limits, hide)
    (sandbox / "jupyter/kernels/python3/kernel.json").write_text(json.dumps(spec, indent=1))
    return sandbox


def sandbox_env(sandbox: Path, isolation: str) -> dict[str, str]:
    """The environment nbgrader and the kernel see: no course paths, no credentials."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TERM")}
    bin_dir = str(Path(sys.executable).parent)
    return {**keep, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(sandbox / "home"),
            "JUPYTER_PATH": str(sandbox / "jupyter"), "JUPYTER_RUNTIME_DIR": str(sandbox / "runtime"),
            "JUPYTER_DATA_DIR": str(sandbox / "data"), "JUPYTER_CONFIG_DIR": str(sandbox / "home" / ".jupyter"),
            "IPYTHONDIR": str(sandbox / "home" / ".ipython"), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(sandbox / "home"),
            "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
            "COURSE_GRADING_ISOLATION": isolation}


def run_nbgrader_forked(cwd: Path, argv: list[str], env: dict[str, str], log: Path) -> int:
    """Fork; in the child run the nbgrader command line ``argv`` in ``cwd`` with ``env``; return the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        from jupyter_core.application import NoStart
        from nbgrader.apps import NbGraderApp

        app = NbGraderApp.instance()
        app.initialize(argv)
        try:
            app.start()
        except NoStart:  # how jupyter applications say that the subcommand finished
            pass
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # the child must never return into the parent's code
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_nbgrader(cwd: Path, argv: list[str], timeout: float = 3600) -> tuple[int, str]:
    """Run one nbgrader command line in ``cwd`` in a forked process (nbgrader imported once); (exit code, log)."""
    import nbgrader.apps  # noqa: F401

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="nbgrader-log-") as tmp:
        log = Path(tmp) / "log"
        finished, status = wait_for(run_nbgrader_forked(cwd, argv, env, log), time.monotonic() + timeout)
        text = log.read_text(errors="replace") if log.exists() else ""
    return (os.waitstatus_to_exitcode(status) if finished else -1), text


def wait_for(pid: int, deadline: float) -> tuple[bool, int]:
    """(finished, exit status) of a forked child, killing it at ``deadline``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return True, status
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return False, -1
        time.sleep(0.05)


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


def expected_notebooks(template_db: Path, lesson: str) -> dict[str, set[str]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{template_db}") as gb:
        return {nb.name: {c.name for c in nb.grade_cells} | {c.name for c in nb.solution_cells}
                for nb in gb.find_assignment(lesson).notebooks}


# --------------------------------------------------------------------------- the class gradebook

def read_sandbox_grades(sandbox: Path, lesson: str, student: str) -> dict:
    """{notebook: {"grades": {name: (auto_score, needs_manual)}, "comments": {...}}} or {} if nbgrader recorded nothing."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{sandbox / 'gradebook.db'}") as gb:
        try:
            submission = gb.find_submission(lesson, student)
        except MissingEntry:
            return {}
        result = {}
        for nb in submission.notebooks:
            result[nb.name] = {"grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                               "comments": {c.name: c.auto_comment for c in nb.comments},
                               "timestamp": submission.timestamp}
        return result


def merge_into_gradebook(db_url: str, lesson: str, student: str, grades: dict | None, flags: list[str]) -> None:
    """Write one student's lesson into the class gradebook through nbgrader's API.

    ``grades`` None: give every grade of the lesson zero (nothing usable was submitted).
    """
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes from nbgrader's add_submission
        gb.update_or_create_student(student)
        try:
            submission = gb.find_submission(lesson, student)
        except MissingEntry:
            submission = gb.add_submission(lesson, student)
        for nb in submission.notebooks:
            got = (grades or {}).get(nb.name)
            if got and got["timestamp"] is not None:
                submission.timestamp = got["timestamp"]
            for grade in nb.grades:
                score, manual = got["grades"].get(grade.name, (0, False)) if got else (0, False)
                grade.auto_score = score if score is not None or manual else 0
                grade.needs_manual_grade = bool(manual)
            for comment in nb.comments:
                if got:
                    comment.auto_comment = got["comments"].get(comment.name)
            nb.flagged = bool(flags)
        gb.db.commit()


def released_lessons(db_url: str, lessons: list[str]) -> list[str]:
    """The lessons of ``lessons`` that the class gradebook does not know (never released)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        known = {a.name for a in gb.assignments}
    return [lesson for lesson in lessons if lesson not in known]


def ensure_student(db_url: str, student: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)


# --------------------------------------------------------------------------- the class

def load_report(course: Path) -> dict:
    path = course / REPORT
    return json.loads(path.read_text()) if path.exists() else {}


def save_report(course: Path, report: dict) -> None:
    tmp = course / f".{REPORT}.tmp"
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True))
    tmp.replace(course / REPORT)


def course_settings(course: Path) -> tuple[str, str]:
    """(db_url, source directory) as nbgrader reads them from the course's nbgrader_config.py."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config() \
        if (course / "nbgrader_config.py").exists() else None
    coursedir = CourseDirectory(config=config) if config else CourseDirectory()
    coursedir.root = str(course)
    db_url = coursedir.db_url
    return db_url, coursedir.source_directory


def grade_class(course: Path, lessons: list[str] | None = None, students: list[str] | None = None, *,
                workers: int = 2, limits: Limits | None = None, force: bool = False, db_url: str | None = None,
                keep_sandboxes: bool = False, log=print) -> dict:
    """Autograde every submission in ``course/submitted`` (or the selected ones); return the report."""
    import nbgrader.apps  # noqa: F401  (imported once here, so that every forked grader starts at once)

    course = course.resolve()
    limits = limits or Limits()
    found_db, source_dir = course_settings(course)
    db_url = db_url or found_db
    submitted = course / "submitted"
    all_lessons = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()})
    lessons = [x for x in (lessons or all_lessons) if x in all_lessons]
    isolation = isolation_mode()
    missing = released_lessons(db_url, lessons)
    if missing:
        raise SystemExit(f"not released into the gradebook ({db_url}): {', '.join(missing)}; run `release` first")
    report = load_report(course)
    base = Path(tempfile.mkdtemp(prefix="grading-"))
    os.chmod(base, 0o700)
    started, timings = time.monotonic(), []
    try:
        tasks, templates = [], {}
        for lesson in lessons:
            for folder in sorted(p for p in submitted.glob(f"*/{lesson}") if p.is_dir()):
                student = folder.parent.name
                if students and student not in students:
                    continue
                digest = fingerprint(folder, course / source_dir / lesson)
                previous = report.get(lesson, {}).get(student, {})
                if not force and previous.get("fingerprint") == digest and previous.get("status") in ("graded", "zero"):
                    log(f"{lesson} {student}: unchanged since it was graded, skipped")
                    continue
                if lesson not in templates:
                    template = make_template(course, lesson, base, source_dir)
                    templates[lesson] = template, expected_notebooks(template, lesson)
                tasks.append((lesson, student, folder, *templates[lesson], digest))
        started = time.monotonic()  # the grading itself, after the lessons' templates
        pending, running = list(tasks), {}
        while pending or running:
            while pending and len(running) < max(1, workers):
                lesson, student, folder, template, expected, digest = pending.pop(0)
                notebooks, notes, flags = precheck(folder, expected)
                outcome = Outcome("graded", notes=notes, flags=flags, fingerprint=digest, isolation=isolation)
                if not notebooks:
                    outcome.status, outcome.reason = "zero", "no usable notebook"
                    merge_into_gradebook(db_url, lesson, student, None, flags)
                    report.setdefault(lesson, {})[student] = asdict(outcome)
                    save_report(course, report)
                    log(f"{lesson} {student}: zero ({'; '.join(notes)})")
                    continue
                sandbox = build_sandbox(base, course, lesson, student, notebooks, template, limits)
                argv = ["autograde", lesson, f"--student={student}", "--force", "--log-level=INFO"]
                pid = run_nbgrader_forked(sandbox, argv, sandbox_env(sandbox, isolation), sandbox / "autograde.log")
                running[pid] = (lesson, student, sandbox, outcome, time.monotonic())
            for pid, (lesson, student, sandbox, outcome, t0) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                over = time.monotonic() - t0 > limits.task_timeout
                if not done and not over:
                    continue
                if not done:
                    _, status = wait_for(pid, 0)
                    code, outcome.reason = -1, f"grading took longer than {limits.task_timeout} s and was stopped"
                else:
                    code = os.waitstatus_to_exitcode(status)
                del running[pid]
                outcome.seconds = round(time.monotonic() - t0, 2)
                timings.append(outcome.seconds)
                finish(course, db_url, lesson, student, sandbox, outcome, code, report, log)
                if not keep_sandboxes:
                    shutil.rmtree(sandbox, ignore_errors=True)
            time.sleep(0.05)
    finally:
        if not keep_sandboxes:
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.monotonic() - started
    if timings:
        log(f"graded {len(timings)} submission(s) in {elapsed:.1f} s with {workers} worker(s): "
            f"{elapsed / len(timings):.2f} s per submission (each {sum(timings) / len(timings):.2f} s on average); "
            f"isolation: {isolation}")
    report.setdefault("_runs", []).append({"submissions": len(timings), "seconds": round(elapsed, 2), "workers": workers,
                                           "isolation": isolation})
    report["_runs"] = report["_runs"][-20:]
    save_report(course, report)
    return report


DEATH = re.compile(r"DeadKernelError|Kernel died|kernel.*(died|dead|restart)", re.IGNORECASE)


def failure_reason(log_text: str, code: int) -> str:
    if DEATH.search(log_text):
        return "the kernel died while running the notebook (a hard exit, a crash or the memory limit)"
    if "CellTimeoutError" in log_text or "Timeout waiting for" in log_text:
        return "a cell could not be interrupted after its time limit"
    lines = [line for line in log_text.splitlines() if "[ERROR]" in line or "Error" in line]
    return (lines[-1].strip() if lines else f"nbgrader exited with {code}")[:300]


def finish(course: Path, db_url: str, lesson: str, student: str, sandbox: Path, outcome: Outcome, code: int,
           report: dict, log) -> None:
    """Move one finished sandbox's result into the class: gradebook, autograded/, report."""
    log_text = (sandbox / "autograde.log").read_text(errors="replace") if (sandbox / "autograde.log").exists() else ""
    failed_notebooks = re.findall(r"There was an error processing assignment|Failed to autograde|while processing", log_text)
    grades = read_sandbox_grades(sandbox, lesson, student) if code == 0 else {}
    if code != 0 or not grades or failed_notebooks:
        outcome.status = "failed"
        outcome.reason = outcome.reason or failure_reason(log_text, code)
        ensure_student(db_url, student)  # listed in the export; earlier grades of the lesson are kept
    else:
        merge_into_gradebook(db_url, lesson, student, grades, outcome.flags)
        graded = sandbox / "autograded" / student / lesson
        target = course / "autograded" / student / lesson
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(graded, target)
        if any("CellTimeoutError" in p.read_text(errors="replace") for p in target.glob("*.ipynb")):
            outcome.notes.append("a cell ran past its time limit and was interrupted (scored as failed)")
    report.setdefault(lesson, {})[student] = asdict(outcome)
    save_report(course, report)
    extra = f": {outcome.reason}" if outcome.reason else ""
    flagged = f" [flagged: {'; '.join(outcome.flags)}]" if outcome.flags else ""
    log(f"{lesson} {student}: {outcome.status}{extra} ({outcome.seconds:.1f} s){flagged}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["kernel"]:
        sys.exit(kernel_main(sys.argv[2:]))
    sys.exit("usage: python -m course_utils.grading_sandbox kernel [--memory-mb N] ... -- KERNEL COMMAND")
