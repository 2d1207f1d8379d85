"""Writers of small, valid container files that no tool on this machine writes, built from the
formats' public descriptions, for the readers' tests."""
