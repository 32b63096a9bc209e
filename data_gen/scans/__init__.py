"""Scan I/O: the Scan interface, ScanNet readers and writers (export layouts, .sens, PLY), codecs."""
