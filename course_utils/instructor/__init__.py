"""The instructor's tooling (students' notebooks never import it): release, grading, feedback.

=================  ==========================================================================
module             job
=================  ==========================================================================
``authoring``      jupytext sources -> ``solutions/`` -> ``notebooks/`` (``make sync`` / ``release``)
``cli``            the grading command line, ``python -m course_utils.instructor ...``
``feedback``       ``HideHiddenTests``, the feedback preprocessor of ``nbgrader_config.py``
``flags``          answer code that deserves a human look (monkey-patching, file access...)
``precheck``       reading and repairing submitted notebooks before nbgrader sees them
``isolation``      the kernel's limits and namespaces (``python -m ...isolation kernel``)
``sandbox``        a throw-away course per submission, its gradebook template and environment
``runner``         nbgrader's apps in a child process, with a time limit; the venv's PATH
``gradebook``      the course's settings and the class gradebook (nbgrader's API)
``report``         ``grading_report.json``: one :class:`~report.Outcome` per submission
``autograde``      the class, submission by submission, a few at a time
=================  ==========================================================================
"""
