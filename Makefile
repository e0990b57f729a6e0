# Thin wrappers: the logic lives in tools/course.py (standard-library Python).
PYTHON ?= python3
COURSE = $(PYTHON) tools/course.py

.PHONY: setup lab test test-fast test-unit test-lessons test-notebooks test-grading test-e2e test-browser test-hub sync release check system-deps
setup:    ## create or update the environment (.venv, or $COURSE_VENV)
	$(COURSE) setup
lab:      ## open the course in JupyterLab with nbgrader
	$(COURSE) lab
test:     ## the whole test suite (what CI runs), on two pytest-xdist workers
	$(COURSE) test -n 2
test-fast: ## the tests that execute no notebook and start no server (seconds to a few minutes)
	$(COURSE) test tests/unit tests/lessons -m "not notebooks and not nbgrader"
test-unit: ## tests/unit: course_utils and the shipped data
	$(COURSE) test tests/unit
test-lessons: ## tests/lessons: exercises against right/wrong answers, release, equivalence, grading round trips
	$(COURSE) test tests/lessons -n 2
test-notebooks: ## every solution notebook executed by nbval (smoke profile)
	$(COURSE) test solutions
test-grading: ## tests/grading: the instructor's grading tools (sandbox, robustness, scale, PostgreSQL)
	$(COURSE) test tests/grading -n 2
test-e2e: ## tests/e2e: JupyterLab, the browser (lesson 01) and the JupyterHub class
	$(COURSE) test tests/e2e
test-browser: ## JupyterLab in headless Chromium, every lesson (make test runs lesson 01 only)
	COURSE_BROWSER_LESSONS=all $(COURSE) test tests/e2e/test_browser.py
test-hub: ## the JupyterHub class deployment end to end (root: users, PostgreSQL, proxy)
	$(COURSE) test tests/e2e/test_hub.py
system-deps: ## Debian's chromium and postgresql, npm's proxy: the browser and hub tests (root)
	$(COURSE) system-deps
sync:     ## lessons/*.py (jupytext sources) -> solutions/*.ipynb
	$(COURSE) sync
release:  ## solutions/ -> notebooks/ with nbgrader generate_assignment
	$(COURSE) release
check:    ## solutions and release in sync with their sources
	$(COURSE) sync --check && $(COURSE) release --check

# Grading (python -m course_utils.instructor; README "For instructors"). LESSON=..., STUDENT=...
INSTRUCTOR = $(COURSE) run python -m course_utils.instructor
.PHONY: grade-release collect zip-collect autograde grade-status feedback feedback-full export-grades grade-summary
grade-release: ## nbgrader generate_assignment for LESSON (default: every lesson)
	$(INSTRUCTOR) release $(LESSON)
collect:  ## copy FROM=<folder of student/lesson/*.ipynb> into submitted/
	$(INSTRUCTOR) collect $(FROM) $(if $(LESSON),--lesson $(LESSON))
zip-collect: ## LESSON=... ZIP="a.zip b.zip": nbgrader zip_collect, files named <student>__<notebook>.ipynb
	$(INSTRUCTOR) zip-collect $(LESSON) $(ZIP)
autograde: ## autograde every new or changed submission (LESSON=..., STUDENT=... to grade one again)
	$(INSTRUCTOR) autograde $(LESSON) $(if $(STUDENT),--student $(STUDENT))
grade-status: ## submissions not graded (and why), notes, flags for review
	$(INSTRUCTOR) status
feedback: ## HTML feedback in feedback/, hidden tests not shown
	$(INSTRUCTOR) feedback $(LESSON) $(if $(STUDENT),--student $(STUDENT))
feedback-full: ## the instructors' feedback with the hidden tests, in feedback_full/
	$(INSTRUCTOR) feedback --full $(LESSON) $(if $(STUDENT),--student $(STUDENT))
export-grades: ## grades.csv (nbgrader export, with a grading_status column)
	$(INSTRUCTOR) export --to grades.csv
grade-summary: ## per exercise: mean score and how many failed
	$(INSTRUCTOR) summary $(LESSON)

# Benchmarks (python -m benchmarks; README "Benchmarks"). QUICK=1 for a check that it runs, ARGS="--lessons 01 04" etc.
.PHONY: bench
bench:    ## seconds per epoch of every lesson's model: course PyTorch loop, plain PyTorch, Keras fit (a few minutes)
	$(COURSE) run python -m benchmarks $(if $(QUICK),--quick) $(ARGS)
