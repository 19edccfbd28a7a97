#!/bin/sh
# Installs the browser tests' npm packages (playwright-core, axe-core) when
# one is missing; does nothing when both are there.
set -eu
cd "$(dirname "$0")/../tests/browser" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
