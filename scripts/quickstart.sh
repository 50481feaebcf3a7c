#!/usr/bin/env bash
# Quick start, step one: install everything shoal needs and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system.sh
npm install --no-audit --no-fund
npm run demo
