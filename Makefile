# pacemaker: a wire-compatible Go replacement for Apache Storm's Pacemaker.
# `make run` builds and serves on embedded defaults (port 6699, auth NONE);
# `make test` installs what the tests need (Debian/Ubuntu, as root) and runs them all.

GO       ?= go
MODULE   := github.com/storm-pacemaker/pacemaker
# Version from git describe: v1.2.3, or v1.2.3-4-gabcdef on later commits,
# or 0.0.0-<hash> before the first tag.
VERSION  ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo $${v\#v} || echo 0.0.0-$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS  := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
export CGO_ENABLED ?= 0

# Extra checks that fragments in mk/ add to `make test` (CHECKS += target).
CHECKS :=
-include mk/*.mk

.PHONY: all build run test test-deps gotest vet fmt-check clean
all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -o bin/ ./cmd/...

run: build
	./bin/pacemaker

test-deps:
	@bash scripts/install-deps.sh test

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files -o --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# -p 2: the machine has 2 cores; the booted-systemd and KDC tests are heavy.
# internal/tools/gotest prints go test's usual lines, then every skipped test
# and `gotest: N passed, N failed, N skipped`; with CI set, a skip fails.
gotest:
	GO=$(GO) $(GO) run ./internal/tools/gotest -count=1 -p 2 -timeout 25m ./...

test: test-deps build vet fmt-check gotest $(CHECKS)

clean:
	rm -rf bin dist
