#!/bin/sh
# %postun of the pacemaker rpm, as %systemd_postun_with_restart
# pacemaker.service: reload the units, and after an upgrade restart the
# service if it runs (the socket keeps listening; the new process takes over
# the heartbeats).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart pacemaker.service >/dev/null 2>&1 || :
	fi
fi
exit 0
