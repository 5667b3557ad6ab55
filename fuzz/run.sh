#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, starting from the
# committed seed corpus (copied, so the repository is not modified).
# Needs cargo-fuzz (installed here if missing) and the stable toolchain
# with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo fuzz build -O
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    cp fuzz/corpus/"$target"/* "$work/$target/"
    echo "=== fuzz $target for ${seconds}s"
    if ! cargo fuzz run -O "$target" "$work/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
        >"$work/$target.log" 2>&1; then
        grep -E "panicked|SUMMARY|ERROR|artifact|Test unit" "$work/$target.log" >&2 || tail -30 "$work/$target.log" >&2
        echo "fuzz: $target found a crash (the input is under fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E "^Done" "$work/$target.log" || true
done
echo "fuzz: every target ran ${seconds}s without a crash"
