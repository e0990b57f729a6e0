"""nbgrader configuration of the course (read from the project root)."""

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "cnn-rnn-course"
c.CourseDirectory.root = "."
# Instructors edit solutions/; nbgrader releases them into notebooks/, which students open.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# Never copy checkpoints, caches or the jupytext sources into a release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# Autograding executes notebooks with NBGRADER_EXECUTION set, so the course's profile is
# "smoke" (seconds per notebook); a cell may still need a while on a busy machine.
c.Execute.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.allow_errors = True

# The release keeps no outputs, and the student's stubs say what to do.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Keep graded notebooks readable: a progress bar or a runaway print cannot flood them.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
