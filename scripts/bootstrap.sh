# Shared by scripts/start and scripts/test: create .venv and install the project.
# Re-runs are cheap: pip only installs what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${UNITY_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Unity needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating the virtual environment in $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
echo "Installing Unity into $VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e "$ROOT/packages/unity-sdk" -e "$ROOT/packages/unity-catalogue" \
    -e "$ROOT/packages/unity-agent" -e "$ROOT${EXTRAS:+[$EXTRAS]}"
