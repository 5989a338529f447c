# mk/sdk.mk - the plugin SDK: websocksy-plugin.pc, the header and the
# websocksy-plugin(3) man page (install-man, in the Makefile) for
# `make install`; the example plugin
# (plugins/example) built in tree for `make test`.
#
# The .pc names includedir and plugindir relative to ${prefix} when they
# lie under PREFIX, so `pkg-config --define-prefix` (and a DESTDIR staging
# tree) can relocate them.

SDK_PC := $(B)/sdk/websocksy-plugin.pc
SDK_API := $(shell sed -n 's/^\#define WEBSOCKSY_API_VERSION[ \t]*\([0-9]*\).*/\1/p' plugins/websocksy_plugin.h)
sdk_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# Regenerated on every install: the prefix is baked into the .pc.
sdk-pc: plugins/websocksy-plugin.pc.in
	@mkdir -p $(dir $(SDK_PC))
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@INCDIR@|$(call sdk_rel,$(INCDIR))|g' \
	    -e 's|@PLUGINDIR@|$(call sdk_rel,$(PLUGINDIR))|g' \
	    -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@APIVERSION@|$(SDK_API)|g' $< > $(SDK_PC)

install-extra:: sdk-pc
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 plugins/websocksy_plugin.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(SDK_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/

# The example plugin, compiled in tree with the project's warnings (the
# out-of-tree build through pkg-config is tests/integration/test_sdk.py).
SDK_EXAMPLE := $(patsubst plugins/example/%.c,$(B)/example/%.so,$(wildcard plugins/example/*.c))

$(B)/example/%.so: plugins/example/%.c plugins/websocksy_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iplugins -fPIC -shared -o $@ $<

sdk-example: $(SDK_EXAMPLE)

# The man page must render without warnings.
sdk-man:
	@if command -v groff >/dev/null; then \
		out=$$(groff -ww -man -Tutf8 docs/websocksy-plugin.3 2>&1 >/dev/null); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; fi

test-extra:: sdk-example sdk-man

.PHONY: install-extra test-extra sdk-pc sdk-example sdk-man
