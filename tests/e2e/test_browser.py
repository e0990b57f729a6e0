"""The student's experience end to end, in a real browser: JupyterLab in headless Chromium.

For each released notebook (`notebooks/<lesson>/<name>.ipynb`) the test opens it in JupyterLab,
types the solution of every answer cell into the cell's editor (the cells nbgrader marks
`solution: true, grade: false`; their text comes from the cell with the same `grade_id` in
`solutions/`), runs Run > Run All Cells from the menu, saves, presses nbgrader's Validate button
and reads "Success" in its dialog; the saved file must then hold the solutions and no error
output, and the notebook must show its figures (image outputs on the page and in the file), as
a student sees them: the kernels use matplotlib's inline backend, not the test process's Agg.
Validate on an untouched copy of the release must report failing cells instead, and the
Formgrader must list every lesson on its Manage Assignments page.

Nothing in the repository changes: JupyterLab (COURSE_PROFILE=smoke) serves a temporary copy of
`notebooks/`, `solutions/` and `nbgrader_config.py`, with its own runtime, config and settings
folders. Playwright drives Debian's /usr/bin/chromium and never downloads a browser. Screenshots
of every step are kept in `test-artifacts/browser/<lesson>/<notebook>/NN-step.png`.

Lessons: COURSE_BROWSER_LESSONS, a comma list of folders under `solutions/`, or `all`; lesson 01
by default (what `make test` runs). Every lesson:

    make test-browser
    COURSE_BROWSER_LESSONS=all .venv/bin/python -m pytest tests/e2e/test_browser.py    # the same

Needs chromium and Playwright (`sudo make system-deps`): skipped without them, failed on CI.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import INSTALL_HINT, free_port, require, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "course-browser-test-token"
# Executing a notebook (Run All, or Validate, which re-executes it on the server) takes
# ~15 s (PyTorch) to ~35 s (TensorFlow) in the smoke profile on a small shared machine.
SLOW_MS = 240_000
UI_MS = 60_000
# What makes the UI deterministic: every cell in the DOM (no windowing), no news or update toasts.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
PANEL = "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)"
pytestmark = pytest.mark.notebooks


def lessons() -> list[str]:
    available = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
    wanted = os.environ.get("COURSE_BROWSER_LESSONS", "01_cnn").strip()
    if wanted == "all":
        return available
    chosen = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(available))
    assert not unknown, f"COURSE_BROWSER_LESSONS names no lesson folder under solutions/: {unknown}"
    return chosen


NOTEBOOKS = [(lesson, path.stem) for lesson in lessons()
             for pattern in ("*_pytorch.ipynb", "*_tensorflow.ipynb")
             for path in sorted((ROOT / "notebooks" / lesson).glob(pattern))]


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def answer_cells(release: dict) -> list[tuple[int, str]]:
    """(index in the notebook, grade_id) of each cell the student answers."""
    found = []
    for index, cell in enumerate(release["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            found.append((index, meta["grade_id"]))
    return found


def student_answer(solution_source: str) -> str:
    """What a student types: the solution without nbgrader's BEGIN/END SOLUTION marker lines."""
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return "\n".join(line for line in solution_source.split("\n") if line.strip() not in markers)


def solutions_by_id(solution: dict) -> dict[str, str]:
    return {cell["metadata"]["nbgrader"]["grade_id"]: student_answer(source(cell)) for cell in solution["cells"]
            if "grade_id" in cell.get("metadata", {}).get("nbgrader", {})}


class Lab:
    """A JupyterLab server on a temporary copy of the course."""

    def __init__(self, course: Path, base: str, log: Path, process: subprocess.Popen):
        self.course, self.base, self.log, self.process = course, base, log, process

    def url(self, path: str, *query: str) -> str:
        return f"{self.base}/{path}?{'&'.join((*query, f'token={TOKEN}'))}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def shut_down_kernels(self) -> None:
        """Frees the CPU and memory of the kernels a test started (TensorFlow's are large)."""
        with contextlib.suppress(OSError):
            for session in self.api("sessions"):
                self.api(f"sessions/{session['id']}", method="DELETE")


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    """Before the lab starts: skipped on a developer's machine without them, failed on CI."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, f"Playwright (Python) is not installed: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    course = tmp / "course"
    course.mkdir()
    for name in ("notebooks", "solutions"):
        shutil.copytree(ROOT / name, course / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy2(ROOT / "nbgrader_config.py", course)
    for lesson, name in NOTEBOOKS:  # the untouched release that Validate must reject
        shutil.copy2(course / "notebooks" / lesson / f"{name}.ipynb", course / "notebooks" / lesson / f"{name}_untouched.ipynb")
    settings = tmp / "settings"
    for relative, values in LAB_SETTINGS.items():
        (settings / relative).parent.mkdir(parents=True, exist_ok=True)
        (settings / relative).write_text(json.dumps(values))
    for folder in ("runtime", "config", "workspaces"):
        (tmp / folder).mkdir()

    port = free_port()
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", COURSE_PROFILE="smoke",
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_CONFIG_DIR=str(tmp / "config"))
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; a student's kernel draws inline
    args = [str(bindir / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={course}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = tmp / "lab.log"
    with log.open("w") as out:
        # cwd: nbgrader (Validate, the Formgrader) reads nbgrader_config.py from there
        process = subprocess.Popen(args, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(course, f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until("jupyter lab", lambda: server.api("status") is not None, 120, process=process, log=log)
    except BaseException:
        process.kill()
        raise
    yield server
    server.shut_down_kernels()
    stop_process(process)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # Debian's browser, a fresh profile each launch; Playwright's own browsers are never used
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Student:
    """One browser tab on the lab, with screenshots of each step and evidence on failure."""

    def __init__(self, page, lab: Lab, artifacts: Path):
        self.page, self.lab, self.artifacts = page, lab, artifacts

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    @contextlib.contextmanager
    def step(self, what: str):
        """Turns any error of a step into an assertion with a screenshot and the server's log."""
        try:
            yield
        except Exception as error:  # noqa: BLE001  (Playwright's timeouts and failed expectations alike)
            try:
                shot = self.shot("99-failed-" + re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")[:40])
            except Exception as shot_error:  # noqa: BLE001
                shot = f"(no screenshot: {shot_error})"
            raise AssertionError(f"{what}: {error}\nscreenshot: {shot}\n"
                                 f"--- jupyter lab log (tail) ---\n{self.lab.log_tail()}") from error

    def open_notebook(self, path: str, cells: int):
        from playwright.sync_api import expect
        # ?reset: a blank workspace, so no tab of an earlier test is restored
        self.page.goto(self.lab.url(f"lab/tree/{path}", "reset"))
        panel = self.page.locator(PANEL)
        expect(panel.locator(".jp-Notebook .jp-Cell")).to_have_count(cells, timeout=UI_MS)
        expect(panel.locator("jp-button.validate-button")).to_be_visible(timeout=UI_MS)
        # the kernel is up once the status bar reads "... | Idle"
        expect(self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))).to_be_visible(timeout=SLOW_MS)
        return panel

    def validate(self):
        """Presses Validate (it saves, then nbgrader re-executes the notebook) and returns the dialog."""
        from playwright.sync_api import expect
        self.page.locator(PANEL).locator("jp-button.validate-button").click()
        dialog = self.page.locator(".jp-Dialog")
        expect(dialog).to_be_visible(timeout=SLOW_MS)
        expect(dialog.locator(".jp-Dialog-header")).to_have_text(re.compile(r"Validation"), timeout=UI_MS)
        return dialog

    def close_dialog(self, dialog) -> None:
        from playwright.sync_api import expect
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        expect(dialog).to_have_count(0, timeout=UI_MS)


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts():
    """Screenshots of this run only, for the notebooks it tests."""
    for folder in [ARTIFACTS / lesson / name for lesson, name in NOTEBOOKS] + [ARTIFACTS / "formgrader"]:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def student(browser, lab, request):
    lesson, name = request.node.callspec.params["notebook"] if hasattr(request.node, "callspec") else ("formgrader", "")
    artifacts = ARTIFACTS / lesson / name
    artifacts.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    # Should JupyterLab ask for a kernel (it must not: the notebooks name python3), take the default.
    page.add_locator_handler(page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
                             lambda dialog: dialog.locator(".jp-Dialog-button.jp-mod-accept").click())
    yield Student(page, lab, artifacts)
    context.close()
    lab.shut_down_kernels()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[f"{lesson}/{name}" for lesson, name in NOTEBOOKS])
def test_typed_answers_run_and_validate(notebook, lab, student):
    from playwright.sync_api import expect
    lesson, name = notebook
    path = f"notebooks/{lesson}/{name}.ipynb"
    release = read_notebook(lab.course / path)
    solutions = solutions_by_id(read_notebook(lab.course / "solutions" / lesson / f"{name}.ipynb"))
    answers = answer_cells(release)
    assert answers, f"{path} has no answer cell"
    missing = [grade_id for _, grade_id in answers if grade_id not in solutions]
    assert not missing, f"answer cells of {path} without a solution cell of the same grade_id: {missing}"
    code_cells = sum(cell["cell_type"] == "code" for cell in release["cells"])
    page = student.page

    with student.step(f"opening {path}"):
        panel = student.open_notebook(path, len(release["cells"]))
        cells = panel.locator(".jp-Notebook .jp-Cell")
        student.shot("01-opened")

    with student.step("typing the answers"):
        for index, grade_id in answers:
            editor = cells.nth(index).locator(".cm-content")
            editor.scroll_into_view_if_needed()
            editor.click()
            expect(cells.nth(index)).to_contain_class("jp-mod-active")
            page.keyboard.press("Control+A")
            # one input event with the whole text: no auto-indent and no auto-closed brackets
            page.keyboard.insert_text(solutions[grade_id])
        page.keyboard.press("Escape")  # command mode
        student.shot("02-answers-typed")

    with student.step("Run > Run All Cells"):
        page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-content .lm-Menu-item:visible .lm-Menu-itemLabel",
                     has_text=re.compile(r"^Run All Cells$")).click()
        # Run All marks every code cell [*] at once; the run is over when none is left at [*]
        # (an error stops it and turns the rest back to [ ]), with at least one execution count.
        page.wait_for_function(
            """(panel) => {
                const root = document.querySelector(panel);
                if (!root) return false;
                const prompts = [...root.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent);
                return !prompts.some(p => p.includes('*')) && prompts.some(p => /\\[\\d+\\]/.test(p));
            }""", arg=PANEL, timeout=SLOW_MS, polling=500)
        student.shot("03-run-all")
        prompts = [text.strip() for text in panel.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]
        assert len(prompts) == code_cells, f"{len(prompts)} code cells on the page, {code_cells} in the file"
        not_run = [i for i, text in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", text)]
        assert not not_run, f"code cells without an execution count after Run All (code-cell positions {not_run}): {prompts}"

    with student.step("looking at the figures"):
        figures = panel.locator(".jp-OutputArea-output img")
        shown = figures.count()
        assert shown > 0, "Run All drew no figure on the page (is the kernel's matplotlib backend inline?)"
        figures.first.scroll_into_view_if_needed()
        student.shot("03b-first-figure")

    with student.step("saving with Control+S"):
        page.keyboard.press("Control+S")
        expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).not_to_contain_class("jp-mod-dirty",
                                                                                                       timeout=UI_MS)

    with student.step("Validate"):
        dialog = student.validate()
        student.shot("04-validate")
        text = dialog.inner_text()
        assert dialog.locator("#validation-message.validation-success").count() == 1 and "Success" in text, \
            f"Validate did not report success:\n{text}"
        student.close_dialog(dialog)

    saved = read_notebook(lab.course / path)
    assert len(saved["cells"]) == len(release["cells"]), "the saved notebook gained or lost cells"
    for index, grade_id in answers:
        assert source(saved["cells"][index]) == solutions[grade_id], \
            f"cell {index} ({grade_id}) of the saved notebook is not what was typed"
    errors = [(index, output.get("ename"), output.get("evalue")) for index, cell in enumerate(saved["cells"])
              for output in cell.get("outputs", []) if output["output_type"] == "error"]
    assert not errors, f"error outputs in the saved notebook: {errors}"
    images = sum("image/png" in output.get("data", {}) for cell in saved["cells"] for output in cell.get("outputs", []))
    assert images == shown, f"{shown} figures on the page but {images} image outputs in the saved notebook"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[f"{lesson}/{name}" for lesson, name in NOTEBOOKS])
def test_untouched_release_fails_validation(notebook, lab, student):
    lesson, name = notebook
    path = f"notebooks/{lesson}/{name}_untouched.ipynb"
    release = read_notebook(lab.course / path)
    with student.step(f"opening {path}"):
        student.open_notebook(path, len(release["cells"]))
    with student.step("Validate on the untouched release"):
        dialog = student.validate()
        student.shot("05-untouched-validate")
        text = dialog.inner_text()
        student.close_dialog(dialog)
    assert "Success" not in text, f"Validate passed a notebook without answers:\n{text}"
    assert "The following cell failed" in text and "NotImplementedError" in text, \
        f"Validate did not name a failing cell:\n{text}"


def test_formgrader_lists_the_lessons(lab, student):
    from playwright.sync_api import expect
    page = student.page
    expected = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
    with student.step("the Formgrader's Manage Assignments page"):
        page.goto(lab.url("formgrader/"))
        expect(page).to_have_url(re.compile(r"/formgrader/manage_assignments"), timeout=UI_MS)
        table = page.locator("table")
        for lesson in expected:
            expect(table.get_by_role("link", name=lesson, exact=True).first).to_be_visible(timeout=UI_MS)
        student.shot("06-formgrader")
    for lesson, name in NOTEBOOKS:  # the step's screenshot beside each notebook's others
        (ARTIFACTS / lesson / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(student.artifacts / "06-formgrader.png", ARTIFACTS / lesson / name / "06-formgrader.png")
