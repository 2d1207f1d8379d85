"""Browsing evidence read-only: partitions, file systems, export, timelines, the browser.

* :mod:`~bitwitness.browse.tsk` - the one pytsk3 ``Img_Info`` adapter over our streams
* :mod:`~bitwitness.browse.volumes` - partition tables and the file system in each partition
* :mod:`~bitwitness.browse.filesystem` - listing (as ``fls``), lookup, stat, content (as ``icat``)
* :mod:`~bitwitness.browse.export` - export with a hashed manifest and custody event
* :mod:`~bitwitness.browse.timeline` - bodyfile and CSV timelines
* :mod:`~bitwitness.browse.tui` - the textual browser (imported only by ``browse``)
"""
