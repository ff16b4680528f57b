# The commands a Spindle developer (and CI) runs. Each first runs scripts/bootstrap, which installs what
# is missing from Debian's packages.
#   make run    build and start the users service (examples/users) on http://127.0.0.1:8080 with SQLite
#   make test   release build (GCC 12) + every test
#   make check  ASan+UBSan and TSan builds (clang-19) running the tests (the fuzzers 20 s each among
#               them), minus those labelled slow; the GCC build's tests under valgrind
#   make fuzz   every fuzzer for FUZZ_SECONDS (300) each
#   make bench  the benchmarks in bench/
#   make bench-matrix  Spindle against Tomcat and Node.js (docs/benchmarks/matrix.md; -quick: a short run)

LISTEN ?= 127.0.0.1:8080
DATABASE_URL ?= sqlite://users.db
WORKERS ?=

.PHONY: all bootstrap build run test check asan tsan valgrind fuzz bench bench-matrix bench-matrix-quick clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	cmake --preset release
	cmake --build --preset release

run: build
	DATABASE_URL='$(DATABASE_URL)' ./build/release/examples/users-server --listen $(LISTEN) $(if $(WORKERS),--workers $(WORKERS))

test: build
	ctest --preset release

asan: bootstrap
	cmake --preset asan
	cmake --build --preset asan
	ctest --preset asan

tsan: bootstrap
	cmake --preset tsan
	cmake --build --preset tsan
	ctest --preset tsan

valgrind: build
	scripts/valgrind-tests build/release

# Every libFuzzer target for FUZZ_SECONDS each (ctest gives them 20 s in make check).
FUZZ_SECONDS ?= 300
fuzz: bootstrap
	cmake --preset asan
	cmake --build --preset asan
	scripts/fuzz $(FUZZ_SECONDS) build/asan

check: asan tsan valgrind

bench: build
	scripts/bootstrap --bench
	scripts/run-benchmarks

# The comparison matrix against Tomcat and Node.js: docs/benchmarks/matrix.md and its charts.
bench-matrix: build
	scripts/bootstrap --bench
	/usr/bin/python3 bench/matrix/run.py

bench-matrix-quick: build
	scripts/bootstrap --bench
	/usr/bin/python3 bench/matrix/run.py --quick --out build/matrix-quick

clean:
	rm -rf build
