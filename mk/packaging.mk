# deb and rpm packages for amd64 and arm64, built with nfpm as a library
# pinned in go.mod (internal/packaging, packaging/nfpm.yaml).
#   make deb | rpm | packages   the packages, into dist/
#   make packages-lint          lintian and rpmlint on fresh packages (in `make test`)
# The install tests in a booted Debian 12 are Go tests (test/booted) and
# run with the rest of `go test ./...`.
.PHONY: deb rpm packages packages-lint

PKG_ARCHES ?= amd64 arm64
PMPACKAGE = $(GO) run ./internal/packaging/cmd/pmpackage -version '$(VERSION)' -ldflags '$(LDFLAGS)' -arch '$(PKG_ARCHES)'

deb:
	@$(PMPACKAGE) -format deb
rpm:
	@$(PMPACKAGE) -format rpm
packages:
	@$(PMPACKAGE) -format 'deb rpm'

# Built apart from dist/, so that older packages there are not linted.
packages-lint:
	@rm -rf .cache/packaging/lint
	@$(PMPACKAGE) -format 'deb rpm' -out .cache/packaging/lint
	@packaging/lint.sh .cache/packaging/lint

CHECKS += packages-lint
