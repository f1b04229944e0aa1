# Fuzzing: `make fuzz` runs each target for FUZZTIME (default 60s); `make test`
# runs each briefly (seed corpora also run as plain tests in every go test).
.PHONY: fuzz fuzz-short
fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash scripts/fuzz.sh

fuzz-short:
	FUZZTIME=3s bash scripts/fuzz.sh

CHECKS += fuzz-short
