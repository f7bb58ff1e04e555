# The course's commands. Each target creates the virtual environment it needs (from
# requirements.txt, with constraints.txt pinning every transitive package) the first time.
VENV ?= .venv
PY := $(VENV)/bin/python
SHELL := /bin/bash
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The course library rnnlib must import from the book, the notebooks and the tests.
export PYTHONPATH := $(CURDIR)
# The chapter lists (CHAPTERS: those with exercises), generated from chapters.yml.
include chapters.mk

.PHONY: venv book test test-fast release selfcheck grade clean bench lab mutation new-chapter chapters sync-points
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	echo "$(CURDIR)" > "$$($(PY) -c 'import site; print(site.getsitepackages()[0])')/rnn-course.pth"
	touch $@

book: venv  ## build the executed book into _build/html (warnings are errors)
	set -o pipefail; mkdir -p _build; jupyter-book build . -W -n --keep-going 2>&1 | tee _build/book.log

test: venv  ## the whole test suite (builds the book once, grades every chapter)
	$(PY) -m pytest

test-fast: venv  ## the quick loop while editing a chapter: no book build, no browser, no mutation run
	$(PY) -m pytest -m "not slow and not book and not browser" -q

release: venv  ## regenerate exercises/ from solutions/ with nbgrader
	for c in $(CHAPTERS); do nbgrader generate_assignment $$c --force --log-level=WARN || exit 1; done

selfcheck: venv  ## grade reference solutions (must be 100%) and released stubs (must be 0)
	$(PY) tools/selfcheck.py $(CHAPTERS)

grade: venv  ## grade a class: make grade SUBMITTED=submitted OUT=results
	$(PY) -m autograder grade $(or $(SUBMITTED),submitted) --out $(or $(OUT),results) --workers 2

bench: venv  ## every benchmark in one table (clean book build, grading vs nbgrader, model speed)
	$(PY) benchmarks/run_all.py

mutation: venv  ## the full mutation check of the hidden tests: kill rate and spill-over per graded name
	$(PY) tools/mutation.py

new-chapter: venv  ## scaffold a chapter: make new-chapter ID=ch09_topic TITLE="9. Topic" [BOOK_ONLY=1]
	@test -n "$(ID)" || { echo 'usage: make new-chapter ID=ch09_topic TITLE="9. Topic" [BOOK_ONLY=1]'; exit 2; }
	$(PY) tools/chapters.py new $(ID) --title "$(or $(TITLE),$(ID))" $(if $(BOOK_ONLY),--book-only)

chapters: venv  ## regenerate _toc.yml, the exercises table and chapters.mk from chapters.yml
	$(PY) tools/chapters.py generate

sync-points: venv  ## set visible test cells' points to the hidden points (solutions/), then: make release
	$(PY) -m autograder sync-points $(CHAPTERS)

clean:
	rm -rf _build .nbgrader

lab: venv  ## open the exercises in JupyterLab
	jupyter lab exercises/
