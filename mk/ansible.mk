# Ansible roles (ansible/) and the Vagrant test bed (vagrant/); tests in test/ansible.
# `make test` runs them all through `go test ./...` (nothing is added to CHECKS,
# so nothing runs twice):
#   make ansible-lint        ansible-lint (production profile), yamllint, syntax
#                            checks, vagrant validate, the storm.yaml module tests
#   make ansible-booted      site.yml twice + verify.yml on five booted nspawn hosts,
#                            with a deb built from the tree (or $PACEMAKER_TEST_DEB)
#   make testbed-up          boot and provision the Vagrant test bed (needs a VM provider)
#   make testbed-check       ansible/verify.yml against the Vagrant test bed
#   make testbed-destroy
.PHONY: ansible-lint ansible-booted testbed-up testbed-check testbed-destroy

ansible-lint:
	$(GO) test -count=1 -run 'Lint|Yamllint|PlaybookSyntax|InventoryGroups|Vagrant|StormYAML' ./test/ansible

ansible-booted:
	$(GO) test -count=1 -v -timeout 20m -run TestSitePlaybookOnBootedHosts ./test/ansible

testbed-up: deb rpm
	cd vagrant && vagrant up

testbed-check:
	vagrant/check.sh

testbed-destroy:
	cd vagrant && vagrant destroy -f
