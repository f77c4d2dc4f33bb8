# Thin wrapper over CMake and scripts/: the real work is in scripts/*.sh.
SHELL := /bin/bash
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
LINT_DIRS := $(wildcard src include tests bench)

.PHONY: build dev test lint fuzz fuzz-long clean distclean kafka-start kafka-stop kafka-status bench bench-lock

build:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build build

# Installs what is missing, builds, starts the embedded dev cluster (smc dev
# --examples) and runs the narrated tour; keeps running until Ctrl-C
# (DEMO_EXIT=1 stops after the tour).
dev:
	scripts/deps.sh build
	$(MAKE) build
	scripts/tour.sh --dev build/smc

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
	  -D__GNUC__ -D_GNU_SOURCE -DSMC_VERSION='"lint"' --include=/usr/include/jansson.h -Iinclude -Isrc $(LINT_DIRS) || rc=1; \
	echo "layers"; \
	cmake -DSRC=$(CURDIR)/src -P tests/lint/check_layers.cmake || rc=1; \
	exit $$rc

# Cluster benchmarks against the raw-Kafka limit (docs/benchmarks.md).
bench:
	bench/run.sh

# The lock service against etcd (BENCH_SCENARIOS=lock; docs/benchmarks.md
# "Lock service against etcd"; needs `scripts/deps.sh bench` and Go).
bench-lock:
	BENCH_SCENARIOS=lock bench/run.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz

# A long campaign at the lowest CPU priority, going on from the corpus the
# earlier runs left in build-fuzz/fuzz-corpus (FUZZ_TARGETS, FUZZ_JOBS apply).
FUZZ_LONG_SECONDS ?= 3600
fuzz-long:
	FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) nice -n 19 scripts/fuzz.sh build-fuzz

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
