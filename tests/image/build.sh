#!/usr/bin/env bash
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Build (or reuse) the Debian 12 + systemd test image for o11y.stack scenarios.
#
#   tests/image/build.sh [--verify] [--force]
#
# The image is debootstrapped from the Debian mirror configured in this
# machine's apt sources (never hard-coded), gets a venv for the stand-ins at
# /opt/o11y-standins/venv, and is imported with `docker import` (no registry).
#
# Tag:   o11y-test/debian12-systemd:<recipe-hash>   (+ :latest)
#        recipe-hash = first 12 hex digits of sha256 over this script and the
#        pinned recipe files (recipe/packages.txt, recipe/requirements.txt).
#        The build is skipped when an image with that tag exists.
# O11Y_TEST_IMAGE=<ref>  use that image instead; nothing is built.
# --verify  boot a container the way the molecule scenarios do, wait for
#           systemd, and run the MinIO stand-in from a freshly built artifact
#           mirror in it (--version; a Type=notify unit shaped like upstream;
#           /minio/health/live; S3 create-bucket with the image's python3-boto3).
# --force   rebuild even when the tagged image exists.
#
# Progress goes to stderr; the image reference is the last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RECIPE="$HERE/recipe"
REPO_NAME="o11y-test/debian12-systemd"
SUITE="bookworm"
VENV="/opt/o11y-standins/venv"

VERIFY=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --verify) VERIFY=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '3,21p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The Docker engine does not run at boot on the test machines.
ensure_docker() {
    docker info >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || [ ! -x /usr/sbin/dockerd ]; then
        die "docker engine not reachable (docker info fails)"
    fi
    log "starting dockerd (log: /var/log/o11y-dockerd.log)"
    nohup /usr/sbin/dockerd >/var/log/o11y-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    die "dockerd did not come up; see /var/log/o11y-dockerd.log"
}

# --- which image ------------------------------------------------------------
if [ -n "${O11Y_TEST_IMAGE:-}" ]; then
    log "O11Y_TEST_IMAGE is set; using it, building nothing"
    IMAGE="$O11Y_TEST_IMAGE"
else
    HASH="$(cat "$HERE/build.sh" "$RECIPE/packages.txt" "$RECIPE/requirements.txt" | sha256sum | cut -c1-12)"
    IMAGE="$REPO_NAME:$HASH"
fi

ensure_docker

packages_csv() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$RECIPE/packages.txt" | grep -v '^$' | paste -sd, -
}

# Debian mirror URL from apt's own configuration (deb822 .sources or one-line
# lists): the first "deb" entry that carries the plain suite with "main".
find_mirror() {
    python3 - "$SUITE" <<'PY'
import glob, sys
suite = sys.argv[1]
def stanzas_deb822(text):
    cur = {}
    key = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                yield cur
            cur, key = {}, None
            continue
        if line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and key:
            cur[key] += " " + line.strip()
            continue
        key, _, val = line.partition(":")
        key = key.strip().lower()
        cur[key] = val.strip()
found = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for st in stanzas_deb822(open(path).read()):
        if st.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in st.get("types", "").split() and suite in st.get("suites", "").split() \
                and "main" in st.get("components", "").split():
            found.extend(st.get("uris", "").split())
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 3 and words[1] == suite and "main" in words[2:]:
            found.append(words[0])
if not found:
    sys.exit("no apt source for suite %r with component main" % suite)
print(found[0].rstrip("/"))
PY
}

ROOTFS=""
cleanup() {
    if [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ]; then
        for m in "$ROOTFS/dev/pts" "$ROOTFS/dev" "$ROOTFS/proc" "$ROOTFS/sys"; do
            if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
        done
        rm -rf --one-file-system "$ROOTFS"
        rm -f "$ROOTFS".*.log
    fi
}
trap cleanup EXIT

in_chroot() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        chroot "$ROOTFS" "$@"
}

build_image() {
    [ "$(id -u)" = 0 ] || die "building the image needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install -y debootstrap)"
    local mirror started
    started=$(date +%s)
    mirror="$(find_mirror)" || die "could not read a Debian mirror from apt's sources"
    ROOTFS="$(mktemp -d /var/tmp/o11y-rootfs.XXXXXX)"
    chmod 755 "$ROOTFS"
    log "debootstrap $SUITE from $mirror into $ROOTFS (log: $ROOTFS.debootstrap.log)"
    if ! debootstrap --variant=minbase --include="$(packages_csv)" \
            "$SUITE" "$ROOTFS" "$mirror" >"$ROOTFS.debootstrap.log" 2>&1; then
        tail -n 30 "$ROOTFS.debootstrap.log" >&2
        die "debootstrap failed"
    fi
    rm -f "$ROOTFS.debootstrap.log"

    log "creating $VENV and installing pinned Python packages"
    mount -t proc proc "$ROOTFS/proc"
    mount --bind /dev "$ROOTFS/dev"
    mount --bind /dev/pts "$ROOTFS/dev/pts"
    cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    install -m 0644 "$RECIPE/requirements.txt" "$ROOTFS/tmp/o11y-requirements.txt"
    # pip in the chroot trusts what the host trusts (TLS-intercepting proxies
    # ship their CA in the host bundle) and honours the host's index/proxy env.
    local cabundle="" pipenv=() v
    for v in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
        if [ -n "$v" ] && [ -f "$v" ]; then cabundle="$v"; break; fi
    done
    if [ -n "$cabundle" ]; then
        install -m 0644 "$cabundle" "$ROOTFS/tmp/o11y-host-ca.pem"
        pipenv+=(PIP_CERT=/tmp/o11y-host-ca.pem)
    fi
    for v in PIP_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        case "${!v:-}" in ""|file:*) ;; *) pipenv+=("$v=${!v}") ;; esac
    done
    in_chroot /usr/bin/python3 -m venv "$VENV"
    in_chroot env "${pipenv[@]}" "$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check \
        --progress-bar off -q -r /tmp/o11y-requirements.txt >&2
    rm -f "$ROOTFS/tmp/o11y-host-ca.pem"
    in_chroot "$VENV/bin/python3" -c 'import moto, boto3, yaml, werkzeug; print("venv ok: moto", moto.__version__)' >&2
    umount "$ROOTFS/dev/pts" "$ROOTFS/dev" "$ROOTFS/proc"

    log "cleaning and preparing for systemd in a container"
    rm -f "$ROOTFS/tmp/o11y-requirements.txt"
    in_chroot apt-get clean
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
        "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log \
        "$ROOTFS"/var/log/apt/* "$ROOTFS"/root/.cache
    find "$ROOTFS$VENV" -name __pycache__ -prune -exec rm -rf {} +
    # docker manages these three; keep them empty in the image.
    : >"$ROOTFS/etc/resolv.conf"
    : >"$ROOTFS/etc/hostname"
    # Empty machine-id: systemd generates a transient one per container boot.
    : >"$ROOTFS/etc/machine-id"
    rm -f "$ROOTFS/var/lib/dbus/machine-id"
    # Units that fail or make no sense in a container.
    local unit
    for unit in systemd-udevd.service systemd-udevd-control.socket \
            systemd-udevd-kernel.socket systemd-udev-trigger.service \
            systemd-udev-settle.service systemd-modules-load.service \
            systemd-remount-fs.service systemd-firstboot.service \
            getty@tty1.service getty-static.service console-getty.service \
            serial-getty@.service dev-hugepages.mount sys-fs-fuse-connections.mount \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
            apt-daily.timer apt-daily-upgrade.timer fstrim.timer; do
        ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
    done

    log "importing $IMAGE"
    local base="$REPO_NAME:import-$HASH"
    tar --numeric-owner --xattrs -C "$ROOTFS" -c . \
        | docker import -m "o11y.stack test image rootfs, recipe $HASH" - "$base" >/dev/null
    # docker import cannot set STOPSIGNAL; a metadata-only build step can.
    if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" - >/dev/null 2>"$ROOTFS.build.log" <<EOF
FROM $base
ENV container=docker LANG=C.UTF-8
LABEL org.o11y.test-image.recipe-hash="$HASH"
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
EOF
    then
        cat "$ROOTFS.build.log" >&2
        die "docker build (metadata step) failed"
    fi
    rm -f "$ROOTFS.build.log"
    docker rmi "$base" >/dev/null
    log "built $IMAGE in $(( $(date +%s) - started ))s"
}

if [ -z "${O11Y_TEST_IMAGE:-}" ]; then
    if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "image $IMAGE exists (recipe unchanged); skipping build"
    else
        build_image
    fi
    docker tag "$IMAGE" "$REPO_NAME:latest"
fi

# --- verification ---------------------------------------------------------
CAPS="CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE
MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"

verify_image() {
    local tmp state arch asset version py
    py="${O11Y_PYTHON:-python3}"
    tmp="$(mktemp -d /tmp/o11y-image-verify.XXXXXX)"
    VERIFY_TMP="$tmp"
    # shellcheck disable=SC2317
    verify_cleanup() {
        if [ -n "${cid:-}" ]; then docker rm -f "$cid" >/dev/null 2>&1 || true; fi
        rm -rf "${VERIFY_TMP:-}"
        cleanup
    }
    trap verify_cleanup EXIT

    log "verify: building the artifact mirror into $tmp/mirror"
    "$py" "$REPO/tests/standins/build_mirror.py" --out "$tmp/mirror" >&2
    case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=amd64 ;; esac
    asset="$(find "$tmp/mirror/github.com/minio/minio/releases/download" -type f \
        -name "minio.linux-$arch.*" ! -name '*.sha256sum' | sort | head -n1)"
    [ -n "$asset" ] || die "verify: no MinIO artifact in the mirror"

    local capargs=()
    for c in $CAPS; do capargs+=(--cap-add "$c"); done
    log "verify: starting a container from $IMAGE"
    cid="$(docker run -d --network none "${capargs[@]}" \
        --security-opt seccomp=unconfined --cgroupns host \
        -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
        --hostname o11y-verify "$IMAGE" /lib/systemd/systemd)"
    state=""
    for _ in $(seq 1 120); do
        state="$(docker exec "$cid" systemctl is-system-running 2>/dev/null || true)"
        case "$state" in running|degraded|maintenance|stopping) break ;; esac
        sleep 1
    done
    log "verify: systemctl is-system-running -> ${state:-<no answer>}"
    case "$state" in
        running|degraded) ;;
        *) docker exec "$cid" systemctl --failed --no-pager >&2 || true
           die "verify: systemd did not reach running/degraded" ;;
    esac
    if [ "$state" = degraded ]; then
        docker exec "$cid" systemctl --failed --no-pager >&2 || true
    fi

    docker cp "$asset" "$cid:/usr/local/bin/minio"
    docker exec "$cid" chmod 0755 /usr/local/bin/minio
    version="$(docker exec "$cid" /usr/local/bin/minio --version | head -n1)"
    log "verify: $version"
    case "$version" in "minio version RELEASE."*) ;; *) die "verify: unexpected --version output" ;; esac

    # Run it the way the role does: a Type=notify unit shaped like upstream's,
    # options and volumes from an EnvironmentFile, split into words by systemd.
    docker exec -i "$cid" sh -e <<'SH'
useradd --system --no-create-home --shell /usr/sbin/nologin minio-user
install -d -o minio-user -g minio-user -m 0750 /srv/minio-data
cat >/etc/default/minio-verify <<'EOF'
MINIO_VOLUMES="/srv/minio-data"
MINIO_OPTS="--address 127.0.0.1:9000 --console-address 127.0.0.1:9001"
MINIO_ROOT_USER=verifyadmin
MINIO_ROOT_PASSWORD=verify-secret-1
EOF
chmod 0600 /etc/default/minio-verify
cat >/etc/systemd/system/minio-verify.service <<'EOF'
[Unit]
Description=MinIO (image verification)
[Service]
Type=notify
User=minio-user
Group=minio-user
EnvironmentFile=/etc/default/minio-verify
ExecStart=/usr/local/bin/minio server $MINIO_OPTS $MINIO_VOLUMES
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/srv/minio-data
TimeoutStartSec=60
EOF
systemctl daemon-reload
systemctl start minio-verify.service
SH
    local ok=0
    for _ in $(seq 1 60); do
        if docker exec "$cid" curl -fsS -o /dev/null http://127.0.0.1:9000/minio/health/live 2>/dev/null; then
            ok=1; break
        fi
        sleep 1
    done
    if [ "$ok" != 1 ]; then
        docker exec "$cid" journalctl -u minio-verify --no-pager >&2 || true
        die "verify: MinIO stand-in did not answer /minio/health/live"
    fi
    log "verify: minio-verify.service (Type=notify) is $(docker exec "$cid" systemctl is-active minio-verify); /minio/health/live answers 200"
    docker exec "$cid" /usr/bin/python3 -c '
import boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                  aws_access_key_id="verifyadmin", aws_secret_access_key="verify-secret-1")
s3.create_bucket(Bucket="verify-bucket")
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert "verify-bucket" in names, names
print("S3 create-bucket via python3-boto3 ok:", names)
' >&2
    docker rm -f "$cid" >/dev/null
    cid=""
    log "verify: OK (container removed)"
}

if [ "$VERIFY" = 1 ]; then
    verify_image
fi

echo "$IMAGE"
