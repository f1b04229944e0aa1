# Benchmarks (never part of `make test`): `make bench` runs the side-by-side
# of pacemaker, redis-server and ZooKeeper (bench/run.sh) and rewrites
# docs/BENCHMARKS.md; `make bench-quick` checks the script in about two
# minutes, writing to bench/out-quick instead of docs/.
.PHONY: bench bench-quick bench-go bench-engines

bench: build
	@bash scripts/install-deps.sh bench
	bash bench/run.sh

bench-quick: build
	@bash scripts/install-deps.sh bench
	BENCH_QUICK=1 BENCH_OUT=bench/out-quick BENCH_DOC=bench/out-quick/BENCHMARKS.md bash bench/run.sh

# The Go micro-benchmarks of the codec, store and server (allocations reported).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/wire/ ./internal/store/ ./internal/server/ ./internal/engine/

# The connection-engine comparison of issue 16 (bench/analysis.md): the own
# engine, gnet, nbio, netpoll, today's daemon and redis-server, interleaved;
# then RSS per idle connection. bench/engines is a module of its own, so the
# libraries never enter go.mod. Results in bench/out-engines (~15 minutes).
bench-engines:
	@bash scripts/install-deps.sh bench
	bash bench/engines/compare.sh $(CURDIR)/bench/out-engines
	bash bench/engines/idle.sh $(CURDIR)/bench/out-engines
