#!/bin/sh
# One entry point for a fresh clone: makes sure Node 24 and the locked dependencies are present, then runs
#   demo            the main job on the embedded default (no services, no credentials); also links the
#                   `segsync` command into ~/.local/bin (scripts/link-command.sh) so it runs from any folder
#   test            type check, then every test under test/ with node's test runner
#   exec CMD ...    any command with the project's Node first on PATH (benchmarks use this)
# segsync runs on Node 24 (package.json engines; type stripping, jsforce 3, @hubspot/api-client 14, p-retry 9).
# Any Node with npm can run this script: Node 24 is installed from the npm registry into .tools/ (kept out of
# git) unless Node >= 24 is already first on PATH. The `segsync` command (bin/segsync) uses the same Node.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools="$root/.tools"
node_ok() { "$1" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; }
if [ -x "$tools/node_modules/.bin/node" ] && node_ok "$tools/node_modules/.bin/node"; then
  :
elif command -v node >/dev/null 2>&1 && node_ok node; then
  tools=""
else
  echo "segsync: installing Node 24 into .tools/ (one time)" >&2
  mkdir -p "$tools"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$tools" node@24 >&2
fi
[ -n "$tools" ] && PATH="$tools/node_modules/.bin:$PATH" && export PATH

# Install dependencies exactly as locked whenever the lock file changed since the last install.
stamp="node_modules/.segsync-lock.sha"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "segsync: installing dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# segsync's V8 setting, the same for the CLI, the tests and the benchmarks (and in the Dockerfile): a sync holds
# a few batches of records across I/O, and with the default young generation (up to 64 MB a semi-space) V8 keeps
# ~100 MB more resident at 1M records for no gain in speed (docs/benchmarks.md, bench:sync).
NODE_OPTIONS="--max-semi-space-size=8${NODE_OPTIONS:+ $NODE_OPTIONS}"
export NODE_OPTIONS

cmd=${1:-demo}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    sh scripts/link-command.sh || echo "segsync: could not link the segsync command (run $root/bin/segsync directly)" >&2
    exec node src/cli/main.ts demo "$@" ;;
  test)
    node node_modules/typescript/bin/tsc -p tsconfig.json
    # The dashboard's browser tests drive Debian's chromium (test/dashboard-browser.test.ts): installed here when
    # missing and this is root with apt-get; otherwise say what to install (those tests then skip, saying why).
    chromium=${SEGSYNC_CHROMIUM:-/usr/bin/chromium}
    if [ ! -x "$chromium" ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "segsync: installing chromium for the dashboard's browser tests (apt-get install -y chromium)" >&2
        { apt-get install -y chromium >&2 || { apt-get update >&2 && apt-get install -y chromium >&2; }; } || echo "segsync: could not install chromium; the browser tests will skip" >&2
      else
        echo "segsync: $chromium is missing: the dashboard's browser tests will skip. Install it with: sudo apt-get install -y chromium (Debian/Ubuntu), or set SEGSYNC_CHROMIUM to a Chromium binary" >&2
      fi
    fi
    exec node --test --test-timeout=600000 --test-reporter=spec "$@" 'test/**/*.test.ts' ;;
  exec) exec "$@" ;;
  *) echo "usage: scripts/dev.sh demo|test|exec CMD..." >&2; exit 2 ;;
esac
