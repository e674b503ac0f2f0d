#!/usr/bin/env bash
# The seed scenario. Run it inside a throwaway network + mount namespace with its own berth
# directories (`make seed` does that for you); never on a machine's own namespace.
set -euo pipefail
say() { printf '$ %s\n' "$*" >&2; }

say berth run -d --name echo-server socat TCP-LISTEN:8080,fork,reuseaddr EXEC:cat
berth run -d --name echo-server socat TCP-LISTEN:8080,fork,reuseaddr EXEC:cat >/dev/null
say "echo 'hello from another container!' | berth run --rm socat - TCP:172.17.0.2:8080"
echo 'hello from another container!' |
  berth run --rm socat - TCP:172.17.0.2:8080,retry=20,interval=0.1
say berth rm -f echo-server
berth rm -f echo-server >/dev/null
