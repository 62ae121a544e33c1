#!/usr/bin/env bash
# Installs the real peers the end-to-end tests drive (Debian 12 packages). Idempotent: packages that are
# already present are not fetched again, and apt-get update runs at most once per invocation.
# Usage: scripts/install-test-peers.sh            (as root, or with sudo available)
set -euo pipefail

PACKAGES=(
  prosody lua-unbound   # XMPP server peer (Prosody 0.12)
  prosody-modules       # its community modules: mod_privilege (XEP-0356) for the gateway's PEP tests
  ejabberd              # XMPP server peer (ejabberd 23)
  sip-tester            # SIPp
  baresip baresip-core  # headless SIP phones
  python3-slixmpp       # XMPP client peer (run with /usr/bin/python3)
  profanity tmux        # terminal XMPP client, driven through tmux
  chromium              # browser tests of the web client
  iptables iproute2     # fault injection on loopback / network namespaces
  kamailio              # the stateful SIP proxy npm run bench -- sip-cps compares with
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-peers: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-test-peers: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-test-peers: done"
