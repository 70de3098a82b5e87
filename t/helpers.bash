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

# A free port below the ephemeral range, so that no client's source port takes it before the server binds.
free_port() {
  /usr/bin/python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break'
}
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on $1" >&2
  [ -z "${WAIT_LOG:-}" ] || cat "$WAIT_LOG" >&2 2>/dev/null
  return 1
}
