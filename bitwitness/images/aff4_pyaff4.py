"""pyaff4, the AFF4 reference implementation in Python, as the second reader of AFF4 images.

pyaff4 (by the authors of the AFF4 Standard) shares no code with our reader: its own ZIP layer,
RDF store, bevy index parser, chunk decoders (zlib, python-snappy, lz4) and map reader. It runs
in a **child process** (``python -m bitwitness.images.aff4_pyaff4 VOLUME STREAM_URN``) that
writes one header line (``size N``) and then the media to its stdout, read here in order like
``affcat`` for AFF. A child because pyaff4 prints tracebacks to stderr from inside its reads, keeps
global state, and is not bounded: the child runs under an address-space limit
(:data:`MEMORY_LIMIT`) and a CPU-time budget (:data:`CPU_SECONDS`), so a hostile volume that
makes pyaff4 allocate or loop without end ends that child with a recorded failure, not this
process.

Evidence is still opened only by :func:`bitwitness.evidence_io.os_open_readonly`: the child
registers a read-only file handler in pyaff4's own plug-in registry (``registry.AFF4_TYPE_MAP``,
the extension point pyaff4 offers for storage back ends) before it opens the volume, and that
handler refuses any write mode.

Which stream is read: the data stream our reader chose (the first ``aff4:Image`` by URN, then its
``aff4:dataStream``); pyaff4 opens it by URN through its resolver, which picks the class from the
type the volume records (``aff4:Map``, ``aff4:ImageStream``, the pre-standard ``aff4:image``).
The volume's vocabulary (AFF4 1.0 or pre-standard) is what pyaff4 itself identifies.

pyaff4 0.34 is the last release; its wheel pins dependency versions that do not build on
Python 3.11, so it is installed without them (``pip install --no-deps pyaff4==0.34``) next to
current versions of what it imports (the ``pyaff4-deps`` extra). What it cannot read is said
by :func:`pyaff4_obstacle`, and ``verify`` then notes that there is no second reader for that
image rather than reporting a disagreement that is pyaff4's limit: deflate chunks (pyaff4
decodes zlib, snappy, LZ4 and stored only), a map whose gaps read as anything but zeros
(pyaff4 fills them with zeros), and a map whose last run ends before its size (pyaff4 sizes a
map by its last run).

One limit shows only while reading: pyaff4 0.34 writes an LZ4 chunk as
``lz4.block.compress(chunk)`` (a 4-byte size prefix, then the block) and reads it with
``lz4.block.decompress(chunk, chunk_size)``, which takes no prefix, so it fails on the LZ4
chunks it wrote itself. When pyaff4's LZ4 decoder raises, the child says so by its exit code
(:data:`CODEC_EXIT`) and the read raises :class:`NoSecondReader` with pyaff4's reason: no second
reader for this image, not a disagreement. Only the LZ4 decoder's failures count: a zlib or
snappy chunk pyaff4 cannot decode, and any bytes it returns that differ from ours, stay a
failed or disagreeing second reading.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from bitwitness.errors import CorruptImageError, NoSecondReader, UnsupportedFormatError
from bitwitness.stream import ImageStream, StreamInfo

#: The pyaff4 release this reader was written and tested against.
PYAFF4_VERSION = "0.34"
#: The child's address-space limit: pyaff4 holds a bevy (up to 1024 chunks) and a cache of
#: 1000 decoded chunks; Python, rdflib and pyaff4's imports take about 200 MiB of address space.
MEMORY_LIMIT = 300 << 20
_HEADER_LIMIT = 64
#: The child's CPU-time budget: this many seconds to open the volume, then as many again for
#: each started GiB of media (pyaff4 reads tens of MiB per second); past it the kernel ends the
#: child (SIGXCPU), so a volume that makes pyaff4 loop cannot hold a verification forever.
#: ``BITWITNESS_PYAFF4_CPU_SECONDS`` lowers or raises it.
CPU_SECONDS = 300
_CPU_ENV = "BITWITNESS_PYAFF4_CPU_SECONDS"
#: The child's exit code when pyaff4's LZ4 chunk decoder raised (see the module's docstring).
CODEC_EXIT = 4
_CHILD_BLOCK = 1 << 20
_INSTALL = (f"install it with: pip install 'bitwitness[pyaff4-deps]' && "
            f"pip install --no-deps pyaff4=={PYAFF4_VERSION}")


def pyaff4_folder() -> Path | None:
    """The folder pyaff4 is imported from by this interpreter (given to the child's
    ``PYTHONPATH``), or ``None`` where it is not installed."""
    try:
        spec = importlib.util.find_spec("pyaff4")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def pyaff4_obstacle(compressions: set[str], gap_stream: str | None, covered: int | None,
                    last_end: int | None, size: int) -> str | None:
    """Why pyaff4 cannot give this image's media, or ``None`` when it can.

    ``compressions``: of every image stream read; ``gap_stream``, ``covered`` (bytes the map's
    runs cover) and ``last_end`` (where its last run ends): of the map, ``None`` without one.
    """
    if "deflate" in compressions:
        return (f"pyaff4 {PYAFF4_VERSION} does not decode deflate chunks (it decodes zlib, "
                "snappy, LZ4 and stored chunks)")
    if covered is not None and covered < size and gap_stream not in (None, "Zero"):
        return (f"the map's gaps read as aff4:{gap_stream}; pyaff4 {PYAFF4_VERSION} fills a "
                "map's gaps with zeros")
    if last_end is not None and last_end < size:
        return (f"the map's last run ends at {last_end}, before its size of {size}; pyaff4 "
                f"{PYAFF4_VERSION} sizes a map by its last run")
    return None


class Pyaff4Stream(ImageStream):
    """The media as pyaff4 reads it, streamed by a child process: read in order, once."""

    alignment = 1

    def __init__(self, path: Path, stream_urn: str) -> None:
        folder = pyaff4_folder()
        if folder is None:
            raise UnsupportedFormatError(f"pyaff4, the second reader of AFF4 images, is not "
                                         f"installed; {_INSTALL}")
        self._path = path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
        env["PYTHONWARNINGS"] = "ignore"
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bitwitness.images.aff4_pyaff4", str(path), stream_urn],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errors, env=env)
        self._done = 0
        try:
            size = self._header()
        except BaseException:
            self._stop()
            raise
        super().__init__(size)

    def _header(self) -> int:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline(_HEADER_LIMIT)
        fields = line.split()
        if len(fields) != 2 or fields[0] != b"size" or not fields[1].isdigit():
            why = self._why()
            self._codec_limit(why)
            raise CorruptImageError(f"pyaff4 could not open the image: {why}", path=self._path)
        return int(fields[1])

    def _why(self) -> str:
        """The child's last line on stderr (pyaff4's error), once it has ended."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=30)
        if self._proc.poll() == -signal.SIGXCPU:
            return (f"pyaff4's reader used up its CPU-time budget ({_cpu_seconds()} s to open, "
                    f"as many per GiB of media) and was stopped")
        self._errors.seek(0, os.SEEK_END)
        self._errors.seek(max(0, self._errors.tell() - 4096))
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:300] if lines else f"pyaff4's reader exited with {self._proc.poll()}"

    def _codec_limit(self, why: str) -> None:
        """Raise :class:`NoSecondReader` when the child ended because pyaff4's LZ4 decoder
        raised (pyaff4's limit, not a reading of different bytes)."""
        if self._proc.poll() == CODEC_EXIT:
            raise NoSecondReader(f"no second reader for this AFF4 image: pyaff4 "
                                 f"{PYAFF4_VERSION} cannot decode the LZ4 chunk at media offset "
                                 f"{self._done} (it writes LZ4 chunks with a 4-byte size prefix "
                                 f"it does not read back): {why}")

    def _read_aligned(self, offset: int, length: int) -> bytes:
        assert self._proc.stdout is not None
        if offset != self._done:
            raise CorruptImageError("pyaff4's output is read in order only", path=self._path)
        parts, want = [], length
        while want:
            data = self._proc.stdout.read(want)
            if not data:
                why = self._why()
                self._codec_limit(why)
                raise CorruptImageError(f"pyaff4 stopped at media offset {self._done} of "
                                        f"{self.size}: {why}", path=self._path,
                                        media_offset=self._done)
            parts.append(data)
            want -= len(data)
            self._done += len(data)
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="aff4", files=(self._path,), media_size=self.size,
                          details={"reader": f"pyaff4 {PYAFF4_VERSION}"})

    def _stop(self) -> None:
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._proc.poll() is None:
            self._proc.terminate()
        self._proc.wait()
        self._errors.close()

    def close(self) -> None:
        if not self.closed:
            self._stop()
        super().close()


# --- the child ----------------------------------------------------------------------------


def _read_only_handler() -> Any:
    """pyaff4's file handler, opening through our evidence opener and refusing to write."""
    from pyaff4 import aff4_file, lexicon

    from bitwitness.evidence_io import os_open_readonly

    class ReadOnlyFile(aff4_file.FileBackedObject):
        def LoadFromURN(self) -> None:  # noqa: N802 - pyaff4's method name
            mode = self.resolver.GetUnique(lexicon.transient_graph, self.urn,
                                           lexicon.AFF4_STREAM_WRITE_MODE)
            if mode is not None:
                raise OSError(f"pyaff4 asked to open {self.urn} for writing ({mode})")
            filename = self._GetFilename()
            if not filename:
                raise OSError(f"pyaff4 found no file for {self.urn}")
            self.fd = os.fdopen(os_open_readonly(str(filename)), "rb")
            self.size = os.fstat(self.fd.fileno()).st_size

    def handler(resolver: Any, urn: Any, *args: Any, **kwargs: Any) -> Any:
        return ReadOnlyFile(resolver, urn)

    return handler


def _child(volume: str, stream_urn: str) -> int:
    """Write ``size N`` and the stream's bytes as pyaff4 reads them; 1 with a message on
    failure."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    budget = _cpu_seconds()
    resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
    out = sys.stdout.buffer
    try:
        from pyaff4 import container, data_store, lexicon, rdfvalue, registry
        from pyaff4 import zip as aff4_zip

        registry.AFF4_TYPE_MAP["file"] = _read_only_handler()
        urn = rdfvalue.URN.FromFileName(volume)
        resolver = data_store.MemoryDataStore(lexicon.standard)
        version, vocabulary = container.Container.identifyURN(urn, resolver=resolver)
        resolver.lexicon = vocabulary
        with aff4_zip.ZipFile.NewZipFile(resolver, version, urn):
            stream = resolver.AFF4FactoryOpen(rdfvalue.URN(stream_urn))
            size = int(stream.Size())
            used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime
                       + resource.getrusage(resource.RUSAGE_SELF).ru_stime)
            resource.setrlimit(resource.RLIMIT_CPU, (used + budget + budget * -(-size >> 30),
                                                     resource.RLIM_INFINITY))
            out.write(b"size %d\n" % size)
            done = 0
            while done < size:
                data = stream.Read(min(_CHILD_BLOCK, size - done))
                if not data:
                    break
                out.write(data)
                done += len(data)
            out.flush()
            if done != size:
                print(f"pyaff4 gave {done} bytes of the {size} the stream holds",
                      file=sys.stderr)
                return 1
    except BrokenPipeError:  # the reader stopped reading (an interrupted verify)
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no complaint at exit
        return 0
    except BaseException as exc:  # pyaff4 raises anything: all of it is the reader's failure
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        print(f"{type(exc).__name__}: {first}", file=sys.stderr)
        return CODEC_EXIT if _lz4_failure(exc) else 1
    return 0


def _cpu_seconds() -> int:
    """The CPU-time budget in seconds (:data:`CPU_SECONDS`, or the environment's)."""
    try:
        return max(1, int(os.environ.get(_CPU_ENV, CPU_SECONDS)))
    except ValueError:
        return CPU_SECONDS


def _lz4_failure(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the ``lz4`` package's block decoder, the one pyaff4
    decodes LZ4 chunks with."""
    try:
        from lz4.block import LZ4BlockError
    except ImportError:
        return False
    return isinstance(exc, LZ4BlockError)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m bitwitness.images.aff4_pyaff4 VOLUME STREAM_URN",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(_child(sys.argv[1], sys.argv[2]))
