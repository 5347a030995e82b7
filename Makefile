# Every target creates .venv when missing and installs what it needs from the
# project's own files (pyproject.toml extras + constraints.txt pinning the CPU
# build of torch), so each one works on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q -c constraints.txt
STAMP  := $(VENV)/.graphattn-installed

.PHONY: test demo docs lint bench browser-deps clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP) -e ".[test,pretrained,oracle,docs,browser,experiments,bench,notebook,hf,distributed]"
	# lxt (extra "lrp"), the AttnLRP reference of the tests: its rules need only torch, while its
	# declared dependencies (torchvision, bitsandbytes, open_clip, ...) would pull GPU wheels.
	$(PY) -m pip install -q --no-deps "lxt>=2.1"
	touch $@

# Debian's chromium for the offline-viewer browser test (skipped without it).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else echo "warning: chromium missing; the browser test will be skipped"; fi; }

lint: $(STAMP)
	$(PY) -m ruff check graphattn tests examples benchmarks

test: $(STAMP) browser-deps lint docs
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/graphattn demo

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet

bench: $(STAMP)
	$(VENV)/bin/graphattn bench

clean:
	rm -rf $(VENV) site graphattn-demo
