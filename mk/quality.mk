# mk/quality.mk - fuzz smoke run, valgrind and soak (docs/QUALITY.md).
#
#   make fuzz-smoke     build every libFuzzer target, run each for
#                       FUZZ_SMOKE_SECONDS (3); part of make test when
#                       clang with libFuzzer is there
#   make fuzz-merge     minimise each checked-in corpus with libFuzzer's
#                       -merge=1 together with what `make fuzz` found
#                       (build/fuzz/corpus/NAME); FUZZ_ONLY="http ws"
#                       picks targets
#   make fuzz-cov       inputs, bytes and edges ("cov:") of each corpus
#   make valgrind       an integration subset under valgrind memcheck
#   make soak           tests/soak/soak.py for SOAK_SECONDS (300)

FUZZ_SMOKE_SECONDS ?= 3
FUZZ_BIN := build/fuzz/bin
FUZZ_LIB := build/fuzz/san/libwsy.a
# As the fuzz rule, plus no recovery: a UBSan report in code compiled into
# the target (the framing plugins, backends/file.c) must stop the run too.
FUZZ_CFLAGS = $(filter-out -MMD -MP,$(CFLAGS)) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# 1 when clang links a libFuzzer target (Debian: clang and
# libclang-rt-14-dev), else empty.  Checked once per make run.
HAVE_LIBFUZZER := $(shell d=$$(mktemp -d 2>/dev/null) && \
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
	'{ (void)d; (void)n; return 0; }' > $$d/t.c && \
	clang -fsanitize=fuzzer,address,undefined -o $$d/t $$d/t.c \
	>/dev/null 2>&1 && echo 1; rm -rf $$d)

# The instrumented library, built as the fuzz rule builds it.
fuzz-lib:
	$(MAKE) CC=clang BUILD=build/fuzz SAN=1 \
		EXTRA_CFLAGS=-fsanitize=fuzzer-no-link $(FUZZ_LIB)

$(FUZZ_BIN)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) \
		$(FUZZ_LIB)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

# The library first (its own make run knows its sources), then the
# targets that link it.
fuzz-build:
	$(MAKE) fuzz-lib
	$(MAKE) $(FUZZ_NAMES:%=$(FUZZ_BIN)/fuzz_%)

# Every target for a few seconds, each from its checked-in corpus (new
# inputs go to build/fuzz/smoke/NAME, never into the source tree).  A
# crash leaves crash-* / leak-* / timeout-* in build/fuzz/smoke.
fuzz-smoke:
ifeq ($(HAVE_LIBFUZZER),1)
	$(MAKE) fuzz-build
	@st=0; for n in $(FUZZ_NAMES); do \
		mkdir -p build/fuzz/smoke/$$n; \
		printf 'fuzz-smoke %-22s ' $$n; \
		if $(FUZZ_BIN)/fuzz_$$n -max_total_time=$(FUZZ_SMOKE_SECONDS) \
		    -timeout=20 -rss_limit_mb=2048 \
		    -artifact_prefix=build/fuzz/smoke/ \
		    build/fuzz/smoke/$$n tests/fuzz/corpus/$$n \
		    >build/fuzz/smoke/$$n.log 2>&1; then \
			grep -o 'Done [0-9]* runs' build/fuzz/smoke/$$n.log || \
				echo ok; \
		else \
			echo FAILED; tail -40 build/fuzz/smoke/$$n.log; st=1; \
		fi; \
	done; exit $$st
else
	@echo "fuzz-smoke: SKIPPED: clang cannot link a libFuzzer target" \
		"(install the Debian packages clang and libclang-rt-14-dev)"
endif

test-extra::
	@$(MAKE) --no-print-directory fuzz-smoke

# ---- corpus upkeep (docs/QUALITY.md, "Fuzz corpora") ----
#
# fuzz-merge: for each target, -merge=1 of the checked-in corpus, the new
# inputs `make fuzz` left in build/fuzz/corpus/NAME and those of
# fuzz-smoke, into a fresh directory that then replaces
# tests/fuzz/corpus/NAME (libFuzzer names the files by their SHA-1).  Only
# inputs that add coverage features survive, plus every regress_* file,
# kept under its name (a fixed crash stays a named regression case).
# FUZZ_MERGE_DIRS adds more input directories (each holding NAME/).
FUZZ_ONLY ?= $(FUZZ_NAMES)
FUZZ_MERGE_DIRS ?=

fuzz-merge:
	$(MAKE) fuzz-build
	@for n in $(FUZZ_ONLY); do \
		m=build/fuzz/merge/$$n; rm -rf $$m; mkdir -p $$m; \
		dirs=tests/fuzz/corpus/$$n; \
		for d in build/fuzz/corpus build/fuzz/smoke $(FUZZ_MERGE_DIRS); do \
			[ -d $$d/$$n ] && dirs="$$dirs $$d/$$n"; \
		done; \
		$(FUZZ_BIN)/fuzz_$$n -merge=1 -timeout=20 -rss_limit_mb=2048 \
		    $$m $$dirs >$$m.log 2>&1 || \
			{ echo "fuzz-merge $$n: FAILED"; tail -20 $$m.log; exit 1; }; \
		for r in tests/fuzz/corpus/$$n/regress_*; do \
			[ -f "$$r" ] || continue; \
			rm -f $$m/$$(sha1sum "$$r" | cut -c1-40); cp "$$r" $$m/; \
		done; \
		rm -rf tests/fuzz/corpus/$$n && mv $$m tests/fuzz/corpus/$$n; \
		printf 'fuzz-merge %-22s %s\n' $$n \
		    "$$(grep -o 'MERGE-OUTER: [0-9]* new files.*' $$m.log)"; \
	done

# fuzz-cov: one line per target: inputs, bytes, and the edges and
# features libFuzzer reports after loading the corpus (-runs=0).
fuzz-cov:
	$(MAKE) fuzz-build
	@for n in $(FUZZ_ONLY); do \
		d=tests/fuzz/corpus/$$n; \
		printf '%-22s %5s inputs %8s bytes  %s\n' $$n \
		    $$(ls $$d | wc -l) $$(cat $$d/* | wc -c) \
		    "$$($(FUZZ_BIN)/fuzz_$$n -runs=0 $$d 2>&1 | \
		    grep -o 'INITED cov: [0-9]* ft: [0-9]*' | tail -1)"; \
	done

# ---- valgrind ----
#
# The plain binary under memcheck through tests/soak/valgrind-websocksy,
# which conftest.py starts as WEBSOCKSY_BIN.  A memcheck error (invalid
# access, uninitialised jump, definite leak) makes the process exit 99,
# and the fixture's teardown fails every test whose server did not exit 0.
VALGRIND_TESTS ?= $(shell cat tests/soak/valgrind-tests.txt 2>/dev/null)
VALGRIND_TIMEOUT ?= 600

valgrind: deps
	@command -v valgrind >/dev/null || { \
		echo "valgrind: not installed (Debian package valgrind)"; \
		exit 1; }
	$(MAKE) all
	WSY_VALGRIND_BIN=$(CURDIR)/$(B)/websocksy \
	WEBSOCKSY_BIN=$(CURDIR)/tests/soak/valgrind-websocksy \
	timeout $(VALGRIND_TIMEOUT) $(PYTHON) -m pytest -q -p no:cacheprovider \
		$(VALGRIND_TESTS)

# ---- soak ----
SOAK_SECONDS ?= 300

soak: deps
	$(MAKE) all
	$(PYTHON) tests/soak/soak.py --bin $(CURDIR)/$(B)/websocksy \
		--seconds $(SOAK_SECONDS)

.PHONY: fuzz-lib fuzz-build fuzz-smoke fuzz-merge fuzz-cov valgrind soak
