# The README's two commands: `make demo` (main job on the embedded model) and `make test`.
# Each installs on first use into .venv (idempotent; re-installs when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-deps bench lint clean

$(STAMP): pyproject.toml scripts/install_llama_cpp.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	scripts/install_llama_cpp.sh $(PY)
	$(PY) -m pip install -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# A multi-hop question over the bundled sample corpus (40 HotpotQA paragraphs, CC BY-SA; see its README).
DEMO_CORPUS := tests/fixtures/sample_corpus/hotpot_sample.jsonl
DEMO_QUESTION := What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?

demo: $(STAMP)
	$(VENV)/bin/deepsearch index $(DEMO_CORPUS) --name deepsearch-sample
	$(VENV)/bin/deepsearch ask "$(DEMO_QUESTION)" --index deepsearch-sample --no-web --max-subgoals 2 --max-rounds 2

# System tools the tests drive: tmux runs `deepsearch chat` in a real terminal (those tests skip without it).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-deps:
	@command -v tmux >/dev/null || { command -v apt-get >/dev/null \
		&& $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q tmux >/dev/null; } || echo "tmux not installed: terminal tests will be skipped"

test: $(STAMP) test-deps
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check agent tools traces prompts tests bench

clean:
	rm -rf $(VENV) build *.egg-info
