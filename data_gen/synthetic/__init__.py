"""Synthetic ScanNet-style scenes: rooms, furniture, layout, meshes, appearance, rendering, camera walks.
Imports only `data_gen.scans` (and the top-level contract)."""
