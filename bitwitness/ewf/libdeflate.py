"""libdeflate's zlib inflater, called through ctypes, for the streams it inflates fastest.

Why: on the chunks ``ewfacquire -c deflate:fast`` writes (zlib level 1, whose header declares
the fastest compression), libdeflate inflates in about 0.8x isal's CPU time, and inflating is
most of what verification does besides hashing. On every other stream measured (zlib 6, isal,
libdeflate 7: our own ``fast`` and ``best``) isal is 5-10% faster, so :func:`inflate` is asked
only for the fastest streams (:func:`fastest_stream`).

Why ctypes and not the ``deflate`` package's ``zlib_decompress``: that call keeps the GIL while
it inflates (two threads took three times one's time), and the reader inflates in worker
threads beside the hashing threads. ctypes releases the GIL during the call. The library is the
one the ``deflate`` wheel carries (its extension exports libdeflate's functions); where they
cannot be found, :func:`inflate` answers None and the caller inflates with isal.

Nothing here decides whether a stream is good: :func:`inflate` gives bytes only where libdeflate
inflated the whole stream, its Adler-32 checked, into at most ``limit`` bytes; any other outcome
is None, and the caller's isal inflater then gives the result or the error, as without this
module.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

#: libdeflate_result: the whole stream inflated
_SUCCESS = 0
#: Larger limits are left to isal: each thread keeps an output buffer of the limit, and a
#: crafted image may declare 16 MiB chunks (EWF's own are 32 KiB, at most a few hundred).
MAX_LIMIT = 1 << 20


@cache
def _functions() -> Any:
    """libdeflate's decompression functions, loaded on first use; None where not found (a
    race may load them twice: the same library, the same settings)."""
    import ctypes  # here: the import costs start-up 3 ms, and most commands inflate nothing

    try:
        from deflate import _deflate  # type: ignore[attr-defined]

        lib = ctypes.CDLL(_deflate.__file__)
        alloc = lib.libdeflate_alloc_decompressor
        inflate_zlib = lib.libdeflate_zlib_decompress
        free = lib.libdeflate_free_decompressor
    except (ImportError, OSError, AttributeError):
        return None
    alloc.argtypes = []
    alloc.restype = ctypes.c_void_p
    free.argtypes = [ctypes.c_void_p]
    free.restype = None
    inflate_zlib.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                             ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    inflate_zlib.restype = ctypes.c_int
    # the same function again, taking both buffers by address (inflate_at): its own object, so
    # that its argument types do not change inflate_zlib's; it releases the GIL as CDLL's do
    by_address = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                  ctypes.POINTER(ctypes.c_size_t))
    inflate_at = by_address(("libdeflate_zlib_decompress", lib))
    return alloc, inflate_zlib, free, inflate_at


class _Inflater:
    """One thread's libdeflate decompressor and output buffer (a decompressor is not
    thread-safe; each reader worker gets its own)."""

    def __init__(self, functions: Any, size: int) -> None:
        import ctypes

        alloc, self._inflate, self._free, self._inflate_at = functions
        self._byref = ctypes.byref
        self._string_at = ctypes.string_at
        self._handle = alloc()
        self.size = size
        self._out = ctypes.create_string_buffer(max(1, size))
        self._got = ctypes.c_size_t()

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._free(self._handle)
            self._handle = None

    def inflate(self, stored: bytes, limit: int) -> bytes | None:
        if not self._handle:
            return None
        if self._inflate(self._handle, stored, len(stored), self._out, limit,
                         self._byref(self._got)) != _SUCCESS:
            return None
        return self._string_at(self._out, self._got.value)

    def inflate_at(self, source: int, length: int, target: int, limit: int) -> int | None:
        """Inflate the ``length`` bytes at address ``source`` into at most ``limit`` bytes at
        address ``target``; how many, or None where libdeflate did not inflate the whole
        stream (its Adler-32 checked)."""
        if not self._handle or self._inflate_at(self._handle, source, length, target, limit,
                                                 self._byref(self._got)) != _SUCCESS:
            return None
        return self._got.value


_THREAD = threading.local()


def available() -> bool:
    """Whether libdeflate's functions were found (the ``deflate`` wheel exports them)."""
    return _functions() is not None


def fastest_stream(stored: bytes | bytearray | memoryview) -> bool:
    """Whether ``stored`` begins with a zlib header declaring the fastest compression
    (FLEVEL 0: what zlib's levels 0 and 1 write, ``78 01``)."""
    return len(stored) > 2 and stored[0] & 0x0F == 8 and not stored[1] & 0xC0


def inflate(stored: bytes | bytearray | memoryview, limit: int) -> bytes | None:
    """The bytes of the zlib stream ``stored`` where libdeflate inflates all of it into at most
    ``limit`` bytes, its Adler-32 right; else None (the caller decides with isal)."""
    inflater = _inflater(limit)
    if inflater is None:
        return None
    return inflater.inflate(stored if type(stored) is bytes else bytes(stored), limit)


def _inflater(limit: int) -> _Inflater | None:
    """This thread's inflater, with an output buffer of at least ``limit`` bytes; None over
    :data:`MAX_LIMIT` or without libdeflate."""
    if limit > MAX_LIMIT:
        return None
    inflater: _Inflater | None = getattr(_THREAD, "inflater", None)
    if inflater is None or inflater.size < limit:
        functions = _functions()
        if functions is None:
            return None
        inflater = _THREAD.inflater = _Inflater(functions, limit)
    return inflater


class Into:
    """Inflates streams lying in one ``bytes`` object straight into one ``bytearray``, at
    given places in each: no copy of either on the way (:func:`inflate` copies the stream in
    when it is a view, and its output out of libdeflate's buffer). For one thread's use while
    both objects are alive; :meth:`close` lets the bytearray go (its buffer is held while this
    object is open)."""

    def __init__(self, source: bytes, target: bytearray, limit: int) -> None:
        import ctypes

        self._inflater = _inflater(limit)
        self._source = source
        self._base = ctypes.cast(ctypes.c_char_p(source), ctypes.c_void_p).value or 0
        self._target = (ctypes.c_char * len(target)).from_buffer(target) if target else None
        self._target_base = ctypes.addressof(self._target) if self._target is not None else 0
        self._limit = len(target)

    def inflate(self, start: int, end: int, at: int, expected: int) -> bool:
        """Whether libdeflate inflated ``source[start:end]`` whole, its Adler-32 right, into
        exactly ``expected`` bytes at ``target[at:]`` (False: whatever it wrote there is to be
        written over by the caller)."""
        inflater = self._inflater
        if (inflater is None or not 0 <= start < end <= len(self._source)
                or not 0 <= at <= self._limit - expected or expected > inflater.size):
            return False
        got = inflater.inflate_at(self._base + start, end - start, self._target_base + at,
                                  expected)
        return got == expected

    def close(self) -> None:
        self._target = None
