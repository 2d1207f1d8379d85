#!/usr/bin/env bash
# Rebuilds pytsk3 (The Sleuth Kit's Python binding) from its source distribution with fixes to
# The Sleuth Kit and to the binding, and installs it as version "<pip's version>+bitwitness.7".
# Run after `pip install` of BitWitness:
#   scripts/build-pytsk3.sh [VENV]        (default .venv)
#
# Why: TSK builds the block list of an ext2/ext3 (or block-mapped ext4, or UFS) file by walking
# its indirect blocks, and at the second and third levels it does not stop at the file's end: it
# goes on through every remaining pointer of the block, each one a sparse "run" appended to a
# list that is walked from its head on every append. Past the triple-indirect pointer that is
# pointers-per-block squared calls, quadratic in the runs: a 5 GiB file on 4 KiB-block ext3 (any
# file beyond 4 GiB + 4 MiB), or 80 MiB on 1 KiB blocks, costs from many seconds to hours of CPU
# before a single byte is read. pytsk3 loads those runs for every entry it lists, so one such
# file hangs `ls` of its folder, not only `cat` (fls, icat and istat of TSK 4.11 to 4.15 hang the
# same way). The first fix adds one condition to that loop: stop once the file's length is
# covered. The runs inside the file are the ones TSK built before; only the walk past its end is
# gone.
#
# The second: the list's end pointer that appending a run is meant to keep is left one run
# behind, so every append walks the whole list, and a file of n runs costs n * n / 2 steps
# (61,000 one-block runs on 1 KiB blocks: 3.5 s in icat; a crafted 4 MiB of pointers, hours).
# The fix points the end at the run just appended; the list itself is the same.
#
# The third is in pytsk3's own binding: a File counted its attributes when it was made, which
# makes TSK load the whole block map of every entry a folder listing hands out, though a listing
# reads none of it; now it counts them when first iterated. Measured on a 1 KiB-block ext3 of
# 3,000 files of 300 KB: iterating the folders took 40 ms with the counts, 3 ms without.
#
# The fourth (+bitwitness.4) is HFS+ compression (decmpfs). pytsk3's _build.py configures TSK
# `--without-zlib`, and TSK then hands out a zlib-compressed file (decmpfs types 3 and 4, most
# of macOS's system files and many users' files) as EMPTY, with no error: cat, export (hashing
# the wrong bytes) and mount passed it as complete. TSK is now configured with zlib, linked with
# -lz, and the build fails unless configure defined HAVE_LIBZ. With it come guards in TSK's
# decmpfs.c, which trusts the record's sizes: it allocates (and zeroes) the declared uncompressed
# size of an inline record, and 8 or 16 bytes per declared block-table entry, when it LISTS a
# folder holding the file (a crafted 8 GiB size or 2^32 entries: gigabytes, or the kernel's OOM
# killer); it copies the declared size out of a "stored" record shorter than that (reading past
# its buffer), and reads a record shorter than its 16-byte header as if it were whole; it
# indexes entry -1 of an empty block table; and a block that inflates short of the offset
# asked underflows into a copy past its 64 KiB buffer. Each now fails as TSK's other
# read errors do (BitWitness reads decmpfs content itself, see report/browse/decmpfs.py; these
# guards keep TSK's own loading, at listing time, bounded).
#
# The fifth (+bitwitness.5): TSK converts each HFS+ name from UTF-16 strictly, and one name
# holding a lone surrogate half (any 16-bit units are stored; a crafted or damaged catalog) made
# the whole folder unreadable: fls and ls listed nothing of it, hiding every file beside that
# name. The conversion is now lenient: such a unit becomes '^', as TSK does for NTFS names (a
# high half eats the unit after it; one ending the name becomes '^' too), and BitWitness reads
# the exact name from the catalog's thread record (report/browse/moretimes.py HfsCatalog.name).
#
# The sixth (+bitwitness.6) is speed, in the binding: Directory.records() returns every entry of
# a folder as one tuple each (the name's name, meta_addr, flags and type; the inode's addr,
# type, flags, size, mode, uid, gid, four times with their nanoseconds, link, and a last
# field, None, that the seventh change fills), read in C
# from the same tsk_fs_dir_get calls, in the same order and failing the same way as iterating
# the folder. Iterating makes a File, a TSK_FS_NAME and a TSK_FS_META object for each entry and
# one more object for every field read: a third of the Python time of `ls -r` of 100,000 files
# (report/browse/tsk.py records_of; without records() BitWitness reads the fields the slow way).
# The seventh (+bitwitness.7): records(True) adds each inode's attributes (type, id, flags,
# size, name, and the bytes of a resident $FILE_NAME), what an NTFS listing reads of every file.
# The ninth (+bitwitness.9) bounds TSK's reading of an ext directory (below, beside the patch).
# The eighth (+bitwitness.8): FS_Info.name_unallocated(addresses) hands TSK the list its
# orphan search starts from: the unallocated inodes that some name points to. TSK builds that
# list by walking every folder from the root again (tsk_fs_dir_load_inum_named), unless a
# recursive tsk_fs_dir_walk from the root, as fls -r makes, collected it on the way. BitWitness
# walks folders itself, so opening $OrphanFiles after a whole `ls -r` walked them all a second
# time: on NTFS of 100,000 files, a third of the MFT's reads. The walk now collects the same
# addresses (report/browse/filesystem.py) and hands them over only when it walked exactly the
# folders TSK's walk would; TSK takes them only if it has no list yet. records() takes a list
# to append this folder's part to, loading each name's inode as TSK's walk loads it (which
# keeps a deleted NTFS file's inode that tsk_fs_dir_get, and so the record, leaves out).
#
# BitWitness refuses ext, UFS and HFS+ file systems with a pytsk3 that lacks these fixes (exit
# code 2, naming this script), so a missed rebuild is a clear error, never a hang or an empty
# file. Needs gcc, g++, the C library, zlib and Python headers (scripts/install-tools.sh) and
# PyPI for the source distribution. Idempotent: a pytsk3 that already carries the fixes is left
# alone.
set -euo pipefail

venv=${1:-.venv}
py="$venv/bin/python"
label="bitwitness.9"

if ! version=$("$py" -c 'import importlib.metadata as m; print(m.version("pytsk3"))'); then
    echo "build-pytsk3: pytsk3 is not installed in $venv; install BitWitness first" >&2
    exit 1
fi
if [[ $version == *"+$label" ]]; then
    exit 0
fi
base=${version%%+*}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-pytsk3: building pytsk3 $base from source with its fixes (about a minute)"
"$py" -m pip download -q --no-deps --no-binary :all: -d "$work" "pytsk3==$base"
tar -xzf "$work"/pytsk3-"$base".tar.gz -C "$work"
src="$work/pytsk3-$base"

# The changes, made on the text so that a changed TSK fails here rather than build unfixed.
"$py" - "$src" "$base+$label" <<'EOF'
import pathlib
import re
import sys

src, version = pathlib.Path(sys.argv[1]), sys.argv[2]
unix = src / "sleuthkit/tsk/fs/unix_misc.c"
text = unix.read_text()
loop = "for (i = 0; i < addr_cnt && retval != -1; i++) {"
if text.count(loop) != 1:
    sys.exit("build-pytsk3: the indirect-block loop is not where it was; not building")
unix.write_text(text.replace(
    loop, "for (i = 0; i < addr_cnt && retval != -1 && length_remain > 0; i++) {"))
attr = src / "sleuthkit/tsk/fs/fs_attr.c"
text = attr.read_text()
tail = "    // update the rest of the offsets in the run (if any exist)\n    data_run_cur = a_data_run;\n"
if text.count(tail) != 1:
    sys.exit("build-pytsk3: the run-appending code is not where it was; not building")
attr.write_text(text.replace(tail, "    a_fs_attr->nrd.run_end = a_data_run;\n" + tail))
binding = src / "tsk3.cpp"
text = binding.read_text()
count = "    self->max_attr = tsk_fs_file_attr_getsize(info);\n"
check = "    if(self->current_attr < 0 || self->current_attr > self->max_attr) {\n"
if text.count(count) != 1 or text.count(check) != 1:
    sys.exit("build-pytsk3: File_Con's attribute count is not where it was; not building")
text = text.replace(count, "    self->max_attr = -2;  /* counted when first iterated */\n")
binding.write_text(text.replace(check, (
    "    if(self->max_attr == -2) {\n"
    "        self->max_attr = tsk_fs_file_attr_getsize(self->info);\n"
    "    }\n") + check))
build = src / "_build.py"
text = build.read_text()
without = '                        "--without-zlib",\n'
libs = '        return ["stdc++", "pthread"]\n'
summary = "            self._print_configure_summary(output)\n"
if text.count(without) != 1 or text.count(libs) != 1 or text.count(summary) != 1:
    sys.exit("build-pytsk3: _build.py's configure options or libraries are not where they "
             "were; not building")
text = text.replace(without, "").replace(libs, '        return ["stdc++", "pthread", "z"]\n')
build.write_text(text.replace(summary, summary + (
    '            with open(os.path.join("sleuthkit", "tsk", "tsk_config.h")) as config:\n'
    '                if "#define HAVE_LIBZ 1" not in config.read():\n'
    '                    raise OSError("build-pytsk3: configure found no zlib (zlib1g-dev)")\n')))


def patch(path: pathlib.Path, changes: list[tuple[str, str]], what: str) -> None:
    """Make each (old, new) change in ``path``, each old text found exactly once."""
    text = path.read_text()
    for old, new in changes:
        if text.count(old) != 1:
            sys.exit(f"build-pytsk3: {what} is not where it was; not building")
        text = text.replace(old, new)
    path.write_text(text)


fail = ("        error_detected(TSK_ERR_FS_READ, \" %s: %s\", __func__, {why});\n"
        "        {ret}\n")
patch(src / "sleuthkit/tsk/fs/decmpfs.c", [
    # an inline record: the declared size against what its data can inflate to (deflate's
    # limit is 1032:1, LZVN's about 135:1), before the buffer of that size is allocated
    ("    if (!decompress_attr(buffer + sizeof(DECMPFS_DISK_HEADER), (uint32_t)(attributeLength"
     " - sizeof(DECMPFS_DISK_HEADER)), uncSize,\n",
     "    if (uncSize > (uint64_t) (attributeLength - sizeof(DECMPFS_DISK_HEADER)) * 1100 + 65536)"
     " {\n" + fail.format(why='"uncompressed size larger than the inline data can hold"',
                          ret="return 0;") + "    }\n"
     "    if (!decompress_attr(buffer + sizeof(DECMPFS_DISK_HEADER), (uint32_t)(attributeLength"
     " - sizeof(DECMPFS_DISK_HEADER)), uncSize,\n"),
    # a stored inline record copies the declared size out of the record
    ("    *dstBuf = rawBuf + 1;  // + 1 indicator byte\n",
     "    if (rawSize < 1 || uncSize > (uint64_t) rawSize - 1) {\n"
     + fail.format(why='"stored data shorter than its declared size"', ret="return 0;")
     + "    }\n    *dstBuf = rawBuf + 1;  // + 1 indicator byte\n"),
    ("    char* uncBuf = (char *) tsk_malloc((size_t) uncSize);\n",
     "    char* uncBuf = (char *) tsk_malloc((size_t) uncSize);\n"
     "    if (uncBuf == NULL) {\n        return 0;\n    }\n"),
    # block tables: inside the resource fork, and not empty
    ("    tableSize = tsk_getu32(TSK_LIT_ENDIAN, fourBytes);\n",
     "    tableSize = tsk_getu32(TSK_LIT_ENDIAN, fourBytes);\n"
     "    if (tableSize == 0 || (uint64_t) tableSize * 8 > (uint64_t) rAttr->size) {\n"
     + fail.format(why='"block table empty or larger than the resource fork"', ret="return 0;")
     + "    }\n"),
    ("    tableDataSize = tsk_getu32(TSK_LIT_ENDIAN, fourBytes);\n",
     "    tableDataSize = tsk_getu32(TSK_LIT_ENDIAN, fourBytes);\n"
     "    if (tableDataSize < 8 || (uint64_t) tableDataSize > (uint64_t) rAttr->size) {\n"
     + fail.format(why='"block table empty or larger than the resource fork"', ret="return 0;")
     + "    }\n"),
    # a first block shorter than the offset asked in it
    ("        if (indx == startUnit) {\n            uncLen -= startUnitOffset;\n",
     "        if (indx == startUnit) {\n"
     "            if (uncLen < startUnitOffset) {\n"
     + fail.format(why='"compressed block shorter than its place in the file"',
                   ret="goto on_error;").replace("        ", "                ")
     + "            }\n            uncLen -= startUnitOffset;\n"),
], "decmpfs.c's size handling")
patch(src / "sleuthkit/tsk/fs/hfs.c", [
    # a com.apple.decmpfs record shorter than its header was read as one (past its buffer)
    ('                if (strcmp(nameBuff, "com.apple.decmpfs") == 0 &&\n',
     '                if (strcmp(nameBuff, "com.apple.decmpfs") == 0 &&\n'
     "                    attributeLength >= sizeof(DECMPFS_DISK_HEADER) &&\n"),
], "hfs.c's decmpfs record check")
patch(src / "sleuthkit/tsk/fs/hfs_dent.c", [
    # one name with a lone surrogate half failed the listing of its whole folder
    ("        (UTF8 *) & asc[alen], TSKstrictConversion);\n",
     "        (UTF8 *) & asc[alen], TSKlenientConversion);\n"),
    # a high half ending the name: '^' too, where the conversion stops short of it
    ("    free(uniclean);\n    if (r != TSKconversionOK) {\n",
     "    free(uniclean);\n"
     "    if (r == TSKsourceExhausted && ptr8 < (UTF8 *) & asc[alen - 1]) {\n"
     "        *ptr8 = '^';\n        r = TSKconversionOK;\n    }\n"
     "    if (r != TSKconversionOK) {\n"),
], "hfs_dent.c's name conversion")
# The ninth: an ext directory is read a block at a time to its recorded size, holes included;
# a damaged size (1.3 GB on a 3 MiB volume, found by fuzzing; terabytes, crafted) cost seconds
# to hours of reading zeros at every listing of it and at every orphan search. The read now
# stops where the last run that holds blocks ends, and never goes past the file system's size.
patch(src / "sleuthkit/tsk/fs/ext2fs_dent.c", [
    ("        size = roundup(fs_dir->fs_file->meta->size, a_fs->block_size);\n    }\n",
     "        size = roundup(fs_dir->fs_file->meta->size, a_fs->block_size);\n"
     "        {   /* BitWitness: no further than the blocks the directory holds */\n"
     "            const TSK_FS_ATTR *held_attr = tsk_fs_file_attr_get(fs_dir->fs_file);\n"
     "            const TSK_FS_ATTR_RUN *held_run;\n"
     "            TSK_OFF_T held = 0;\n"
     "            TSK_OFF_T fs_bytes = (TSK_OFF_T) a_fs->block_count * a_fs->block_size;\n"
     "            if (held_attr != NULL && (held_attr->flags & TSK_FS_ATTR_NONRES)) {\n"
     "                for (held_run = held_attr->nrd.run; held_run != NULL;\n"
     "                        held_run = held_run->next) {\n"
     "                    if (!(held_run->flags & (TSK_FS_ATTR_RUN_FLAG_SPARSE\n"
     "                                | TSK_FS_ATTR_RUN_FLAG_FILLER)))\n"
     "                        held = (TSK_OFF_T) (held_run->offset + held_run->len)\n"
     "                            * a_fs->block_size;\n"
     "                }\n"
     "                if (held < size)\n"
     "                    size = held;\n"
     "            }\n"
     "            else if (held_attr == NULL)\n"
     "                tsk_error_reset();\n"
     "            if (size > fs_bytes)\n"
     "                size = fs_bytes;\n"
     "        }\n"
     "    }\n"),
], "ext2fs_dent.c's directory read")
# The sixth: Directory.records(), one call that lists a folder as tuples (below), beside the
# iteration that makes a File, a TSK_FS_NAME and a TSK_FS_META object per entry and one more
# object per field read.
records = r"""
extern "C" TSK_FS_FILE *tsk_fs_file_alloc(TSK_FS_INFO *);
/* BitWitness: every entry of the folder as one tuple, loaded as Directory_next loads it
 * (tsk_fs_dir_get, in order), failing as it fails. The tuple is (name, name meta_addr, name
 * flags, name type, then the inode's addr, type, flags, size, mode, uid, gid, mtime,
 * mtime_nano, atime, atime_nano, ctime, ctime_nano, crtime, crtime_nano, link, attributes),
 * the inode's fields None where TSK loaded no inode; name and link are bytes or None as pytsk3
 * gives them. 21 fields: CPython keeps up to 2,000 freed tuples of each length up to 20 for
 * reuse, which a listing of 20-tuples would fill. */
static PyObject *bitwitness_bytes(const char *text) {
    if(text == NULL) {
        Py_IncRef(Py_None);
        return Py_None;
    }
    return PyBytes_FromStringAndSize(text, (Py_ssize_t) strlen(text));
}

/* With records(True), the last field: the inode's attributes as iterating its File gives them,
 * each (type, id, flags, size, name, content), content the first 4096 bytes of a resident,
 * uncompressed, unencrypted $FILE_NAME (what File.read_random(0, min(size, 4096), type, id)
 * returns) and None for any other; the field is None where TSK fails to give the attributes
 * (the caller then iterates the File, which fails as it fails). */
static PyObject *bitwitness_attributes(TSK_FS_FILE *file) {
    PyObject *found = NULL;
    int count = 0;
    int index = 0;

    ClearError();
    count = tsk_fs_file_attr_getsize(file);
    if(count < 0 || *aff4_get_current_error(NULL) != EZero) {
        goto unread;
    }
    found = PyTuple_New((Py_ssize_t) count);
    if(found == NULL) {
        return NULL;
    }
    for(index = 0; index < count; index++) {
        const TSK_FS_ATTR *attribute = tsk_fs_file_attr_get_idx(file, index);
        PyObject *content = NULL;
        PyObject *item = NULL;

        if(attribute == NULL || *aff4_get_current_error(NULL) != EZero) {
            Py_DecRef(found);
            goto unread;
        }
        if(attribute->type == TSK_FS_ATTR_TYPE_NTFS_FNAME
                && (attribute->flags & TSK_FS_ATTR_RES)
                && !(attribute->flags & (TSK_FS_ATTR_COMP | TSK_FS_ATTR_ENC))
                && attribute->rd.buf != NULL && attribute->size > 0
                && (size_t) (attribute->size < 4096 ? attribute->size : 4096)
                   <= attribute->rd.buf_size) {
            content = PyBytes_FromStringAndSize(
                (const char *) attribute->rd.buf,
                (Py_ssize_t) (attribute->size < 4096 ? attribute->size : 4096));
        } else {
            Py_IncRef(Py_None);
            content = Py_None;
        }
        item = Py_BuildValue("(IIILNN)", (unsigned int) attribute->type,
                             (unsigned int) attribute->id, (unsigned int) attribute->flags,
                             (long long) attribute->size, bitwitness_bytes(attribute->name),
                             content);
        if(item == NULL) {
            Py_DecRef(found);
            return NULL;
        }
        PyTuple_SET_ITEM(found, index, item);
    }
    return found;

unread:
    ClearError();
    tsk_error_reset();
    PyErr_Clear();
    Py_IncRef(Py_None);
    return Py_None;
}

/* With records(attributes, named, walked), named and walked lists: append to named what
 * tsk_fs_dir_walk's walk from the root appends to its list of named unallocated inodes for this
 * folder (fs_dir.c): the address of each name's inode that it loads and finds unallocated. The
 * walk loads an inode as tsk_fs_dir_get does but without its last check (the inode's sequence
 * number equal to the name's), so a deleted NTFS file or folder (its MFT entry's sequence one
 * past its name's) has an inode in the walk and none in its record; for such a name the walk's
 * loading is done here, and (index, inode type, inode flags) appended to walked: what the walk
 * decides entering it by. */
static int bitwitness_walk_unallocated(TSK_FS_DIR *folder, size_t index, TSK_FS_FILE *file,
                                       PyObject *named, PyObject *loaded) {
    TSK_FS_INFO *fs = folder->fs_info;
    TSK_FS_NAME *name = &folder->names[index];
    TSK_FS_FILE *lookup = NULL;
    TSK_INUM_T address = 0;
    int found = 0;
    int failed = 0;

    if(file->meta != NULL) {
        found = (file->meta->flags & TSK_FS_META_FLAG_UNALLOC) != 0;
        address = file->meta->addr;
    } else if(name->meta_addr || (name->flags & TSK_FS_NAME_FLAG_ALLOC)) {
        lookup = tsk_fs_file_alloc(fs);
        if(lookup == NULL) {
            tsk_error_reset();
            PyErr_NoMemory();
            return -1;
        }
        lookup->name = name;
        if(fs->file_add_meta(fs, lookup, name->meta_addr)) {
            tsk_error_reset();
        }
        if(lookup->meta != NULL) {
            PyObject *item = Py_BuildValue("(nII)", (Py_ssize_t) index,
                                           (unsigned int) lookup->meta->type,
                                           (unsigned int) lookup->meta->flags);

            failed = item == NULL || PyList_Append(loaded, item) != 0;
            Py_XDECREF(item);
            found = (lookup->meta->flags & TSK_FS_META_FLAG_UNALLOC) != 0;
            address = lookup->meta->addr;
        }
        lookup->name = NULL;
        tsk_fs_file_close(lookup);
    }
    if(found && !failed) {
        PyObject *item = PyLong_FromUnsignedLongLong((unsigned long long) address);
        failed = item == NULL || PyList_Append(named, item) != 0;
        Py_XDECREF(item);
    }
    return failed ? -1 : 0;
}

static PyObject *pyDirectory_records(pyDirectory *self, PyObject *args) {
    Directory directory = self->base;
    PyObject *result = NULL;
    PyObject *named = Py_None;
    PyObject *walked = Py_None;
    size_t index = 0;
    int with_attributes = 0;

    if(!PyArg_ParseTuple(args, "|pOO", &with_attributes, &named, &walked)) {
        return NULL;
    }
    if((named != Py_None || walked != Py_None)
            && !(PyList_Check(named) && PyList_Check(walked))) {
        return PyErr_Format(PyExc_TypeError, "records(): named and walked must be lists");
    }
    if(directory == NULL || directory->info == NULL) {
        return PyErr_Format(PyExc_RuntimeError, "Directory object no longer valid");
    }
    result = PyList_New(0);
    if(result == NULL) {
        return NULL;
    }
    for(index = 0; index < directory->size; index++) {
        TSK_FS_FILE *file = NULL;
        TSK_FS_META *meta = NULL;
        PyObject *record = NULL;
        int appended = 0;

        ClearError();
        file = tsk_fs_dir_get(directory->info, index);
        if(check_error()) {
            if(file != NULL) {
                tsk_fs_file_close(file);
            }
            goto on_error;
        }
        if(file == NULL || file->name == NULL) {
            const char *reason = tsk_error_get();
            PyErr_Format(PyExc_IOError, "Error opening File: %s",
                         reason != NULL ? reason : "unknown error");
            tsk_error_reset();
            if(file != NULL) {
                tsk_fs_file_close(file);
            }
            goto on_error;
        }
        if(named != Py_None
                && bitwitness_walk_unallocated(directory->info, index, file, named,
                                               walked) != 0) {
            tsk_fs_file_close(file);
            goto on_error;
        }
        meta = file->meta;
        if(meta == NULL) {
            record = Py_BuildValue(
                "(NKIIOOOOOOOOOOOOOOOOO)", bitwitness_bytes(file->name->name),
                (unsigned long long) file->name->meta_addr, (unsigned int) file->name->flags,
                (unsigned int) file->name->type, Py_None, Py_None, Py_None, Py_None, Py_None,
                Py_None, Py_None, Py_None, Py_None, Py_None, Py_None, Py_None, Py_None,
                Py_None, Py_None, Py_None, Py_None);
        } else {
            PyObject *attributes = NULL;

            if(with_attributes) {
                attributes = bitwitness_attributes(file);
            } else {
                Py_IncRef(Py_None);
                attributes = Py_None;
            }
            record = attributes == NULL ? NULL : Py_BuildValue(
                "(NKIIKIILIIILILILILINN)", bitwitness_bytes(file->name->name),
                (unsigned long long) file->name->meta_addr, (unsigned int) file->name->flags,
                (unsigned int) file->name->type, (unsigned long long) meta->addr,
                (unsigned int) meta->type, (unsigned int) meta->flags, (long long) meta->size,
                (unsigned int) meta->mode, (unsigned int) meta->uid, (unsigned int) meta->gid,
                (long long) meta->mtime, (unsigned int) meta->mtime_nano,
                (long long) meta->atime, (unsigned int) meta->atime_nano,
                (long long) meta->ctime, (unsigned int) meta->ctime_nano,
                (long long) meta->crtime, (unsigned int) meta->crtime_nano,
                bitwitness_bytes(meta->link), attributes);
        }
        tsk_fs_file_close(file);
        if(record == NULL) {
            goto on_error;
        }
        appended = PyList_Append(result, record);
        Py_DecRef(record);
        if(appended != 0) {
            goto on_error;
        }
    }
    return result;

on_error:
    Py_DecRef(result);
    return NULL;
}

"""
named = r'''
/* BitWitness: FS_Info.name_unallocated(addresses): hand TSK the list of unallocated inodes
 * that names point to (TSK_FS_INFO list_inum_named, what tsk_fs_dir_load_inum_named builds by
 * walking every folder from the root, and what its orphan search reads), made by a caller that
 * walked those folders already. TSK takes it only when it has none; returns whether it took it.
 * TSK reads a NULL list as "not made yet", so an empty one is handed over as the one address
 * past the last inode, which the orphan search's inode walk (first to last inode) never meets. */
static PyObject *pyFS_Info_name_unallocated(pyFS_Info *self, PyObject *args) {
    FS_Info fs = self->base;
    PyObject *addresses = NULL;
    PyObject *sequence = NULL;
    TSK_LIST *list = NULL;
    Py_ssize_t index = 0;
    int taken = 0;

    if(!PyArg_ParseTuple(args, "O", &addresses)) {
        return NULL;
    }
    if(fs == NULL || fs->info == NULL) {
        return PyErr_Format(PyExc_RuntimeError, "FS_Info object no longer valid");
    }
    sequence = PySequence_Fast(addresses, "name_unallocated() takes a sequence of addresses");
    if(sequence == NULL) {
        return NULL;
    }
    for(index = 0; index < PySequence_Fast_GET_SIZE(sequence); index++) {
        unsigned long long address = PyLong_AsUnsignedLongLong(
            PySequence_Fast_GET_ITEM(sequence, index));

        if(address == (unsigned long long) -1 && PyErr_Occurred()) {
            tsk_list_free(list);
            Py_DecRef(sequence);
            return NULL;
        }
        if(tsk_list_add(&list, (uint64_t) address)) {
            tsk_list_free(list);
            tsk_error_reset();
            Py_DecRef(sequence);
            return PyErr_NoMemory();
        }
    }
    Py_DecRef(sequence);
    if(list == NULL && tsk_list_add(&list, (uint64_t) fs->info->last_inum + 1)) {
        tsk_error_reset();
        return PyErr_NoMemory();
    }
    tsk_take_lock(&fs->info->list_inum_named_lock);
    if(fs->info->list_inum_named == NULL) {
        fs->info->list_inum_named = list;
        list = NULL;
        taken = 1;
    }
    tsk_release_lock(&fs->info->list_inum_named_lock);
    tsk_list_free(list);
    return PyBool_FromLong(taken);
}

'''
patch(src / "pytsk3.cpp", [
    ("static PyMethodDef Directory_methods[] = {\n    {NULL, NULL, 0, NULL}  /* Sentinel */\n",
     records + "static PyMethodDef Directory_methods[] = {\n"
     '    {"records", (PyCFunction) pyDirectory_records, METH_VARARGS,\n'
     '     "records(attributes=False, named=None, walked=None): every entry of the folder as one tuple (BitWitness)."},\n'
     "    {NULL, NULL, 0, NULL}  /* Sentinel */\n"),
], "pytsk3.cpp's Directory method table")
patch(src / "pytsk3.cpp", [
    ("static PyMethodDef FS_Info_methods[] = {\n",
     'extern "C" {\nvoid tsk_take_lock(tsk_lock_t *);\nvoid tsk_release_lock(tsk_lock_t *);\n}\n'
     + named + "static PyMethodDef FS_Info_methods[] = {\n"
     '    {"name_unallocated", (PyCFunction) pyFS_Info_name_unallocated, METH_VARARGS,\n'
     '     "name_unallocated(addresses): TSK\'s list of named unallocated inodes, once (BitWitness)."},\n'),
], "pytsk3.cpp's FS_Info method table")
project = src / "pyproject.toml"
text, count = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{version}"', project.read_text())
if count != 1:
    sys.exit("build-pytsk3: no version line in pyproject.toml; not building")
project.write_text(text)
EOF

"$py" -m pip install -q --no-deps --force-reinstall --no-cache-dir "$src"
"$py" -c 'import pytsk3; assert pytsk3.TSK_VERSION_STR'
echo "build-pytsk3: pytsk3 $base+$label installed"
