#!/bin/sh
# Lints the packages in a directory (default dist/): lintian on each .deb,
# rpmlint on each .rpm. Fails on any error or warning that is not on an
# allow-list: packaging/lintian-overrides (shipped in the deb, where lintian
# reads it) and packaging/rpmlint.toml, each entry with its reason.
set -eu

dist=${1:-dist}
here=$(cd "$(dirname "$0")" && pwd)
status=0

set -- "$dist"/*.deb
[ -e "$1" ] || { echo "lint: no .deb in $dist (make deb)" >&2; exit 1; }
for deb in "$@"; do
	echo "lintian $(basename "$deb")"
	# Info tags are shown, not failed on.
	rc=0
	out=$(lintian --info --fail-on error,warning "$deb" 2>&1) || rc=$?
	printf '%s\n' "$out" | grep -v 'running with root privileges' || true
	if [ "$rc" -ne 0 ]; then
		echo "lint: lintian found errors or warnings in $deb" >&2
		status=1
	fi
done

set -- "$dist"/*.rpm
[ -e "$1" ] || { echo "lint: no .rpm in $dist (make rpm)" >&2; exit 1; }
for rpm in "$@"; do
	echo "rpmlint $(basename "$rpm")"
	out=$(rpmlint --config "$here/rpmlint.toml" "$rpm" 2>&1) || status=1
	printf '%s\n' "$out" | grep -E '^[^ ]+: [EW]: |packages and' || true
	if printf '%s\n' "$out" | grep -qE '^[^ ]+: [EW]: '; then
		echo "lint: rpmlint found errors or warnings in $rpm" >&2
		status=1
	fi
done
exit $status
