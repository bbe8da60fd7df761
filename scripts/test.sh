#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, starts PostgreSQL if it is
# down, then lint, type checks and pytest (real Synapse, real PostgreSQL and SQLite).
#   ./scripts/test.sh [pytest args]          everything (CI runs this)
#   ./scripts/test.sh --fast [pytest args]   lint, type checks and tests/unit only: no server,
#                                            no database server, nothing installed but .venv
set -euo pipefail
cd "$(dirname "$0")/.."

FAST=0
if [ "${1:-}" = "--fast" ]; then
  FAST=1
  shift
fi

. scripts/venv.sh test

if [ "$FAST" = 1 ]; then
  .venv/bin/ruff check bridge tests bench
  .venv/bin/ruff format --check bridge tests bench
  .venv/bin/mypy bridge bench
  exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit "$@"
fi

# The suite runs against a real PostgreSQL on 127.0.0.1:5432, as user postgres without a
# password (trust on loopback), unless FIRM_TEST_PG points at another server.
if [ -z "${FIRM_TEST_PG:-}" ] && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is down; starting it"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    NEW_POSTGRES=1
  fi
  PG_VERSION="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ "${NEW_POSTGRES:-0}" = 1 ]; then
    # A fresh Debian PostgreSQL asks for a password over TCP; the tests connect as postgres on
    # loopback without one. Only on a server this script installed itself.
    scripts/pg_trust_loopback.sh "/etc/postgresql/$PG_VERSION/main/pg_hba.conf"
  fi
  if pg_ctlcluster "$PG_VERSION" main status >/dev/null 2>&1; then
    # Started by the package's installation: read the new rules.
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload
  else
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# The media gateway tests check stripped photos with the real exiftool, run the real nginx
# with config/nginx-media-gateway.conf (started by the test itself on a loopback port) and make
# archives with the real 7-Zip, zstd and lz4. The worker tests (tests/workers) start a Redis of
# their own with Debian's redis-server.
if ! command -v exiftool >/dev/null || ! { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } \
  || ! command -v 7zz >/dev/null || ! command -v zstd >/dev/null || ! command -v lz4 >/dev/null \
  || ! { command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; }; then
  apt-get update -q && apt-get install -y -q libimage-exiftool-perl nginx 7zip zstd lz4 redis-server
fi

# The transcript's PDF is rendered by WeasyPrint, which needs Pango and a font.
if ! ldconfig -p | grep 'libpangoft2-1.0.so.0' >/dev/null \
  || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
fi

# The WordPress plugin tests (tests/wp) install Debian's WordPress into a temporary folder, serve
# it with PHP's built-in server on a throwaway MariaDB database (127.0.0.1:3306, root without a
# password) and run the plugin's PHPUnit suite.
if ! command -v php >/dev/null || ! command -v phpunit >/dev/null \
  || [ ! -f /usr/share/wordpress/wp-settings.php ] \
  || [ ! -d /usr/share/wordpress/wp-content/themes/twentytwentythree ] \
  || ! php -r 'exit(extension_loaded("mysqli") && extension_loaded("curl") && extension_loaded("mbstring") && extension_loaded("zip") ? 0 : 1);' \
  || ! command -v mariadb-admin >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    wordpress wordpress-theme-twentytwentythree php-cli php-mysql php-curl php-xml php-mbstring php-zip \
    phpunit mariadb-client
fi
if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "MariaDB is down; starting it"
  if [ ! -x /usr/sbin/mariadbd ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server
    NEW_MARIADB=1
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb-admin -u root ping >/dev/null 2>&1 && break; sleep 1; done
  if [ "${NEW_MARIADB:-0}" = 1 ]; then
    # A fresh Debian MariaDB lets root in by socket only; the tests connect over TCP.
    mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;"
  fi
fi

# Calls relay through Debian's coturn, which the tests start on loopback ports of their own
# (bridge/devtools/coturn.py); the package's own service stays off (it is not enabled).
if ! command -v turnserver >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends coturn
fi

# Browser tests drive Debian's Chromium through Playwright (nothing downloaded) and inject
# axe-core from npm (tests/browser/package.json, locked).
if ! command -v chromium >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

# The portal widget is built from source (locked npm packages) into build/widget; its tests check
# that the files shipped in wp_plugin_shim/widget/dist are exactly that build.
npm ci --prefix wp_plugin_shim/widget --no-audit --no-fund --loglevel=error
node wp_plugin_shim/widget/build.mjs build/widget >/dev/null

.venv/bin/ruff check bridge tests bench
.venv/bin/ruff format --check bridge tests bench
.venv/bin/mypy bridge bench
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
