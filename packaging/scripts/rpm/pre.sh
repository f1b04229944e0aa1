#!/bin/sh
# %pre of the pacemaker rpm: create the system user and group before the
# files are unpacked (the keytab directory belongs to the group), as
# %sysusers_create_compat does: the sysusers.d line is passed on stdin because
# the package's /usr/lib/sysusers.d/pacemaker.conf is not on disk yet.
if command -v systemd-sysusers >/dev/null 2>&1; then
	echo 'u pacemaker - "Apache Storm Pacemaker heartbeat server" /nonexistent /usr/sbin/nologin' |
		systemd-sysusers --replace=/usr/lib/sysusers.d/pacemaker.conf - || :
else
	getent group pacemaker >/dev/null || groupadd --system pacemaker || :
	getent passwd pacemaker >/dev/null || useradd --system --gid pacemaker \
		--home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
		--comment "Apache Storm Pacemaker heartbeat server" pacemaker || :
fi
exit 0
