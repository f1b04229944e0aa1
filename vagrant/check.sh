#!/bin/sh
# Checks the test bed after `vagrant up`: runs ansible/verify.yml (every pacemaker
# server answers from every pacemaker host and from Nimbus with its own
# storm.yaml and JAAS file; every Storm host's storm.yaml names them all) over
# Vagrant's inventory plus the test bed inventory, as the provisioner did.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ansible_dir=$(cd "$here/../ansible" && pwd)
vagrant_inventory="${VAGRANT_DOTFILE_PATH:-$here/.vagrant}/provisioners/ansible/inventory"
if [ ! -d "$vagrant_inventory" ]; then
  echo "check.sh: $vagrant_inventory is missing: run 'vagrant up' in $here first" >&2
  exit 2
fi
# The inventory the provisioner used: the test bed's, or for a profile with
# fewer hosts the cut-down copy the Vagrantfile wrote (PACEMAKER_TESTBED).
testbed_inventory="$ansible_dir/inventory/testbed"
if [ "${PACEMAKER_TESTBED:-full}" != full ]; then
  testbed_inventory="${VAGRANT_DOTFILE_PATH:-$here/.vagrant}/testbed-inventory"
fi
export ANSIBLE_CONFIG="$ansible_dir/ansible.cfg"
# The test bed's machines are new each `vagrant up`; Vagrant's provisioner
# skips host key checks for them too.
export ANSIBLE_HOST_KEY_CHECKING=False
exec ansible-playbook -i "$vagrant_inventory" -i "$testbed_inventory" "$ansible_dir/verify.yml" "$@"
