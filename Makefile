# websocksy - one non-recursive Makefile.
#   make            build websocksy and the plugins
#   make test       install missing packages, build, run unit (plain and
#                   ASan+UBSan) and integration tests
#   make run        install missing packages, build, start the demo
#   make install    PREFIX=/usr/local DESTDIR=
#   make SAN=1      build everything with ASan+UBSan

CC      ?= cc
# Parallel builds by default (the test binaries still run one by one).
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
PLUGINDIR ?= $(LIBDIR)/websocksy
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
PYTHON  ?= /usr/bin/python3
VERSION := 0.1.0

PKGS    := gnutls nettle inih libcares zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Werror
CFLAGS  ?= -O2 -g
# CPPFLAGS (a distribution's -D_FORTIFY_SOURCE=2, say) reaches every
# compile, the plugins' too.
CFLAGS  += $(EXTRA_CFLAGS) $(CPPFLAGS) -std=gnu11 -D_GNU_SOURCE $(WARN) -MMD -MP $(PKG_CFLAGS)
# Plugins link nothing of their own: what they call comes from the host
# through the wsy_host table, libc from the process.
PLUGIN_LIBS :=
LDLIBS  += $(PKG_LIBS) -ldl

BUILD   ?= build
B := $(BUILD)
ifeq ($(SAN),1)
B := $(BUILD)/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

CORE_SRC := $(filter-out core/main.c,$(wildcard core/*.c)) backends/static.c
CORE_OBJ := $(CORE_SRC:%.c=$(B)/%.o)
MAIN_OBJ := $(B)/core/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

# Plugins: framing/NAME.c -> framing_NAME.so, backends/NAME.c ->
# backend_NAME.so (static is built in).  Each is one self-contained source
# that includes only the public header, as an outside plugin would.
FRAMING_SRC := $(wildcard framing/*.c)
BACKEND_SRC := $(filter-out backends/static.c,$(wildcard backends/*.c))
PLUGINS := $(FRAMING_SRC:framing/%.c=$(B)/plugins/framing_%.so) \
	   $(BACKEND_SRC:backends/%.c=$(B)/plugins/backend_%.so)

# Test-only plugins: tests/plugins/NAME.c -> $(B)/testplugins/NAME.so.
TESTPLUGIN_SRC := $(wildcard tests/plugins/*.c)
TESTPLUGINS := $(TESTPLUGIN_SRC:tests/plugins/%.c=$(B)/testplugins/%.so)

# Fuzz targets: tests/fuzz/fuzz_NAME.c.  `make fuzz` runs each under
# libFuzzer (clang) for FUZZ_SECONDS; make test replays the corpus through
# the same targets under gcc's ASan+UBSan (tests/fuzz/driver.c).
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(B)/fuzz/replay_%)
FUZZ_SECONDS ?= 60

# Benchmark tools: tests/bench/NAME.c -> $(B)/bench/NAME (see make bench).
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
BENCH_LIBS = $(PKG_LIBS)

# websocksy-client: a thin main over core/ (client/*.c + libwsy.a).
CLIENT_SRC := $(wildcard client/*.c)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(B)/%.o)
CLIENT_BIN := $(if $(CLIENT_SRC),$(B)/websocksy-client)

all: $(B)/websocksy $(CLIENT_BIN) $(PLUGINS) $(TESTPLUGINS)

# Everything built, nothing run (used for the clang build in make test).
build-all: $(B)/websocksy $(CLIENT_BIN) $(PLUGINS) $(UNIT_BIN) $(BENCH_BIN)

$(B)/websocksy-client: $(CLIENT_OBJ) $(B)/libwsy.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/plugins/framing_%.so: framing/%.c plugins/websocksy_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared -o $@ $< $(PLUGIN_LIBS)

$(B)/plugins/backend_%.so: backends/%.c plugins/websocksy_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared -o $@ $< $(PLUGIN_LIBS)

$(B)/testplugins/%.so: tests/plugins/%.c plugins/websocksy_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

$(B)/fuzz/replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/driver.o \
		$(B)/libwsy.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY)
	@st=0; for n in $(FUZZ_NAMES); do \
		$(B)/fuzz/replay_$$n tests/fuzz/corpus/$$n/* || st=1; \
	done; exit $$st

fuzz: deps
	$(MAKE) CC=clang BUILD=build/fuzz SAN=1 \
		EXTRA_CFLAGS=-fsanitize=fuzzer-no-link build/fuzz/san/libwsy.a
	@mkdir -p build/fuzz/bin
	@for n in $(FUZZ_NAMES); do \
		clang $(filter-out -MMD -MP,$(CFLAGS)) -include build/fuzz/san/config.h -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
			-o build/fuzz/bin/fuzz_$$n tests/fuzz/fuzz_$$n.c \
			build/fuzz/san/libwsy.a $(LDLIBS) || exit 1; \
		mkdir -p build/fuzz/corpus/$$n; \
		build/fuzz/bin/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) \
			build/fuzz/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

$(B)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BENCH_LIBS)

$(B)/libwsy.a: $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/websocksy: $(MAIN_OBJ) $(B)/libwsy.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Build-time settings live in one generated header, rewritten only when
# they change: `make PREFIX=/usr install` after a plain `make` rebuilds what
# depends on the plugin directory instead of installing a binary that looks
# for its plugins under the old prefix.
$(B)/config.h: FORCE
	@mkdir -p $(B)
	@printf '#define WSY_VERSION "%s"\n#define WSY_PLUGINDIR "%s"\n' \
		'$(VERSION)' '$(PLUGINDIR)' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@
	@rm -f $@.tmp

$(B)/%.o: %.c $(B)/config.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -include $(B)/config.h -c -o $@ $<

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libwsy.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BIN) $(PLUGINS) $(TESTPLUGINS)
	@st=0; for t in $(UNIT_BIN); do $$t || st=1; done; exit $$st

deps:
	@sh tests/deps.sh

# gcc build + unit tests, the same under ASan+UBSan (and the fuzz corpora),
# a warning-free clang build, the fragments' checks (mk/*.mk test-extra),
# then the integration suite against the plain and the ASan binaries.
test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) SAN=1 unit
	$(MAKE) SAN=1 fuzz-replay
	$(MAKE) SAN=1 all
	if command -v clang >/dev/null; then \
		$(MAKE) CC=clang BUILD=build/clang build-all; fi
	$(MAKE) test-extra
	@echo "== integration suite, plain build =="
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration
	@echo "== integration suite, ASan+UBSan build =="
	WEBSOCKSY_BIN=$(CURDIR)/build/san/websocksy \
	WEBSOCKSY_CLIENT_BIN=$(CURDIR)/build/san/websocksy-client \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration
	$(MAKE) test-poll

# The tests that lean on the event loop (close during dispatch, fd reuse,
# RDHUP, errors, TLS, KCP, mux, limits) again with the portable poller.
POLL_TESTS := test_close test_tls test_kcp_server test_client_mux \
	test_kcpmux_ws test_poller test_limits
test-poll:
	@echo "== loop-sensitive integration tests, poller = poll =="
	WEBSOCKSY_POLLER=poll $(PYTHON) -m pytest -q -p no:cacheprovider \
		$(POLL_TESTS:%=tests/integration/%.py)

# Benchmarks: not part of make test; bounded, stops by itself.
bench: deps
	$(MAKE) all $(BENCH_BIN)
	$(PYTHON) tests/bench/run.py
	$(PYTHON) tests/bench/idle.py
	$(PYTHON) tests/bench/loss.py --quick

# The full loss benchmark (network namespaces, root; about 4 minutes).
bench-loss: deps
	$(MAKE) all $(BENCH_BIN)
	$(PYTHON) tests/bench/loss.py

run: deps
	$(MAKE) all
	sh demo/run.sh

install: all install-extra install-man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR)
	install -m 755 $(B)/websocksy $(DESTDIR)$(BINDIR)/websocksy
	for f in $(CLIENT_BIN); do \
		install -m 755 $$f $(DESTDIR)$(BINDIR)/; done
	for f in $(PLUGINS); do \
		install -m 755 $$f $(DESTDIR)$(PLUGINDIR)/; done

# The man pages name the install paths.  docs/ has them as the default
# PREFIX puts them (/usr/local/...), readable in the tree with man -l;
# install-man writes each for this PREFIX (man/manN/ by its suffix).
MAN_PAGES := docs/websocksy.8 docs/websocksy-client.1 docs/websocksy.cfg.5 \
	docs/websocksy-plugin.3
MAN_SED := -e 's|/usr/local/lib/websocksy|$(PLUGINDIR)|g' \
	-e 's|/usr/local/include|$(INCDIR)|g' \
	-e 's|/usr/local/bin|$(BINDIR)|g' \
	-e 's|/usr/local/share/man|$(MANDIR)|g'

install-man:
	@for f in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${f##*.}; \
		install -d $$d && sed $(MAN_SED) $$f > $$d/$${f##*/} && \
		chmod 644 $$d/$${f##*/} || exit 1; \
		echo "install $$f -> $$d/ (PREFIX $(PREFIX))"; done

clean:
	rm -rf build

# Fragments add their own targets (and extend the double-colon rules
# install-extra and test-extra): mk/NAME.mk.
install-extra::
test-extra::
include $(wildcard mk/*.mk)

.PHONY: FORCE test-poll bench-loss install-man install-extra test-extra all build-all unit deps test clean run install bench fuzz fuzz-replay
-include $(shell find build -name '*.d' 2>/dev/null)
