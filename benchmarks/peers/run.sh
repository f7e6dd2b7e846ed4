#!/usr/bin/env bash
# engramdb side by side with Mem0 OSS, Chroma and BM25, measured in one run (`make bench-peers`).
#
#   bash benchmarks/peers/run.sh            # everything (see README.md for the time it takes)
#   bash benchmarks/peers/run.sh --quick    # a few minutes' smoke test, results in results/quick/
#   SYSTEMS="bm25 chroma" WORKLOADS=quality bash benchmarks/peers/run.sh   # a part
#
# Extra arguments go to bench.py (e.g. --lme-questions 93 --sizes 1000 10000).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS_VENV="$HERE/.venv"
MAIN_PY="$ROOT/.venv/bin/python"
PY="${PYTHON:-python3}"
SYSTEMS="${SYSTEMS:-bm25 chroma-raw chroma mem0 engramdb}"
# A full run replaces each system's results; a partial one (WORKLOADS=...) keeps the others.
FRESH="--fresh"
[ -n "${WORKLOADS:-}" ] && FRESH=""
WORKLOADS="${WORKLOADS:-quality,scale}"
QUICK=""
for a in "$@"; do [ "$a" = "--quick" ] && QUICK=1; done
RESULTS="$HERE/results"
[ -n "$QUICK" ] && RESULTS="$HERE/results/quick"

# 1. The peers' own virtual environment, kept apart from the project's dependencies.
stamp="$PEERS_VENV/.installed-$(sha1sum "$HERE/requirements.txt" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "== installing the peers' venv ($PEERS_VENV)"
  test -x "$PEERS_VENV/bin/python" || "$PY" -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/python" -m pip install -q --upgrade pip
  # torch first and alone: pip then takes the local CPU build, not a multi-GB CUDA one.
  "$PEERS_VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$PEERS_VENV/bin/python" -m pip install -q -r "$HERE/requirements.txt"
  rm -f "$PEERS_VENV"/.installed-*
  touch "$stamp"
fi

# 2. Measurements run in a network namespace with only a loopback device when the machine lets
#    us make one (root + unshare); the Python guard in common.py records any attempt either way.
netns() {
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null \
     && unshare -n true 2>/dev/null; then
    PEERS_NETNS="loopback only (unshare -n)" unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    PEERS_NETNS="host network; Python-level guard only" "$@"
  fi
}

status=0
started=$(date +%s)
mkdir -p "$RESULTS"
for system in $SYSTEMS; do
  workloads="$WORKLOADS"
  # chroma-raw only explains Mem0's quality (same text embedded, no Mem0 pipeline).
  [ "$system" = chroma-raw ] && workloads=quality
  if [ "$system" = engramdb ]; then
    py="$MAIN_PY"
    if ! "$py" -c "from engramdb import Memory" 2>"$RESULTS/engramdb-import-error.txt"; then
      echo "!! engramdb does not import in $ROOT/.venv; see $RESULTS/engramdb-import-error.txt"
      status=1
      continue
    fi
    rm -f "$RESULTS/engramdb-import-error.txt"
  else
    py="$PEERS_VENV/bin/python"
  fi
  echo "== $system ($workloads)"
  netns "$py" "$HERE/bench.py" run --systems "$system" --workloads "$workloads" \
    --results "$RESULTS" $FRESH "$@" || status=1
done
echo "== measured in $(( ($(date +%s) - started) / 60 )) min"

# 3. Plots (matplotlib lives in the peers' venv), then the tables and ratios (project venv).
"$PEERS_VENV/bin/python" "$HERE/plots.py" --results "$RESULTS" ${QUICK:+--quick} || status=1
"$MAIN_PY" "$HERE/report.py" --results "$RESULTS" ${QUICK:+--quick} || status=1
exit $status
