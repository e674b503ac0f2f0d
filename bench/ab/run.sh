#!/usr/bin/env bash
# Two (or more) berth builds compared call by call: netavark door setups and teardowns on one
# berth root, the builds taking turns, so that a drift of the machine's speed (seen here: a
# third within an hour) hits each build alike. Per-build medians; no netavark involved.
#   sudo bash bench/ab/run.sh N BERTH_A BERTH_B [BERTH_C ...]
# e.g. copy target/dist/berth aside, rebuild, and compare the copy with the new build.
# Runs inside fresh network + mount namespaces (a private tmpfs over /run): the machine's
# own network, firewall and /run/netns are not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$#" -lt 3 ]; then
  echo "usage: bash bench/ab/run.sh N BERTH_A BERTH_B [...]" >&2
  exit 2
fi
for b in "${@:2}"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }
done
exec unshare -n -m --propagation private -- python3 "$here/ab.py" "$@"
