# Shared setup for the bats files: the build tree's programs on PATH, and a
# private HOME, config and store per test.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

: "${MAILSTAMP_BIN:=$BATS_TEST_DIRNAME/../build}"
: "${MAILSTAMP_SRC:=$BATS_TEST_DIRNAME/..}"

common_setup() {
  export PATH="$MAILSTAMP_BIN:$PATH"
  export HOME="$BATS_TEST_TMPDIR/home"
  mkdir -p "$HOME"
  unset MAILSTAMP_CONFIG MAILSTAMP_DB XDG_CONFIG_HOME XDG_DATA_HOME MAILSTAMP_TEST_NOW
  export MAILSTAMP_DB="$BATS_TEST_TMPDIR/store.db"
  FIX="$MAILSTAMP_SRC/t/fixtures"
}
