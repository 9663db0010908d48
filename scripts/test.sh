#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration
# tests that run real containers against the real kernel.
#
# Usage (as root, from anywhere): scripts/test.sh [extra nextest/cargo test args]
# Needs: the Rust toolchain, busybox-static (the tests' root filesystem),
# procps (ps), bsdutils (script), iproute2 (ip netns) and nftables (nft).
# `.ci/run` installs them on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the tests create namespaces, cgroups and mounts: run them as root" >&2
  exit 1
fi

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== the checker (static, runs inside test containers)"
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked -p hafen-checker --target "$(rustc -vV | sed -n 's/^host: //p')" --target-dir target/checker
export HAFEN_CHECKER="$PWD/target/checker/$(rustc -vV | sed -n 's/^host: //p')/debug/hafen-checker"
# The shim too: `run --init` bind-mounts it into containers as their init.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked -p hafen-shim --target "$(rustc -vV | sed -n 's/^host: //p')" --target-dir target/checker
export HAFEN_SHIM="$PWD/target/checker/$(rustc -vV | sed -n 's/^host: //p')/debug/hafen-shim"

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
