#!/usr/bin/env bash
# Installs the Debian tools BitWitness and its tests use. Idempotent; uses sudo when not root.
#   scripts/install-tools.sh          what `bitwitness demo` and everyday use need
#   scripts/install-tools.sh --test   plus the independent tools the test suite checks against
set -euo pipefail

runtime=(fonts-dejavu-core fonts-droid-fallback fuse3 openssl)
# scripts/build-pyewf.sh compiles libewf's Python binding against zlib (a C compiler, the C
# library's, Python's and zlib's headers): `verify --second-reader` then inflates at zlib's speed
runtime+=(gcc libc6-dev python3-dev zlib1g-dev)
# scripts/build-pytsk3.sh compiles The Sleuth Kit's binding with its fixes to TSK's indirect-block walk: its
# sources are C and C++
runtime+=(g++)
testing=(ewf-tools sleuthkit dosfstools mtools e2fsprogs fdisk gdisk qemu-utils dc3dd time
         poppler-utils hdparm util-linux tmux xz-utils ntfs-3g exfatprogs exfat-fuse xorriso makefs
         afflib-tools qemu-system-x86 gddrescue libxml2-utils)
# partclone writes the images its reader is checked against, and its restore is their second
# reader (tests/test_partclone.py)
testing+=(partclone)
# parted writes the Apple Partition Map and Sun VTOC the partition-table tests check against mmls
testing+=(parted)
# what an examiner sweeps a mount with: getfattr (attr) reads its extended attributes, rsync
# copies it (tests/test_mount_filesystems.py); objdump (binutils) disassembles the hand-encoded
# boot sector the vm test boots (tests/builders/bootsector.py)
testing+=(attr rsync binutils)
# volumes TSK cannot open: LUKS images are made with cryptsetup; libyal's Debian tools (an
# independent build of the readers) check shadow copies, APFS and LUKS; lvm2 writes LVM metadata,
# xfsprogs XFS file systems (checked against the kernel's XFS driver); bdeinfo (libbde-utils,
# Debian's older build of libbde) checks the BitLocker volumes the tests write
testing+=(cryptsetup-bin libvshadow-utils libfsapfs-utils libluksde-utils lvm2 xfsprogs)
testing+=(libbde-utils)
# Android's libsparse tools: img2simg and simg2simg write the sparse images the tests read,
# simg2img is the second reader of our Android sparse reader (verify --second-reader); lz4,
# lzip and wimtools (wimcapture) write the containers the tests check are refused by name, as
# do ncompress (compress, .Z), lzop, lrzip and cpio
testing+=(android-sdk-libsparse-utils lz4 lzip wimtools ncompress lzop lrzip cpio)
# 7-Zip's dmg handler decodes the LZMA (xz) chunks of macOS ULMO images, which neither QEMU nor
# libmodi's PyPI build decodes: the independent check of our UDIF reader there
testing+=(7zip)
# the benchmarks (tests/test_checkout.py runs each from the root): hyperfine times start-up
testing+=(hyperfine)
# btrfs-progs: mkfs.btrfs writes the btrfs images our own btrfs reader is checked on (filled
# through the kernel's driver), and dump-tree shows where their trees lie
testing+=(btrfs-progs)
# wimtools (wimlib): its WIM resources are the chunk table and XPRESS/LZX chunks of a WOF
# (CompactOS) file's WofCompressedData stream, so wimcapture writes the streams the WOF tests lay
# out with ntfs-3g, and wimapply decodes the same chunks as the second reader
testing+=(wimtools)
# libarchive's bsdtar: a second reader of Rock Ridge ISOs (names, types, links) beside xorriso
testing+=(libarchive-tools)
# UDF (our own reader, report/browse/udf.py): genisoimage writes UDF 1.02 bridge discs with files,
# udftools' mkudffs empty volumes of several revisions and udfinfo reads them back, and p7zip-full's
# 7z (7-Zip's UDF reader, metadata partition included) is the independent check of names, times
# and bytes (tests/test_fs_udf.py); genisoimage also writes the Joliet-only ISOs
# (no Rock Ridge, as Windows burners do) of tests/test_iso_joliet_names.py
testing+=(genisoimage udftools p7zip-full)
# file systems nothing here reads, made by their own tools so that the volume tree names them
# rather than show an empty row (tests/test_unread_volumes.py; blkid -p is the oracle): F2FS,
# JFS, ReiserFS, NILFS2, SquashFS, EROFS and classic HFS (hfsutils' hformat)
testing+=(f2fs-tools jfsutils reiserfsprogs nilfs-tools squashfs-tools erofs-utils hfsutils)
# mdadm --examine reads md members from files: the oracle of the RAID1 members the tests write
# (tests/test_md_raid1.py; --create would need the kernel's md driver)
testing+=(mdadm)
# dcfldd writes the images and hash logs verify is checked against (tests/test_verify_dcfldd.py)
testing+=(dcfldd)
# ldmtool (libldm) reads Windows dynamic disks' LDM databases from files and loop devices: the
# oracle of the volume names, sizes and extents the LDM builder writes (tests/test_volumes_ldm.py)
testing+=(ldmtool)

packages=("${runtime[@]}")
[[ "${1:-}" == "--test" ]] && packages+=("${testing[@]}")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
