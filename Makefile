# bulkhead's builds. make build: ./bulkhead for this machine; make test: the
# README's test command; make release: static binaries for linux and darwin
# on amd64 and arm64, one tar.gz each and SHA256SUMS, in dist/; make image:
# the container image. Every binary has its version and commit stamped
# (bulkhead version prints them).

export GOTOOLCHAIN ?= go1.26.10

GO      ?= go
PKG     := github.com/bulkheadhq/bulkhead
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -s -w -X $(PKG)/internal/cli.Version=$(VERSION) -X $(PKG)/internal/cli.Commit=$(COMMIT)
TARGETS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST    := dist
IMAGE   ?= bulkhead:$(VERSION)
BIN     ?= bulkhead
# -buildvcs=auto: where the go command can, it records the commit and
# whether the tree was modified (not in a git worktree, whose .git is a
# file); the -X flags stamp them either way.
BUILD   := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)'

.PHONY: build test release image clean

build:
	$(BUILD) -o $(BIN) ./cmd/bulkhead

test:
	$(GO) test ./...

# Each archive holds the binary, README.md and the deploy/ files, under
# bulkhead-VERSION-OS-ARCH/. Archives are reproducible: fixed owner, order
# and times (the commit's).
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; mtime=$$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ); \
	for t in $(TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; name=bulkhead-$(VERSION)-$$os-$$arch; \
	  mkdir -p $(DIST)/$$name; \
	  GOOS=$$os GOARCH=$$arch $(BUILD) -o $(DIST)/$$name/bulkhead ./cmd/bulkhead; \
	  cp README.md $(DIST)/$$name/; cp -R deploy $(DIST)/$$name/deploy; \
	  tar -C $(DIST) --sort=name --owner=0 --group=0 --numeric-owner --mtime="$$mtime" -cf - $$name | gzip -n >$(DIST)/$$name.tar.gz; \
	  rm -rf $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz >SHA256SUMS
	@cat $(DIST)/SHA256SUMS

image:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

clean:
	rm -rf $(DIST) bulkhead
