"""Apple disk images read through libmodi (pymodi): UDIF ``.dmg`` (raw, zlib, bzip2, LZFSE and
ADC blocks), ``.sparseimage`` and ``.sparsebundle`` folders.

A sparse bundle is a folder (``Info.plist`` and ``bands/``); it is opened from the folder or from
its ``Info.plist``, and libmodi opens the band files of that folder only. For single-file images
the file is handed to libmodi opened read-only by us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError
from bitwitness.images import signatures
from bitwitness.images.libyal import LibyalStream, binding, first_line, open_handle
from bitwitness.stream import ImageStream

_LABELS = {"dmg": "Apple disk image (UDIF)", "sparseimage": "Apple sparse image",
           "sparsebundle": "Apple sparse bundle"}


def _bundle_of(path: Path) -> Path | None:
    if path.is_dir():
        return path
    if path.name == "Info.plist" and signatures.identify_directory(path.parent) is not None:
        return path.parent
    return None


def _kind(path: Path) -> str:
    bundle = _bundle_of(path)
    if bundle is not None:
        return "sparsebundle"
    with path.open("rb") as fh:
        head = fh.read(4)
    return "sparseimage" if head == b"sprs" else "dmg"


def open_modi(path: Path) -> ImageStream:
    kind = _kind(path)
    pymodi = binding("pymodi", "libmodi-python", f"{path}: {_LABELS[kind]}")
    reader = f"libmodi {pymodi.get_version()}"
    bundle = _bundle_of(path)
    owned: list[Any] = []
    if bundle is not None:
        handle = pymodi.handle()
        try:
            handle.open(str(bundle / "Info.plist"))
            handle.open_band_data_files()
        except (OSError, ValueError) as exc:
            handle.close()
            raise CorruptImageError(f"the sparse bundle cannot be read: {first_line(exc)}",
                                    path=bundle) from exc
        bands = sorted((bundle / "bands").iterdir(), key=lambda p: (len(p.name), p.name))
        files = [bundle / "Info.plist", *bands]
    else:
        handle, fobj = open_handle(pymodi.handle, path, _LABELS[kind])
        owned.append(fobj)
        files = [path]
    try:
        return LibyalStream(handle, fmt=kind, files=files, reader=reader, owned=owned)
    except BaseException:
        handle.close()
        for item in owned:
            item.close()
        raise


class ModiFormat:
    """macOS disk images: UDIF, sparse image, sparse bundle."""

    name = "dmg"
    containers = ("dmg", "sparseimage", "sparsebundle")
    qemu_driver = "dmg"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"sprs")

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        with open_modi(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        return open_modi(path)


FORMAT = ModiFormat()
