"""Run one fuzz harness under atheris: ``python tests/fuzz/run.py NAME [libFuzzer options]
[corpus dirs]``.

For coverage inside the compiled core, put a ``WS2FAST_BUILD=fuzz`` build first on
PYTHONPATH and preload atheris's ``asan_with_fuzzer.so`` (tests/test_fuzz.py does both).
"""

import sys

import atheris

with atheris.instrument_imports(include=["ws2fast"]):
    import ws2fast
    import ws2fast._core

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from harnesses import HARNESSES  # noqa: E402


def main() -> None:
    name = sys.argv.pop(1)
    harness = HARNESSES[name]
    # say which build runs (tests/test_fuzz.py checks that it is the instrumented one)
    print(f"ws2fast core build: {ws2fast._core.BUILD_PROFILE} ({ws2fast._core.__file__})", file=sys.stderr)
    atheris.Setup(sys.argv, harness)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
