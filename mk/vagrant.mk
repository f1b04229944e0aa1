# The Vagrant test bed booted for real on this machine (vagrant/README.md):
#   make vagrant-box    the Debian 12 libvirt box, built from the Debian root the
#                       booted tests cache, added as local/debian12 under
#                       VAGRANT_HOME (.cache/vagrant/home); rebuilt only when
#                       its inputs change
#   make test-vagrant   boots pm1, nimbus1 and sup1 (PACEMAKER_TESTBED=local) on
#                       qemu TCG, provisions them with ansible/site.yml through
#                       Vagrant, runs vagrant/check.sh and a Storm-shaped load
#                       across a restart of pacemaker, destroys the bed (10-15 min)
# Not part of `make test`: .ci/run runs it after. Both need root.
.PHONY: vagrant-deps vagrant-box test-vagrant

VAGRANT_HOME ?= $(CURDIR)/.cache/vagrant/home
# The load generator, a binary of bin/ and its subcommand: pacemakerctl's bench
# until cmd/pacemaker-bench exists.
VAGRANT_BENCH ?= $(if $(wildcard cmd/pacemaker-bench/main.go),pacemaker-bench,pacemakerctl bench)
# Where the bed's pacemaker comes from: repo (make repo's signed dist/repo,
# served on the bed's network at http://192.168.56.1:8080, the role's repo
# method) or file (dist/*.deb copied by the playbook).
TESTBED_SOURCE ?= repo

vagrant-deps:
	@bash scripts/install-deps.sh vagrant

vagrant-box: vagrant-deps
	@VAGRANT_HOME='$(VAGRANT_HOME)' bash vagrant/box/build.sh

test-vagrant: PKG_ARCHES = amd64
test-vagrant: vagrant-deps build $(if $(filter repo,$(TESTBED_SOURCE)),repo,deb)
	@VAGRANT_HOME='$(VAGRANT_HOME)' VAGRANT_BENCH='$(VAGRANT_BENCH)' PACEMAKER_TESTBED_SOURCE='$(TESTBED_SOURCE)' bash vagrant/test-local.sh
