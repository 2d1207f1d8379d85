"""Start-up cost: ``bitwitness acquire`` is benchmarked by wall time against C tools.

Modules that acquiring a file does not need are loaded on first use instead of at import; these
tests keep it so, and check that the lazily resolved names are the same objects as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool

#: Each cost milliseconds of fixed time per run and is not needed to acquire a file with --json.
NOT_NEEDED = (
    "importlib.metadata",
    "rich.console",
    "rich.progress",
    "socket",
    "bitwitness.images.ewf",
    "bitwitness.images.splitraw",
    "bitwitness.images.vhd",
    "bitwitness.images.vmdk",
    "bitwitness.ewf.layout",
    "bitwitness.ewf.reader",
    "concurrent.futures",
    "logging",
    "decimal",
    "subprocess",
    "shutil",
)

_RUN = """
import contextlib, io, json, sys
from bitwitness.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
print(json.dumps(sorted(name for name in {names!r} if name in sys.modules)))
"""


@pytest.mark.parametrize("options", [["--format", "raw"], ["--compress", "fast"]])
def test_acquire_json_loads_only_what_it_needs(tmp_path: Path, options: list[str]) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(bytes(range(256)) * 256)
    code = _RUN.format(names=NOT_NEEDED)
    proc = subprocess.run(
        [sys.executable, "-c", code, "acquire", str(source), "-o", str(tmp_path / "bw"),
         *options, "--hash", "md5,sha1", "--json"],
        capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


#: ``--version`` needs click and the version string: no command, no output module, no signing.
VERSION_NOT_NEEDED = ("pkgutil", "rich.console", "bitwitness.cli.output",
                      "bitwitness.signing")
#: ``info`` on an E01 with no hash log beside it reads the E01's metadata: not the verifier, its
#: thread pools, libewf, the acquisition-log model, the signing key, the command listing, the
#: readers of other formats, nor rich when its output is no terminal.
INFO_NOT_NEEDED = ("pkgutil", "concurrent.futures", "bitwitness.signing", "rich.console",
                   "rich.markup",
                   "bitwitness.acquisitionlog", "bitwitness.verify.verifier",
                   "bitwitness.verify.libewf", "bitwitness.verify.passes",
                   "bitwitness.verify.second_reader", "bitwitness.images.vhdi",
                   "bitwitness.images.qcow", "bitwitness.images.aff4")


def _loaded(names: tuple[str, ...], *argv: str) -> list[str]:
    """Which of ``names`` a fresh interpreter has loaded after ``bitwitness ARGV`` (exit 0)."""
    proc = subprocess.run([sys.executable, "-c", _RUN.format(names=names), *argv],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_version_loads_only_what_it_needs() -> None:
    assert _loaded(VERSION_NOT_NEEDED, "--version") == []


def test_info_loads_only_what_it_needs(tmp_path: Path) -> None:
    """On an E01 ewfacquire wrote (and, as a control, with ``--key``: signing is then loaded)."""
    require_tool("ewfacquire")
    (tmp_path / "media.raw").write_bytes(bytes(range(256)) * 4096)
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(tmp_path / "small"),
                    str(tmp_path / "media.raw")], check=True, capture_output=True, timeout=60)
    image = str(tmp_path / "small.E01")
    assert _loaded(INFO_NOT_NEEDED, "info", image) == []
    key = tmp_path / "no-such.key"  # configured, never loaded: info signs nothing
    assert _loaded(INFO_NOT_NEEDED, "--key", str(key), "info", image) == ["bitwitness.signing"]


#: ``ls`` of a plain file system in an E01 needs the EWF reader and TSK: not the other
#: containers' readers (detection stops at the first probe that matches), nor the readers of
#: what few volumes hold (dynamic disks, LUKS, md members, btrfs, UDF, damaged boot sectors),
#: nor importlib.metadata for pytsk3's version, nor hashlib for names too long to export, nor
#: rich off a terminal.
LS_NOT_NEEDED = ("importlib.metadata", "hashlib", "rich.console", "rich.markup",
                 "bitwitness.images.vhdi", "bitwitness.images.qcow", "bitwitness.images.aff4",
                 "bitwitness.images.aff4_streams", "bitwitness.images.udif",
                 "bitwitness.images.vmdk_libyal", "bitwitness.images.splitraw",
                 "bitwitness.images.crc32c", "bitwitness.report.browse.ldm",
                 "bitwitness.report.browse.btrfs", "bitwitness.report.browse.udf",
                 "bitwitness.report.browse.luks1", "bitwitness.report.browse.luks2",
                 "bitwitness.report.browse.dmcrypt", "bitwitness.report.browse.mdraid",
                 "bitwitness.report.browse.bootbackup")


def test_ls_of_a_plain_file_system_loads_only_what_it_needs(tmp_path: Path) -> None:
    """On an ext4 file system in an E01 ewfacquire wrote; and, as a control that the names
    are the modules the other cases load, on a btrfs volume and an image of another format."""
    require_tool("ewfacquire")
    require_tool("mkfs.ext4")
    fs = tmp_path / "ext4.raw"
    fs.write_bytes(bytes(4 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", str(fs)], check=True, capture_output=True,
                   timeout=60)
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(tmp_path / "ext4"), str(fs)],
                   check=True, capture_output=True, timeout=60)
    assert _loaded(LS_NOT_NEEDED, "ls", str(tmp_path / "ext4.E01")) == []
    # a raw file: every format's probe runs (none matches), the container readers load
    loaded = _loaded(LS_NOT_NEEDED, "ls", str(fs))
    assert {"bitwitness.images.vhdi", "bitwitness.images.qcow",
            "bitwitness.images.splitraw"} <= set(loaded)
    assert "bitwitness.report.browse.ldm" not in loaded
    for name in LS_NOT_NEEDED:  # each is a real module: a misspelt name would always pass
        assert importlib.util.find_spec(name) is not None, name


def test_verify_api_resolved_on_first_use() -> None:
    import bitwitness.verify

    for name in bitwitness.verify.__all__:
        value = getattr(bitwitness.verify, name)
        module = importlib.import_module(f"bitwitness.verify.{bitwitness.verify._EXPORTS[name]}")
        assert value is getattr(module, name)
    assert set(bitwitness.verify.__all__) <= set(dir(bitwitness.verify))
    assert bitwitness.verify.casework is importlib.import_module("bitwitness.verify.casework")
    with pytest.raises(AttributeError):
        _ = bitwitness.verify.no_such_name


def test_format_registry_built_on_first_use() -> None:
    import bitwitness.images
    from bitwitness.images import (
        FORMATS,
        RAW,
        aff,
        aff4,
        android_sparse,
        ewf,
        modi,
        ntfsclone,
        ova,
        parallels,
        partclone,
        qcow,
        qed,
        raw,
        splitraw,
        vdi,
        vhdi,
        vmdk_libyal,
    )

    assert [f.name for f in FORMATS] == ["ewf", "vhd", "vhdx", "vmdk", "ova", "qcow", "dmg",
                                         "parallels",
                                         "vdi", "qed", "android-sparse", "ntfsclone",
                                         "partclone", "aff", "aff4",
                                         "split-raw", "raw"]
    assert FORMATS == [ewf.FORMAT, vhdi.VHD_FORMAT, vhdi.VHDX_FORMAT, vmdk_libyal.FORMAT,
                       ova.FORMAT, qcow.FORMAT, modi.FORMAT, parallels.FORMAT, vdi.FORMAT,
                       qed.FORMAT,
                       android_sparse.FORMAT, ntfsclone.FORMAT, partclone.FORMAT,
                       aff.FORMAT, aff4.FORMAT,
                       splitraw.FORMAT, raw.FORMAT]
    assert bitwitness.images.FORMATS is FORMATS
    assert RAW is raw.FORMAT
    assert "FORMATS" in dir(bitwitness.images)
    with pytest.raises(AttributeError):
        _ = bitwitness.images.no_such_name


def test_ewf_api_resolved_on_first_use() -> None:
    import bitwitness.ewf

    for name in bitwitness.ewf.__all__:
        value = getattr(bitwitness.ewf, name)
        module = importlib.import_module(f"bitwitness.ewf.{bitwitness.ewf._EXPORTS[name]}")
        assert value is getattr(module, name)
    assert set(bitwitness.ewf.__all__) <= set(dir(bitwitness.ewf))
    assert bitwitness.ewf.layout is importlib.import_module("bitwitness.ewf.layout")
    with pytest.raises(AttributeError):
        _ = bitwitness.ewf.no_such_name


_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen" if gc.get_freeze_count() else "not frozen"))
from bitwitness.cli.main import main
sys.argv = ["bitwitness", *sys.argv[1:]]
main({argv})
"""


@pytest.mark.parametrize(("argv", "expected"),
                         [("None", "frozen"), ("['--version']", "not frozen")])
def test_the_process_entry_skips_the_final_collections(argv: str, expected: str) -> None:
    """Run as the process's command line (``argv`` None), main freezes the heap before exiting
    (the interpreter's last collections cost ~8 ms); called with an explicit ``argv`` (tests,
    embedding), it leaves the caller's collector alone."""
    proc = subprocess.run([sys.executable, "-c", _EXIT.format(argv=argv), "--version"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == expected
