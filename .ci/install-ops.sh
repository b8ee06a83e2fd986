#!/usr/bin/env bash
# Installs what the metrics-pipeline test needs, when missing: Debian's
# graphite-carbon and graphite-web (run on the system's /usr/bin/python3),
# Node.js, and Etsy StatsD from the npm registry into .ops-tools/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/carbon-cache ] || need_apt+=(graphite-carbon)
/usr/bin/python3 -c 'import graphite' 2>/dev/null || need_apt+=(graphite-web)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

STATSD_VERSION=0.9.0
if [ ! -f .ops-tools/node_modules/statsd/stats.js ]; then
  mkdir -p .ops-tools
  (cd .ops-tools && npm install --no-audit --no-fund --silent "statsd@${STATSD_VERSION}")
fi
