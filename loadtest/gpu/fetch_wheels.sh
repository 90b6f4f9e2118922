#!/usr/bin/env bash
# The wheels to carry to the GPU test machine, which has no network (issue 28):
#   loadtest/gpu/fetch_wheels.sh [--python-version 3.12] [DIR]     (default DIR: loadtest/gpu/wheels)
# Builds brandsafe's own wheel from this working tree (pure Python: py3-none-any, stubs generated),
# downloads wheels.txt's list for that CPython on manylinux x86_64 (pins from constraints.txt where
# it has them), and fails if they come to more than the 64 MiB that may travel with the tree.
# Run it right before the GPU run (the brandsafe wheel is this tree as it is now), then carry DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=3.12
if [[ "${1:-}" == "--python-version" ]]; then version="$2"; shift 2; fi
dir="${1:-loadtest/gpu/wheels}"
limit=$(( ${WHEELS_LIMIT_MIB:-64} * 1024 * 1024 ))  # the tree may carry 64 MiB; lower only to test the check
PY="${PYTHON:-${BRANDSAFE_VENV:-.venv}/bin/python}"  # needs setuptools and grpcio-tools: ./dev install's venv

rm -rf "$dir"
mkdir -p "$dir"
build_log="$(mktemp)"
if ! BRANDSAFE_PURE=1 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$dir" . >"$build_log" 2>&1; then
    cat "$build_log" >&2
    exit 1
fi
rm -f "$build_log"
ls "$dir"/brandsafe-*-py3-none-any.whl >/dev/null  # pure Python, so it installs on 3.12 too
abi="cp${version/./}"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --abi "$abi" --abi abi3 --abi none --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
    --platform any -c constraints.txt -r loadtest/gpu/wheels.txt -d "$dir"

total=0
printf '%-80s %10s\n' wheel bytes
for wheel in "$dir"/*.whl; do
    size=$(stat -c %s "$wheel")
    total=$((total + size))
    printf '%-80s %10d\n' "$(basename "$wheel")" "$size"
done
printf '%-80s %10d (%.1f MiB of %d MiB)\n' total "$total" "$(echo "$total / 1048576" | bc -l)" $((limit / 1048576))
if (( total > limit )); then
    echo "fetch_wheels: $total bytes is over the $((limit / 1048576)) MiB that may travel with the working tree" >&2
    exit 1
fi
