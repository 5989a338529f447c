# mk/loaded.mk - make test-loaded: the interop and close-path tests with the
# CPU busy (tests/loaded.sh: two stress-ng hogs), plain and ASan builds.
# Not part of make test (which must pass on a loaded machine as it is);
# run it three times in a row before saying a close path is fixed.

test-loaded: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	sh tests/loaded.sh

.PHONY: test-loaded
