"""Mounting evidence read-only (FUSE) and booting it through a copy-on-write overlay.

* :mod:`~bitwitness.report.mount.cache` - a bounded chunk cache in front of an image stream,
  safe to read from many FUSE threads at once
* :mod:`~bitwitness.report.mount.tree` - what the mount shows: ``media.raw``, ``partitions/``
  and (with ``--files``) ``files/``, as a tree of read-only nodes
* :mod:`~bitwitness.report.mount.fusefs` - the FUSE operations over that tree (every write
  refused with ``EROFS``)
* :mod:`~bitwitness.report.mount.service` - the mount's life: checks of the mount point,
  serving, background mounts, unmounting, custody events
* :mod:`~bitwitness.report.mount.vm` - a QCOW2 overlay over the mounted ``media.raw`` and the
  hypervisor command lines that boot it
"""
