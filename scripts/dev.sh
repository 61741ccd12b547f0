#!/usr/bin/env bash
# make dev: the stack on this host. Uses DATABASE_URL / REDIS_URL when reachable, otherwise
# starts throwaway servers under .dev/ (kept until `make dev-down`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/sous dev "${@:-up}"
