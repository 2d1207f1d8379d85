"""A faulty drive for tests: a FUSE-served file that fails as seized drives do, attached as a
loop block device so that BitWitness meets real kernel read errors (see :mod:`.drive`)."""
