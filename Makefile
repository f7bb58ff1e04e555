# The course's commands. Each target creates the virtual environment it needs (from
# requirements.txt, with constraints.txt pinning every transitive package) the first time.
VENV ?= .venv
PY := $(VENV)/bin/python
SHELL := /bin/bash
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The course library rnnlib must import from the book, the notebooks and the tests.
export PYTHONPATH := $(CURDIR)
CHAPTERS ?= $(notdir $(wildcard solutions/ch*))

.PHONY: venv book test release selfcheck grade clean bench lab mutation
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

release: venv  ## regenerate exercises/ from solutions/ with nbgrader
	for c in $(CHAPTERS); do nbgrader generate_assignment $$c --force --log-level=WARN || exit 1; done

selfcheck: venv  ## grade reference solutions (must be 100%) and released stubs (must be 0)
	$(PY) tools/selfcheck.py $(CHAPTERS)

grade: venv  ## grade a class: make grade SUBMITTED=submitted OUT=results
	$(PY) -m autograder grade $(or $(SUBMITTED),submitted) --out $(or $(OUT),results) --workers 2

bench: venv  ## every benchmark in one table (clean book build, grading vs nbgrader, model speed)
	$(PY) benchmarks/run_all.py

mutation: venv  ## the full mutation check of the hidden tests (the quick subset runs in make test)
	$(PY) tools/mutation.py

clean:
	rm -rf _build .nbgrader

lab: venv  ## open the exercises in JupyterLab
	jupyter lab exercises/

.PHONY: pdf
pdf: venv  ## the whole book as one PDF, linked from the front page (needs TeX from Debian: the target says which packages)
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || { echo "make pdf needs TeX: apt-get install texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex texlive-plain-generic latexmk tex-gyre fonts-freefont-otf"; exit 1; }
	set -o pipefail; mkdir -p _build/html; jupyter-book build . --builder pdflatex 2>&1 | tee _build/pdf.log
	cp _build/latex/book.pdf _build/html/rnn-from-scratch.pdf
	@echo "PDF: _build/latex/book.pdf (copied to _build/html/rnn-from-scratch.pdf, linked from the front page)"
