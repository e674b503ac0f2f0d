# Sourced first by each exploration (`. "$(dirname "$0")/sandbox.sh" "$@"`): re-runs the
# script in a new network namespace and a private mount namespace, then gives it a tmpfs /run
# and loopback up there. Sets `here` to the checkout. The machine's own network, firewall and
# /run are never touched.
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${BERTH_EXPLORE_SANDBOX:-}" != 1 ]; then
  export BERTH_EXPLORE_SANDBOX=1
  exec unshare -n -m --propagation private -- bash "$0" "$@"
fi
mount -t tmpfs -o mode=0755 tmpfs /run
ip link set lo up
