"""``bitwitness convert``: bit-exact conversion between raw, split raw, E01, VHD and VMDK."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.commands._browse import key_options, volume_keys
from bitwitness.cli.image_options import format_option, max_media_option
from bitwitness.cli.output import (
    PIECE_SIZE,
    check_output_path,
    error_line,
    escape,
    json_option,
    print_json,
    reference_sentence,
    render_proofs,
    stamp_documents,
    stdout,
    to_jsonable,
)
from bitwitness.errors import ExitCode, Interrupted
from bitwitness.ewf.options import COMPRESSION_NAMES
from bitwitness.signals import shielded


@click.command("convert")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", "base", required=True, type=click.Path(path_type=Path),
              help="Output base name: BASE.raw / BASE.001..., BASE.E01..., BASE.vhd, BASE.vmdk, "
                   "BASE.qcow2, BASE.vhdx; logs go to BASE.json and BASE.txt.")
@click.option("--to", "to", required=True,
              type=click.Choice(["raw", "e01", "vhd", "vmdk", "qcow2", "vhdx"]),
              help="Output format (vhd: fixed VHD; vmdk: monolithic sparse, or flat; qcow2: "
                   "sparse QCOW2 version 3; vhdx: dynamic VHDX).")
@click.option("--split", type=PIECE_SIZE, default=None, help="raw: split into pieces of SIZE.")
@click.option("--segment-size", type=PIECE_SIZE, default=None, help="e01: segment size.")
@click.option("--hash", "hashes", default="md5,sha1,sha256", show_default=True,
              help="Hashes of the media (every algorithm the source records a hash in is added, "
                   "to check it; e01 always adds md5 and sha1, which it stores).")
@click.option("--compress", "compression", default=None,
              type=click.Choice(COMPRESSION_NAMES),
              help="e01: compression (default: the source E01's, else fast).")
@click.option("--vmdk-type", default="sparse", type=click.Choice(["sparse", "flat"]),
              show_default=True, help="vmdk: monolithicSparse or monolithicFlat.")
@click.option("--case-number", default=None, help="Case number (default: the source E01's).")
@click.option("--evidence-number", default=None, help="Evidence number.")
@click.option("--description", default=None, help="Description.")
@click.option("--examiner", default=None, help="Examiner name.")
@click.option("--notes", default=None, help="Notes.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--volume", "volume", default=None, metavar="PATH",
              help="Convert one volume of IMAGE (a path 'partitions' prints: 2, 0/luks1, 0/vss1), "
                   "decrypted in memory; the log records the volume and the kind of key.")
@max_media_option
@key_options
@format_option
@json_option
@click.pass_context
def command(ctx: click.Context, *, image: Path, base: Path, to: str, split: int | None,
            segment_size: int | None, hashes: str, compression: str | None, vmdk_type: str,
            case_number: str | None, evidence_number: str | None, description: str | None,
            examiner: str | None, notes: str | None, overwrite: bool, volume: str | None,
            image_format: str | None, as_json: bool) -> None:
    """Convert IMAGE bit-exactly to another format.

    The media hashes are computed while converting and compared with the hashes the source
    stores (E01) or its logs record (BASE.json, md5sum sidecars...). On a difference the output
    files are renamed *.unusable, the log says failed, and the exit code is 1.
    """
    from bitwitness.acquire.convert.convert import ConvertOptions, OutputFormat, convert_image
    from bitwitness.cli.progress import cli_mediator
    from bitwitness.hashing import parse_algorithms

    check_output_path(base)
    from bitwitness import signing

    signing.prepare_for_image(image)  # an image in a case: its convert event will be signed
    fields = {"case_number": case_number, "evidence_number": evidence_number,
              "description": description, "examiner": examiner, "notes": notes}
    options = ConvertOptions(
        to=OutputFormat(to), split=split, segment_size=segment_size, compression=compression,
        vmdk_type=vmdk_type, overwrite=overwrite, image_format=image_format,
        algorithms=parse_algorithms(hashes),
        metadata={k: v for k, v in fields.items() if v is not None})
    with cli_mediator(as_json) as mediator:
        result = convert_image(image, base, options, mediator, volume=volume,
                               keys=volume_keys() if volume is not None else None)
    signatures = signing.sign_with_session(list(result.logs))
    from bitwitness import timestamping
    from bitwitness.casefolder import evidence_of

    in_case = evidence_of(image)
    stamps = timestamping.stamp_finished(result, [p for p in (result.log_json,) if p],
                                         in_case[0] if in_case is not None else None)
    # the outcome is decided and logged: a late signal (the second Ctrl-C) must not cut its
    # summary, or a --json document, in half
    with shielded():
        if as_json:
            print_json({**to_jsonable(result), "logs": [str(p) for p in result.logs],
                        "signatures": signatures, "timestamps": stamp_documents(stamps),
                        "exit_code": int(result.exit_code)})
        else:
            stdout.print(f"{result.status.value}: {escape(str(image))} -> {to} "
                         f"({result.media_size} bytes), verdict {result.verdict}")
            for name, value in result.hashes.items():
                stdout.print(f"  {name:7} {value}")
            for check in result.references:
                stdout.print("  " + escape(reference_sentence(bool(check.match), check.algorithm,
                                                              check.source)))
            for out in result.outputs:
                stdout.print(f"  wrote {escape(str(out.path))}")
            for log in result.logs:
                stdout.print(f"  log   {escape(str(log))}")
            render_proofs(signatures, stamps, indent="  ")
            if result.error:
                stdout.print(f"  error: {escape(result.error)}")
    if result.exit_code is ExitCode.INTERRUPTED:
        raise Interrupted(f"interrupted: the output is left unfinished and marked so in "
                          f"{result.log_json}")
    if result.exit_code is not ExitCode.OK:
        if result.error:  # the one error line on stderr, as every command's
            error_line(result.error)
        ctx.exit(int(result.exit_code))
