#!/bin/sh
# camblet-agent postrm (deb: "remove"/"purge"/…; rpm: $1 = 0 erase, 1 upgrade).
# purge (deb) removes what the package and the agent made: the unit's enablement, the CA the agent
# generated (/etc/camblet/ca.pem, public_ca.crt: back them up first if peers trust them), caches
# and runtime files. Files the user added to /etc/camblet
# stay, and so does the directory while it holds them.
set -e
case "$1" in
  remove)
    if command -v deb-systemd-helper >/dev/null 2>&1; then
      deb-systemd-helper mask camblet-agent.service >/dev/null || true
    fi
    ;;
  purge)
    if command -v deb-systemd-helper >/dev/null 2>&1; then
      deb-systemd-helper purge camblet-agent.service >/dev/null || true
      deb-systemd-helper unmask camblet-agent.service >/dev/null || true
    fi
    # The self-signed CA plugin's files (plugins/ca/self_signed/ca_store.ts) and interrupted writes.
    rm -f /etc/camblet/ca.pem /etc/camblet/ca.pem.lock /etc/camblet/public_ca.crt \
      /etc/camblet/retired_ca.crt /etc/camblet/.ca.pem.tmp-* /etc/camblet/.public_ca.crt.tmp-* \
      /etc/camblet/.retired_ca.crt.tmp-*
    rm -rf /var/cache/camblet /run/camblet
    rmdir /etc/camblet/policies /etc/camblet/services /etc/camblet 2>/dev/null || true
    ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
