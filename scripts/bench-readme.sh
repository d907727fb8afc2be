#!/usr/bin/env bash
# Runs the comparison and replaces the README's results section (between the
# BENCH markers) with the generated table and chart. Never edit those numbers
# by hand.
set -euo pipefail
cd "$(dirname "$0")/../bench"
go run ./cmd/compare -out results -readme ../README.md
