"""A 512-byte MBR boot sector whose guest writes to its own disk, for the ``vm`` tests.

The BIOS loads the sector at 0000:7C00 and jumps to it with the boot drive in DL. The guest

1. reads sector :data:`SECTOR` (BIOS int 13h, AH=02h) and prints ``READ[`` + the text it holds
   (up to its first NUL) + ``]`` on the first serial port (COM1, I/O 0x3F8): ``READ[]`` on a
   disk where that sector is zeros, ``READ[`` + :data:`MARKER` + ``]`` once it was written;
2. writes :data:`MARKER` padded with zeros to 512 bytes (:func:`written_sector`) to the same
   sector (int 13h, AH=03h) and prints ``WROTE``;
3. powers the machine off through ACPI (:data:`PM1A_CNT`), as an operating system shuts down:
   qemu then closes its disks properly and exits with status 0. (Ending through qemu's
   ``isa-debug-exit`` device instead makes qemu call ``exit()`` at once, before it writes out
   the QCOW2 overlay's cached L2 table: the guest's write would be lost from the overlay.)

A failed read or write prints ``DISK-ERROR`` instead and ends the same way. Each line ends with
CR LF. The sector is addressed as cylinder 0, head 0, sector :data:`CHS_SECTOR` (CHS sectors
count from 1), which is LBA :data:`SECTOR` under every BIOS geometry (it lies on the first
track). No assembler is needed: the instructions below are encoded by hand (8086 real mode,
opcodes from the Intel manual, each with its mnemonic), and :func:`boot_code` lays them out and
resolves the labels (absolute 16-bit addresses from the load address, relative jumps/calls).
``objdump -D -b binary -m i8086`` disassembles the result back to the same mnemonics
(``tests/test_mount_vm.py`` checks it).
"""

from __future__ import annotations

from pathlib import Path

LOAD = 0x7C00  #: where the BIOS loads the boot sector
BUFFER = 0x8000  #: the sector buffer (free conventional memory above the boot sector)
DRIVE = 0x0500  #: where the boot drive (DL at entry) is kept
CHS_SECTOR = 10
SECTOR = CHS_SECTOR - 1  #: LBA of the sector the guest reads and writes
MARKER = b"BITWITNESS-GUEST-WROTE-THIS-SECTOR"
COM1 = 0x3F8
#: ACPI PM1a control register of qemu's PIIX4 (pc) and ICH9 (q35) power management, at the I/O
#: base SeaBIOS gives it (0x600) + 4; writing SLP_EN with sleep type 0 is qemu's S5 (power off)
PM1A_CNT = 0x604
SLP_EN = 0x2000

#: (label or None, encoded bytes, references, mnemonic). A reference is (offset in the bytes,
#: label, kind): "abs16" puts the label's address (little-endian), "rel8" and "rel16" the
#: distance from the end of the instruction (short jumps; ``call``).
Line = tuple[str | None, bytes, tuple[tuple[int, str, str], ...], str]


def _imm16(value: int) -> bytes:
    return value.to_bytes(2, "little")


PROGRAM: list[Line] = [
    ("start", b"\x31\xc0", (), "xor ax,ax"),
    (None, b"\x8e\xd8", (), "mov ds,ax"),
    (None, b"\x8e\xc0", (), "mov es,ax"),
    (None, b"\x8e\xd0", (), "mov ss,ax"),
    (None, b"\xbc" + _imm16(LOAD), (), f"mov sp,{LOAD:#x}"),
    (None, b"\xfc", (), "cld"),
    (None, b"\x88\x16" + _imm16(DRIVE), (), f"mov BYTE PTR ds:{DRIVE:#x},dl"),
    # 1. read the sector and print what it holds
    (None, b"\xbe\x00\x00", ((1, "msg_read", "abs16"),), "mov si,msg_read"),
    (None, b"\xe8\x00\x00", ((1, "print", "rel16"),), "call print"),
    (None, b"\xb8\x01\x02", (), "mov ax,0x201"),  # AH=02h read, AL=1 sector
    (None, b"\xbb" + _imm16(BUFFER), (), f"mov bx,{BUFFER:#x}"),
    (None, b"\xb9" + _imm16(CHS_SECTOR), (), f"mov cx,{CHS_SECTOR:#x}"),  # CH=cyl, CL=sector
    (None, b"\xb6\x00", (), "mov dh,0x0"),  # head 0
    (None, b"\x8a\x16" + _imm16(DRIVE), (), f"mov dl,BYTE PTR ds:{DRIVE:#x}"),
    (None, b"\xcd\x13", (), "int 0x13"),
    (None, b"\x72\x00", ((1, "fail", "rel8"),), "jb fail"),
    (None, b"\xc6\x06" + _imm16(BUFFER + 511) + b"\x00", (),  # the text ends in the sector
     f"mov BYTE PTR ds:{BUFFER + 511:#x},0x0"),
    (None, b"\xbe" + _imm16(BUFFER), (), f"mov si,{BUFFER:#x}"),
    (None, b"\xe8\x00\x00", ((1, "print", "rel16"),), "call print"),
    (None, b"\xbe\x00\x00", ((1, "msg_close", "abs16"),), "mov si,msg_close"),
    (None, b"\xe8\x00\x00", ((1, "print", "rel16"),), "call print"),
    # 2. the sector to write: 512 zeros, the marker at its start
    (None, b"\xbf" + _imm16(BUFFER), (), f"mov di,{BUFFER:#x}"),
    (None, b"\xb9\x00\x01", (), "mov cx,0x100"),
    (None, b"\x31\xc0", (), "xor ax,ax"),
    (None, b"\xf3\xab", (), "rep stos WORD PTR es:[di],ax"),
    (None, b"\xbe\x00\x00", ((1, "marker", "abs16"),), "mov si,marker"),
    (None, b"\xbf" + _imm16(BUFFER), (), f"mov di,{BUFFER:#x}"),
    (None, b"\xb9" + _imm16(len(MARKER)), (), f"mov cx,{len(MARKER):#x}"),
    (None, b"\xf3\xa4", (), "rep movs BYTE PTR es:[di],BYTE PTR ds:[si]"),
    (None, b"\xb8\x01\x03", (), "mov ax,0x301"),  # AH=03h write, AL=1 sector
    (None, b"\xbb" + _imm16(BUFFER), (), f"mov bx,{BUFFER:#x}"),
    (None, b"\xb9" + _imm16(CHS_SECTOR), (), f"mov cx,{CHS_SECTOR:#x}"),
    (None, b"\xb6\x00", (), "mov dh,0x0"),
    (None, b"\x8a\x16" + _imm16(DRIVE), (), f"mov dl,BYTE PTR ds:{DRIVE:#x}"),
    (None, b"\xcd\x13", (), "int 0x13"),
    (None, b"\x72\x00", ((1, "fail", "rel8"),), "jb fail"),
    (None, b"\xbe\x00\x00", ((1, "msg_wrote", "abs16"),), "mov si,msg_wrote"),
    (None, b"\xe8\x00\x00", ((1, "print", "rel16"),), "call print"),
    (None, b"\xeb\x00", ((1, "exit", "rel8"),), "jmp exit"),
    ("fail", b"\xbe\x00\x00", ((1, "msg_fail", "abs16"),), "mov si,msg_fail"),
    (None, b"\xe8\x00\x00", ((1, "print", "rel16"),), "call print"),
    # 3. power the virtual machine off: ACPI PM1a control, sleep type 0 (S5) + sleep enable
    ("exit", b"\xba" + _imm16(PM1A_CNT), (), f"mov dx,{PM1A_CNT:#x}"),
    (None, b"\xb8" + _imm16(SLP_EN), (), f"mov ax,{SLP_EN:#x}"),
    (None, b"\xef", (), "out dx,ax"),
    (None, b"\xfa", (), "cli"),
    ("halt", b"\xf4", (), "hlt"),
    (None, b"\xeb\x00", ((1, "halt", "rel8"),), "jmp halt"),
    # print: the NUL-terminated text at DS:SI to COM1
    ("print", b"\xba" + _imm16(COM1), (), f"mov dx,{COM1:#x}"),
    ("next", b"\xac", (), "lods al,BYTE PTR ds:[si]"),
    (None, b"\x84\xc0", (), "test al,al"),
    (None, b"\x74\x00", ((1, "done", "rel8"),), "je done"),
    (None, b"\xee", (), "out dx,al"),
    (None, b"\xeb\x00", ((1, "next", "rel8"),), "jmp next"),
    ("done", b"\xc3", (), "ret"),
]

DATA: list[tuple[str, bytes]] = [
    ("msg_read", b"READ[\0"),
    ("msg_close", b"]\r\n\0"),
    ("msg_wrote", b"WROTE\r\n\0"),
    ("msg_fail", b"DISK-ERROR\r\n\0"),
    ("marker", MARKER),
]


def _layout() -> tuple[dict[str, int], int]:
    """Each label's address, and where the code ends."""
    labels: dict[str, int] = {}
    at = LOAD
    for label, code, _refs, _mnemonic in PROGRAM:
        if label is not None:
            labels[label] = at
        at += len(code)
    code_end = at
    for label, data in DATA:
        labels[label] = at
        at += len(data)
    return labels, code_end


def boot_code() -> bytes:
    """The code and its data, labels resolved (placed at offset 0 of the sector)."""
    labels, _ = _layout()
    out = bytearray()
    at = LOAD
    for _label, code, refs, _mnemonic in PROGRAM:
        encoded = bytearray(code)
        end = at + len(code)
        for offset, target, kind in refs:
            if kind == "abs16":
                encoded[offset : offset + 2] = _imm16(labels[target])
            elif kind == "rel16":
                encoded[offset : offset + 2] = ((labels[target] - end) & 0xFFFF).to_bytes(
                    2, "little")
            else:
                distance = labels[target] - end
                if not -128 <= distance <= 127:
                    raise ValueError(f"jump to {target} too far for rel8: {distance}")
                encoded[offset] = distance & 0xFF
        out += encoded
        at = end
    for _label, data in DATA:
        out += data
    if len(out) > 510:
        raise ValueError("the boot code does not fit before the 0x55AA signature")
    return bytes(out)


def code_length() -> int:
    """Bytes of instructions (the data follows them)."""
    return _layout()[1] - LOAD


def mnemonics() -> list[str]:
    """The instructions as ``objdump -M intel`` names them (labels as their addresses)."""
    labels, _ = _layout()
    shown = []
    for _label, _code, refs, mnemonic in PROGRAM:
        text = mnemonic
        for _offset, target, _kind in refs:
            text = text.replace(target, f"{labels[target]:#x}")
        shown.append(text)
    return shown


def boot_sector() -> bytes:
    sector = bytearray(512)
    code = boot_code()
    sector[: len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def written_sector() -> bytes:
    """What the guest writes to sector :data:`SECTOR`."""
    return MARKER.ljust(512, b"\0")


def boot_disk(path: Path, size: int = 1 << 20) -> Path:
    """A disk of ``size`` bytes: the boot sector, zeros after it (sector :data:`SECTOR` too)."""
    path.write_bytes(boot_sector() + bytes(size - 512))
    return path
