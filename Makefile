# thrifty developer commands. `make demo` and `make test` work on a fresh Debian machine:
# both run scripts/bootstrap first (Debian packages, then a project-local .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2
CACHE_TAG = $(shell $(PY) -c 'import sys; print(sys.implementation.cache_tag)' 2>/dev/null)
BUILD_DIR = build/$(CACHE_TAG)
SOURCES := $(shell find cpp python router_policies tests/cpp benchmarks -type f 2>/dev/null) \
           CMakeLists.txt pyproject.toml

.PHONY: demo test test-cpp test-python test-asan test-tsan bootstrap install lint tidy format \
        bench clean

bootstrap:
	@scripts/bootstrap

# Builds the package (with the C++ tests) into $(VENV); the build dir is kept, so rebuilds are
# incremental.
$(VENV)/.thrifty-installed: $(SOURCES) | bootstrap
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pip install -q --no-build-isolation \
	  -Ccmake.define.THRIFTY_BUILD_TESTS=ON -Ccmake.build-type=RelWithDebInfo .
	@touch $@

install: $(VENV)/.thrifty-installed

demo: install
	$(VENV)/bin/thrifty demo

test: install
	@echo "== lint (clang-format, ruff) =="
	@$(MAKE) --no-print-directory lint
	@echo "== C++ tests (ctest) =="
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)
	@echo "== Python tests and notebooks (pytest) =="
	$(PY) -m pytest -q

test-cpp: install
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

test-python: install
	$(PY) -m pytest -q

# C++ tests under AddressSanitizer + UBSan, and ThreadSanitizer (CMakePresets.json).
test-asan: bootstrap
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --preset asan >/dev/null
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --build --preset asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j$(JOBS)

# OMP_NUM_THREADS=1: FAISS's HNSW insertion runs OpenMP threads whose synchronization (libgomp)
# TSAN cannot see; with one OpenMP thread TSAN checks our own threads only.
test-tsan: bootstrap
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --preset tsan >/dev/null
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --build --preset tsan
	OMP_NUM_THREADS=1 ctest --preset tsan -j$(JOBS)

lint: install
	cmake --build $(BUILD_DIR) --target lint
	$(VENV)/bin/ruff check python tests/python benchmarks scripts
	$(VENV)/bin/ruff format --check python tests/python benchmarks scripts

tidy: install
	run-clang-tidy -p $(BUILD_DIR) -quiet 'cpp/src/.*' || clang-tidy -p $(BUILD_DIR) cpp/src/*/*.cc

format: install
	cmake --build $(BUILD_DIR) --target format
	$(VENV)/bin/ruff format python tests/python benchmarks scripts

# Benchmarks: C++ programs (release preset) and Python scripts; each prints a table and JSON.
bench: install
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --preset release >/dev/null
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --build --preset release
	$(PY) benchmarks/bench_request_key.py
	build/release/benchmarks/bench_agent
	$(PY) benchmarks/bench_token_estimate.py
	$(PY) benchmarks/bench_exact_cache.py
	$(PY) benchmarks/bench_embedders.py
	$(PY) benchmarks/bench_semantic_quality.py
	$(PY) benchmarks/bench_semantic_cache.py
	$(PY) benchmarks/bench_hnsw.py
	$(PY) benchmarks/bench_vs_gptcache.py
	$(PY) benchmarks/bench_router.py
	$(PY) benchmarks/bench_redis_cache.py
	$(PY) benchmarks/bench_wrap.py
	$(PY) benchmarks/bench_replay.py
	$(PY) benchmarks/bench_prompt_cache.py
	build/release/benchmarks/bench_ledger
	$(PY) benchmarks/bench_ledger.py
	$(PY) benchmarks/bench_router_quality.py

clean:
	rm -rf build $(VENV)/.thrifty-installed
