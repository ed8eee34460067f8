# Two commands do all the set-up on a fresh machine:
#   make demo   build and verify handouts, run a student's check, grade a batch in the sandbox
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
# Where `make demo` grades: docker (the production default) or local (bubblewrap, else unshare).
SANDBOX ?= docker

.PHONY: setup services demo test clean

setup: $(STAMP)

# The sandboxes the grader runs student code in (bubblewrap, Docker Engine, the offline grading
# image), the services other tests use (PostgreSQL, Chromium), and a one-node Slurm cluster
# (munged, slurmctld, slurmd) for the slurm executor. Needs root (apt-get, dockerd).
services: setup
	@if [ "$$(id -u)" -eq 0 ]; then PYTHON=$(BIN)/python bash scripts/install-sandboxes.sh \
	&& bash scripts/install-services.sh && bash scripts/install-slurm.sh; \
	else echo "not root: skipping sandbox and service installation (scripts/install-*.sh need root)"; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[units,dev,data,serve,gpu,data_unit,alignment]'
	touch $@

demo: services
	SANDBOX=$(SANDBOX) bash scripts/demo.sh

# pytest exits 5 when it collects nothing: that says nothing about the code, so it is not a failure.
test: services
	$(BIN)/python -m pytest -n $(JOBS) tests || { s=$$?; [ $$s -eq 5 ] && echo "warning: no tests collected"; [ $$s -eq 5 ]; }

clean:
	rm -rf out handouts build dist *.egg-info
