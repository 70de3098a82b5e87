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

# Debian package (debian/). `make deb` builds mailstamp_VERSION_ARCH.deb with
# dpkg-buildpackage (which writes into the parent directory; the results are
# moved to $(DEB_OUT)) and runs lintian on it; `make deb-test` installs that
# package on this machine, checks it and purges it again (t/deb.sh, as root).
.PHONY: deb-deps deb deb-test
DEB_OUT   ?= $(BUILD)/deb
DEB_TOOLS  = dpkg-dev debhelper fakeroot lintian
DEB_FILE   = $(DEB_OUT)/mailstamp_$$(dpkg-parsechangelog -S Version)_$$(dpkg-architecture -qDEB_HOST_ARCH)

# The packaging tools and debian/control's Build-Depends; never removes or
# replaces an installed package.
deb-deps:
	@SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	missing=$$(for p in $(DEB_TOOLS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-remove $$missing || exit 1; \
	fi; \
	if ! dpkg-checkbuilddeps; then \
	  [ -n "$$missing" ] || $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get build-dep -y -qq --no-remove ./ || exit 1; \
	fi

deb: deb-deps
	DEB_BUILD_OPTIONS="parallel=$(JOBS) $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b
	@mkdir -p $(DEB_OUT); \
	v=$$(dpkg-parsechangelog -S Version); a=$$(dpkg-architecture -qDEB_HOST_ARCH); \
	for f in mailstamp_$${v}_$$a.deb mailstamp-dbgsym_$${v}_$$a.deb \
	         mailstamp_$${v}_$$a.buildinfo mailstamp_$${v}_$$a.changes; do \
	  if [ -e ../$$f ]; then mv -f ../$$f $(DEB_OUT)/; fi; \
	done; \
	ls -l $(DEB_OUT)/mailstamp*_$${v}_$$a.deb
	lintian --info --fail-on error $(DEB_FILE).changes

deb-test: deb
	SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO bash t/deb.sh $(DEB_FILE).deb
