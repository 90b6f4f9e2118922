#!/usr/bin/env bash
# The ~4B path measured in one short run on the GPU test machine (issue 28):
#   loadtest/gpu/device_check.sh OUT [options]              GPU: Qwen3-4B architecture, random bf16 weights
#   loadtest/gpu/device_check.sh --dry-run OUT [options]    CPU: a tiny Qwen3, the same steps (CI)
# Options are loadtest/gpu_check.py's (--parts, --step-seconds, ...). Writes OUT/gpu_check.{json,md}.
#
# No network: the wheels fetch_wheels.sh put in $WHEELS (default loadtest/gpu/wheels, carried with
# the tree) are installed into a target folder that goes first on PYTHONPATH, brandsafe's own
# included; everything else is what the machine has preinstalled. A dry run without wheels runs
# on this environment's brandsafe (./dev install's venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
WHEELS="${WHEELS:-loadtest/gpu/wheels}"
dry_run=0
for arg in "$@"; do [[ "$arg" == "--dry-run" ]] && dry_run=1; done

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Never import brandsafe's source folders from the working directory: the installed package is
# laid out differently (service/ is brandsafe.service).
export PYTHONSAFEPATH=1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    target="${TARGET:-$(mktemp -d)/site-packages}"
    started=$(date +%s)
    "$PY" -m pip install -q --no-index --no-deps --disable-pip-version-check --target "$target" "$WHEELS"/*.whl
    echo "device_check: $(ls "$WHEELS"/*.whl | wc -l) carried wheels installed into $target in $(( $(date +%s) - started )) s"
    export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
elif (( dry_run )); then
    echo "device_check: no wheels in $WHEELS; dry run on this environment's brandsafe"
else
    echo "device_check: no wheels in $WHEELS: run loadtest/gpu/fetch_wheels.sh before carrying the tree" >&2
    exit 2
fi
"$PY" -c 'import sys, brandsafe; print(f"device_check: Python {sys.version.split()[0]}, brandsafe from {brandsafe.__file__}")'
exec "$PY" -m brandsafe.loadtest.gpu_check "$@"
