"""Build ws2fast._core, the one compiled extension module.

Profiles (environment variable WS2FAST_BUILD):
  release (default)  Cython checks off, the compiler's -O3.
  debug              bounds/wraparound/initialized checks on, -O0 -g: for gdb, fuzzers, sanitizers.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

PROFILE = os.environ.get("WS2FAST_BUILD", "release")
if PROFILE not in ("release", "debug"):
    sys.exit("WS2FAST_BUILD must be 'release' or 'debug', not %r" % PROFILE)

directives = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
}
extra_compile_args = []
undef_macros = []
if PROFILE == "debug":
    directives.update(boundscheck=True, wraparound=True, initializedcheck=True, cdivision=False)
    extra_compile_args += ["-O0", "-g3"]
    undef_macros += ["NDEBUG"]

LAYERS = ["_ext/h2frame.pxi", "_ext/h2write.pxi", "_ext/hpack.pxi", "_ext/wsmask.pxi",
          "_ext/wsevents.pxi", "_ext/inflate.pxi", "_ext/wsframe.pxi", "_ext/wsbuild.pxi", "_ext/h2core.pxi"]
HEADERS = ["_ext/huffman_code.h", "_ext/mask.h", "_ext/utf8.h"]

extensions = [
    Extension(
        "ws2fast._core",
        sources=["_ext/core.pyx", "_ext/mask.c"],
        include_dirs=["_ext"],
        libraries=["z"],                 # zlib: permessage-deflate inflation (inflate.pxi)
        depends=LAYERS + HEADERS,
        extra_compile_args=extra_compile_args,
        undef_macros=undef_macros,
        define_macros=[("WS2FAST_BUILD_PROFILE", '"%s"' % PROFILE), ("ZLIB_CONST", None)],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        # The generated C lands beside the .pyx; .gitignore keeps it out of git.
        build_dir=None,
    ),
)
