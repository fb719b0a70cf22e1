#!/usr/bin/env bash
# The GPU check on the device machine (docs/training.md, "GPU check"): install what travelled in .gpu_travel
# (written by scripts/prepare_gpu_travel.py) into private prefixes, then run scripts/gpu_check.py.
#
#     bash scripts/gpu_check.sh [gpu_check.py options]        # from any folder; results in $OUT
#
# * wheels/*.whl -> pip install --no-index --no-deps --target $VERIRL_SITE, put on PYTHONPATH after the repo;
# * debs/*.deb   -> unpacked (dpkg -x, or Python when dpkg is missing) into $VERIRL_EDA_PREFIX; wrappers in
#   $VERIRL_EDA_PREFIX/bin run each tool with its own libraries, ivl folder and ABC, and VERIRL_IVERILOG/VVP/YOSYS
#   point the reward engine at them (its sandbox passes no LD_LIBRARY_PATH, so the wrappers set it themselves).
# Nothing is installed system-wide. Without wheels or debs the installed packages and tools are used.
#
# Environment: OUT (results; default ./gpu_check_out), VERIRL_TRAVEL (default <repo>/.gpu_travel),
# VERIRL_EDA_PREFIX (/tmp/verirl-eda), VERIRL_SITE (/tmp/verirl-site), PYTHON (python3),
# GPU_CHECK_TIMEOUT (seconds for gpu_check.py, default 560), GPU_CHECK_SETUP_ONLY=1 (install, print the
# exports, stop), GPU_CHECK_NO_DPKG=1 (unpack with Python even where dpkg exists).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
TRAVEL=${VERIRL_TRAVEL:-$REPO/.gpu_travel}
PREFIX=${VERIRL_EDA_PREFIX:-/tmp/verirl-eda}
SITE=${VERIRL_SITE:-/tmp/verirl-site}
PY=${PYTHON:-python3}
OUT=${OUT:-$REPO/gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: >"$LOG"
say() { echo "gpu_check.sh: $*" | tee -a "$LOG" >&2; }

# ---- wheels
shopt -s nullglob
wheels=("$TRAVEL"/wheels/*.whl)
if ((${#wheels[@]})); then
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "${wheels[@]}" >>"$LOG" 2>&1; then
        say "pip could not install the carried wheels (see $LOG)"; exit 3
    fi
    export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
    say "installed ${#wheels[@]} wheels into $SITE"
else
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    say "no wheels in $TRAVEL/wheels: using the installed Python packages"
fi

# ---- Debian packages
unpack_deb() {
    if [ -z "${GPU_CHECK_NO_DPKG:-}" ] && command -v dpkg >/dev/null 2>&1; then
        dpkg -x "$1" "$2"
    else  # a .deb is an ar archive holding data.tar.{xz,gz,zst}
        "$PY" - "$1" "$2" <<'PY'
import io, sys, tarfile
path, dest = sys.argv[1], sys.argv[2]
with open(path, "rb") as fh:
    blob = fh.read()
if not blob.startswith(b"!<arch>\n"):
    sys.exit(f"{path} is not a Debian package")
pos = 8
while pos + 60 <= len(blob):
    name, size = blob[pos:pos + 16].decode().strip().rstrip("/"), int(blob[pos + 48:pos + 58])
    if name.startswith("data.tar"):
        if name.endswith(".zst"):
            sys.exit(f"{path}: {name} needs dpkg (zstd)")
        with tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size])) as tar:
            tar.extractall(dest, filter="tar")
        sys.exit(0)
    pos += 60 + size + (size & 1)
sys.exit(f"{path} has no data.tar member")
PY
    fi
}
debs=("$TRAVEL"/debs/*.deb)
if ((${#debs[@]})); then
    case "$PREFIX" in
        /*) ;;
        *) say "VERIRL_EDA_PREFIX must be an absolute path, not $PREFIX"; exit 4 ;;
    esac
    if [[ ! "$PREFIX" =~ ^[A-Za-z0-9/._-]+$ ]]; then
        say "VERIRL_EDA_PREFIX may hold letters, digits and / . _ - only (it is written into the tool wrappers)"
        exit 4
    fi
    mkdir -p "$PREFIX/bin"
    if [ "$(id -u)" = 0 ]; then  # the sandbox then runs the tools as nobody, who must reach them
        d=$PREFIX
        while [ "$d" != / ]; do
            if [ "$(( 0$(stat -c %a "$d") & 1 ))" = 0 ]; then
                say "the reward sandbox runs tools as nobody, who cannot enter $d: choose a VERIRL_EDA_PREFIX" \
                    "under a folder others may enter (default /tmp/verirl-eda)"
                exit 4
            fi
            d=$(dirname "$d")
        done
    fi
    for deb in "${debs[@]}"; do
        unpack_deb "$deb" "$PREFIX" || { say "cannot unpack $deb"; exit 4; }
    done
    libs=""
    for d in "$PREFIX"/usr/lib/*-linux-gnu "$PREFIX"/lib/*-linux-gnu; do libs="$libs${libs:+:}$d"; done
    wrap() {  # wrap NAME EXTRA-ARGS...: a script that runs the unpacked tool with its own libraries
        local name=$1; shift
        [ -x "$PREFIX/usr/bin/$name" ] || return 0
        {
            echo '#!/bin/sh'
            echo "export LD_LIBRARY_PATH='$libs' PATH='$PREFIX/usr/bin':\"\$PATH\""
            echo "exec '$PREFIX/usr/bin/$name' $* \"\$@\""
        } >"$PREFIX/bin/$name"
        chmod 755 "$PREFIX/bin/$name"
        export "VERIRL_$(echo "$name" | tr '[:lower:]' '[:upper:]')=$PREFIX/bin/$name"
    }
    ivl=$(echo "$PREFIX"/usr/lib/*-linux-gnu/ivl)
    wrap iverilog "'-B$ivl'"  # the driver finds ivl, ivlpp and its targets here instead of /usr/lib
    wrap vvp "'-M$ivl'"       # VPI modules (the .vvp file names them by absolute path too)
    wrap yosys                # finds ../share/yosys by itself; runs `berkeley-abc` from PATH
    chmod -R a+rX "$PREFIX"   # the sandbox runs tools as nobody
    export PATH="$PREFIX/bin:$PATH"
    say "unpacked ${#debs[@]} Debian packages into $PREFIX"
else
    say "no .debs in $TRAVEL/debs: using the EDA tools on PATH"
fi

if [ -n "${GPU_CHECK_SETUP_ONLY:-}" ]; then
    for v in PYTHONPATH PATH VERIRL_IVERILOG VERIRL_VVP VERIRL_YOSYS; do
        [ -n "${!v:-}" ] && echo "export $v='${!v}'"
    done
    exit 0
fi

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled \
    TOKENIZERS_PARALLELISM=false
args=(--out "$OUT/gpu_check.json" --travel "$TRAVEL")
[ -d "$TRAVEL/verilog-eval" ] && args+=(--bench-dir "$TRAVEL/verilog-eval")
say "running scripts/gpu_check.py ${args[*]} $*"
set -o pipefail
timeout -k 15 "${GPU_CHECK_TIMEOUT:-560}" "$PY" "$REPO/scripts/gpu_check.py" "${args[@]}" "$@" 2>&1 | tee -a "$LOG"
rc=$?
say "exit status $rc; figures in $OUT/gpu_check.json"
exit $rc
