"""Build ws2fast._core, the one compiled extension module.

Profiles (environment variable WS2FAST_BUILD):
  release (default)  Cython checks off, the compiler's -O3.
  debug              bounds/wraparound/initialized checks on, -O0 -g: for gdb and sanitizers.
  fuzz               the debug checks, built with clang for atheris: -fsanitize=fuzzer-no-link
                     (coverage inside the core) and AddressSanitizer; run it with atheris's
                     asan_with_fuzzer.so preloaded (tests/fuzz/run.py does).
  sanitize           the debug checks, built with gcc's AddressSanitizer and
                     UndefinedBehaviorSanitizer (any UB report aborts); run it with libasan
                     preloaded (tests/test_sanitizers.py runs the unit tests that way).

A profile other than release writes its generated C under build/<profile>-c/, so it never
replaces the release build's _ext/core.c.
"""

import os
import re
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

PROFILE = os.environ.get("WS2FAST_BUILD", "release")
if PROFILE not in ("release", "debug", "fuzz", "sanitize"):
    sys.exit("WS2FAST_BUILD must be 'release', 'debug', 'fuzz' or 'sanitize', not %r" % PROFILE)

directives = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
}
extra_compile_args = []
extra_link_args = []
undef_macros = []
if PROFILE in ("debug", "fuzz", "sanitize"):
    directives.update(boundscheck=True, wraparound=True, initializedcheck=True, cdivision=False)
    undef_macros += ["NDEBUG"]
if PROFILE == "debug":
    extra_compile_args += ["-O0", "-g3"]
if PROFILE == "fuzz":
    os.environ.setdefault("CC", "clang")
    os.environ.setdefault("LDSHARED", "clang -shared")
    sanitize = "-fsanitize=fuzzer-no-link,address"
    extra_compile_args += [sanitize, "-fno-omit-frame-pointer", "-O1", "-g"]
    # not linked against a sanitizer runtime: atheris's asan_with_fuzzer.so, preloaded,
    # provides it (and libFuzzer) at run time
if PROFILE == "sanitize":
    sanitize = "-fsanitize=address,undefined"
    extra_compile_args += [sanitize, "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_link_args += [sanitize]

# The layer files are the ones core.pyx includes (stated there, once): a change to any of them
# rebuilds the module.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext", "core.pyx"), encoding="utf-8") as f:
    LAYERS = ["_ext/" + name for name in re.findall(r'^include "([\w.]+\.pxi)"', f.read(), re.MULTILINE)]
HEADERS = ["_ext/huffman_code.h", "_ext/mask.h", "_ext/utf8.h"]

extensions = [
    Extension(
        "ws2fast._core",
        sources=["_ext/core.pyx", "_ext/mask.c"],
        include_dirs=["_ext"],
        libraries=["z"],                 # zlib: permessage-deflate inflation (inflate.pxi)
        depends=LAYERS + HEADERS,
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        undef_macros=undef_macros,
        define_macros=[("WS2FAST_BUILD_PROFILE", '"%s"' % PROFILE), ("ZLIB_CONST", None)],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        # The release build's generated C lands beside the .pyx (.gitignore keeps it out of
        # git); the checked profiles' under build/, so the two never mix.
        build_dir=None if PROFILE == "release" else f"build/{PROFILE}-c",
    ),
)
