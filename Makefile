# Make-style entry points around CMake. Settings live in Makefile.inc.
include Makefile.inc

.PHONY: all deps build demo test install sanitize fuzz bench clean print-deps

all: build

print-deps:
	@echo $(DEB_ALL)

# Installs the Debian packages that are missing (as root, or through sudo).
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build:
	$(CMAKE) -S . -B $(BUILD) $(CMAKE_FLAGS)
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# Installs, builds, and shows the main job on a throwaway store.
demo: deps build
	MAILSTAMP_BIN=$(CURDIR)/$(BUILD) bash contrib/demo.sh

# Every test: Catch2 unit tests and the bats files (benchmarks excluded).
test: deps build
	cd $(BUILD) && $(CTEST) --output-on-failure -j $(JOBS)

install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD)

sanitize:
	$(MAKE) test BUILD=$(BUILD)-asan SANITIZE=1 BUILD_TYPE=Debug

# libFuzzer targets (clang), each run for FUZZ_SECONDS over the fixture corpus.
fuzz:
	CXX=clang++ $(CMAKE) -S . -B $(BUILD)-fuzz -DMAILSTAMP_FUZZ=ON -DMAILSTAMP_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash t/fuzz/run.sh $(BUILD)-fuzz

bench: deps build
	cd $(BUILD) && $(CTEST) -C bench -L bench --output-on-failure

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
