#!/bin/sh
# Postfix container entrypoint for a mailmesh pod. Applies the mailmesh snippets mounted from the
# mailmesh-postfix ConfigMap, waits for the certificate the sidecar writes, runs Postfix, and
# reloads it when the sidecar renews the certificate (the sidecar cannot signal another container).
# MAILMESH_CONFIGURE_ONLY=1 stops after configuring (used by test/deploy with a real postconf).
set -eu
SNIPPETS=${MAILMESH_SNIPPETS:-/etc/mailmesh/postfix}
CONF=${POSTFIX_CONFIG_DIR:-/etc/postfix}
TLS=/etc/mailmesh/tls
# The sidecar owns port 25: comment out the public smtpd.
postconf -c "$CONF" -M# smtp/inet
# main.cf settings one by one with postconf -e, so each replaces the default in place.
grep -Ev '^[[:space:]]*(#|$)' "$SNIPPETS/main.cf" | while IFS= read -r setting; do
  postconf -c "$CONF" -e "$setting"
done
cat "$SNIPPETS/master.cf" >> "$CONF/master.cf"
[ "${MAILMESH_CONFIGURE_ONLY:-0}" = 1 ] && exit 0
until [ -s "$TLS/node.crt" ] && [ -s "$TLS/node.key" ]; do echo "waiting for $TLS/node.crt from the sidecar"; sleep 2; done
postfix check
postfix start
touch /tmp/tls-stamp
while sleep 30; do
  postfix status >/dev/null 2>&1 || exit 1
  if [ "$TLS/node.crt" -nt /tmp/tls-stamp ]; then touch /tmp/tls-stamp; postfix reload; fi
done
