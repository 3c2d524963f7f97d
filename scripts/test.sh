#!/usr/bin/env bash
# Run the test suite offline in the project's virtual environment: bash scripts/test.sh [pytest args]
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest "$@"
