"""Timing scripts for the course (never timing assertions in tests).

``python -m benchmarks`` (``make bench``) runs the suite: every lesson's model under the
course's PyTorch loop, a plain PyTorch loop and Keras ``fit``; see ``benchmarks/run.py``.
"""
