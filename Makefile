# Two commands on a fresh machine: `make lab` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JUPYTER_ARGS ?=
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test lint protos exercises autograder grade grade-class mutations lock bench clean \
	pyconsul-suite

# Re-installs only when the project's requirements change, so repeated runs are fast. uv installs
# the locked set in a third of pip's time; bytecode is compiled up front as pip does, since the
# grading sandbox sees the environment read-only and would otherwise compile every import on every
# notebook. pip is the fallback where uv cannot be had.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed; found $$($(PYTHON) --version)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet --disable-pip-version-check uv && \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c requirements.lock -e '.[dev]'; } || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

lab: setup
	cd notebooks && ../$(BIN)/jupyter lab 00-tour.ipynb $(ROOT_FLAG) $(JUPYTER_ARGS)

lint: setup
	$(BIN)/ruff check .

# Two workers (pytest-xdist), each taking whole files, the longest first (tests/conftest.py).
# PYTEST_ARGS adds options, e.g. `make test PYTEST_ARGS="-n 0"` for one process.
PYTEST_ARGS ?=
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Regenerate mesh/pb from protos/ after editing a .proto (the result is committed).
protos: setup
	$(BIN)/python -m tools.codegen

# Rebuild notebooks/exercises from the masters in exercises/ (the result is committed).
exercises: setup
	$(BIN)/python -m tools.exercises build

# Write otter's autograder zip of every exercise to autograder/ (for Gradescope, or `otter grade`
# in Docker on a course's own machines).
autograder: setup
	$(BIN)/python -m tools.exercises autograder autograder

# Grade a filled-in exercise with every test, hidden ones too: make grade NB=notebooks/exercises/ex01-...
grade: setup
	$(BIN)/python -m tools.exercises grade $(NB)

# Grade a class: every exercise notebook under DIR (DIR/<student>/<exercise>.ipynb, or
# DIR/<exercise>-<student>.ipynb), hidden tests included; writes DIR/grades.csv and DIR/grades.png.
# GRADE_ARGS="--nice 10" grades at a lower CPU priority; "--one-at-a-time" one notebook at a time.
grade-class: setup
	$(BIN)/python -m tools.class_grades $(GRADE_ARGS) $(DIR)

# Break the code on purpose, one plausible bug at a time: 12 hand-picked bugs in the call plan,
# each of which must fail the parity test in both drivers; then mutmut over the policies, the
# registry's KV and DNS, the bus broker, the gateway's auth and the simulator's results
# ([tool.mutmut] in pyproject.toml), and the score per module (README.md, "Mutation testing").
mutations: setup
	$(BIN)/python -m tools.plan_mutations
	$(BIN)/mutmut run --max-children 2 > mutants.log 2>&1 || { tail -20 mutants.log; exit 1; }
	$(BIN)/python -m tools.mutation_score

# py-consul's own test suite, unchanged, against the embedded registry (fetched from PyPI once).
pyconsul-suite: setup
	$(BIN)/python -m tools.pyconsul_suite

# Re-resolve requirements.lock (and binder/requirements.txt) for every supported Python.
lock: setup
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.10 \
		--no-header --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --no-header --quiet \
		-o binder/requirements.txt

# Benchmarks run on demand; README.md's "Figures" gives each one's command and its last figures.
bench: setup
	@for f in bench/*.py; do printf '%-30s %s\n' "$$f" "$$($(BIN)/python -c 'import ast,sys; print(ast.get_docstring(ast.parse(open(sys.argv[1]).read())).splitlines()[0])' $$f)"; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
