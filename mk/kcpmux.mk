# mk/kcpmux.mk - the kcp-mux framing session plugin.  Unlike the other
# framings it is not one self-contained source: the mux state machine
# (core/mux.c) is compiled into it.  This explicit rule wins over the
# generic framing_%.so pattern rule; hidden visibility keeps the plugin's
# copy of mux_* from clashing with the core's (only WSY_PLUGIN is
# exported).  framing/kcp-mux.c is in FRAMING_SRC, so `all` builds it.

KCPMUX_SO := $(B)/plugins/framing_kcp-mux.so

$(KCPMUX_SO): framing/kcp-mux.c core/mux.c core/mux.h \
		plugins/websocksy_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fPIC -fvisibility=hidden \
		-shared -o $@ framing/kcp-mux.c core/mux.c

# The unit test dlopens the plugin (order-only: not linked in).
$(B)/tests/test_kcpmux_plugin: | $(KCPMUX_SO)
