# Portico's front door. Every target installs what it needs first (Debian packages, npm ci).
#   make demo    build and run Portico on loopback
#   make check   build and run every test suite; ends with "N passed, N failed"
#   make build   build into build/ (gcc, debugoptimized)
#   make format  reformat our C files with the committed .clang-format
#   make fuzz    run every fuzz target for FUZZ_SECONDS (default 600) with clang + libFuzzer
#   make bench   build the benchmarks (see tests/bench/README.md)
#   make bench-compare  Portico vs nginx-tls and ssh -R on loopback (DURATION, REPS; tests/bench/README.md)
#   make clean   remove the build directories

FUZZ_SECONDS ?= 600

.PHONY: all build check demo format format-check fuzz bench bench-compare clean

all: build

build:
	@scripts/deps.sh build
	@if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build; fi
	ninja -C build

check:
	@scripts/check.sh

demo:
	@scripts/demo.sh

format:
	@scripts/format.sh

format-check:
	@scripts/format.sh --check

fuzz:
	@scripts/deps.sh check
	@if [ -d build-fuzz ]; then CC=clang meson setup --reconfigure build-fuzz -Dfuzz=true >/dev/null; \
	 else CC=clang meson setup build-fuzz -Dfuzz=true; fi
	ninja -C build-fuzz
	@for t in build-fuzz/tests/fuzz/fuzz_*; do \
	  n=$${t##*/fuzz_}; d=tests/fuzz/$$n.dict; \
	  case $$n in http_*) d=tests/fuzz/http.dict;; frame|hblock) d=tests/fuzz/proto.dict;; esac; \
	  echo "== $$n"; scripts/fuzz_run.sh $$t tests/fuzz/corpus/$$n $(FUZZ_SECONDS) $$d || exit 1; \
	done

bench: build
	ninja -C build tests/bench/proto_bench
	./build/tests/bench/proto_bench

bench-compare:
	@tests/bench/compare.sh

clean:
	rm -rf build build-asan build-fuzz build-release build-*.setup.log
