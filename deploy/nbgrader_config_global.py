"""nbgrader settings of every account on the hub (students, instructors, the grader).

provision.py installs this file as ``<venv>/etc/jupyter/nbgrader_config.py``: nbgrader
reads ``sys.prefix/etc/jupyter``, so it applies to everything run from the hub's venv and
nothing else on the machine. The hub passes ``COURSE_EXCHANGE`` to every server it starts.
"""
import os

c = get_config()  # noqa: F821  (injected by traitlets)

# The shared folder of released and submitted assignments (created 0777 by provision.py).
c.Exchange.root = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
# <root>/<course_id>/{outbound,inbound,feedback}: several courses can share one hub.
c.Exchange.path_includes_course = True
# Who takes which course: JupyterHub's groups nbgrader-<course> and formgrade-<course>.
c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
