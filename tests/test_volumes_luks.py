"""LUKS1 and LUKS2 volumes made by cryptsetup, encrypted payload included (luksbuild.py).

The truth is the plain file system before encryption: ``ls -r --all`` inside the decrypted
volume must list what ``fls -r -p`` lists on the plain image, and ``cat`` must give ``icat``'s
bytes. Keys come by option, file, key file or prompt; they never appear in any output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool, snapshot
from luksbuild import encrypt_in_place, fix_luks2_checksum
from test_browse_disks import MTOOLS_ENV, Disks, make_disks
from test_browse_listing import as_fls, fls_lines

# libluksde refuses non-ASCII passphrases
PASSPHRASE = "correct horse battery staple"  # noqa: S105 (a test volume's key)
_PBKDF2 = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")


@dataclass(frozen=True)
class Luks:
    volume: Path
    plain: Path
    filesystem: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("luks-keys")
    pass_file = base / "passphrase.txt"
    pass_file.write_text(PASSPHRASE + "\n", encoding="utf-8")
    key_file = base / "key.bin"
    key_file.write_text(PASSPHRASE, encoding="utf-8")  # used whole, as cryptsetup --key-file
    wrong = base / "wrong.txt"
    wrong.write_text("not the passphrase\n", encoding="utf-8")
    return {"passphrase-file": pass_file, "key-file": key_file, "wrong": wrong}


def _fat16(base: Path) -> Path:
    plain = base / "fat16.img"
    subprocess.run(["mkfs.vfat", "-C", "-F", "16", "-n", "LUKSFAT", str(plain), "16384"],
                   check=True, capture_output=True)
    for name, data in (("note.txt", b"inside luks1\n"), ("big.bin", bytes(range(256)) * 300),
                       ("gone.txt", b"deleted inside luks\n" * 40)):
        src = base / name
        src.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(plain), str(src), f"::/{name}"], check=True,
                       env=MTOOLS_ENV)
    subprocess.run(["mdel", "-i", str(plain), "::/gone.txt"], check=True, env=MTOOLS_ENV)
    return plain


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> dict[str, Luks]:
    require_tool("cryptsetup", "mkfs.vfat", "mcopy", "mdel", "fls", "icat", "sgdisk")
    disks: Disks = make_disks(tmp_path_factory)
    base = tmp_path_factory.mktemp("luks")
    luks1 = base / "luks1.img"
    encrypt_in_place(luks1, _fat16(base), keys["key-file"], version=1, kdf=_PBKDF2)
    luks2 = base / "luks2.img"
    encrypt_in_place(luks2, disks.ext4, keys["key-file"], version=2, kdf=_PBKDF2)
    gpt = base / "gpt-luks.img"
    size = luks1.stat().st_size
    subprocess.run(["truncate", "-s", str(size + (4 << 20)), str(gpt)], check=True)
    subprocess.run(["sgdisk", "-n1:2048:+" + str(size // 1024) + "K", "-t1:8309", str(gpt)],
                   check=True, capture_output=True)
    subprocess.run(["dd", f"if={luks1}", f"of={gpt}", "bs=512", "seek=2048", "conv=notrunc",
                    "status=none"], check=True)
    for image in (luks1, luks2, gpt):
        image.chmod(0o444)
    return {"luks1": Luks(luks1, base / "fat16.img", "fat16"),
            "luks2": Luks(luks2, disks.ext4, "ext4"),
            "gpt": Luks(gpt, base / "fat16.img", "fat16")}


def _secret_absent(*texts: str) -> None:
    for text in texts:
        assert PASSPHRASE not in text
        assert "horse" not in text


@pytest.mark.parametrize("name", ["luks1", "luks2"])
def test_ls_and_cat_inside_luks_match_fls_and_icat_on_the_plain_file_system(
        volumes: dict[str, Luks], keys: dict[str, Path], bw, name: str) -> None:
    luks = volumes[name]
    before = snapshot([luks.volume])
    key = ["--passphrase-file", keys["passphrase-file"]]
    tree = bw("partitions", "--json", luks.volume, *key)
    assert tree.exit_code == 0, tree.stderr
    (row,) = tree.json()["partitions"]
    assert row["encrypted"] == "LUKS"
    assert row["locked"] is False
    (inner,) = row["volumes"]
    assert inner["path"] == "0/luks1"
    assert inner["filesystem"] == luks.filesystem
    assert tree.json()["key"] == "passphrase file"
    _secret_absent(tree.stdout, tree.stderr)

    listing = bw("ls", luks.volume, "-r", "--all", "--json", "-p", "0/luks1", *key)
    assert listing.exit_code == 0, listing.stderr
    assert listing.json()["volume"] == "0/luks1"
    assert Counter(as_fls(e) for e in listing.json()["entries"]) == fls_lines(luks.plain)
    # the only file system of the image: -p may be left out
    assert bw("ls", luks.volume, "-r", "--all", "--json", *key).json()["entries"] == \
        listing.json()["entries"]

    files = [e for e in listing.json()["entries"] if e["kind"] == "file" and not e["deleted"]]
    assert files
    for entry in files:
        theirs = subprocess.run(["icat", str(luks.plain), entry["inode"]], capture_output=True,
                                check=True).stdout
        got = _cat_bytes(luks.volume, entry["inode"], "0/luks1", key)
        assert got == theirs, entry["path"]
    assert snapshot([luks.volume]) == before


def _cat_bytes(image: Path, inode: str, volume: str, key: list) -> bytes:
    """``cat --inode`` in its own process, so the bytes are the bytes (not decoded text)."""
    proc = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image), "--inode",
                           inode, "-p", volume, *map(os.fspath, key)], capture_output=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_luks_inside_a_gpt_partition_is_addressed_by_its_tree_path(
        volumes: dict[str, Luks], keys: dict[str, Path], bw) -> None:
    luks = volumes["gpt"]
    key = ["--key-file", keys["key-file"]]
    tree = bw("partitions", "--json", luks.volume, *key)
    assert tree.exit_code == 0, tree.stderr
    (row,) = [r for r in tree.json()["partitions"] if r["encrypted"]]
    assert row["start"] == 2048
    path = f"{row['index']}/luks1"
    assert [v["path"] for v in row["volumes"]] == [path]
    assert tree.json()["key"] == "key file"
    listing = bw("ls", luks.volume, "-r", "--all", "--json", "-p", path, *key)
    assert listing.exit_code == 0, listing.stderr
    assert Counter(as_fls(e) for e in listing.json()["entries"]) == fls_lines(luks.plain)
    # -p N names the row, which holds no file system itself: the message points inside
    row_only = bw("ls", luks.volume, "-p", str(row["index"]), *key)
    assert row_only.exit_code == 2
    assert f"-p {path} (fat16)" in row_only.stderr
    text = bw("partitions", luks.volume, *key)
    assert path in text.stdout
    _secret_absent(tree.stdout, listing.stdout, text.stdout, row_only.stderr)


def test_every_way_of_giving_the_key_opens_it_and_none_is_shown(
        volumes: dict[str, Luks], keys: dict[str, Path], bw) -> None:
    image = volumes["luks1"].volume
    ways = {"passphrase": (["--passphrase", PASSPHRASE], None),
            "passphrase file": (["--passphrase-file", keys["passphrase-file"]], None),
            "key file": (["--key-file", keys["key-file"]], None),
            "prompt": (["--ask-passphrase"], PASSPHRASE + "\n")}
    for kind, (options, typed) in ways.items():
        result = bw("partitions", "--json", image, *options, input=typed)
        assert result.exit_code == 0, (kind, result.stderr)
        assert result.json()["key"] == kind
        assert result.json()["partitions"][0]["volumes"][0]["filesystem"] == "fat16"
        _secret_absent(result.stdout, result.stderr)


def test_a_missing_or_wrong_key_is_one_line_naming_the_volume(
        volumes: dict[str, Luks], keys: dict[str, Path], bw) -> None:
    image = volumes["luks2"].volume
    before = snapshot([image])
    locked = bw("ls", image)
    assert locked.exit_code == 2
    assert locked.stderr.count("\n") == 1
    assert "volume 0 is encrypted (LUKS)" in locked.stderr
    assert "--passphrase-file" in locked.stderr
    tree = bw("partitions", "--json", image)
    assert tree.exit_code == 0
    assert tree.json()["partitions"][0]["locked"] is True
    assert tree.json()["partitions"][0]["volumes"] == []
    for options in (["--passphrase-file", keys["wrong"]], ["--passphrase", "not it"]):
        wrong = bw("ls", image, "-p", "0/luks1", *options)
        assert wrong.exit_code == 2
        assert wrong.stderr.count("\n") == 1
        assert "volume 0 (LUKS)" in wrong.stderr
        assert "does not unlock it" in wrong.stderr
        assert "not it" not in wrong.stderr
        assert "not the passphrase" not in wrong.stderr
    two = bw("ls", image, "--passphrase", "a", "--key-file", keys["key-file"])
    assert two.exit_code == 2
    assert "give one key" in two.stderr
    assert snapshot([image]) == before


def _two_keys_disk(volumes: dict[str, Luks], base: Path) -> Path:
    """A GPT disk holding the LUKS1 volume (the module's passphrase) and a second LUKS2 volume
    of the FAT file system under another passphrase, as cryptsetup writes them."""
    other = base / "other-key.txt"
    other.write_text(OTHER, encoding="utf-8")
    second = base / "second.img"
    encrypt_in_place(second, volumes["luks1"].plain, other, version=2, kdf=_PBKDF2)
    first = volumes["luks1"].volume
    disk = base / "two-keys.img"
    sizes = [first.stat().st_size, second.stat().st_size]
    subprocess.run(["truncate", "-s", str(sum(sizes) + (8 << 20)), str(disk)], check=True)
    start = 2048
    for number, (volume, size) in enumerate(zip((first, second), sizes, strict=True), 1):
        subprocess.run(["sgdisk", f"-n{number}:{start}:+{-(-size // 1024)}K",
                        f"-t{number}:8309", str(disk)], check=True, capture_output=True)
        subprocess.run(["dd", f"if={volume}", f"of={disk}", "bs=512", f"seek={start}",
                        "conv=notrunc", "status=none"], check=True)
        start += -(-size // (1 << 20)) * 2048 + 2048
    disk.chmod(0o444)
    return disk


OTHER = "another passphrase entirely"


def test_volumes_with_different_keys_are_browsed_one_key_at_a_time(
        volumes: dict[str, Luks], bw, tmp_path: Path) -> None:
    """A key opens the volumes it opens; the others stay locked saying why, rather than the
    one refusal ending every command on the disk. A key that opens nothing is still an error.
    The truth for each volume: cryptsetup's own test of the passphrase, and fls/icat on the
    plain file system."""
    disk = _two_keys_disk(volumes, tmp_path)
    before = snapshot([disk])
    plain = volumes["luks1"].plain
    for key, opened, refused in ((PASSPHRASE, "1", "2"), (OTHER, "2", "1")):
        tested = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", "-",
                                 str(volumes["luks1"].volume if opened == "1"
                                     else tmp_path / "second.img")],
                                input=key.encode(), capture_output=True, check=False)
        assert tested.returncode == 0, tested.stderr  # cryptsetup: this key opens that one
        tree = bw("partitions", "--json", disk, "--passphrase", key)
        assert tree.exit_code == 0, tree.stderr
        rows = {r["index"]: r for r in tree.json()["partitions"] if r["encrypted"]}
        by_slot = {str(int(r["slot"]) + 1): r for r in rows.values()}
        assert by_slot[opened]["locked"] is False
        assert [v["filesystem"] for v in by_slot[opened]["volumes"]] == ["fat16"]
        assert by_slot[refused]["locked"] is True
        assert by_slot[refused]["volumes"] == []
        assert "does not unlock it" in by_slot[refused]["refused"]
        assert f"volume {by_slot[refused]['path']} (LUKS)" in tree.stderr
        path = f"{by_slot[opened]['path']}/luks1"
        listing = bw("ls", disk, "-r", "--all", "--json", "-p", path, "--passphrase", key)
        assert listing.exit_code == 0, listing.stderr
        assert Counter(as_fls(e) for e in listing.json()["entries"]) == fls_lines(plain)
        note = next(e for e in listing.json()["entries"] if e["path"] == "/note.txt")
        theirs = subprocess.run(["icat", str(plain), note["inode"]], capture_output=True,
                                check=True).stdout
        assert _cat_bytes(disk, note["inode"], path, ["--passphrase", key]) == theirs
        inside = bw("ls", disk, "-p", f"{by_slot[refused]['path']}/luks1", "--passphrase", key)
        assert inside.exit_code == 2
        assert inside.stderr.count("\n") == 1
        assert "does not unlock it" in inside.stderr
        # every file system at once (timeline): the locked volume's absence is said
        timeline = bw("timeline", disk, "--passphrase", key)
        assert timeline.exit_code == 0, timeline.stderr
        assert "/note.txt" in timeline.stdout
        assert f"volume {by_slot[refused]['path']} (LUKS)" in timeline.stderr
        _secret_absent(tree.stdout, tree.stderr, listing.stdout, inside.stderr)
        assert key not in tree.stdout + tree.stderr + inside.stderr + timeline.stderr
    nothing = bw("partitions", disk, "--passphrase", "neither of them")
    assert nothing.exit_code == 2
    assert "does not unlock it" in nothing.stderr
    assert snapshot([disk]) == before


def test_export_from_luks_records_the_key_kind_never_the_key(
        volumes: dict[str, Luks], keys: dict[str, Path], bw, tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.custody import CustodyLog
    from bitwitness.templates import load_template

    luks = volumes["luks2"]
    case = Case.create(tmp_path / "case", load_template("default"),
                       {"case_number": "C-17", "examiner": "ana"})
    out = tmp_path / "exp"
    result = bw("export", luks.volume, "/home/ana/notes.txt", "--to", out, "--case", case.root,
                "-p", "0/luks1", "--passphrase", PASSPHRASE)
    assert result.exit_code == 0, result.stderr
    icat_inode = next(e["inode"] for e in bw("ls", luks.volume, "-r", "--json", "-p", "0/luks1",
                                             "--passphrase", PASSPHRASE).json()["entries"]
                      if e["path"] == "/home/ana/notes.txt")
    theirs = subprocess.run(["icat", str(luks.plain), icat_inode], capture_output=True,
                            check=True).stdout
    assert (out / "home" / "ana" / "notes.txt").read_bytes() == theirs
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    event = CustodyLog(case.root / "custody.jsonl").events()[-1]
    assert event.action == "export"
    assert event.details["volume"] == "0/luks1"
    assert event.details["key"] == "passphrase"
    assert '"key": "passphrase"' in manifest
    for written in [*case.root.rglob("*"), *out.rglob("*")]:
        if written.is_file():
            _secret_absent(written.read_bytes().decode("utf-8", "replace"))
    _secret_absent(result.stdout, result.stderr)


def test_convert_writes_the_decrypted_volume_as_its_own_image(
        volumes: dict[str, Luks], keys: dict[str, Path], bw, tmp_path: Path) -> None:
    """The raw output is the plain ext4 byte for byte; the E01 holds the same media (ewfexport);
    the log names the source, the volume and the key kind, never the key."""
    import hashlib
    import json

    require_tool("ewfexport")
    luks = volumes["luks2"]
    before = snapshot([luks.volume])
    key = ["--key-file", keys["key-file"]]
    raw = bw("convert", luks.volume, "--volume", "0/luks1", "--to", "raw", "-o",
             tmp_path / "dec", *key)
    assert raw.exit_code == 0, raw.stderr
    assert (tmp_path / "dec.raw").read_bytes() == luks.plain.read_bytes()
    log = json.loads((tmp_path / "dec.json").read_text(encoding="utf-8"))
    assert log["options"]["volume"]["volume"] == "0/luks1"
    assert log["options"]["volume"]["key"] == "key file"
    assert log["options"]["volume"]["image"] == str(luks.volume.absolute())
    e01 = bw("convert", luks.volume, "--volume", "0/luks1", "--to", "e01", "-o",
             tmp_path / "dec-ewf", *key)
    assert e01.exit_code == 0, e01.stderr
    subprocess.run(["ewfexport", "-q", "-u", "-t", str(tmp_path / "exported"), "-f", "raw",
                    str(tmp_path / "dec-ewf.E01")], check=True, capture_output=True)
    exported = (tmp_path / "exported.raw").read_bytes()
    assert hashlib.sha256(exported).digest() == hashlib.sha256(luks.plain.read_bytes()).digest()
    for written in tmp_path.iterdir():
        if written.suffix in (".json", ".txt"):
            _secret_absent(written.read_text(encoding="utf-8", errors="replace"))
    _secret_absent(raw.stdout, raw.stderr, e01.stdout, e01.stderr)
    locked = bw("convert", luks.volume, "--volume", "0/luks1", "--to", "raw", "-o",
                tmp_path / "nokey")
    assert locked.exit_code == 2
    assert "volume 0 is encrypted (LUKS)" in locked.stderr
    assert snapshot([luks.volume]) == before


def _mutants(header: bytes) -> list[tuple[str, bytes]]:
    """Damaged LUKS2 headers: JSON fields made hostile (checksum made right), then random bytes
    of the binary header and the JSON area changed (seeded: the same cases every run; their
    checksum is wrong, so the intact secondary copy is read)."""
    import json
    import random

    size = int.from_bytes(header[8:16], "big")
    meta = json.loads(header[4096:size].split(b"\0", 1)[0])

    def with_json(change) -> bytes:
        """A crafted primary: its checksum right, so that it is read, not the secondary."""
        doc = json.loads(json.dumps(meta))
        change(doc)
        area = json.dumps(doc).encode().ljust(size - 4096, b"\0")[: size - 4096]
        crafted = bytearray(header[:4096] + area + header[size:])
        fix_luks2_checksum(crafted, 0)
        return bytes(crafted)

    slot = next(iter(meta["keyslots"]))
    digest = next(iter(meta["digests"]))
    edits = {
        "iterations-huge": lambda d: d["keyslots"][slot]["kdf"].update(iterations=10**12),
        "stripes-huge": lambda d: d["keyslots"][slot]["af"].update(stripes=10**9),
        "stripes-text": lambda d: d["keyslots"][slot]["af"].update(stripes="many"),
        "key-size-zero": lambda d: d["keyslots"][slot].update(key_size=0),
        "salt-not-base64": lambda d: d["keyslots"][slot]["kdf"].update(salt="%%%"),
        "area-beyond-end": lambda d: d["keyslots"][slot]["area"].update(offset=str(1 << 50)),
        "kdf-unknown": lambda d: d["keyslots"][slot]["kdf"].update(type="scrypt"),
        "argon-memory-huge": lambda d: d["keyslots"][slot].update(kdf={
            "type": "argon2id", "time": 4, "memory": 1 << 40, "cpus": 4, "salt": "AAAA"}),
        "digest-missing-fields": lambda d: d["digests"][digest].pop("digest"),
        "segment-beyond-end": lambda d: d["segments"]["0"].update(offset=str(1 << 50)),
        "segment-sector-odd": lambda d: d["segments"]["0"].update(sector_size=513),
        "cipher-other": lambda d: d["segments"]["0"].update(encryption="serpent-cbc-essiv"),
        "keyslots-list": lambda d: d.update(keyslots=[1, 2]),
        "segments-missing": lambda d: d.pop("segments"),
    }
    cases = [(name, with_json(edit)) for name, edit in edits.items()]
    cases.append(("header-size-huge", header[:8] + (1 << 40).to_bytes(8, "big") + header[16:]))
    cases.append(("json-truncated", header[:4096] + header[4096:4200] + bytes(size - 4200)
                  + header[size:]))
    rng = random.Random(17)
    for number in range(30):
        data = bytearray(header)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(0, size)] = rng.randrange(256)
        cases.append((f"random-{number}", bytes(data)))
    return cases


def test_hostile_luks2_headers_fail_closed(volumes: dict[str, Luks], tmp_path: Path,
                                           bw) -> None:
    """Every damaged header gives exit 0, 1 or 2 with one line, never an internal error (3)."""
    source = volumes["luks2"].volume.read_bytes()
    header_size = int.from_bytes(source[8:16], "big")
    head = source[: header_size + 4096]
    counts = Counter()
    for name, mutated in _mutants(head):
        image = tmp_path / f"{name}.img"
        image.write_bytes(mutated + source[len(head) : len(head) + (1 << 20)])
        result = bw("partitions", "--json", image, "--passphrase", PASSPHRASE)
        assert result.exit_code in (0, 1, 2), (name, result.stderr)
        if result.exit_code:
            assert result.stderr.count("\n") == 1, (name, result.stderr)
        counts[result.exit_code] += 1
        image.unlink()
    assert counts[1] + counts[2] >= 14  # the targeted edits are refused, not read
