# Thin wrapper over CMake and scripts/: the real work is in scripts/*.sh.
SHELL := /bin/bash
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
LINT_DIRS := $(wildcard src include tests bench)

.PHONY: build dev test lint fuzz clean distclean kafka-start kafka-stop kafka-status bench

build:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build build

# Installs what is missing, builds, then runs the embedded dev cluster when the
# binary has one; until then checks the example machines.
dev:
	scripts/deps.sh build
	$(MAKE) build
	@if ./build/smc help | grep -q '^  dev '; then \
	  exec ./build/smc dev --examples; \
	else \
	  echo "make dev: the embedded dev cluster (smc dev) is not built yet;"; \
	  echo "make dev: checking examples/machines/*.yaml with 'smc machine check' instead"; \
	  shopt -s nullglob; files=(examples/machines/*.yaml); rc=0; \
	  for f in "$${files[@]}"; do ./build/smc machine check "$$f" || rc=1; done; \
	  echo "make dev: checked $${#files[@]} machine file(s)"; exit $$rc; \
	fi

test:
	scripts/test.sh

lint:
	@files=$$(find $(LINT_DIRS) -type f \( -name '*.c' -o -name '*.h' \) | sort); \
	rc=0; \
	echo "clang-format: $$(echo "$$files" | wc -l) files"; \
	clang-format --dry-run -Werror $$files || rc=1; \
	echo "cppcheck"; \
	cppcheck --quiet --error-exitcode=1 --std=c11 --language=c --inline-suppr \
	  --enable=warning,performance,portability --suppressions-list=.cppcheck \
	  -D__GNUC__ -D_GNU_SOURCE -Iinclude -Isrc $(LINT_DIRS) || rc=1; \
	exit $$rc

# Cluster benchmarks against the raw-Kafka limit (docs/benchmarks.md).
bench:
	bench/run.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz

kafka-start:
	scripts/kafka.sh start
kafka-stop:
	scripts/kafka.sh stop
kafka-status:
	scripts/kafka.sh status

clean:
	rm -rf build build-asan build-fuzz

# Also drops the cached Kafka jars and broker data (stop the broker first).
distclean: clean
	rm -rf .cache
