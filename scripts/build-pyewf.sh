#!/usr/bin/env bash
# Rebuilds pyewf (libewf-python, the second reader of `verify --second-reader`) from its source
# distribution, linked against the system zlib. Run after `pip install` of BitWitness:
#   scripts/build-pyewf.sh [VENV]        (default .venv)
#
# Why: PyPI's wheel links no zlib, so libewf inflates every chunk with its own deflate code,
# ~3x the CPU of zlib (0.5 GiB of disk-like media: 2.9 s against 0.95 s), which made the second
# reader the slowest part of a verification. The source distribution's build configures libewf
# without any system library (`configure --disable-shared-libs`), so zlib is named here: its
# config.h leaves HAVE_ZLIB* undefined, the compiler flags define them and the linker adds -lz.
# The same libewf version is built (the one pip installed); nothing else changes.
#
# Needs gcc, the C library and Python headers and zlib1g-dev (scripts/install-tools.sh). When the
# build or its check fails, PyPI's wheel stays (or is put back): slower, never different.
# Idempotent: a pyewf that already links zlib is left alone.
set -uo pipefail

venv=${1:-.venv}
py="$venv/bin/python"

pyewf_so() {
    "$py" -c 'import pyewf; print(pyewf.__file__)' 2>/dev/null
}

links_zlib() {
    local so needed
    so=$(pyewf_so) || return 1
    needed=$(ldd "$so" 2>/dev/null) || return 1  # not piped into grep -q: pipefail and SIGPIPE
    grep -q 'libz\.so' <<<"$needed"
}

if ! version=$("$py" -c 'import importlib.metadata as m; print(m.version("libewf-python"))'); then
    echo "build-pyewf: libewf-python is not installed in $venv; install BitWitness first" >&2
    exit 1
fi
if links_zlib; then
    exit 0
fi

zlib_macros="-DHAVE_ZLIB=1 -DHAVE_ZLIB_H=1 -DHAVE_ZLIB_UNCOMPRESS=1 -DHAVE_ZLIB_ADLER32=1"
zlib_macros+=" -DHAVE_ZLIB_COMPRESS2=1 -DHAVE_ZLIB_COMPRESSBOUND=1"
echo "build-pyewf: building libewf-python $version from source against zlib (about a minute)"
if CFLAGS="${CFLAGS:-} $zlib_macros" LDFLAGS="${LDFLAGS:-} -Wl,--no-as-needed -lz" \
        "$py" -m pip install -q --no-deps --force-reinstall --no-cache-dir \
        --no-binary libewf-python "libewf-python==$version" \
        && links_zlib \
        && "$py" -c 'import pyewf; assert pyewf.get_version()'; then
    echo "build-pyewf: pyewf $version now inflates with zlib"
    exit 0
fi
echo "build-pyewf: the build failed; keeping PyPI's wheel (libewf's own inflate: a slower" \
     "second reader, the same results)" >&2
"$py" -m pip install -q --no-deps --force-reinstall --only-binary :all: \
    "libewf-python==$version" || exit 1
exit 0
