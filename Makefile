# The course's commands. Each target creates the virtual environment it needs (from
# requirements.txt, with constraints.txt pinning every transitive package) the first time.
VENV ?= .venv
# The interpreter the virtual environment is made from (3.11.5 or newer: the pins need it). Grading
# without namespaces (a container) needs one that an unprivileged user can read: see README.
PYTHON ?= python3
PY := $(VENV)/bin/python
SHELL := /bin/bash
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The chapter lists (CHAPTERS: those with exercises), generated from chapters.yml.
include chapters.mk

.PHONY: venv book test test-fast release selfcheck grade clean bench lab mutation wheel student-edition new-chapter chapters sync-points pdf
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	# rnnlib, editable (pyproject.toml): the book, JupyterLab, pytest and the grader import it as installed.
	rm -f "$$($(PY) -c 'import site; print(site.getsitepackages()[0])')/rnn-course.pth"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

book: venv  ## build the executed book into _build/html (warnings are errors)
	set -o pipefail; mkdir -p _build; jupyter-book build . -W -n --keep-going 2>&1 | tee _build/book.log

# Three pytest-xdist workers on the machines' 2 cores: the tests wait on their subprocesses (time limits,
# sockets, pip, Chromium), and a third worker fills those waits (a clean clone on 2 idle cores: 661 s
# against 685 s with two). The tests that share a costly fixture (a file,
# the built book, the graded course) run on one worker, longest groups first (tests/conftest.py).
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 3
test: venv  ## the whole test suite (builds the book once, grades every chapter)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25

test-fast: venv  ## the quick loop while editing a chapter: no book build, no browser, no mutation run
	$(PY) -m pytest -m "not slow and not book and not browser" -q

# Every chapter is generated into a temporary folder first; exercises/<chapter> is replaced only once
# nbgrader has produced every chapter (nbgrader deletes its output folder before it may refuse, e.g.
# when the gradebook holds submissions), so a refusal leaves the release as it was.
release: venv  ## regenerate exercises/ from solutions/ with nbgrader
	@set -e; mkdir -p .nbgrader; tmp=$$(mktemp -d "$(CURDIR)/.nbgrader/release.XXXXXX"); \
	trap 'for o in "$$tmp"/*.old; do c=$$(basename "$$o" .old); \
	  if [ -d "$$o" ] && [ ! -e "exercises/$$c" ]; then mv "$$o" "exercises/$$c"; fi; done; rm -rf "$$tmp"' EXIT; \
	for c in $(CHAPTERS); do \
	  nbgrader generate_assignment $$c --force --log-level=WARN --CourseDirectory.release_directory="$$tmp" \
	    && test -d "$$tmp/$$c" \
	    || { echo "make release: nbgrader could not regenerate $$c; exercises/ is left as it was" >&2; exit 1; }; \
	done; \
	mkdir -p exercises; \
	for c in $(CHAPTERS); do \
	  if [ -e "exercises/$$c" ]; then mv "exercises/$$c" "$$tmp/$$c.old"; fi; \
	  mv "$$tmp/$$c" "exercises/$$c"; \
	done; \
	echo "make release: exercises/ regenerated ($(CHAPTERS))"

selfcheck: venv  ## grade reference solutions (must be 100%) and released stubs (must be 0)
	$(PY) tools/selfcheck.py $(CHAPTERS)

grade: venv  ## grade a class: make grade SUBMITTED=submitted OUT=results
	$(PY) -m autograder grade $(or $(SUBMITTED),submitted) --out $(or $(OUT),results) --workers 2

bench: venv  ## every benchmark in one table (clean book build, grading vs nbgrader, model speed)
	$(PY) benchmarks/run_all.py

mutation: venv  ## the full mutation check of the hidden tests: kill rate and spill-over per graded name
	$(PY) tools/mutation.py

wheel: venv  ## build the rnnlib wheel into _build/dist (what the setup cells install)
	rm -rf _build/dist && $(PY) -m pip wheel -q --disable-pip-version-check --no-deps -w _build/dist .
	@ls _build/dist

student-edition: venv  ## write the public student edition to _build/student-edition (EDITION_URL=... to set its repository)
	$(PY) tools/student_edition.py --out _build/student-edition $(if $(EDITION_URL),--repository-url $(EDITION_URL))

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

pdf: venv  ## the whole book as one PDF, linked from the front page (needs TeX from Debian: the target says which packages)
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || { echo "make pdf needs TeX: apt-get install texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex texlive-plain-generic latexmk tex-gyre fonts-freefont-otf imagemagick librsvg2-bin"; exit 1; }
	set -o pipefail; mkdir -p _build/html; jupyter-book build . --builder pdflatex 2>&1 | tee _build/pdf.log
	cp _build/latex/book.pdf _build/html/rnn-from-scratch.pdf
	@echo "PDF: _build/latex/book.pdf (copied to _build/html/rnn-from-scratch.pdf, linked from the front page)"
