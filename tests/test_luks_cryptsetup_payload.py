"""LUKS1 and LUKS2 volumes whose header AND encrypted payload cryptsetup wrote.

``cryptsetup reencrypt --encrypt`` works offline on a file, without device-mapper
(``luksbuild.encrypt_in_place``), so the bytes we decrypt were encrypted by cryptsetup, not by a
script of ours. The truth is the plaintext before encryption: a file system (``fls``/``icat`` on
it) or a sector pattern, byte for byte; LUKS1 volumes are also read by libluksde (pyluksde).
Key slot 0 opens with a passphrase, slot 1 with a key file of random bytes (as ``/etc/crypttab``
keys are; libluksde tries slot 0 only, and takes no bytes); neither key ever appears in output,
logs or custody.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool, snapshot
from luksbuild import InPlace, encrypt_in_place, fix_luks2_checksum, rewrite_luks2_json
from test_browse_disks import MTOOLS_ENV
from test_browse_listing import as_fls, fls_lines

PASSPHRASE = "tr0ub4dor & 3"  # noqa: S105 (a test volume's key)
ARGON = ("--pbkdf", "argon2id", "--pbkdf-memory", "32", "--pbkdf-force-iterations", "4")
PBKDF2 = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")


@dataclass(frozen=True)
class Keys:
    key_file: Path  #: random bytes, key slot 1
    passphrase_file: Path  #: the passphrase and a line end, key slot 0
    raw_passphrase: Path  #: the passphrase alone, as cryptsetup takes a new key file
    secret: bytes  #: the key file's bytes, to look for in output


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    require_tool("cryptsetup")
    base = tmp_path_factory.mktemp("luks-keys")
    secret = random.Random(17).randbytes(512)
    (base / "key.bin").write_bytes(secret)
    (base / "pass.txt").write_text(PASSPHRASE + "\n", encoding="utf-8")
    (base / "pass.raw").write_bytes(PASSPHRASE.encode())
    return Keys(base / "key.bin", base / "pass.txt", base / "pass.raw", secret)


def _ext4(base: Path) -> Path:
    tree = base / "ext4-tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "plan.txt").write_bytes(b"inside cryptsetup's own payload\n" * 40)
    (tree / "blob.bin").write_bytes(random.Random(4).randbytes(70_000))
    plain = base / "plain-ext4.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", str(tree), str(plain), "4M"],
                   check=True, capture_output=True)
    return plain


def _fat(base: Path) -> Path:
    plain = base / "plain-fat.img"
    subprocess.run(["mkfs.vfat", "-C", "-F", "16", "-s", "1", "-n", "LUKSFAT", str(plain),
                    "4096"], check=True, capture_output=True)
    for name, data in (("note.txt", b"luks on fat\n"), ("big.bin", bytes(range(256)) * 90)):
        src = base / name
        src.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(plain), str(src), f"::/{name}"], check=True,
                       env=MTOOLS_ENV)
    return plain


#: name -> (LUKS version, file system, cryptsetup options, KDF options); what occurs in the wild
VARIANTS = {
    "luks2-argon2id-xts512": (2, "ext4", (), ARGON),  # cryptsetup's defaults
    "luks2-pbkdf2-xts256": (2, "fat", ("--cipher", "aes-xts-plain64", "--key-size", "256"),
                            PBKDF2),
    "luks2-sector4096": (2, "ext4", ("--sector-size", "4096"), ARGON),
    "luks2-cbc-essiv": (2, "fat", ("--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"),
                        PBKDF2),
    "luks1-xts512": (1, "ext4", (), PBKDF2),
    "luks1-cbc-essiv": (1, "fat", ("--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"),
                        PBKDF2),
    # an old LUKS1 volume converted to LUKS2: its key slots keep the CBC-ESSIV cipher
    "luks1-to-luks2-cbc-essiv": (12, "ext4", ("--cipher", "aes-cbc-essiv:sha256",
                                              "--key-size", "256"), PBKDF2),
}


@dataclass(frozen=True)
class Volume:
    built: InPlace
    plain: Path
    version: int


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> dict[str, Volume]:
    require_tool("cryptsetup", "mkfs.ext4", "mkfs.vfat", "mcopy", "fls", "icat")
    base = tmp_path_factory.mktemp("luks-inplace")
    plains = {"ext4": _ext4(base), "fat": _fat(base)}
    made = {}
    for name, (version, fs, options, kdf) in VARIANTS.items():
        built = encrypt_in_place(base / f"{name}.img", plains[fs], keys.raw_passphrase,
                                 version=1 if version != 2 else 2, options=options, kdf=kdf,
                                 second_key=keys.key_file)
        if version == 12:
            subprocess.run(["cryptsetup", "convert", "--batch-mode", "--type", "luks2",
                            str(built.volume)], check=True, capture_output=True)
            built = InPlace(built.volume, _luks2_offset(built.volume), built.plain_size)
        built.volume.chmod(0o444)
        made[name] = Volume(built, plains[fs], 2 if version != 1 else 1)
    return made


def _luks2_offset(volume: Path) -> int:
    meta = subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", str(volume)],
                          capture_output=True, text=True, check=True).stdout
    return int(json.loads(meta)["segments"]["0"]["offset"])


def _secret_absent(keys: Keys, *texts: str | bytes) -> None:
    for text in texts:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        assert PASSPHRASE.encode() not in data
        assert b"tr0ub4dor" not in data
        assert keys.secret[:16] not in data
        assert keys.secret[:16].hex().encode() not in data


def _cat_bytes(image: Path, inode: str, key: list) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image), "--inode",
                           inode, "-p", "0/luks1", *map(os.fspath, key)], capture_output=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", list(VARIANTS))
def test_cryptsetup_payload_reads_as_the_plaintext(volumes: dict[str, Volume], keys: Keys, bw,
                                                   tmp_path: Path, name: str) -> None:
    """partitions, ls, cat and convert of the decrypted volume give the plaintext: the file
    system's type as fsstat names it, fls's listing, icat's bytes, and the file system byte for
    byte at the start of the raw output, whose md5 convert's log records."""
    vol = volumes[name]
    image = vol.built.volume
    before = snapshot([image])
    fs_type = subprocess.run(["fsstat", "-t", str(vol.plain)], capture_output=True, text=True,
                             check=True).stdout.strip()
    by_key = {"key file": ["--key-file", keys.key_file],
              "passphrase file": ["--passphrase-file", keys.passphrase_file]}
    for kind, key in by_key.items():
        tree = bw("partitions", "--json", image, *key)
        assert tree.exit_code == 0, (kind, tree.stderr)
        (row,) = tree.json()["partitions"]
        assert row["encrypted"] == "LUKS"
        (inner,) = row["volumes"]
        assert inner["filesystem"] == fs_type
        assert tree.json()["key"] == kind
        _secret_absent(keys, tree.stdout, tree.stderr)

    key = by_key["key file"]
    listing = bw("ls", image, "-r", "--all", "--json", "-p", "0/luks1", *key)
    assert listing.exit_code == 0, listing.stderr
    assert Counter(as_fls(e) for e in listing.json()["entries"]) == fls_lines(vol.plain)
    files = [e for e in listing.json()["entries"] if e["kind"] == "file" and not e["deleted"]]
    assert len(files) >= 2
    for entry in files:
        theirs = subprocess.run(["icat", str(vol.plain), entry["inode"]], capture_output=True,
                                check=True).stdout
        assert _cat_bytes(image, entry["inode"], key) == theirs, entry["path"]

    out = tmp_path / "dec"
    raw = bw("convert", image, "--volume", "0/luks1", "--to", "raw", "-o", out, *key)
    assert raw.exit_code == 0, raw.stderr
    decrypted = (tmp_path / "dec.raw").read_bytes()
    # dm-crypt maps from cryptsetup's data offset to the end of the device: the plaintext
    assert len(decrypted) == image.stat().st_size - vol.built.payload_offset
    assert decrypted == vol.plain.read_bytes()
    md5sum = subprocess.run(["md5sum", str(vol.plain)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    log_text = (tmp_path / "dec.json").read_text(encoding="utf-8")
    assert json.loads(log_text)["media"]["hashes"]["md5"] == md5sum
    verified = bw("verify", "--json", tmp_path / "dec.raw")  # against convert's log beside it
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert md5sum in verified.stdout
    _secret_absent(keys, raw.stdout, raw.stderr, log_text)
    if vol.version == 1:
        assert _libluksde(image) == decrypted
    assert snapshot([image]) == before


def _libluksde(image: Path) -> bytes:
    """The whole decrypted volume as libluksde reads it, with the passphrase (key slot 0)."""
    import pyluksde

    volume = pyluksde.volume()
    volume.set_password(PASSPHRASE)
    volume.open(str(image))
    try:
        assert not volume.is_locked()
        return volume.read_buffer(volume.get_size())
    finally:
        volume.close()


def _pattern(path: Path, size: int) -> Path:
    """Sectors that say their own number: a misplaced or mis-decrypted sector shows."""
    path.write_bytes(b"".join(f"plain sector {n:08d}".encode().ljust(512, b".")
                              for n in range(size // 512)))
    return path


#: the other ciphers cryptsetup here encrypts offline (its kernel API has no serpent or twofish)
CIPHERS = {
    "aes-xts-plain": ("--cipher", "aes-xts-plain"),
    "aes-xts-plain64be": ("--cipher", "aes-xts-plain64be"),
    "aes-xts-essiv": ("--cipher", "aes-xts-essiv:sha256"),
    "aes-xts-benbi": ("--cipher", "aes-xts-benbi"),
    "aes-cbc-plain": ("--cipher", "aes-cbc-plain", "--key-size", "128"),
    "aes-cbc-plain64": ("--cipher", "aes-cbc-plain64", "--key-size", "256"),
    "aes-cbc-null": ("--cipher", "aes-cbc-null", "--key-size", "256"),
    "aes-ecb": ("--cipher", "aes-ecb", "--key-size", "192"),
    "sector2048": ("--sector-size", "2048"),
}
#: where libluksde (the independent LUKS1 reader) does not read what cryptsetup wrote
LIBLUKSDE_FAILS = {"aes-xts-plain64be": "opens, but no key slot unlocks",
                   "aes-xts-essiv": "unable to initialize ESSIV",
                   "aes-ecb": "unsupported master key size (192 bits)"}


@pytest.mark.parametrize("name", list(CIPHERS))
def test_every_cipher_cryptsetup_writes_offline_decrypts_to_the_plaintext(
        keys: Keys, bw, tmp_path: Path, name: str) -> None:
    """LUKS2 as cryptsetup wrote it and (512-byte sectors) the same volume turned LUKS1, each
    equal to the plaintext pattern sector for sector; LUKS1 also equal to libluksde's reading
    where libluksde reads the cipher."""
    require_tool("cryptsetup")
    plain = _pattern(tmp_path / "plain.img", 1 << 20)
    versions = [2] if name == "sector2048" else [2, 1]
    for version in versions:
        built = encrypt_in_place(tmp_path / f"v{version}.img", plain, keys.raw_passphrase,
                                 version=version, options=CIPHERS[name], kdf=PBKDF2,
                                 second_key=keys.key_file)
        out = tmp_path / f"dec{version}"
        result = bw("convert", built.volume, "--volume", "0/luks1", "--to", "raw", "-o", out,
                    "--key-file", keys.key_file)
        assert result.exit_code == 0, (version, result.stderr)
        decrypted = out.with_suffix(".raw").read_bytes()
        assert len(decrypted) == built.volume.stat().st_size - built.payload_offset
        assert decrypted == plain.read_bytes(), version
        if version == 1 and name not in LIBLUKSDE_FAILS:
            assert _libluksde(built.volume) == decrypted


def _luks1_with_cipher(source: Path, target: Path, name: bytes, mode: bytes) -> Path:
    data = bytearray(source.read_bytes())
    data[8:40] = name.ljust(32, b"\0")
    data[40:72] = mode.ljust(32, b"\0")
    target.write_bytes(bytes(data))
    return target


def _luks2_with_cipher(source: Path, target: Path, cipher: str, *, keyslot: bool) -> Path:
    def change(meta: dict) -> None:
        if keyslot:
            for slot in meta["keyslots"].values():
                slot["area"]["encryption"] = cipher
        else:
            meta["segments"]["0"]["encryption"] = cipher

    target.write_bytes(rewrite_luks2_json(source.read_bytes(), change))
    return target


def _luks2_with_integrity(source: Path, target: Path, integrity: str) -> Path:
    """The segment as ``luksFormat --integrity`` writes it (dm-integrity needs the kernel)."""
    def change(meta: dict) -> None:
        meta["segments"]["0"]["integrity"] = {"type": integrity, "journal_encryption": "none",
                                              "journal_integrity": "none"}

    target.write_bytes(rewrite_luks2_json(source.read_bytes(), change))
    return target


def test_a_cipher_we_do_not_read_is_one_line_naming_it(volumes: dict[str, Volume], keys: Keys,
                                                       bw, tmp_path: Path) -> None:
    luks2 = volumes["luks2-pbkdf2-xts256"].built.volume
    luks1 = volumes["luks1-xts512"].built.volume
    cases = {
        "serpent-xts-plain64": _luks2_with_cipher(luks2, tmp_path / "a.img",
                                                  "serpent-xts-plain64", keyslot=False),
        "twofish-cbc-essiv:sha256": _luks2_with_cipher(luks2, tmp_path / "b.img",
                                                       "twofish-cbc-essiv:sha256", keyslot=True),
        "aes-xts-lmk": _luks2_with_cipher(luks2, tmp_path / "c.img", "aes-xts-lmk",
                                          keyslot=False),
        # authenticated encryption (cryptsetup --integrity): dm-integrity's tags between data
        "hmac(sha256)": _luks2_with_integrity(luks2, tmp_path / "e.img", "hmac(sha256)"),
        # LUKS1: a cipher we do not read goes to libluksde, whose refusal names it too
        "serpent-xts-plain64 ": _luks1_with_cipher(luks1, tmp_path / "d.img", b"serpent",
                                                   b"xts-plain64"),
    }
    for cipher, image in cases.items():
        for key in (["--key-file", keys.key_file], ["--passphrase", PASSPHRASE]):
            result = bw("partitions", image, *key)
            assert result.exit_code in (1, 2), (cipher, result.stderr)
            assert result.stderr.count("\n") == 1, result.stderr
            assert f"'{cipher.strip()}'" in result.stderr
            assert "volume 0" in result.stderr
            _secret_absent(keys, result.stdout, result.stderr)


def test_a_wrong_key_is_one_line_naming_the_volume(volumes: dict[str, Volume], keys: Keys, bw,
                                                   tmp_path: Path) -> None:
    wrong_bytes = tmp_path / "wrong.bin"
    wrong_bytes.write_bytes(keys.secret[::-1])
    wrong_text = tmp_path / "wrong.txt"
    wrong_text.write_text("tr0ub4dor & 4\n", encoding="utf-8")
    for name in ("luks1-cbc-essiv", "luks2-argon2id-xts512", "luks1-to-luks2-cbc-essiv"):
        image = volumes[name].built.volume
        for kind, key in (("key file", ["--key-file", wrong_bytes]),
                          ("passphrase file", ["--passphrase-file", wrong_text])):
            for command in (["ls", image, "-p", "0/luks1"],
                            ["convert", image, "--volume", "0/luks1", "--to", "raw", "-o",
                             tmp_path / "never"]):
                result = bw(*command, *key)
                assert result.exit_code == 2, (name, result.stderr)
                assert result.stderr.count("\n") == 1
                assert f"volume 0 (LUKS): the {kind} does not unlock it" in result.stderr
                assert "tr0ub4dor" not in result.stderr
                _secret_absent(keys, result.stdout, result.stderr)
    assert not list(tmp_path.glob("never*"))


def test_export_with_a_key_file_records_its_kind_never_its_bytes(
        volumes: dict[str, Volume], keys: Keys, bw, tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.custody import CustodyLog
    from bitwitness.templates import load_template

    vol = volumes["luks1-cbc-essiv"]
    case = Case.create(tmp_path / "case", load_template("default"),
                       {"case_number": "C-17", "examiner": "ana"})
    out = tmp_path / "exp"
    result = bw("export", vol.built.volume, "/note.txt", "--to", out, "--case", case.root,
                "-p", "0/luks1", "--key-file", keys.key_file)
    assert result.exit_code == 0, result.stderr
    theirs = subprocess.run(["mtype", "-i", str(vol.plain), "::/note.txt"], capture_output=True,
                            check=True, env=MTOOLS_ENV).stdout
    assert (out / "note.txt").read_bytes() == theirs
    event = CustodyLog(case.root / "custody.jsonl").events()[-1]
    assert event.action == "export"
    assert event.details["key"] == "key file"
    for written in [*case.root.rglob("*"), *out.rglob("*")]:
        if written.is_file():
            _secret_absent(keys, written.read_bytes())
    _secret_absent(keys, result.stdout, result.stderr)


def _luks1_mutants(header: bytes) -> list[tuple[str, bytes]]:
    """Damaged LUKS1 headers: fields made hostile, then random bytes changed (seeded). Random
    changes spare the PBKDF2 iteration counts (slot bytes 4-8, header bytes 164-168): a count
    below the bound but in the millions is a slow header, not a wrong one; the targeted edits
    cover those counts."""
    import random as rnd

    def put(data: bytes, offset: int, value: int, size: int = 4) -> bytes:
        return data[:offset] + value.to_bytes(size, "big") + data[offset + size :]

    slot0 = 208
    cases = [
        ("key-bytes-zero", put(header, 108, 0)),
        ("key-bytes-huge", put(header, 108, 4096)),
        ("digest-iterations-zero", put(header, 164, 0)),
        ("digest-iterations-huge", put(header, 164, 0xFFFFFFFF)),
        ("slot-iterations-huge", put(header, slot0 + 4, 0xFFFFFFFF)),
        ("slot-stripes-huge", put(header, slot0 + 44, 0xFFFFFFFF)),
        ("slot-stripes-zero", put(header, slot0 + 44, 0)),
        ("slot-material-beyond-end", put(header, slot0 + 40, 0xFFFFFFF0)),
        ("payload-beyond-end", put(header, 104, 0xFFFFFFF0)),
        ("hash-unknown", header[:72] + b"whirlpool9".ljust(32, b"\0") + header[104:]),
        ("hash-no-fixed-size", header[:72] + b"shake_128".ljust(32, b"\0") + header[104:]),
        ("cipher-mode-junk", header[:40] + b"\xff\xfe-plain".ljust(32, b"\0") + header[72:]),
        ("no-active-slot", put(header, slot0, 0xDEAD)),
    ]
    spared = {*range(164, 168), *(208 + 48 * n + k for n in range(8) for k in range(4, 8))}
    positions = [i for i in range(6, len(header)) if i not in spared]
    rng = rnd.Random(17)
    for number in range(30):
        data = bytearray(header)
        for _ in range(rng.randint(1, 6)):
            data[rng.choice(positions)] = rng.randrange(256)
        cases.append((f"random-{number}", bytes(data)))
    return cases


def test_hostile_luks1_headers_fail_closed(volumes: dict[str, Volume], keys: Keys, bw,
                                           tmp_path: Path) -> None:
    """Our LUKS1 reader: every damaged header gives exit 0, 1 or 2 with one line, never an
    internal error (3)."""
    source = volumes["luks1-cbc-essiv"].built.volume.read_bytes()
    counts: Counter[int] = Counter()
    for name, mutated in _luks1_mutants(source[:592]):
        image = tmp_path / f"{name}.img"
        image.write_bytes(mutated + source[592 : 3 << 20])
        result = bw("partitions", "--json", image, "--key-file", keys.key_file)
        assert result.exit_code in (0, 1, 2), (name, result.stderr)
        if result.exit_code:
            assert result.stderr.count("\n") == 1, (name, result.stderr)
        _secret_absent(keys, result.stdout, result.stderr)
        counts[result.exit_code] += 1
        image.unlink()
    assert counts[1] + counts[2] >= 13  # the targeted edits are refused, not read


@pytest.mark.parametrize("version", [2, 1])
def test_a_detached_header_opens_the_data_it_was_kept_apart_from(
        keys: Keys, bw, tmp_path: Path, version: int) -> None:
    """``--luks-header``: the data (encrypted by cryptsetup from its first byte) decrypts to the
    plain file system whole: fls, icat, md5sum; without a key it is shown locked; a file that
    is no LUKS header, a wrong key and an image with two candidate partitions are one line."""
    from luksbuild import encrypt_detached

    require_tool("cryptsetup", "mkfs.ext4", "fls", "icat", "sgdisk")
    plain = _ext4(tmp_path)
    data, header = tmp_path / "data.img", tmp_path / "header.img"
    encrypt_detached(data, plain, header, keys.key_file, version=version,
                     kdf=ARGON if version == 2 else PBKDF2,
                     options=() if version == 2 else ("--cipher", "aes-cbc-essiv:sha256",
                                                      "--key-size", "256"))
    data.chmod(0o444)
    header.chmod(0o444)
    before = snapshot([data, header])
    key = ["--luks-header", header, "--key-file", keys.key_file]
    tree = bw("partitions", "--json", data, *key)
    assert tree.exit_code == 0, tree.stderr
    (row,) = tree.json()["partitions"]
    assert (row["encrypted"], row["locked"]) == ("LUKS", False)
    assert row["volumes"][0]["filesystem"] == "ext4"
    listing = bw("ls", data, "-r", "--all", "--json", "-p", "0/luks1", *key)
    assert listing.exit_code == 0, listing.stderr
    assert Counter(as_fls(e) for e in listing.json()["entries"]) == fls_lines(plain)
    entry = next(e for e in listing.json()["entries"] if e["path"] == "/docs/plan.txt")
    theirs = subprocess.run(["icat", str(plain), entry["inode"]], capture_output=True,
                            check=True).stdout
    assert _cat_bytes(data, entry["inode"], key) == theirs
    raw = bw("convert", data, "--volume", "0/luks1", "--to", "raw", "-o", tmp_path / "dec", *key)
    assert raw.exit_code == 0, raw.stderr
    assert (tmp_path / "dec.raw").read_bytes() == plain.read_bytes()
    md5sum = subprocess.run(["md5sum", str(plain)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    log_text = (tmp_path / "dec.json").read_text(encoding="utf-8")
    assert json.loads(log_text)["media"]["hashes"]["md5"] == md5sum
    assert str(header) in log_text  # which header opened it is recorded, never the key
    _secret_absent(keys, tree.stdout, listing.stdout, raw.stdout, raw.stderr, log_text)

    locked = bw("partitions", "--json", data, "--luks-header", header)
    assert locked.exit_code == 0
    assert locked.json()["partitions"][0]["locked"] is True
    for args, message in (
            (["--luks-header", plain, "--key-file", keys.key_file], "not a LUKS header"),
            (["--luks-header", header, "--passphrase", "not it"], "does not unlock it")):
        result = bw("ls", data, "-p", "0/luks1", *args)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert message in result.stderr
    disk = tmp_path / "two.img"
    subprocess.run(["truncate", "-s", "12M", str(disk)], check=True)
    subprocess.run(["sgdisk", "-n1:2048:+4M", "-n2:0:+4M", str(disk)], check=True,
                   capture_output=True)
    two = bw("partitions", disk, *key)
    assert two.exit_code == 2
    assert two.stderr.count("\n") == 1
    assert "such partitions: " in two.stderr
    assert snapshot([data, header]) == before


def test_a_reencryption_cryptsetup_has_not_finished_is_one_line_naming_it(
        keys: Keys, bw, tmp_path: Path) -> None:
    """``reencrypt --init-only`` leaves the volume as an interrupted encryption does: several
    segments, part plain and part encrypted, and the requirement ``online-reencrypt-v2``. We do
    not join such segments: refused by name, never read as if it were whole."""
    require_tool("cryptsetup")
    image = _pattern(tmp_path / "half.img", 6 << 20)
    subprocess.run(["cryptsetup", "reencrypt", "--encrypt", "--init-only", "--type", "luks2",
                    "--batch-mode", "--reduce-device-size", str(4 << 20), *PBKDF2, "--key-file",
                    str(keys.key_file), str(image)], check=True, capture_output=True)
    result = bw("partitions", image, "--key-file", keys.key_file)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.count("\n") == 1
    assert "online-reencrypt-v2" in result.stderr
    assert "volume 0" in result.stderr
    traced = bw("--debug", "partitions", image, "--passphrase", PASSPHRASE)  # with traceback
    assert traced.exit_code == 1
    assert "Traceback" in traced.stderr
    _secret_absent(keys, traced.stdout, traced.stderr)


def test_an_unbound_key_slot_opens_no_data(volumes: dict[str, Volume], keys: Keys, bw,
                                           tmp_path: Path) -> None:
    """``luksAddKey --unbound`` stores a key of no data segment: its passphrase must not
    "decrypt" the volume (it would give noise as evidence); cryptsetup itself refuses it."""
    image = tmp_path / "unbound.img"
    image.write_bytes(volumes["luks2-cbc-essiv"].built.volume.read_bytes())
    other = tmp_path / "unbound.key"
    other.write_bytes(b"a key of no segment")
    subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", "--unbound", "--key-size", "256",
                    *PBKDF2, str(image), str(other)], check=True, capture_output=True)
    theirs = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file",
                             str(other), str(image)], capture_output=True, check=False)
    assert theirs.returncode != 0
    result = bw("ls", image, "-p", "0/luks1", "--key-file", other)
    assert result.exit_code == 2, result.stdout
    assert "volume 0 (LUKS): the key file does not unlock it" in result.stderr
    assert bw("ls", image, "-p", "0/luks1", "--key-file", keys.key_file).exit_code == 0


def test_a_damaged_primary_header_is_read_from_the_secondary_copy(
        volumes: dict[str, Volume], keys: Keys, bw, tmp_path: Path) -> None:
    """As cryptsetup does: the copy whose checksum is right. One byte changed in the primary's
    JSON still opens (through the secondary) to the plaintext; both copies damaged is one
    line; a crafted primary with a right checksum is what is read."""
    vol = volumes["luks2-pbkdf2-xts256"]
    source = vol.built.volume.read_bytes()
    size = int.from_bytes(source[8:16], "big")
    primary = bytearray(source)
    primary[4096 + 20] ^= 0x01  # inside the JSON text
    image = tmp_path / "primary.img"
    image.write_bytes(bytes(primary))
    theirs = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file",
                             str(keys.key_file), str(image)], capture_output=True, check=False)
    assert theirs.returncode == 0, theirs.stderr  # cryptsetup opens it too
    out = tmp_path / "dec"
    result = bw("convert", image, "--volume", "0/luks1", "--to", "raw", "-o", out,
                "--key-file", keys.key_file)
    assert result.exit_code == 0, result.stderr
    assert out.with_suffix(".raw").read_bytes() == vol.plain.read_bytes()
    both = bytearray(primary)
    both[size + 4096 + 20] ^= 0x01
    image.write_bytes(bytes(both))
    broken = bw("partitions", image, "--key-file", keys.key_file)
    assert broken.exit_code == 1
    assert broken.stderr.count("\n") == 1
    assert "neither LUKS2 header copy is intact" in broken.stderr
    crafted = bytearray(both)
    fix_luks2_checksum(crafted, 0)  # the primary's JSON with a byte changed, checksum right
    image.write_bytes(bytes(crafted))
    read = bw("partitions", image, "--key-file", keys.key_file)
    assert read.exit_code in (0, 1, 2)
    assert "neither LUKS2 header copy" not in read.stderr
