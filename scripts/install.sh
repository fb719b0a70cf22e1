#!/usr/bin/env bash
# Install everything verirl needs on a fresh Debian/Ubuntu machine:
#   system EDA tools (Icarus Verilog, Yosys, Verilator) from the distribution,
#   then a virtual environment in .venv with verirl and its test dependencies.
# Usage: bash scripts/install.sh [EXTRAS]     (default extras: dev,ray; add deepspeed for ZeRO: dev,ray,deepspeed)
# Set VERIRL_VENV to choose another venv folder, VERIRL_SKIP_APT=1 to skip the apt step.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,ray}"
venv="${VERIRL_VENV:-.venv}"
python="${PYTHON:-python3}"

if [ "${VERIRL_SKIP_APT:-0}" != "1" ]; then
  sudo=""
  if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  packages="iverilog yosys verilator util-linux iproute2"
  # DeepSpeed compiles its CPU comm op on first launch (cached in TORCH_EXTENSIONS_DIR): a C++ compiler and headers
  case ",$extras," in *,deepspeed,*) packages="$packages g++ python3-dev";; esac
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages >/dev/null
fi
for tool in iverilog vvp yosys; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is still missing after apt-get" >&2; exit 1; }
done

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# torch first and pinned: a bare `torch` requirement could pull a multi-GB CUDA build.
# On a CPU-only machine add: --index-url https://download.pytorch.org/whl/cpu
"$venv/bin/python" -m pip install -q "torch==2.13.0"
"$venv/bin/python" -m pip install -q -e ".[${extras}]"
# nothing may have replaced the CPU/CUDA torch chosen above (deepspeed only needs torch>=2.0)
"$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' \
  || { echo "install.sh: torch is no longer 2.13.0 after installing the extras" >&2; exit 1; }
echo "install.sh: verirl installed in $venv ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
