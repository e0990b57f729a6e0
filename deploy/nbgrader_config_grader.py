"""nbgrader settings of the grader account (the formgrader service runs as it).

provision.py writes this file, with SETTINGS filled in, to ``~<grader>/.jupyter/nbgrader_config.py``.
The course folder's own nbgrader_config.py (the repository's: source and release folders,
timeouts, output limits, feedback without hidden tests) is loaded first, then the course
root, id and gradebook are fixed here, because the formgrader runs in the grader's home
rather than in the course folder.
"""
import os

c = get_config()  # noqa: F821  (injected by traitlets)
SETTINGS = {"course_id": "cnn-rnn-course", "course_root": "", "db_url": ""}  # filled in by provision.py

course_config = os.path.join(SETTINGS["course_root"], "nbgrader_config.py")
if os.path.exists(course_config):
    load_subconfig(course_config)  # noqa: F821  (injected by traitlets)
c.CourseDirectory.course_id = SETTINGS["course_id"]
c.CourseDirectory.root = SETTINGS["course_root"]
# PostgreSQL (postgresql+psycopg2://, not postgresql://: SQLAlchemy 2.1 would pick psycopg 3)
c.CourseDirectory.db_url = SETTINGS["db_url"]

# The formgrader's Autograde button grades through the course's pre-check and sandbox, as
# `python -m course_utils.instructor autograde` does (course_utils/instructor/formgrader.py).
from course_utils.instructor.formgrader import install as grade_through_the_sandbox  # noqa: E402

grade_through_the_sandbox()
