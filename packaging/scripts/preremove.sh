#!/bin/sh
# camblet-agent prerm (deb: "remove"/"upgrade"; rpm: $1 = 0 erase, 1 upgrade).
# Stops the service when the package goes away; an upgrade keeps it running until postinst.
set -e
case "$1" in
  remove|0)
    if [ -d /run/systemd/system ]; then
      systemctl stop camblet-agent.service >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1 && ! command -v deb-systemd-helper >/dev/null 2>&1; then
      systemctl disable camblet-agent.service >/dev/null 2>&1 || true # rpm
    fi
    ;;
esac
exit 0
