"""Acquisition: read a device, a file or an open image read-only and write E01 or raw, bit-exact.

Modules (flat, small): :mod:`~bitwitness.acquire.source` (opening read-only, device facts,
BLKROSET, destination checks), :mod:`~bitwitness.acquire.devices` (sysfs/udev/mountinfo),
:mod:`~bitwitness.acquire.retry` (bad sectors), :mod:`~bitwitness.acquire.pipeline` (reader, hash
threads, encoder pool, in-order writer), :mod:`~bitwitness.acquire.sinks` (E01, raw, split raw),
:mod:`~bitwitness.acquire.logs` (``BASE.json``/``BASE.txt``, written),
:mod:`~bitwitness.acquisitionlog` (``BASE.json`` read back, typed),
:mod:`~bitwitness.acquire.resume`,
:mod:`~bitwitness.acquire.verifying` (``--verify`` through the verification engine),
:mod:`~bitwitness.acquire.runner` (the one runner of every job that writes an image) and
:mod:`~bitwitness.acquire.engine` (the entry point:
``acquire(AcquisitionRequest(...), mediator) -> AcquisitionResult``).
:mod:`~bitwitness.acquire.faults` is fault injection for tests.
"""
