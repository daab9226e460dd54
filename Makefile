# The two commands (README): `make hil` runs the HIL suite on the virtual board, `make test`
# runs every test. Both do their own set-up on a fresh Debian/Ubuntu machine with Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := cmake ninja-build gcc make pkg-config libmosquitto-dev libcurl4-openssl-dev libcjson-dev libssl-dev zlib1g-dev mosquitto mosquitto-clients chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_FLAGS ?=
# `make hil` runs the catalog in 7 xdist workers: its scenarios mostly wait (beacon timeouts, keep-alives,
# deadlines, reboots, the chip-paced flash of three of them), so even 2 cores keep 7 busy (on 2 cores, 222
# scenarios: 6 workers 41 to 46 s, 7 workers 36 to 37 s; docs/performance.md); HIL_WORKERS=0 runs it in one
# process.
HIL_WORKERS ?= 7
# Python's bytecode cache, which also holds pytest's rewritten test and plugin modules (the harness is a
# plugin: every module of it is rewritten): without it each pytest process parses and compiles them again,
# 0.6 s of CPU each, and make hil starts seven. An environment may turn it off (PYTHONDONTWRITEBYTECODE);
# the caches go to __pycache__ directories, which git ignores.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: hil test setup deps venv firmware lint wheel clean

# -p no:pytest_embedded: the catalog's scenarios use the harness's boards, never pytest-embedded's `dut` (installed
# for the serial interop test and its option names, which the harness then registers itself): its plugin's
# fixtures cost each of the seven pytest processes about 0.4 s of CPU to load and collect against.
hil: setup
	$(PY) -m pytest tests_hil -v -p no:cacheprovider -p no:pytest_embedded -n $(HIL_WORKERS) --hil-report build/report.html --junitxml build/junit.xml $(PYTEST_FLAGS)

test: setup
	$(PY) -m ruff check harness tests_unit tests_hil bench examples
	$(PY) -m pytest tests_unit tests_hil -p no:cacheprovider $(PYTEST_FLAGS)

setup: deps venv firmware

# Debian packages, only those missing (apt-get needs root; sudo is used when not root). chromium and
# chromium-driver: the live view's browser test (tests_unit/test_live_view.py) drives Debian's browser.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The firmware for the virtual board, every variant the catalog uses, and the host port's test app (the reset
# scenarios boot it): built by the first test that needs it, it held up every test waiting for it (5 to 7 s).
firmware: venv
	$(PY) -m harness build --port-check

lint: venv
	$(PY) -m ruff check harness tests_unit tests_hil bench examples

# The wheel a firmware team installs (docs/using-in-your-project.md), in dist/. setuptools stages it in
# build/lib, whose files of an earlier build would end up in it too: that goes first.
wheel: venv
	rm -rf build/lib build/bdist.*
	$(PY) -m pip wheel --no-deps -q -w dist .

clean:
	rm -rf build dist
