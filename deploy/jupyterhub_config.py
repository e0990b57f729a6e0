"""JupyterHub for one class of the course on one server (JupyterHub 6, nbgrader 0.9).

    jupyterhub -f deploy/jupyterhub_config.py      # as root, from the hub's venv

* users are the server's Unix accounts (PAMAuthenticator, the default), each gets a
  JupyterLab server running as that account (LocalProcessSpawner, the default);
* the proxy is npm's configurable-http-proxy (deploy/node_modules, else PATH);
* the hub's own database is PostgreSQL;
* nbgrader's groups: ``instructors``, ``formgrade-<course>`` (instructors and the grader
  account: who may use the formgrader) and ``nbgrader-<course>`` (the students; filled by
  ``nbgrader db student add``, i.e. ``provision.py enrol``);
* the formgrader is a hub-managed service named after the course: ``jupyterhub-singleuser``
  run as the grader account in its home, shared by every instructor, at
  /services/<course>/formgrader.

Settings come from environment variables (deploy/hubsettings.py, deploy/README.md).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hubsettings  # noqa: E402

c = get_config()  # noqa: F821  (injected by traitlets)
s = hubsettings.load()
course = s.course_id
staff = sorted(set(s.instructors))

# --- network: public port, the hub's internal API, the proxy's API ---
c.JupyterHub.bind_url = s.bind_url
c.JupyterHub.hub_bind_url = s.hub_bind_url
c.ConfigurableHTTPProxy.api_url = s.proxy_api_url
c.ConfigurableHTTPProxy.command = [str(hubsettings.PROXY) if hubsettings.PROXY.exists() else "configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = str(s.state_dir / "jupyterhub-proxy.pid")

# --- state: PostgreSQL (postgresql+psycopg2: SQLAlchemy 2.1 maps plain postgresql:// to
# psycopg 3), the cookie secret in the state folder (created 0700 by provision.py) ---
c.JupyterHub.db_url = s.hub_db_url
c.JupyterHub.cookie_secret_file = str(s.state_dir / "jupyterhub_cookie_secret")

# --- who may log in: PAM (Unix accounts); JupyterHub 5+ lets nobody in without a list ---
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(staff) | set(s.student_ids)
c.Authenticator.admin_users = set(s.admins)

# --- single-user servers: JupyterLab from the hub's venv, as the user, in their home ---
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(s.venv / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
# COURSE_DATA_DIR: course_utils finds the shipped data there whether the venv holds an
# editable or a plain install of the course (a plain one has no datasets/ beside it)
c.Spawner.environment = {"PATH": s.path, "COURSE_EXCHANGE": str(s.exchange), "COURSE_DATA_DIR": str(s.data_dir)}
# generous: a lab server takes several seconds to start on a busy two-core machine
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90


def role_environment(spawner):
    """Students get a Jupyter config without the formgrader, assignment-creation and course
    list extensions (nbgrader's table of extensions per role: deploy/jupyter/student,
    installed into the venv by provision.py); staff keep every extension."""
    groups = {group.name for group in spawner.user.groups}
    if not groups & {"instructors", s.staff_group}:
        spawner.environment = dict(spawner.environment, JUPYTER_CONFIG_PATH=str(s.role_config_dir("student")))


c.Spawner.pre_spawn_hook = role_environment

# --- groups (load_groups only ever adds members) ---
c.JupyterHub.load_groups = {
    "instructors": {"users": staff},
    s.staff_group: {"users": [*staff, s.grader]},
    s.student_group: {"users": []},   # enrolment: nbgrader db student add (provision.py enrol)
}

# --- the formgrader: a shared server of the grader account, as a hub-managed service ---
service = {
    "name": s.service_name,
    "url": f"http://127.0.0.1:{s.formgrader_port}",
    "command": [str(s.venv / "bin" / "jupyterhub-singleuser")],   # listens on "url"
    "user": s.grader,
    "cwd": str(hubsettings.home_of(s.grader)),
    "oauth_no_confirm": True,
    "environment": {
        "PATH": s.path,
        "COURSE_EXCHANGE": str(s.exchange),
        "COURSE_DATA_DIR": str(s.data_dir),
        "JUPYTERHUB_DEFAULT_URL": s.formgrader_default_url,
    },
}
if s.token_file.exists():
    # a fixed token, so that `provision.py enrol` can run `nbgrader db student add` as the service
    service["api_token"] = s.token_file.read_text().strip()
c.JupyterHub.services = [service]

# --- roles and scopes (JupyterHub RBAC) ---
class_groups = [f"read:groups!group={s.student_group}", f"read:groups!group={s.staff_group}"]
enrol = ["list:groups", "read:groups:name", f"read:groups!group={s.student_group}", f"groups!group={s.student_group}"]
use_formgrader = [f"access:services!service={s.service_name}", "list:services", f"read:services!service={s.service_name}"]
c.JupyterHub.load_roles = [
    # students: find the course's service (nbgrader discovers courses through it)
    {"name": s.student_group, "groups": [s.student_group],
     "scopes": ["list:services", f"read:services!service={s.service_name}"]},
    # instructors and graders: open the formgrader
    {"name": s.staff_group, "groups": [s.staff_group], "scopes": use_formgrader},
    # instructors: see the class, enrol students from their own server too (nbgrader db student add)
    {"name": f"instructor-{course}", "groups": ["instructors"],
     "scopes": [*class_groups, *enrol, f"read:users!group={s.student_group}", f"read:servers!group={s.student_group}"]},
    # the formgrader service's own token: enrolling a student adds them to nbgrader-<course>
    {"name": f"formgrader-{course}", "services": [s.service_name],
     "scopes": [*enrol, f"read:users:groups!user={s.grader}", f"read:users:name!user={s.grader}"]},
    # the token of every single-user server: at most its owner's permissions (intersection);
    # nbgrader's assignment list reads the owner's groups, the course list the services,
    # and an instructor's server may enrol students
    {"name": "server",
     "scopes": ["users:activity!user", "access:servers!server", "read:users:name!user", "read:users:groups!user",
                *use_formgrader, *enrol]},
]
