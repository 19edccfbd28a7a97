#!/bin/sh
# Installs the browser test's npm packages (playwright-core) when missing.
set -eu
cd "$(dirname "$0")/../tests/browser" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
if [ ! -d node_modules ]; then
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
