"""Questions from scans: scene metadata, geometry, visibility, space-aware frame selection, the
question generators and per-scene records. Imports only `data_gen.scans` (and the top-level contract)."""
