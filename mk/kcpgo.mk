# mk/kcpgo.mk - tests/kcpgo, the kcp-go test peer for the KCP interop
# tests, built offline against Debian's golang-github-xtaci-kcp-dev
# (GOPATH mode).  Skipped quietly when go or the package is missing; the
# tests then skip too.  `all` builds it when it can.

KCPGO_BIN := $(B)/kcpgo
KCPGO_SRC := /usr/share/gocode/src/github.com/xtaci/kcp-go/sess.go
GO ?= go

ifneq ($(and $(shell command -v $(GO) 2>/dev/null),$(wildcard $(KCPGO_SRC))),)
$(KCPGO_BIN): tests/kcpgo/main.go
	@mkdir -p $(dir $@) $(abspath $(B))/gocache
	cd tests/kcpgo && GOPATH=/usr/share/gocode GO111MODULE=off \
		GOCACHE=$(abspath $(B))/gocache $(GO) build -o $(abspath $@) .

all: $(KCPGO_BIN)
test-extra:: $(KCPGO_BIN)
kcpgo: $(KCPGO_BIN)
else
kcpgo:
	@echo "kcpgo: needs $(GO) and golang-github-xtaci-kcp-dev; skipped"
endif

.PHONY: kcpgo
