# mk/poller.mk - the build-time fallback of the event loop: a build without
# epoll (WSY_NO_EPOLL, as on a system that lacks it) must compile, pass the
# loop's unit tests with poll, and refuse `poller = epoll` by name.

NOEPOLL := build/noepoll

test-noepoll:
	$(MAKE) BUILD=$(NOEPOLL) EXTRA_CFLAGS=-DWSY_NO_EPOLL \
		$(NOEPOLL)/tests/test_loop $(NOEPOLL)/websocksy
	$(NOEPOLL)/tests/test_loop
	printf '[core]\npoller = epoll\n' > $(NOEPOLL)/epoll.ini
	! $(NOEPOLL)/websocksy $(NOEPOLL)/epoll.ini 2> $(NOEPOLL)/epoll.err
	grep -q "epoll.ini:2: poller: 'epoll': this build has no epoll" \
		$(NOEPOLL)/epoll.err

test-extra:: test-noepoll
.PHONY: test-noepoll
