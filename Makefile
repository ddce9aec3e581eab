# Shorthands for the project's scripts; each target runs exactly the script named.
.PHONY: demo test bench fuzz soak

demo:   ## the local demo: tansu + Envoy with kafka-lens on :19092 (README)
	envoy-configs/demo.sh

test:   ## every test: the README's test command, what .ci/run runs
	tests/run.sh

bench:  ## the benchmark: writes bench/results/ (bench/README.md)
	bench/run.sh

fuzz:   ## every fuzz target for an hour each (the test command runs them for 15 s)
	tests/fuzz.sh --seconds 3600

soak:   ## the long soak: 1,000,000 records through metrics + policy + rewrite (the test command runs 120,000)
	tests/soak.sh
