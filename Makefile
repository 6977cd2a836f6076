# citytrack: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Exact CPU/GPU-consistent pair: the registry's torch build (`===` skips any local
# +cpu wheel) matches the registry's torchvision, which timm imports.
TORCH_PIN := torch===2.13.0 torchvision==0.28.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e ".[dev]" $(TORCH_PIN)
	# TrackEval is the HOTA reference the tests compare against. Its metadata asks for
	# opencv-python, whose 5.x cv2 would shadow our headless 4.x build (no HOGDescriptor),
	# and it needs nothing else we lack, so it is installed without dependencies.
	$(PIP) install -q --no-deps "trackeval==1.3.0"
	# BoxMOT (the `bench` extra) is the reference our ByteTrack/BoT-SORT are tested against frame by
	# frame; its trackers need nothing we lack, and its pins (pandas<3, ...) would downgrade ours.
	$(PIP) install -q --no-deps "boxmot==25.0.0"
	touch $(STAMP)

demo: setup
	$(PY) -m citytrack.demo

# Fast tests first, then the slow end-to-end ones (pytest exits 5 when none are selected).
test: setup
	$(PY) -m pytest -m "not slow" -q
	$(PY) -m pytest -m "slow" -q; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m citytrack.bench tracking

clean-venv:
	rm -rf $(VENV)
