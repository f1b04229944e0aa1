#!/bin/sh
# %preun of the pacemaker rpm, as %systemd_preun: on erase (not upgrade)
# disable and stop the socket and the service.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now pacemaker.socket pacemaker.service >/dev/null 2>&1 || :
fi
exit 0
