"""``python -m course_utils.instructor ...``: the grading command line (:mod:`.cli`)."""
import sys

from course_utils.instructor.cli import main

if __name__ == "__main__":
    sys.exit(main())
