#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: Debian packages, the Python
# virtualenv from requirements-dev.txt, a running Docker engine and the test image.
# Usage: tests/bootstrap.sh [--no-image]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${O11Y_VENV:-$ROOT/.venv}
say() { printf '[bootstrap] %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "run as root (apt, dockerd and debootstrap need it)" >&2
    exit 1
  fi
}

# Debian packages: the Docker engine, debootstrap for the test image, iproute2 for ss,
# redis-server for the OnCall stand-in's unit tests (OnCall needs a real Redis).
packages=(docker.io debootstrap iproute2 git unzip redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  # The mirror builder downloads Debian's prometheus package: it needs the package lists.
  need_root
  say "apt-get update (no package lists yet)"
  apt-get update -qq
fi

# Python virtualenv, rebuilt when requirements change.
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the virtualenv $VENV from requirements-dev.txt"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v -i warning || true
  "$VENV/bin/pip" install -q -r requirements-dev.txt 2>&1 | grep -v -i warning || true
  "$VENV/bin/python" -c "import ansible, molecule, moto, boto3, pytest" 
  echo "$want" > "$stamp"
fi

# Docker engine: not started at boot on these machines.
if ! docker info >/dev/null 2>&1; then
  need_root
  say "starting dockerd"
  nohup /usr/sbin/dockerd >/var/log/o11y-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { say "dockerd did not start; see /var/log/o11y-dockerd.log" >&2; exit 1; }
fi

if [ "${1:-}" != "--no-image" ]; then
  say "test image: $(bash tests/image/build.sh | tail -n 1)"
fi
say "ready"
