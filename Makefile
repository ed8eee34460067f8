# Two commands do all the set-up on a fresh machine:
#   make demo   build handouts, verify them, run a student's check on stubs and on the reference
#   make test   the toolkit's own test suite
# Both create .venv on first use: torch 2.13.0 (CPU) is installed first so that no CUDA build
# is pulled, then this project with its extras.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lmcourse-installed
LMC    := $(BIN)/lmcourse
DEMO_COURSE ?= tests/minicourse
DEMO_OUT    ?= out/demo
JOBS   ?= 2

.PHONY: setup services demo test clean

setup: $(STAMP)

# The sandboxes the grader runs student code in: bubblewrap, Docker Engine and the offline
# grading image. Needs root (apt-get, dockerd); without it the sandbox tests say why they skip.
services: setup
	@if [ "$$(id -u)" -eq 0 ]; then PYTHON=$(BIN)/python bash scripts/install-sandboxes.sh; \
	else echo "not root: skipping sandbox installation (scripts/install-sandboxes.sh needs root)"; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[units,dev]'
	touch $@

demo: services
	@echo "== 1. build the handout (student folder, zip, manifest) and the staff tree"
	$(LMC) --course $(DEMO_COURSE) handout build --out $(DEMO_OUT)
	$(LMC) --course $(DEMO_COURSE) handout build --solutions --out $(DEMO_OUT)
	@echo "== 2. verify: reference passes, stubs fail, nothing leaks"
	$(LMC) --course $(DEMO_COURSE) handout verify
	@echo "== 3. a student's check on the fresh handout: every problem fails (exit 1 expected)"
	cd $(DEMO_OUT)/toy && ../../../$(LMC) check; test $$? -eq 1
	@echo "== 4. the same check on the reference: every problem passes"
	cd $(DEMO_OUT)/toy-solution && ../../../$(LMC) check
	@echo "== 5. package a submission from the reference"
	cd $(DEMO_OUT)/toy-solution && ../../../$(LMC) submit --no-check --out ../toy-submission.zip

# pytest exits 5 when it collects nothing: that says nothing about the code, so it is not a failure.
test: services
	$(BIN)/python -m pytest -n $(JOBS) tests || { s=$$?; [ $$s -eq 5 ] && echo "warning: no tests collected"; [ $$s -eq 5 ]; }

clean:
	rm -rf out handouts build dist *.egg-info
