#!/usr/bin/env bash
# Runs every Fuzz* target in the module for FUZZTIME each (default 60s).
# New crashers land in the package's testdata/fuzz/<Target>/ and then run as
# regression tests in every `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-60s}"
failed=0
total=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    total=$((total + 1))
    echo "fuzz: $pkg $t for $fuzztime"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >"/tmp/fuzz-$t.log" 2>&1; then
      failed=$((failed + 1))
      echo "fuzz: $t FAILED:"; tail -30 "/tmp/fuzz-$t.log"
    else
      grep -E 'elapsed|^ok' "/tmp/fuzz-$t.log" | tail -2 | sed 's/^/  /'
    fi
  done
done
echo "fuzz: $total targets, $failed failed"
[ "$failed" -eq 0 ]
