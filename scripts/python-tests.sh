#!/usr/bin/env bash
# Runs the official-Python-client compatibility tests (tests/python) against shoald.
#
#   scripts/python-tests.sh [extra pytest arguments]
#
# Creates .venv at the repository root if it is missing and installs the official `aerospike`
# client (C client inside) and pytest into it. Builds shoald with `cargo build --bin shoald` unless
# SHOALD_BIN names a binary to test. Exits non-zero when anything fails.
#
# Environment: SHOALD_BIN (skip the build and test this binary), CARGO_TARGET_DIR (honoured for the
# build), PYTHON (interpreter for the venv, default python3), SHOALD_LOG_LEVEL (server log level).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

python="${PYTHON:-python3}"
venv="$repo_root/.venv"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "python-tests: '$python' not found; install Python 3.11 (Debian: apt-get install -y python3 python3-venv)" >&2
    exit 2
fi

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    echo "python-tests: creating virtual environment $venv"
    if ! "$python" -m venv "$venv"; then
        rm -rf "$venv"
        echo >&2
        echo "python-tests: '$python -m venv' failed. On Debian/Ubuntu the venv module and pip live in a" >&2
        echo "separate package; install it with:" >&2
        echo "    apt-get install -y python3-venv" >&2
        exit 2
    fi
fi

# Install (or confirm) the client and pytest; quiet unless something is missing.
if ! "$venv/bin/python" -c "import aerospike, pytest" >/dev/null 2>&1; then
    echo "python-tests: installing aerospike and pytest into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet aerospike pytest
fi
"$venv/bin/python" -c "import sys, importlib.metadata as m; print('python-tests: python', sys.version.split()[0], '| aerospike', m.version('aerospike'), '| pytest', m.version('pytest'))"

if [[ -z "${SHOALD_BIN:-}" ]]; then
    echo "python-tests: cargo build --bin shoald"
    cargo build --bin shoald
    target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
    export SHOALD_BIN="$target_dir/debug/shoald"
fi
if [[ ! -x "$SHOALD_BIN" ]]; then
    echo "python-tests: shoald binary '$SHOALD_BIN' is missing or not executable" >&2
    exit 2
fi
echo "python-tests: testing $SHOALD_BIN"

exec "$venv/bin/python" -m pytest -q tests/python "$@"
