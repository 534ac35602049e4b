#!/bin/sh
# Dovecot container entrypoint for a mailmesh pod: installs 10-mailmesh.conf from the
# mailmesh-dovecot ConfigMap, waits for the sidecar's certificate, runs Dovecot, and reloads it
# when the sidecar renews the certificate.
set -eu
TLS=/etc/mailmesh/tls
cp /etc/mailmesh/dovecot/10-mailmesh.conf /etc/dovecot/conf.d/10-mailmesh.conf
until [ -s "$TLS/node.crt" ] && [ -s "$TLS/node.key" ]; do echo "waiting for $TLS/node.crt from the sidecar"; sleep 2; done
dovecot
touch /tmp/tls-stamp
while sleep 30; do
  kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null || exit 1
  if [ "$TLS/node.crt" -nt /tmp/tls-stamp ]; then touch /tmp/tls-stamp; doveadm reload; fi
done
