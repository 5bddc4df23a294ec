#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: creates .venv-test, installs, lints (ruff,
# mypy, the import-linter layers contract), builds the docs strictly, checks migrations, runs the suite on SQLite (the embedded default), again on
# PostgreSQL (all but the browser and packaging tests), and the sample project's tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-test}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev]"

echo "== lint: ruff (check and format), mypy, import-linter (layers)"
"$VENV/bin/ruff" check src tests benchmarks sample
"$VENV/bin/ruff" format --check src tests benchmarks sample
"$VENV/bin/mypy"
"$VENV/bin/lint-imports"

echo "== docs: mkdocs build --strict"
docs_out=$(mktemp -d)
"$VENV/bin/python" -m mkdocs build --strict -q -d "$docs_out"
rm -rf "$docs_out"

echo "== migrations are up to date"
PCA_TEST_DB=$(mktemp -d)/check.sqlite3 "$VENV/bin/python" -m django makemigrations --check --dry-run \
  --settings=tests.settings powercrud_async testapp >/dev/null
"$VENV/bin/python" -m django makemigrations --check --dry-run --settings=sample.test_settings sample >/dev/null

echo "== test suite on SQLite (embedded default)"
"$VENV/bin/python" -m pytest tests --ignore=tests/sample "$@"

echo "== the suite again on PostgreSQL (a server the tests start on loopback)"
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  PCA_DB=postgres "$VENV/bin/python" -m pytest tests --ignore=tests/sample \
    -m "not browser and not packaging" "$@"
elif [ "${REQUIRE_SERVICES:-0}" = "1" ]; then
  echo "PostgreSQL is required (REQUIRE_SERVICES=1) but not installed" >&2
  exit 1
else
  echo "PostgreSQL not installed: skipping the PostgreSQL pass"
fi

if [ -d tests/sample ]; then
  echo "== sample project tests"
  "$VENV/bin/python" -m pytest tests/sample --ds=sample.test_settings "$@"
fi
