"""File formats more than one stage reads, below the stages (ARCHITECTURE.md): one module per format.

- `frame_indices.py`: the frame-indices file (`space_aware.jsonl`, `frame_indices.json`), written by
  `sample_frames`, read by evaluation and training sources;
- `question_files.py`: question files (VSI-Bench's HF release, the authors' v1.0 eval file), read by
  evaluation and `sample_frames`.

Imports no stage, `pipelines.train`, Ray or torch.
"""
