"""``python -m benchmarks``: the course's benchmark suite (see ``benchmarks/run.py``)."""
import sys

from .run import main

sys.exit(main())
