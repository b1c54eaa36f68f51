#!/usr/bin/env bash
# Runs the AMQP adapter's broker tests against RabbitMQ 4 (what compose and k8s run),
# beside the local 3.x broker the other tests use. No registry ships RabbitMQ 4 for this
# machine's Debian 12, so this builds a Debian 13 (trixie) root with debootstrap, installs
# trixie's rabbitmq-server (4.0.x, with its own Erlang 27) into it, and runs that broker
# in the chroot on 127.0.0.1:5673 (node rabbit4@localhost, sharing the host's epmd).
# Needs root (debootstrap, chroot, mounts). Idempotent; `--stop` stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${IMGFEAT_RABBITMQ4_ROOT:-/opt/trixie-rmq}
EXPECTED=4.0.5-6+deb13u2
ctl=(chroot "$ROOT" env HOME=/var/lib/rabbitmq rabbitmqctl -n rabbit4@localhost)

if [ "${1:-}" = --stop ]; then
  "${ctl[@]}" stop || true
  exit 0
fi

if [ ! -x "$ROOT/usr/sbin/rabbitmq-server" ]; then
  command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
  debootstrap --variant=minbase --include=rabbitmq-server trixie "$ROOT" http://deb.debian.org/debian
fi
installed=$(chroot "$ROOT" dpkg-query -W -f '${Version}' rabbitmq-server)
[ "$installed" = "$EXPECTED" ] || echo "note: rabbitmq-server $installed in $ROOT (this script was checked with $EXPECTED)"

mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
grep -q localhost "$ROOT/etc/hosts" 2>/dev/null || echo "127.0.0.1 localhost" >>"$ROOT/etc/hosts"
mkdir -p "$ROOT/etc/rabbitmq"
printf 'NODENAME=rabbit4@localhost\nNODE_PORT=5673\nDIST_PORT=25674\n' >"$ROOT/etc/rabbitmq/rabbitmq-env.conf"
printf 'listeners.tcp.default = 5673\nloopback_users = none\n' >"$ROOT/etc/rabbitmq/rabbitmq.conf"
if ! "${ctl[@]}" -q status >/dev/null 2>&1; then
  chroot "$ROOT" env HOME=/var/lib/rabbitmq rabbitmq-server -detached
  "${ctl[@]}" await_startup --timeout 120
fi
echo "broker: RabbitMQ $("${ctl[@]}" -q version) on 127.0.0.1:5673"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/imgfeat/target}
export IMGFEAT_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f
export IMGFEAT_TEST_RABBITMQCTL="${ctl[*]}"
# broker_restart stops the broker it is given: it stays on the local one.
cargo test -p imgfeat-amqp --test broker --test dlq_limits --test burst --test settle_failures --test secrets
