#!/usr/bin/env bash
# Makes .uvicorn-suite/: a virtualenv with uvicorn's test requirements (requirements.txt here)
# and the tests of the pinned uvicorn sdist, which tests/interop/test_uvicorn_suite.py runs
# against ws2fast.uvicorn.WebSocketProtocol.  Run by .ci/run; needs the package index.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir="$root/.uvicorn-suite"
PYTHON=${PYTHON:-python3}
version=$(sed -n 's/^uvicorn==//p' "$here/requirements.txt")
if [ -x "$dir/venv/bin/python" ] && cmp -s "$here/requirements.txt" "$dir/requirements.txt" \
        && [ -d "$dir/uvicorn-$version/tests" ]; then
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
"$PYTHON" -m venv "$dir/venv"
"$dir/venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$dir/venv/bin/python" -m pip download -q --no-deps --no-binary :all: "uvicorn==$version" -d "$dir/sdist"
tar xzf "$dir/sdist/uvicorn-$version.tar.gz" -C "$dir"
cp "$here/requirements.txt" "$dir/requirements.txt"
