# Shared by the benchmark scripts: where the programs are, a scratch
# directory removed on exit, and a wall-clock timer.
set -euo pipefail
bin=${MAILSTAMP_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Seconds a command takes, its output discarded.
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
