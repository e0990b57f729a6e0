"""The instructor's tooling (students' notebooks never import it): release, grading, feedback.

=================  ==========================================================================
module             job
=================  ==========================================================================
``authoring``      jupytext sources -> ``solutions/`` -> ``notebooks/`` (``make sync`` / ``release``)
``cli``            the grading command line, ``python -m course_utils.instructor ...``
``zipsafe``        ``SafeExtractor``: zip-collect's extraction with size and ratio caps
``feedback``       ``HideHiddenTests``, the feedback preprocessor of ``nbgrader_config.py``
``execute``        ``BoundedExecute``: nbgrader's Execute keeping outputs bounded in bytes
``flags``          answer code that deserves a human look, and code that could forge verdicts
``precheck``       reading and repairing submitted notebooks before nbgrader sees them
``isolation``      the kernel's limits and bubblewrap sandbox (``python -m ...isolation kernel``)
``sandbox``        a throw-away course per submission, its gradebook template and environment
``runner``         nbgrader's apps in a child process, with a time limit; the venv's PATH
``gradebook``      the course's settings and the class gradebook (nbgrader's API)
``report``         ``grading_report.json``: one :class:`~report.Outcome` per submission
``autograde``      the class, submission by submission, a few at a time
=================  ==========================================================================
"""
