#!/bin/sh
# %post of the pacemaker rpm, as %systemd_post pacemaker.socket: on a first
# installation apply the distribution's preset policy (which on RHEL and
# Fedora leaves unknown units disabled: nothing starts by itself). Works
# without a running systemd, e.g. in an image build.
if [ "$1" -eq 1 ]; then
	systemctl --no-reload preset pacemaker.socket >/dev/null 2>&1 || :
fi
exit 0
