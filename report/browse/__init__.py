"""Browsing evidence read-only: partitions, file systems, export, timelines, the browser.

* :mod:`~bitwitness.report.browse.tsk` - the one pytsk3 ``Img_Info`` adapter over our streams
* :mod:`~bitwitness.report.browse.volumes` - partition tables and the file system in each partition
* :mod:`~bitwitness.report.browse.interface` - the one interface of a browsable file system
* :mod:`~bitwitness.report.browse.filesystem` - that interface over TSK: listing (as ``fls``),
  lookup, stat, content (as ``icat``)
* :mod:`~bitwitness.report.browse.ntfs` - NTFS ``$STANDARD_INFORMATION``/``$FILE_NAME`` times
* :mod:`~bitwitness.report.browse.fatraw` - FAT entries TSK refuses, read from the raw directory
* :mod:`~bitwitness.report.browse.safenames` - names safe on the host, shown on a terminal
* :mod:`~bitwitness.report.browse.export` - export with a hashed manifest and custody event
* :mod:`~bitwitness.report.browse.timeline` - bodyfile and CSV timelines
* :mod:`~bitwitness.report.browse.tui` - the textual browser (imported only by ``browse``)
"""
