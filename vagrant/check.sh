#!/bin/sh
# Checks the test bed after `vagrant up`: runs ansible/verify.yml (both pacemaker
# servers answer from every pacemaker host and from Nimbus with its own
# storm.yaml and JAAS file; every Storm host's storm.yaml names both) over
# Vagrant's inventory plus the test bed inventory, as the provisioner did.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ansible_dir=$(cd "$here/../ansible" && pwd)
vagrant_inventory="${VAGRANT_DOTFILE_PATH:-$here/.vagrant}/provisioners/ansible/inventory"
if [ ! -d "$vagrant_inventory" ]; then
  echo "check.sh: $vagrant_inventory is missing: run 'vagrant up' in $here first" >&2
  exit 2
fi
export ANSIBLE_CONFIG="$ansible_dir/ansible.cfg"
# The test bed's machines are new each `vagrant up`; Vagrant's provisioner
# skips host key checks for them too.
export ANSIBLE_HOST_KEY_CHECKING=False
exec ansible-playbook -i "$vagrant_inventory" -i "$ansible_dir/inventory/testbed" "$ansible_dir/verify.yml" "$@"
