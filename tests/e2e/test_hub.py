"""The course served to a class by JupyterHub, end to end, with the files in deploy/.

As root on this machine: a throw-away PostgreSQL cluster (the hub's database and the
gradebook), four throw-away Unix accounts (grader, instructor, two students; PAM passwords),
the hub's light venv (jupyterhub, jupyterlab, nbgrader, psycopg2 at the project's pins;
cached in /var/cache/cnn-rnn-course), and JupyterHub started with deploy/jupyterhub_config.py
behind npm's configurable-http-proxy. Then what a class does, through the hub's REST API:

* the instructor generates and releases the fixture lesson ``lesson_a`` through the
  formgrader service (the grader account's server, shared by instructors);
* the roster is enrolled with ``nbgrader db student import`` as the service
  (deploy/provision.py enrol), which puts the students into the hub group nbgrader-<course>;
* two students log in with their passwords, start their servers, fetch the lesson through
  nbgrader's assignment-list API, answer (one right, one with two wrong answers) through the
  contents API and submit;
* the instructor collects and autogrades through the formgrader, which grades through the
  course's pre-check and sandbox (course_utils.instructor.formgrader): one student's attack on
  the verdicts scores nothing and is flagged; the grades are read from the PostgreSQL gradebook;
* what students cannot reach: the clone the hub runs from (solutions/, lessons/) and the
  grader's course folder, while the data the kernels read stays readable.

Everything (servers, hub, proxy, PostgreSQL, accounts and their homes, folders) is removed
in ``finally``. Needs root (it creates Unix accounts), PostgreSQL and the proxy
(``make system-deps``); the venv is created on the first run (about a minute, from PyPI).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import INSTALL_HINT, free_port, postgres_bin, postgres_cluster, require, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
import hubsettings  # noqa: E402
import kit  # noqa: E402
import provision  # noqa: E402

COURSE = "cnn-rnn-course"   # the course id of the repository's nbgrader_config.py (kit.make_course copies it)
LESSON = "lesson_a"         # square (2 points), mean (3), clip (1)


def as_user(user: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True)


def test_class_on_jupyterhub(capsys):
    if os.geteuid() != 0:
        pytest.skip("creates Unix accounts (grader, instructor, students) and runs servers as them: needs root (CI runs as root)")
    import requests

    from tests.e2e import hub_kit

    require(hubsettings.PROXY.exists() or shutil.which("configurable-http-proxy") is not None,
            f"configurable-http-proxy is not installed: {INSTALL_HINT}")
    require(postgres_bin() is not None, f"PostgreSQL is not installed: {INSTALL_HINT}")
    require(Path(provision.SYSTEM_PYTHON).exists(), f"{provision.SYSTEM_PYTHON} is missing (Debian's python3, python3-venv)")

    started = time.monotonic()
    requirements = provision.light_requirements()
    venv = provision.light_venv_path(requirements)
    created = provision.ensure_venv(venv, requirements)
    provision.install_course_package(venv)   # the formgrader grades through course_utils.instructor
    with capsys.disabled():
        print(f"\n[test_hub] hub venv {venv}: " + (f"created in {created:.0f} s" if created else "reused"))

    suffix = secrets.token_hex(3)
    grader, teacher, ann, ben = (f"hub{role}-{suffix}" for role in ("grader", "teach", "ann", "ben"))
    passwords = {user: secrets.token_urlsafe(12) for user in (teacher, ann, ben)}
    work = Path(tempfile.mkdtemp(prefix="course-hub-"))
    os.chmod(work, 0o755)   # students' servers reach the exchange inside it
    ports = {name: free_port() for name in ("public", "hub", "proxy_api", "formgrader")}
    public = f"http://127.0.0.1:{ports['public']}"
    clone_mode = hubsettings.REPO.stat().st_mode & 0o7777   # provision.setup_server makes the clone private

    with postgres_cluster(superuser="course") as pg_port:
        env = {
            "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
            "COURSE_ID": COURSE, "COURSE_GRADER": grader, "COURSE_INSTRUCTORS": teacher, "COURSE_STUDENTS": f"{ann} {ben}",
            "COURSE_VENV": str(venv), "COURSE_STATE_DIR": str(work / "state"), "COURSE_EXCHANGE": str(work / "exchange"),
            "COURSE_HUB_DB_URL": f"postgresql+psycopg2://root@127.0.0.1:{pg_port}/jupyterhub",
            "COURSE_GRADEBOOK_URL": f"postgresql+psycopg2://{grader}@127.0.0.1:{pg_port}/gradebook",
            "COURSE_HUB_BIND_URL": public, "COURSE_HUB_API_URL": f"http://127.0.0.1:{ports['hub']}",
            "COURSE_PROXY_API_URL": f"http://127.0.0.1:{ports['proxy_api']}", "COURSE_FORMGRADER_PORT": str(ports["formgrader"]),
        }
        s = hubsettings.load(env)
        hub = hub_kit.Hub(venv, env, s.state_dir, public)
        tokens: dict[str, str] = {}
        try:
            # --- the server, as deploy/provision.py prepares it ---
            psql = [str(postgres_bin() / "psql"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "course"]
            provision.create_databases(s, psql, hub_role="root")
            for user, password in passwords.items():
                provision.ensure_user(user, password)
            readable_before = as_user(ann, "ls", str(hubsettings.REPO / "solutions")).returncode == 0
            assert readable_before or not clone_mode & 0o005, "the control: a world-readable clone is readable"
            provision.setup_server(s)   # venv configs, data, exchange, state folder and token, grader account; private clone
            kit.make_course(s.course_root, lessons=(LESSON,))
            provision.chown_tree(s.course_root, grader)
            assert (venv / "etc" / "jupyter" / "nbgrader_config.py").read_text() == \
                (hubsettings.DEPLOY / "nbgrader_config_global.py").read_text()

            hub.start()
            wait_until("the hub", lambda: requests.get(f"{public}/hub/health", timeout=5).ok, 120, log=hub.log)
            formgrader_api = f"http://127.0.0.1:{ports['formgrader']}/services/{COURSE}/api"
            wait_until("the formgrader service", lambda: requests.get(formgrader_api, timeout=5).ok, 120, log=hub.log)
            assert hub.alive(), hub.tail()
            setup_done = time.monotonic()

            for user, password in passwords.items():
                tokens[user] = hub.login(user, password)

            # --- the instructor generates and releases the lesson through the formgrader ---
            fg = f"/services/{COURSE}/formgrader/api"
            for action in ("assign", "release"):
                response = hub.post(f"{fg}/assignment/{LESSON}/{action}", tokens[teacher])
                assert response.ok and response.json()["success"], f"{action}: {response.status_code} {response.text[:3000]}"
            assert (s.exchange / COURSE / "outbound" / LESSON / f"{LESSON}.ipynb").exists()
            denied = hub.post(f"{fg}/assignment/{LESSON}/collect", tokens[ann], allow_redirects=False)
            assert denied.status_code in (302, 403), f"a student reached the formgrader: {denied.status_code}"

            # --- enrolment: the roster into the gradebook and the hub group nbgrader-<course> ---
            provision.enrol(s)
            group = hub.get(f"/hub/api/groups/nbgrader-{COURSE}", tokens[teacher])
            assert group.ok and set(group.json()["users"]) == {ann, ben}, f"{group.status_code} {group.text}"

            # --- the students: server, fetch, answer, submit ---
            # Ben's clip answer is an attack that would empty every test cell (full marks) if it ran.
            answers = {ann: {}, ben: {"wrong": ("square",), "answers": {"clip": kit.INPUT_TRANSFORMER_ATTACK}}}
            for student, how in answers.items():
                token = tokens[student]
                hub.start_server(student, token)
                base = f"/user/{student}"
                listed = hub.get(f"{base}/assignments", token, params={"course_id": COURSE}).json()
                assert listed["success"], listed
                assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [(LESSON, "released")], listed
                fetched = hub.post(f"{base}/assignments/fetch", token, data={"course_id": COURSE, "assignment_id": LESSON})
                assert fetched.ok and fetched.json()["success"], fetched.text[:3000]

                path = f"{base}/api/contents/{COURSE}/{LESSON}/{LESSON}.ipynb"
                released = hub.get(path, token)
                assert released.ok, released.text
                local = work / student / f"{LESSON}.ipynb"
                local.parent.mkdir()
                local.write_text(json.dumps(released.json()["content"]))
                saved = hub.put(path, token, json={"type": "notebook", "format": "json", "content": kit.answered(local, **how)})
                assert saved.ok, saved.text

                submitted = hub.post(f"{base}/assignments/submit", token, data={"course_id": COURSE, "assignment_id": LESSON})
                assert submitted.ok and submitted.json()["success"], submitted.text[:3000]
                assert hub.get(f"{base}/formgrader", token).status_code == 404, "students' servers have no formgrader"
                lab = hub.get(f"{base}/lab", token).text   # its page config: the formgrader's plugins are off
                page = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab, re.S).group(1))
                assert "@jupyter/nbgrader:formgrader" in page["disabledExtensions"], page.get("disabledExtensions")

            # --- the exchange (1777): a student cannot move the course's folder aside or replace it ---
            assert s.exchange.stat().st_mode & 0o7777 == 0o1777
            own = subprocess.run(["runuser", "-u", ann, "--", "mkdir", str(s.exchange / f"{ann}-own")],
                                 capture_output=True, text=True)   # the control: she can act there at all
            assert own.returncode == 0, own.stderr
            for attack in (["mv", str(s.exchange / COURSE), str(s.exchange / "moved")],
                           ["rm", "-rf", str(s.exchange / COURSE / "outbound")],
                           ["mv", str(s.exchange / COURSE / "outbound" / LESSON), str(s.exchange / "fake")]):
                tried = subprocess.run(["runuser", "-u", ann, "--", *attack], capture_output=True, text=True)
                assert tried.returncode != 0, f"a student could run {attack}"
            assert (s.exchange / COURSE / "outbound" / LESSON / f"{LESSON}.ipynb").exists()

            # --- the instructor collects and autogrades through the formgrader ---
            collected = hub.post(f"{fg}/assignment/{LESSON}/collect", tokens[teacher])
            assert collected.ok and collected.json()["success"], collected.text[:3000]
            for student in answers:
                graded = hub.post(f"{fg}/submission/{LESSON}/{student}/autograde", tokens[teacher])
                assert graded.ok and graded.json()["success"], graded.text[:3000]
            listing = hub.get(f"{fg}/submissions/{LESSON}", tokens[teacher]).json()
            exercises = ["square", "mean", "clip"]
            expected = {ann: kit.score(exercises), ben: kit.score(exercises, wrong=("square", "clip"))}
            assert {row["student"]: row["score"] for row in listing} == expected, listing
            report = json.loads((s.course_root / "grading_report.json").read_text())[LESSON]
            assert report[ann]["status"] == "graded" and report[ann]["flags"] == [], report[ann]
            assert any("not run" in flag for flag in report[ben]["flags"]), report[ben]
            with capsys.disabled():
                print(f"[test_hub] the formgrader graded through the sandbox, isolation: {report[ann]['isolation']}")

            # --- what a student's account can and cannot read ---
            for private in (hubsettings.REPO / "solutions", hubsettings.REPO / "lessons", s.course_root):
                assert as_user(ann, "ls", str(private)).returncode != 0, f"a student can read {private}"
            manifest = as_user(ann, "cat", str(s.data_dir / "manifest.json"))
            assert manifest.returncode == 0 and json.loads(manifest.stdout), f"the data: {manifest.stderr}"
            assert not s.data_dir.is_relative_to(hubsettings.REPO)

            # --- the grades and the hub's users are in PostgreSQL ---
            from nbgrader.api import Gradebook

            with Gradebook(s.gradebook_url) as gb:
                assert {sub.student.id: sub.score for sub in gb.find_assignment(LESSON).submissions} == expected
                assert {st.id for st in gb.students} == {ann, ben}
            import psycopg2

            with psycopg2.connect(host="127.0.0.1", port=pg_port, user="root", dbname="jupyterhub") as db, db.cursor() as cur:
                cur.execute("SELECT name FROM users")
                assert {row[0] for row in cur.fetchall()} >= {teacher, ann, ben, grader}
            with capsys.disabled():
                print(f"[test_hub] set-up {setup_done - started:.1f} s, class {time.monotonic() - setup_done:.1f} s")
        except BaseException:
            print(f"--- the hub's log (end) ---\n{hub.tail(20000)}")   # shown by pytest with the failure
            raise
        finally:
            for student in (ann, ben):
                if student in tokens and hub.alive():
                    try:
                        hub.delete(f"/hub/api/users/{student}/server", tokens[student])
                    except requests.RequestException:
                        pass
            proxy_pid_file = s.state_dir / "jupyterhub-proxy.pid"
            proxy_pid = int(proxy_pid_file.read_text()) if proxy_pid_file.exists() else None
            stopping = time.monotonic()
            hub.stop()
            with capsys.disabled():
                print(f"[test_hub] hub stopped in {time.monotonic() - stopping:.1f} s")
            if os.environ.get("COURSE_HUB_TEST_LOG") and hub.log.exists():   # keep the hub's log for debugging
                shutil.copyfile(hub.log, os.environ["COURSE_HUB_TEST_LOG"])
            if proxy_pid and hub_kit.pid_alive(proxy_pid):
                os.kill(proxy_pid, 9)
            os.chmod(hubsettings.REPO, clone_mode)
            problems = hub_kit.remove_users([ann, ben, teacher, grader])
            shutil.rmtree(work, ignore_errors=True)
            for state in (hub.alive(), proxy_pid and hub_kit.pid_alive(proxy_pid)):
                assert not state, "the hub or its proxy is still running"
            assert not problems, problems


def test_settings_roster_and_hub_config(tmp_path, monkeypatch):
    """Without root: the roster formats, and what deploy/jupyterhub_config.py configures from
    the COURSE_* variables (groups, allowed users, the service, roles), loaded as JupyterHub does."""
    from traitlets.config.loader import PyFileConfigLoader

    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email\nann,Ann,Lee,ann@example.org\nben,,,\n")
    plain = tmp_path / "roster.txt"
    plain.write_text("# the class\ncy\n\ndee\n")
    assert [r["id"] for r in hubsettings.read_roster(roster)] == ["ann", "ben"]
    assert hubsettings.read_roster(roster)[0]["email"] == "ann@example.org"
    assert hubsettings.read_roster(plain) == [{"id": "cy"}, {"id": "dee"}]

    for name, value in {"COURSE_INSTRUCTORS": "tess, tom", "COURSE_STUDENTS": "eve", "COURSE_ROSTER": str(roster),
                        "COURSE_VENV": "/opt/v", "COURSE_STATE_DIR": str(tmp_path), "COURSE_FORMGRADER_PORT": "9123"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COURSE_ID", raising=False)
    monkeypatch.delenv("COURSE_GRADER", raising=False)
    (tmp_path / f"formgrader-{COURSE}.token").write_text("secret\n")
    c = PyFileConfigLoader("jupyterhub_config.py", path=str(Path(__file__).resolve().parents[2] / "deploy")).load_config()

    grader = f"grader-{COURSE}"
    assert c.Authenticator.allowed_users == {"tess", "tom", "eve", "ann", "ben"}
    assert c.JupyterHub.load_groups[f"formgrade-{COURSE}"]["users"] == ["tess", "tom", grader]
    assert c.JupyterHub.load_groups[f"nbgrader-{COURSE}"]["users"] == []
    assert c.JupyterHub.db_url.startswith("postgresql+psycopg2://")
    [service] = c.JupyterHub.services
    assert service["name"] == COURSE and service["user"] == grader and service["oauth_no_confirm"]
    assert service["url"] == "http://127.0.0.1:9123" and service["api_token"] == "secret"
    assert service["environment"]["PATH"].startswith("/opt/v/bin:")
    data = Path(c.Spawner.environment["COURSE_DATA_DIR"])
    assert data == hubsettings.default_data_dir(Path("/opt/v")) and service["environment"]["COURSE_DATA_DIR"] == str(data)
    assert service["environment"]["JUPYTERHUB_DEFAULT_URL"] in ("/formgrader", "/lab")
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert f"groups!group=nbgrader-{COURSE}" in roles[f"formgrader-{COURSE}"]["scopes"]
    assert roles[f"formgrader-{COURSE}"]["services"] == [COURSE]
    assert f"access:services!service={COURSE}" in roles[f"formgrade-{COURSE}"]["scopes"]
    assert "read:users:groups!user" in roles["server"]["scopes"]
    with pytest.raises(ValueError, match="both a student and staff"):
        hubsettings.load({"COURSE_INSTRUCTORS": "ann", "COURSE_STUDENTS": "ann"})
