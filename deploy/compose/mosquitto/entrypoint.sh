#!/bin/sh
# The broker's certificates are mounted read-only at /run/cascade-certs (ca.pem, crl.pem, server.pem,
# server.key, owned by whoever made them): copied to where deploy/mosquitto.conf looks, owned by the
# mosquitto user the broker drops to after starting as root. Then the broker, on the mounted config.
set -eu
if [ "$(id -u)" = 0 ] && [ -d /run/cascade-certs ]; then
  install -d -o mosquitto -g mosquitto -m 0700 /etc/mosquitto/certs
  for f in ca.pem crl.pem server.pem server.key; do
    install -o mosquitto -g mosquitto -m 0600 "/run/cascade-certs/$f" "/etc/mosquitto/certs/$f"
  done
  chown mosquitto:mosquitto /var/lib/mosquitto
fi
exec mosquitto -c /etc/mosquitto/mosquitto.conf "$@"
