#!/usr/bin/env bash
# Installs the system packages sous needs (PostgreSQL, Redis, Tesseract, fonts, Chromium for
# the dashboard test, Prometheus and Alertmanager for the alerting tests) when missing.
# As root it uses apt-get; otherwise it names what to install and fails.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# A transaction-mode pooler in front of the test Postgres, as Supabase's (tests/integration/test_pgbouncer.py).
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
# Orientation detection turns sideways menu photos upright (model/ocr.py upright()).
tesseract --list-langs 2>/dev/null | grep -qx osd || missing+=(tesseract-ocr-osd)
# OpenCV (RapidOCR's image handling, model/ocr_rapid.py) loads libGL and GLib.
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1 ' || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libglib-2.0.so.0 ' || missing+=(libglib2.0-0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -d /usr/share/fonts/truetype/liberation ] || missing+=(fonts-liberation)
# Headless Chromium drives the dashboard test (tests/e2e/test_dashboard_browser.py).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The monitoring profile's tools: promtool/amtool check its files, and the alerting test runs
# Prometheus and Alertmanager themselves (tests/unit/test_monitoring.py, tests/e2e/test_alertmanager_webhook.py).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
for extra in "$@"; do
  case "$extra" in
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
  esac
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "sous needs these system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
