#!/usr/bin/env bash
# Builds berth's release binary and links it as target/dist/berth (printed on stdout), with
# the names podman looks for beside it (target/dist/netavark, target/dist/aardvark-dns).
#
# The binary is linked statically and without position independence (glibc's static libc;
# `-C relocation-model=static`), the way Go tools such as Docker's are: every door call
# (podman's netavark, a CNI ADD) is a new process, and such a binary starts with no dynamic
# loader, no shared libraries to map and no relocations to apply, about 0.7 ms less per
# call here. The trade-off, written down in docs/ARCHITECTURE.md ("Process start"): the
# program's own code is not placed at a random address (its heap, stack and mappings still
# are). `cargo build --release` still makes an ordinary dynamic binary in target/release.
#
# The name podman runs, target/dist/netavark, is berth-shim (shim/): a program with no C
# library that hands setup and teardown to a running agent and otherwise runs the `berth`
# beside it. It is copied next to berth for that. Where it cannot be built (it makes x86-64
# system calls), netavark is berth itself.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --locked --release --bins --target "$host" >&2
mkdir -p target/dist
ln -sfn "../$host/release/berth" target/dist/berth
if [ "$(uname -m)" = x86_64 ]; then
  cargo build --locked --release --manifest-path shim/Cargo.toml --target-dir target/shim >&2
  install -m 0755 target/shim/release/berth-shim "target/$host/release/berth-shim"
  ln -sfn "../$host/release/berth-shim" target/dist/netavark
else
  ln -sfn berth target/dist/netavark
fi
ln -sfn berth target/dist/aardvark-dns
echo "$PWD/target/dist/berth"
