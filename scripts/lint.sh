#!/usr/bin/env bash
# Lint and format check (ruff, configured in pyproject.toml): bash scripts/lint.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ruff check .
ruff format --check .
