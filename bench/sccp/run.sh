#!/usr/bin/env bash
# SCCP server benchmark: memory per registered phone (50,000 held) and full registrations
# per second. Server and load generator are separate processes on loopback; needs root to
# raise the open-file limit. Usage: bench/sccp/run.sh [--hold N] [--phones N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p sccp-server --example sccp_bench
exec "${CARGO_TARGET_DIR:-target}/release/examples/sccp_bench" "$@"
