# deb and rpm packages for amd64 and arm64, built with nfpm as a library
# pinned in go.mod (internal/packaging, packaging/nfpm.yaml).
#   make deb | rpm | packages   the packages, into dist/
#   make packages-lint          lintian and rpmlint on fresh packages (in `make test`)
#   make repo                   fresh packages as signed apt and dnf repositories in
#                               dist/repo/ (internal/packaging/repo), signed with
#                               $PACEMAKER_SIGNING_KEY (an armoured secret key file or a
#                               gpg key id), else with a throwaway key in
#                               dist/throwaway-signing-key/
# The install tests in a booted Debian 12 are Go tests (test/booted) and
# run with the rest of `go test ./...`.
.PHONY: deb rpm packages packages-lint repo

PKG_ARCHES ?= amd64 arm64
PMPACKAGE = $(GO) run ./internal/packaging/cmd/pmpackage -version '$(VERSION)' -ldflags '$(LDFLAGS)' -arch '$(PKG_ARCHES)'

deb:
	@$(PMPACKAGE) -format deb
rpm:
	@$(PMPACKAGE) -format rpm
packages:
	@$(PMPACKAGE) -format 'deb rpm'
repo:
	@$(GO) run ./internal/packaging/cmd/pmpackage repo -version '$(VERSION)' -ldflags '$(LDFLAGS)' -arch '$(PKG_ARCHES)'

# Built apart from dist/, so that older packages there are not linted.
packages-lint:
	@rm -rf .cache/packaging/lint
	@$(PMPACKAGE) -format 'deb rpm' -out .cache/packaging/lint
	@packaging/lint.sh .cache/packaging/lint

CHECKS += packages-lint
