#!/usr/bin/env bash
# Builds the sample disk that ships inside BitWitness (bitwitness/sample/), without mounting
# anything and without root:
#
#   scripts/make-sample-disk.sh [--overwrite] [--keep-raw] [OUTDIR]
#
# OUTDIR defaults to bitwitness/sample/ next to this script. It receives
#   sample-disk.img.xz   the raw disk, xz-compressed (read back with Python's lzma)
#   sample-disk.json     what is on it: size and hashes of the raw disk, the partitions and every
#                        file put in (path, size, sha256, mtime, deleted or not); every hash is
#                        computed here by md5sum/sha1sum/sha256sum, never typed by hand
#   sample-disk.img      only with --keep-raw
# Existing outputs are refused unless --overwrite is given.
#
# The disk (40 MiB, MBR, 512-byte sectors):
#   partition 1  type 0x0c  FAT32 (512-byte clusters, so that 33 MiB is really FAT32), built with
#                mkfs.vfat + mtools (mmd/mcopy -m/mdel); one file deleted with mdel
#   partition 2  type 0x83  ext4 (1 KiB blocks, 256-byte inodes), built with mkfs.ext4 -d from a
#                staging folder; one file deleted with debugfs rm
# Both hold nested folders, a text note, a CSV and a non-ASCII file name; the FAT32 side also a
# small PNG and a minimal PDF generated here.
#
# Reproducibility: the same tool versions give the same bytes. Fixed: the MBR disk id, the FAT
# volume id (mkfs.vfat --invariant -i), the ext4 UUID and hash seed, every time stamp
# (SOURCE_DATE_EPOCH for mtools, E2FSPROGS_FAKE_TIME for mke2fs/debugfs, touch -d on the staging
# files, debugfs set_inode_field for ext4 inode times, owners and modes), TZ=UTC (FAT stores local
# time), the locale, the umask, and xz run single-threaded. Another version of dosfstools, mtools,
# e2fsprogs or xz may lay bytes out differently; sample-disk.json records the versions used.
set -euo pipefail

overwrite=0
keep_raw=0
outdir=""
for arg in "$@"; do
    case "$arg" in
        --overwrite) overwrite=1 ;;
        --keep-raw) keep_raw=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "make-sample-disk.sh: unknown option $arg" >&2; exit 2 ;;
        *) [[ -z "$outdir" ]] || { echo "make-sample-disk.sh: one OUTDIR only" >&2; exit 2; }
           outdir="$arg" ;;
    esac
done
here="$(cd "$(dirname "$0")" && pwd)"
outdir="${outdir:-$(cd "$here/.." && pwd)/bitwitness/sample}"
PYTHON="${PYTHON:-python3}"

for tool in sfdisk mkfs.vfat mlabel mmd mcopy mdel mkfs.ext4 debugfs xz md5sum sha1sum sha256sum \
            "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "make-sample-disk.sh: $tool is missing" >&2; exit 2; }
done

name=sample-disk
outputs=("$outdir/$name.img.xz" "$outdir/$name.json")
((keep_raw)) && outputs+=("$outdir/$name.img")
if ((!overwrite)); then
    for f in "${outputs[@]}"; do
        if [[ -e "$f" ]]; then
            echo "make-sample-disk.sh: $f already exists (use --overwrite to replace it)" >&2
            exit 2
        fi
    done
fi
mkdir -p "$outdir"

# --- everything that makes the build repeatable ------------------------------------------------
export LC_ALL=C.UTF-8 TZ=UTC MTOOLS_SKIP_CHECK=1
unset MTOOLSRC
export SOURCE_DATE_EPOCH=1761987600          # 2025-11-01T09:00:00Z: both volumes formatted
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
DELETED_AT=1768862651                        # 2026-01-19T22:44:11Z: ext4 deletion, last write
umask 022

SECTOR=512
DISK_SECTORS=81920                           # 40 MiB
P1_START=2048;  P1_SECTORS=67584             # 33 MiB: >= 65525 clusters of 512 bytes = FAT32
P2_START=69632; P2_SECTORS=12288             # 6 MiB ext4
DISK_ID=0x20260120
FAT_ID=20260120
FAT_LABEL=BW-SAMPLE
EXT_LABEL=bw-home
EXT_UUID=3f1c0a4e-7d2b-4b1d-9e5a-5a3b1e7c0d21
EXT_HASH_SEED=6d2b9c1e-0a4f-4f0a-8c3d-1b2e3f4a5b6c
EXT_FEATURES=none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg
EXT_FEATURES+=,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum

work="$(mktemp -d "${TMPDIR:-/tmp}/bw-sample.XXXXXX")"
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
mkdir -p "$stage/1" "$stage/2"

# --- 1. the files: generated deterministically; files.tsv lists them ------------------------------
# files.tsv columns: partition, path in the file system, mtime (epoch), uid, gid, mode, deleted(0/1)
"$PYTHON" - "$stage" <<'PY'
"""Writes the sample's files under stage/<partition>/ and stage/files.tsv; no randomness."""
import random
import struct
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

stage = Path(sys.argv[1])
rows = []


def when(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def put(part: int, path: str, data: bytes, mtime: str, *, uid: int = 0, mode: str = "0644",
        deleted: bool = False) -> None:
    if part == 1 and when(mtime) % 2:
        raise SystemExit(f"{path}: FAT keeps modification times in 2-second steps")
    target = stage / str(part) / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    rows.append(f"{part}\t{path}\t{when(mtime)}\t{uid}\t{uid}\t{mode}\t{int(deleted)}")


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        for x in range(width):
            raw += bytes((x * 255 // (width - 1), y * 255 // (height - 1), 160))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def pdf(lines: list[str]) -> bytes:
    text = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({s}) '" for s in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


rng = random.Random(2026)
ledger = ["date,account,counterparty,amount_eur,reference"]
parties = ["Hofmann GmbH", "Stadtwerke", "Nordbank", "Keller & Sohn", "Office Supply Co"]
for month in range(1, 13):
    for day in (3, 11, 19, 27):
        amount = rng.randrange(-250000, 400000) / 100
        ledger.append(f"2025-{month:02d}-{day:02d},DE44 5001 0517 5407 3249 31,"
                      f"{rng.choice(parties)},{amount:.2f},INV-{rng.randrange(10000, 99999)}")

# partition 1: FAT32 ("a USB stick")
put(1, "/README.TXT",
    b"BitWitness sample disk, FAT32 volume BW-SAMPLE.\r\n"
    b"Everything on this volume is synthetic test data.\r\n", "2026-01-05T08:30:00")
put(1, "/Documents/Notes/meeting-2026-01-12.txt",
    b"Meeting 2026-01-12, 09:00, room 4.17\n"
    b"Present: A. Weber, J. Novak, M. Sato\n\n"
    b"1. Q4 numbers: ledger reconciled except two transfers (see Finance).\n"
    b"2. Supplier audit moved to February.\n"
    b"3. Next meeting 2026-01-26.\n", "2026-01-12T09:58:12")
put(1, "/Documents/Notes/draft-resignation-letter.txt",
    b"Dear Mr Hofmann,\n\nI hereby resign from my position effective 2026-02-28.\n"
    b"Please treat this letter as confidential until the end of the month.\n\n"
    b"Regards,\nA. Weber\n", "2026-01-19T22:35:40", deleted=True)
put(1, "/Documents/Finance/ledger-2025.csv", ("\r\n".join(ledger) + "\r\n").encode(),
    "2026-01-09T17:02:44")
put(1, "/Documents/Finance/Überweisung_2026.txt",
    "Überweisung an Hofmann GmbH\nBetrag: 12.480,00 EUR\nVerwendungszweck: Rechnung 2026-004\n"
    "Ausführung: 2026-01-15\n".encode(), "2026-01-14T11:20:06")
put(1, "/Documents/Reports/quarterly-summary.pdf",
    pdf(["Quarterly summary Q4 2025", "Revenue up 4 percent", "Two open transfers"]),
    "2026-01-10T15:45:00")
put(1, "/Pictures/Camera/IMG_0001.png", png(48, 32), "2025-12-24T18:03:26")

# partition 2: ext4 ("a Linux home partition")
put(2, "/etc/hostname", b"alice-laptop\n", "2025-11-02T10:00:00")
put(2, "/var/log/auth.log",
    b"Jan 19 22:30:01 alice-laptop sshd[2211]: Accepted password for alice from 10.0.0.23\n"
    b"Jan 19 22:44:10 alice-laptop sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; "
    b"USER=root ; COMMAND=/usr/bin/rm /home/alice/secret-plan.txt\n"
    b"Jan 19 22:47:52 alice-laptop sshd[2211]: Disconnected from user alice 10.0.0.23\n",
    "2026-01-19T22:47:52", mode="0640")
put(2, "/home/alice/.bash_history",
    b"ls -la\ncd Documents\nvim contacts.csv\nsudo rm ~/secret-plan.txt\nexit\n",
    "2026-01-19T22:47:50", uid=1000, mode="0600")
put(2, "/home/alice/notes/todo.txt",
    b"- call the bank about the two transfers\n- back up laptop\n- renew passport\n",
    "2026-01-16T07:12:30", uid=1000)
put(2, "/home/alice/Documents/contacts.csv",
    b"name,phone,email\nJ. Novak,+420 601 234 567,j.novak@example.org\n"
    b"M. Sato,+81 90 1234 5678,m.sato@example.net\n"
    b"Hofmann GmbH,+49 30 1234567,office@example.com\n", "2026-01-08T13:27:09", uid=1000)
put(2, "/home/alice/報告.txt",
    "週次報告 2026年1月第3週\n- 監査は2月に延期\n- 送金2件を確認中\n".encode(),
    "2026-01-17T09:05:00", uid=1000)
put(2, "/home/alice/secret-plan.txt",
    b"Plan: move the two transfers through the Nordbank account before the audit.\n"
    b"Delete this file afterwards.\n", "2026-01-18T23:10:00", uid=1000, deleted=True)

(stage / "files.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
PY

# staging times and modes: the file systems copy them (mcopy -m, mkfs.ext4 -d)
while IFS=$'\t' read -r part path mtime _uid _gid mode _deleted; do
    chmod "$mode" "$stage/$part$path"
    touch -d "@$mtime" "$stage/$part$path"
done < "$stage/files.tsv"

# --- 2. FAT32 -----------------------------------------------------------------------------------
fat="$work/p1.img"
truncate -s $((P1_SECTORS * SECTOR)) "$fat"
mkfs.vfat -F 32 -S "$SECTOR" -s 1 -h "$P1_START" --invariant -i "$FAT_ID" "$fat" >"$work/mkfs.vfat.log"
mlabel -i "$fat" "::$FAT_LABEL"               # label entry dated SOURCE_DATE_EPOCH by mtools
declare -A made=()
while IFS=$'\t' read -r part path _mtime _uid _gid _mode _deleted; do
    [[ "$part" == 1 ]] || continue
    dir="${path%/*}"; parts=""
    IFS=/ read -ra comps <<< "${dir#/}"
    for c in "${comps[@]}"; do
        [[ -n "$c" ]] || continue
        parts="$parts/$c"
        if [[ -z "${made[$parts]:-}" ]]; then mmd -i "$fat" "::$parts"; made[$parts]=1; fi
    done
    mcopy -m -i "$fat" "$stage/1$path" "::$path"
done < "$stage/files.tsv"
while IFS=$'\t' read -r part path _mtime _uid _gid _mode deleted; do
    if [[ "$part" == 1 && "$deleted" == 1 ]]; then mdel -i "$fat" "::$path"; fi
done < "$stage/files.tsv"

# --- 3. ext4 ------------------------------------------------------------------------------------
ext="$work/p2.img"
truncate -s $((P2_SECTORS * SECTOR)) "$ext"
mkfs.ext4 -q -F -t ext4 -O "$EXT_FEATURES" -b 1024 -I 256 -N 64 -J size=1 -L "$EXT_LABEL" \
    -U "$EXT_UUID" -E "hash_seed=$EXT_HASH_SEED,root_owner=0:0,nodiscard" -d "$stage/2" "$ext"
# mke2fs -d copies ctime (which touch cannot set), the owner and the staging mode: pin them all.
{
    (cd "$stage/2" && find . -type d | LC_ALL=C sort) | while read -r d; do
        d="${d#.}"; d="${d:-/}"
        owner=0; [[ "$d" == /home/alice* ]] && owner=1000
        for f in atime mtime ctime crtime; do
            echo "sif \"$d\" $f @$SOURCE_DATE_EPOCH"; echo "sif \"$d\" ${f}_extra 0"
        done
        echo "sif \"$d\" uid $owner"; echo "sif \"$d\" gid $owner"; echo "sif \"$d\" mode 040755"
    done
    while IFS=$'\t' read -r part path mtime uid gid mode _deleted; do
        [[ "$part" == 2 ]] || continue
        for f in atime mtime ctime crtime; do
            echo "sif \"$path\" $f @$mtime"; echo "sif \"$path\" ${f}_extra 0"
        done
        echo "sif \"$path\" uid $uid"; echo "sif \"$path\" gid $gid"; echo "sif \"$path\" mode 0100${mode#0}"
    done < "$stage/files.tsv"
} > "$work/ext4-fix.debugfs"
debugfs -w -f "$work/ext4-fix.debugfs" "$ext" >"$work/debugfs.log" 2>&1
{
    while IFS=$'\t' read -r part path _mtime _uid _gid _mode deleted; do
        if [[ "$part" == 2 && "$deleted" == 1 ]]; then echo "rm \"$path\""; fi
    done < "$stage/files.tsv"
} > "$work/ext4-delete.debugfs"
E2FSPROGS_FAKE_TIME=$DELETED_AT debugfs -w -f "$work/ext4-delete.debugfs" "$ext" \
    >>"$work/debugfs.log" 2>&1
if grep -vE '^(debugfs [0-9.]+ \(|debugfs: )' "$work/debugfs.log" | grep -q .; then
    echo "make-sample-disk.sh: debugfs reported problems:" >&2; cat "$work/debugfs.log" >&2; exit 1
fi

# --- 4. the disk: MBR + both partitions ----------------------------------------------------------
raw="$work/$name.img"
truncate -s $((DISK_SECTORS * SECTOR)) "$raw"
sfdisk --quiet --no-reread --no-tell-kernel "$raw" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors
sector-size: $SECTOR

start=$P1_START, size=$P1_SECTORS, type=c
start=$P2_START, size=$P2_SECTORS, type=83
EOF
dd if="$fat" of="$raw" bs=1M seek=$((P1_START * SECTOR)) oflag=seek_bytes conv=notrunc status=none
dd if="$ext" of="$raw" bs=1M seek=$((P2_START * SECTOR)) oflag=seek_bytes conv=notrunc status=none

# --- 5. hashes, description, compression --------------------------------------------------------
sum_of() { "$1" < "$2" | cut -d' ' -f1; }
{
    printf 'image\t%s\t%s\t%s\t%s\n' "$(stat -c %s "$raw")" "$(sum_of md5sum "$raw")" \
        "$(sum_of sha1sum "$raw")" "$(sum_of sha256sum "$raw")"
    while IFS=$'\t' read -r part path _rest; do
        f="$stage/$part$path"
        printf 'file\t%s\t%s\t%s\t%s\n' "$part" "$path" "$(stat -c %s "$f")" "$(sum_of sha256sum "$f")"
    done < "$stage/files.tsv"
} > "$work/sums.tsv"
sfdisk --json "$raw" > "$work/table.json"
xz -9 -e -T1 --check=crc64 -c "$raw" > "$work/$name.img.xz"

versions="$work/versions.tsv"
{
    printf 'mkfs.vfat\t%s\n' "$(awk 'NR == 1 {print $2}' "$work/mkfs.vfat.log")"
    printf 'mtools\t%s\n' "$(mcopy -V | head -1 | awk '{print $NF}')"
    printf 'mkfs.ext4\t%s\n' "$(mkfs.ext4 -V 2>&1 | head -1 | awk '{print $2}')"
    printf 'sfdisk\t%s\n' "$(sfdisk --version | awk '{print $NF}')"
    printf 'xz\t%s\n' "$(xz --version | head -1 | awk '{print $NF}')"
} > "$versions"

FAT_LABEL=$FAT_LABEL FAT_ID=$FAT_ID EXT_LABEL=$EXT_LABEL EXT_UUID=$EXT_UUID SECTOR=$SECTOR \
    "$PYTHON" - "$work" "$stage/files.tsv" "$name" <<'PY'

"""Assembles sample-disk.json from what the tools measured (sums.tsv, sfdisk --json)."""
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

work, files_tsv, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sums = [line.split("\t") for line in (work / "sums.tsv").read_text("utf-8").splitlines()]
image = next(r for r in sums if r[0] == "image")
measured = {(int(r[1]), r[2]): (int(r[3]), r[4]) for r in sums if r[0] == "file"}
table = json.loads((work / "table.json").read_text())["partitiontable"]
fs = {
    1: {"fs_type": "fat32", "label": os.environ["FAT_LABEL"], "volume_id": os.environ["FAT_ID"]},
    2: {"fs_type": "ext4", "label": os.environ["EXT_LABEL"], "volume_id": os.environ["EXT_UUID"]},
}
partitions = []
for index, entry in enumerate(table["partitions"], 1):
    partitions.append({"index": index, "start_sector": entry["start"],
                       "sector_count": entry["size"], "type": "0x" + entry["type"].zfill(2),
                       **fs[index]})
files, directories = [], set()
for line in files_tsv.read_text("utf-8").splitlines():
    part, path, mtime, uid, gid, mode, deleted = line.split("\t")
    size, sha256 = measured[(int(part), path)]
    parent = path.rsplit("/", 1)[0]
    while parent:
        directories.add((int(part), parent))
        parent = parent.rsplit("/", 1)[0]
    files.append({
        "partition": int(part), "path": path, "size": size, "sha256": sha256,
        "modified": datetime.fromtimestamp(int(mtime), UTC).isoformat().replace("+00:00", "Z"),
        "deleted": deleted == "1",
    })
doc = {
    "schema": "bitwitness.sample/1",
    "name": name,
    "image_file": f"{name}.img.xz",
    "compression": "xz",
    "size": int(image[1]),
    "sector_size": int(os.environ["SECTOR"]),
    "hashes": {"md5": image[2], "sha1": image[3], "sha256": image[4]},
    "partition_table": table["label"],
    "disk_id": table["id"],
    "partitions": partitions,
    "directories": [{"partition": p, "path": d} for p, d in sorted(directories)],
    "files": files,
    "formatted": datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), UTC).isoformat().replace("+00:00", "Z"),
    "tools": dict(line.split("\t") for line in (work / "versions.tsv").read_text().splitlines()),
    "notes": [
        "Deleted files: FAT32 by mdel (entry marked 0xE5, clusters freed), ext4 by debugfs rm "
        "(entry merged into its predecessor, inode freed with dtime set, extents left in place, "
        "so icat still recovers the content, unlike a kernel unlink)",
        "FAT32 time stamps are UTC (FAT stores local time; the image was built with TZ=UTC)",
    ],
}
(work / f"{name}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
PY

# --- 6. publish (only now, so a failed build leaves no half-written outputs) ----------------------
cp "$work/$name.img.xz" "$work/$name.json" "$outdir/"
((keep_raw)) && cp "$raw" "$outdir/"
echo "$outdir/$name.img.xz: $(stat -c %s "$outdir/$name.img.xz") bytes," \
     "raw $(stat -c %s "$raw") bytes, sha256 $(sum_of sha256sum "$raw")"
