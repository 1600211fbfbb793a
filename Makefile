# Two commands on a fresh machine (Python 3.11+):  make run   |   make test
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(CURDIR)/scripts/uv

.PHONY: run test install lint browser engines system-deps claude-code bench clean

install:
	$(UV) sync --frozen

run: install system-deps
	$(UV) run legal-assistant serve

lint: install
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks
	$(UV) run mypy

# OpenBLAS (MLX's fast path on Linux) and tesseract (OCR), with apt when root/sudo allows;
# otherwise it says what to install and carries on.
system-deps:
	scripts/ensure-system-deps

browser:
	scripts/ensure-chromium

# llama.cpp's llama-server: built once from the pinned source (5-10 min on 2 cores; needs
# cmake and a C++ compiler), then a no-op until the pin changes (docs/llamacpp.md).
engines: install
	$(UV) run legal-assistant engines install llamacpp

# Claude Code (npm), pinned, into .tools/claude-code: tests/gateway/test_claude_code.py runs it.
claude-code:
	scripts/ensure-claude-code

test: lint browser engines system-deps claude-code
	$(UV) run pytest

bench: install engines
	$(UV) run python benchmarks/cold_start.py
	$(UV) run python benchmarks/switch.py
	$(UV) run python benchmarks/gateway.py
	$(UV) run python benchmarks/engines.py
	$(UV) run python benchmarks/retrieval.py --calibrate
	$(UV) run python benchmarks/ingest.py

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache test-artifacts
