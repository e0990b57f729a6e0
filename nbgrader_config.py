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
# (nbgrader's Execute always goes on after an error: allow_errors is not configurable in 0.9)

# The release keeps no outputs, and the student's stubs say what to do.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Keep graded notebooks readable: a progress bar or a runaway print cannot flood them.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# --- Grading (the package course_utils.instructor; README "For instructors") ---
# Feedback keeps hidden tests hidden: their code is replaced by a note and errors keep only
# their message (nbgrader issues #917, #1363). `instructor feedback --full` turns this off.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "course_utils.instructor.feedback.HideHiddenTests",
]
# A test cell that writes to stderr scores zero; harmless lines must not cost points:
# Python warnings ("file.py:12: UserWarning: ..."), TensorFlow/absl C++ logs
# ("2026-01-01 12:00:00.000000: I tensorflow/..." or "W0101 12:00:00.000 ..."), and
# records of Python's logging module ("WARNING:tensorflow:..."). Errors still fail a test.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"\A(?:(?:[^\n]*:\d+: \w*Warning: [^\n]*\n(?:  [^\n]*\n?)?)"
    r"|(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [^\n]*\n?)"
    r"|(?:[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ [^\n]*\n?)"
    r"|(?:(?:DEBUG|INFO|WARNING):[\w.]+:[^\n]*\n?))+\Z"
)
# A student who deletes a test cell gets it back (and run), rather than no grade for it.
c.OverwriteCells.add_missing_cells = True
