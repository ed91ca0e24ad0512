# ietd: a user-space, drop-in replacement for the iSCSI Enterprise Target and
# the NetBSD iscsi-target.

GO        ?= go
PREFIX    ?= /usr
DESTDIR   ?=
BIN       := bin
CMDS      := ietd ietadm iscsi-target ietd-migrate
FUZZTIME  ?= 5s
DEMO_CONF ?= testdata/demo/ietd.conf
DEMO_DIR  ?= /tmp/ietd-demo
APT_PKGS  := libiscsi-bin qemu-utils qemu-block-extra shellcheck libxml2-utils groff-base open-isns-server open-isns-utils

.PHONY: all build run test deps vet unit fuzz-short race conformance bench soak install clean man

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# make run: build and start ietd in the foreground on the demo config
# (a sparse 100 MB file on 127.0.0.1:3260).
run: build
	@mkdir -p $(DEMO_DIR)
	@test -e $(DEMO_DIR)/lun0.img || truncate -s 100M $(DEMO_DIR)/lun0.img
	$(BIN)/ietd -f -d 1 -c $(DEMO_CONF) -a 127.0.0.1 -p 3260 --acl-dir $(DEMO_DIR) --pid-file $(DEMO_DIR)/ietd.pid --admin-socket $(DEMO_DIR)/ietadm.sock --state-dir $(DEMO_DIR)/state --proc-dir $(DEMO_DIR)/proc

# Install what the tests need (when missing and we are root).
deps:
	@missing=""; \
	for c in iscsi-ls:libiscsi-bin iscsi-test-cu:libiscsi-bin iscsi-inq:libiscsi-bin qemu-img:qemu-utils qemu-io:qemu-utils \
	         shellcheck:shellcheck xmllint:libxml2-utils groff:groff-base \
	         isnsd:open-isns-server isnsadm:open-isns-utils; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c#*:}"; \
	done; \
	ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1 || missing="$$missing qemu-block-extra"; \
	missing=$$(printf '%s\n' $$missing | sort -u | tr '\n' ' '); \
	if [ -n "$${missing% }" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null || exit 1; \
	  else echo "warning: missing$$missing (not root: integration tests that need them will skip)"; fi; \
	fi

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	@# The tree also builds where the NetBSD rc.d and Solaris SMF scripts run.
	@for os in netbsd freebsd solaris illumos darwin; do GOOS=$$os $(GO) vet ./... || exit 1; done
	GOARCH=386 $(GO) vet ./...

unit: build
	IETD_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 12m ./...

# A short run of every fuzz target (FUZZTIME each).
fuzz-short:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./testdata/scripts/fuzz-short.sh

test: deps vet unit fuzz-short

# Every test under the race detector, the end-to-end ones against ietd
# built with -race too (IETD_RACE=1 loosens their memory bounds for its
# shadow memory); fails on any race report, in a test or in a daemon.
race: deps
	@rm -rf $(BIN)-race && mkdir -p $(BIN)-race/races
	$(GO) build -race -o $(BIN)-race/ ./cmd/...
	GORACE="log_path=$(CURDIR)/$(BIN)-race/races/r" IETD_RACE=1 IETD_BIN_DIR=$(CURDIR)/$(BIN)-race \
	  $(GO) test -race -count=1 -timeout 30m ./...
	@if ls $(BIN)-race/races/r.* >/dev/null 2>&1; then echo "race reports:"; ls $(BIN)-race/races; exit 1; fi

# The libiscsi conformance suite against ietd on a sparse, thin-provisioned LUN.
conformance: build deps
	./testdata/scripts/conformance.sh

# Performance comparison with tgt (never fails on a number).
bench: build
	./testdata/scripts/bench.sh

soak: build
	IETD_BIN_DIR=$(CURDIR)/$(BIN) IETD_SOAK=1 $(GO) test -count=1 -timeout 30m -v -run Soak ./target/e2e

# Render the man pages as text (they live in initscripts/man).
man:
	@for m in initscripts/man/*.[58]; do echo "== $$m"; man -l $$m 2>/dev/null | head -5 || true; done

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	for c in $(CMDS); do install -m 0755 $(BIN)/$$c $(DESTDIR)$(PREFIX)/sbin/$$c; done
	$(MAKE) -C initscripts install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)

clean:
	rm -rf $(BIN) $(BIN)-race
