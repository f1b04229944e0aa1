# The shipped systemd units: `make systemd-units` (run by `make test`) checks
# systemd/pacemaker.{socket,service} with `systemd-analyze verify` and prints
# the `systemd-analyze security` exposure of pacemaker.service, failing above
# SYSTEMD_MAX_EXPOSURE. test/systemd asserts the same in `go test`.
# verify checks that ExecStart= exists, hence the scratch root holding the
# built daemon as /usr/bin/pacemaker and the host's own system units.
SYSTEMD_MAX_EXPOSURE ?= 2.0

.PHONY: systemd-units
systemd-units: build
	@root=$$(mktemp -d) && trap 'rm -rf "$$root"' EXIT && \
	mkdir -p "$$root/lib/systemd" "$$root/etc/systemd/system" "$$root/usr/bin" "$$root/bin" && \
	cp -a /lib/systemd/system "$$root/lib/systemd/" && \
	cp systemd/pacemaker.socket systemd/pacemaker.service "$$root/etc/systemd/system/" && \
	cp bin/pacemaker "$$root/usr/bin/" && cp /bin/kill "$$root/bin/kill" && \
	out=$$(systemd-analyze verify --man=no --root="$$root" pacemaker.socket pacemaker.service 2>&1); \
	if [ $$? -ne 0 ] || [ -n "$$out" ]; then echo "systemd-analyze verify: not clean"; echo "$$out"; exit 1; fi; \
	echo "systemd-analyze verify systemd/pacemaker.{socket,service}: clean"
	@line=$$(systemd-analyze security --offline=yes --no-pager systemd/pacemaker.service | grep 'Overall exposure level') && \
	echo "systemd-analyze security: $$line" && \
	score=$$(echo "$$line" | sed -n 's/.*: \([0-9.]*\).*/\1/p') && \
	awk -v s="$$score" -v max="$(SYSTEMD_MAX_EXPOSURE)" 'BEGIN { if (s == "" || s + 0 > max + 0) { print "exposure " s " is above " max; exit 1 } }'

CHECKS += systemd-units
