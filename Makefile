# Make-style entry points around CMake. Settings live in Makefile.inc.
include Makefile.inc

.PHONY: all deps deps-build deps-demo deps-test deps-mta deps-bench deps-fuzz build demo test test-pg pg-pass install \
        sanitize fuzz bench clean print-deps print-deps-build print-deps-demo print-deps-test print-deps-bench \
        print-deps-fuzz

all: build

# Every list but the MTA (for .ci/run, which installs them itself), or one list.
print-deps:
	@echo $(DEB_ALL)
print-deps-build:
	@echo $(DEB_BUILD)
print-deps-demo:
	@echo $(DEB_DEMO)
print-deps-test:
	@echo $(DEB_TEST)
print-deps-bench:
	@echo $(DEB_BENCH)
print-deps-fuzz:
	@echo $(DEB_FUZZ)

# apt_install PACKAGES, PURPOSE: installs the packages not yet installed (as root, or through sudo),
# never removing or replacing one and without Recommends.
define apt_install
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "installing ($(2)):" $$missing; \
  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
  $$SUDO apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-remove --no-install-recommends $$missing; \
fi
endef

deps-build:
	@$(call apt_install,$(DEB_BUILD),build)
deps-demo: deps-build
	@$(call apt_install,$(DEB_DEMO),demo)
deps-test: deps-demo deps-mta
	@$(call apt_install,$(DEB_TEST),test)
	@sh t/sendmail-fetch.sh || echo "the tests that run mmilter under Sendmail will skip"
deps-bench: deps-test
	@$(call apt_install,$(DEB_BENCH),bench)
deps-fuzz: deps-build
	@$(call apt_install,$(DEB_FUZZ),fuzz)
# Postfix's smtp-sink and smtp-source are test peers, but installing Postfix where Exim (or any other
# MTA) runs would replace the host's mail server: then it is not installed, and the tests that need it
# say so when they skip. Postfix comes unconfigured ("No configuration"): nothing listens on port 25.
deps-mta:
	@if mta=$$(sh t/other-mta.sh); then \
	  echo "not installing $(DEB_MTA): this machine's MTA is" $$mta "- the tests that need smtp-sink will skip"; \
	else \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  dpkg-query -W -f='$${Status}\n' $(DEB_MTA) 2>/dev/null | grep -q '^install ok installed' || \
	    echo 'postfix postfix/main_mailer_type select No configuration' | $$SUDO debconf-set-selections; \
	  $(call apt_install,$(DEB_MTA),test: smtp-sink and smtp-source with no other MTA installed); \
	fi
# Everything (a CI machine).
deps: deps-bench deps-fuzz

build:
	$(CMAKE) -S . -B $(BUILD) $(CMAKE_FLAGS)
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# Installs what building and the demo need (no MTA), builds, and shows the main job on a throwaway store.
demo: deps-demo
	$(MAKE) build
	MAILSTAMP_BIN=$(CURDIR)/$(BUILD) bash contrib/demo.sh

# Every test: Catch2 unit tests and the bats files (benchmarks excluded); then the tests that skipped, and why.
# A failing test file is run once more (--repeat until-pass:2): a flake shows in the log as a failure, then a pass,
# and a real failure fails twice.
# Then, unless PG_PASS=0, the PostgreSQL pass (pg-pass).
test: deps-test
	$(MAKE) build
	cd $(BUILD) && { $(CTEST) --output-on-failure -j $(JOBS) -LE '^pg$$' --repeat until-pass:2; rc=$$?; \
	  grep -h '^ok .* # skip' Testing/Temporary/LastTest.log | sed 's/^ok [0-9]* /skipped: /'; exit $$rc; }
	$(if $(filter 1,$(PG_PASS)),$(MAKE) pg-pass)

# The PostgreSQL pass alone.
test-pg: deps-test
	$(MAKE) build
	$(MAKE) pg-pass

# pg-pass: every bats file again, and the unit tests tagged [pg] (ctest label pg), against a throwaway
# PostgreSQL cluster in a temporary directory (t/pg.sh), stopped and removed however the tests end. Each
# bats test gets a database of its own (MAILSTAMP_TEST_PG: t/helpers.bash); the unit tests get the
# database "unit" (MAILSTAMP_TEST_PG_URI). Expects a build.
pg-pass:
	@echo "== the tests again, against PostgreSQL"
	@dir=$$(mktemp -d /tmp/mailstamp-pg.XXXXXX) || exit 1; \
	trap '$(CURDIR)/t/pg.sh stop "$$dir"; rm -rf "$$dir"' EXIT; trap 'exit 130' INT TERM; \
	$(CURDIR)/t/pg.sh start "$$dir" && $(CURDIR)/t/pg.sh createdb "$$dir" unit || exit 1; \
	MAILSTAMP_TEST_PG=$$dir; MAILSTAMP_TEST_PG_URI=$$($(CURDIR)/t/pg.sh uri "$$dir" unit); \
	export MAILSTAMP_TEST_PG MAILSTAMP_TEST_PG_URI; \
	cd $(BUILD) && { $(CTEST) --output-on-failure -j $(JOBS) -L '^(bats|pg)$$' --repeat until-pass:2; rc=$$?; \
	  grep -h '^ok .* # skip' Testing/Temporary/LastTest.log | sed 's/^ok [0-9]* /skipped (pg): /'; exit $$rc; }

install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD)

sanitize:
	$(MAKE) test BUILD=$(BUILD)-asan SANITIZE=1 BUILD_TYPE=Debug PG_PASS=0

# libFuzzer targets (clang), each run for FUZZ_SECONDS over the fixture corpus.
fuzz: deps-fuzz
	CXX=clang++ $(CMAKE) -S . -B $(BUILD)-fuzz -DMAILSTAMP_FUZZ=ON -DMAILSTAMP_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash t/fuzz/run.sh $(BUILD)-fuzz

bench: deps-bench
	$(MAKE) build
	cd $(BUILD) && $(CTEST) -C bench -L bench --output-on-failure

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz

# Debian package (debian/). `make deb` builds mailstamp_VERSION_ARCH.deb with
# dpkg-buildpackage (which writes into the parent directory; the results are
# moved to $(DEB_OUT)) and runs lintian on it; `make deb-test` installs that
# package on this machine, checks it and purges it again (t/deb.sh, as root).
.PHONY: deb-deps deb deb-test
DEB_OUT   ?= $(BUILD)/deb
DEB_FILE   = $(DEB_OUT)/mailstamp_$$(dpkg-parsechangelog -S Version)_$$(dpkg-architecture -qDEB_HOST_ARCH)

# The packaging tools and debian/control's Build-Depends; never removes or
# replaces an installed package.
deb-deps:
	@SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	missing=$$(for p in $(DEB_PACKAGE); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-remove --no-install-recommends $$missing || exit 1; \
	fi; \
	if ! dpkg-checkbuilddeps; then \
	  [ -n "$$missing" ] || $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get build-dep -y -qq --no-remove --no-install-recommends ./ || exit 1; \
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
