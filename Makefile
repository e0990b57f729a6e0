# Thin wrappers: the logic lives in tools/course.py (standard-library Python).
PYTHON ?= python3
COURSE = $(PYTHON) tools/course.py

.PHONY: setup lab test test-fast sync release check
setup:    ## create or update the environment (.venv, or $COURSE_VENV)
	$(COURSE) setup
lab:      ## open the course in JupyterLab with nbgrader
	$(COURSE) lab
test:     ## the whole test suite (what CI runs)
	$(COURSE) test
test-fast: ## the tests that execute no notebook
	$(COURSE) test -m "not notebooks"
sync:     ## lessons/*.py (jupytext sources) -> solutions/*.ipynb
	$(COURSE) sync
release:  ## solutions/ -> notebooks/ with nbgrader generate_assignment
	$(COURSE) release
check:    ## solutions and release in sync with their sources
	$(COURSE) sync --check && $(COURSE) release --check
