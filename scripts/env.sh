# Sourced by the other scripts: create .venv and install tl-bilinear into it (idempotent).
# A torch already in the environment is kept; otherwise TL_BILINEAR_TORCH is installed
# (default torch==2.13.0; set it to e.g. "torch" to get your platform's default build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TL_BILINEAR_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads fight
# the other processes (measured, ts-small bf16 training under load: 7,605 tokens/s passive vs
# 1,352 with the default; on a quiet machine passive costs ~5%).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if ! python -c "import torch" >/dev/null 2>&1; then
    pip install -q "${TL_BILINEAR_TORCH:-torch==2.13.0}"
fi
stamp="$VENV/.tl_bilinear_installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    # TransformerLens 3.9 here (training, SAELens interop: the sae extra); scripts/test-tl4.sh tests 4.x in .venv-tl4/
    pip install -q -e "$ROOT[dev,sae]" "transformer-lens>=3.9,<4"
    touch "$stamp"
fi
cd "$ROOT"
