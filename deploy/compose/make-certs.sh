#!/usr/bin/env bash
# Certificates for the compose cloud, made by the analyzer's own PKI command (design/pki.md):
# a fleet CA, the broker's server certificate, the analyzer's and an alert consumer's client
# certificates, and one device's, each folder with the CA certificate beside it.
#
#   deploy/compose/make-certs.sh [OUT [DEVICE [HOST...]]]
#     OUT     default deploy/compose/pki (ignored by git); must not hold a CA yet
#     DEVICE  default edge-01: a device's client certificate (more: cloud-analyzer pki issue-device)
#     HOST    names devices reach the broker by (mosquitto, localhost, 127.0.0.1 always included)
#
# The PKI command runs from $CLOUD_ANALYZER (a binary) if set, else from the analyzer's image
# (cascade/cloud-analyzer:latest, scripts/build-image.sh) as the calling user.
# The analyzer runs as uid 10001 in its image, so its copy of its key is made that user's.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-pki}
DEVICE=${2:-edge-01}
HOSTS=(mosquitto localhost 127.0.0.1 "${@:3}")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

pki() {
  if [ -n "${CLOUD_ANALYZER:-}" ]; then
    "$CLOUD_ANALYZER" pki "$@"
  else
    docker run --rm --user "$(id -u):$(id -g)" -v "$OUT:$OUT" --entrypoint cloud-analyzer \
      "${CASCADE_ANALYZER_IMAGE:-cascade/cloud-analyzer:latest}" pki "$@"
  fi
}

pki init --dir "$OUT/ca"
pki issue-server --dir "$OUT/ca" --out "$OUT/broker" --host "${HOSTS[@]}"
pki issue-analyzer --dir "$OUT/ca" --out "$OUT/analyzer"
pki issue-alerts --dir "$OUT/ca" --out "$OUT/alerts"
pki issue-device "$DEVICE" --dir "$OUT/ca" --out "$OUT/devices/$DEVICE"
for d in broker analyzer alerts "devices/$DEVICE"; do
  install -m 0644 "$OUT/ca/ca.pem" "$OUT/$d/ca.pem"
done
install -m 0644 "$OUT/ca/crl.pem" "$OUT/broker/crl.pem"
chmod 0755 "$OUT/analyzer" "$OUT/broker"
if [ "$(id -u)" = 0 ]; then
  chown -R 10001:10001 "$OUT/analyzer"
else
  docker run --rm -v "$OUT/analyzer:/a" "${BASE:-cascade/debian:bookworm}" chown -R 10001:10001 /a
fi
echo "certificates in $OUT (the CA's key in $OUT/ca: keep it offline)" >&2
