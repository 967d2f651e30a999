#!/usr/bin/env bash
# Make sure the Debian packages a target needs are installed: `system-packages.sh test`
# (the suite: a browser, ffmpeg for the demo video, icecast2 for the broadcast tests,
# promtool from prometheus for the alert rules)
# or `system-packages.sh run` (the demo: ffmpeg, and redis-server for shared live counters). Missing ones are installed with
# apt-get when this runs as root; otherwise it stops with one line naming them.
# Never downloads a browser of its own: Chromium comes from Debian's `chromium` package.
set -euo pipefail

# command-that-proves-it-is-there:debian-package (an absolute path: a file that must exist)
# WeasyPrint (the broadcast report PDFs) loads pango and harfbuzz, and needs a font.
lib=/usr/lib/x86_64-linux-gnu
pdf_packages=("$lib/libpango-1.0.so.0:libpango-1.0-0" "$lib/libpangoft2-1.0.so.0:libpangoft2-1.0-0"
              "$lib/libharfbuzz-subset.so.0:libharfbuzz-subset0"
              /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core)
case "${1:-test}" in
  test) wanted=(/usr/bin/chromium:chromium ffmpeg:ffmpeg /usr/bin/icecast2:icecast2
                pdftotext:poppler-utils promtool:prometheus "${pdf_packages[@]}") ;;
  run) wanted=(ffmpeg:ffmpeg redis-server:redis-server "${pdf_packages[@]}") ;;
  *) echo "usage: $0 test|run" >&2; exit 2 ;;
esac

missing=()
# The SAM import tests need a MariaDB: the one on 127.0.0.1:3306 where it runs, otherwise
# a private server they start from Debian's mariadb-server.
if [ "${1:-test}" = test ] && ! command -v mariadbd >/dev/null 2>&1 \
   && ! (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
  missing+=(mariadb-server)
fi
for entry in "${wanted[@]}"; do
  probe=${entry%%:*}
  package=${entry#*:}
  if [[ $probe == /* ]]; then
    [ -e "$probe" ] || missing+=("$package")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing Debian packages: ${missing[*]} — install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  # The demo runs without them (no demo video); the test suite needs them.
  [ "${1:-test}" = run ] && exit 0
  exit 1
fi

echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts icecast2's and prometheus's own services on install; the tests start
# private servers (icecast2) or only run promtool (prometheus).
for service_name in icecast2 prometheus; do
  if [[ " ${missing[*]} " == *" $service_name "* ]] && command -v service >/dev/null 2>&1; then
    service "$service_name" stop >/dev/null 2>&1 || true
  fi
done
