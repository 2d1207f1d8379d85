"""Convert images between formats, restore them onto devices or files, write VHD and VMDK disks.

* :func:`~bitwitness.acquire.convert.convert.convert_image`: bit-exact conversion with hashes
  computed in the same pass and compared with the source's stored or logged hashes;
* :func:`bitwitness.acquire.convert.restore.restore_image`: an image's media onto a device or file;
* :mod:`~bitwitness.acquire.convert.vhd_writer`, :mod:`~bitwitness.acquire.convert.vmdk_writer`:
  virtual disks that hypervisors (and ``qemu-img``) read as the exact media.
"""
