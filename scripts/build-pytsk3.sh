#!/usr/bin/env bash
# Rebuilds pytsk3 (The Sleuth Kit's Python binding) from its source distribution with two fixes
# to The Sleuth Kit and one to the binding, and installs it as version
# "<pip's version>+bitwitness.3". Run after
# `pip install` of BitWitness:
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
# BitWitness refuses ext and UFS file systems with a pytsk3 that lacks the fix (exit code 2,
# naming this script), so a missed rebuild is a clear error, never a hang. Needs gcc, g++, the C
# library and Python headers (scripts/install-tools.sh) and PyPI for the source distribution.
# Idempotent: a pytsk3 that already carries the fix is left alone.
set -euo pipefail

venv=${1:-.venv}
py="$venv/bin/python"
label="bitwitness.3"

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

# The two changes, made on the text so that a changed TSK fails here rather than build unfixed.
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
project = src / "pyproject.toml"
text, count = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{version}"', project.read_text())
if count != 1:
    sys.exit("build-pytsk3: no version line in pyproject.toml; not building")
project.write_text(text)
EOF

"$py" -m pip install -q --no-deps --force-reinstall --no-cache-dir "$src"
"$py" -c 'import pytsk3; assert pytsk3.TSK_VERSION_STR'
echo "build-pytsk3: pytsk3 $base+$label installed"
