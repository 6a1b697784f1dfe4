#!/bin/sh
# camblet-agent postinst (deb: "configure"; rpm: $1 = 1 install, 2 upgrade).
# Creates the directories the agent uses with their modes and enables the service on first
# install. It does not start it: configure /etc/camblet first, then systemctl start camblet-agent.
set -e

install -d -m 0755 /etc/camblet /etc/camblet/policies /etc/camblet/services
install -d -m 0700 /var/cache/camblet

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
case "$1" in
  configure|abort-upgrade|abort-deconfigure|abort-remove) # deb, as dh_installsystemd does
    # Lift the mask postrm set on remove; enable on first install (was-enabled is true for a
    # unit never seen), and keep a user's "systemctl disable" across upgrades.
    deb-systemd-helper unmask camblet-agent.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled camblet-agent.service; then
      deb-systemd-helper enable camblet-agent.service >/dev/null || true
    else
      deb-systemd-helper update-state camblet-agent.service >/dev/null || true
    fi
    ;;
  1) # rpm, first install
    systemctl enable camblet-agent.service >/dev/null 2>&1 || true
    ;;
esac
case "$1" in
  configure) [ -n "$2" ] && upgrade=yes ;;
  2) upgrade=yes ;;
esac
if [ "${upgrade:-no}" = yes ]; then
  # An upgrade restarts a running agent on the new program; its configuration is untouched.
  if [ -d /run/systemd/system ]; then
    systemctl try-restart camblet-agent.service >/dev/null 2>&1 || true
  fi
else
  echo "camblet-agent: enabled, not started. Edit /etc/camblet/config.yaml, add policies to"
  echo "  /etc/camblet/policies, check them with 'camblet-agent validate', then run"
  echo "  'systemctl start camblet-agent'."
fi
exit 0
