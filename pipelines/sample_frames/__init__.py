"""Space-aware frame sampling on videos: VGGT's predicted depth and cameras for 128 evenly spaced
candidate frames, then the greedy voxel coverage the dataset build uses on scans picks 16.

- `run.py`: the stage (`python -m jobs.sample_frames`), a Ray Data pipeline with one VGGT per actor;
- `inputs.py`: which videos (a folder, a list file, a VSI-Bench question file) and their candidates;
- `sampler.py`: one video's candidates -> VGGT -> the chosen frames (`FrameSampler`, `sample_positions`);
- `output.py`: `run_dir/frames/space_aware.jsonl` (format in its docstring), `frame_indices.json`,
  the optional frame folders, and `read_frame_indices(path) -> {key: [frame index, ...]}`, the
  reader evaluation and mp4 training use.

Importing this package imports neither Ray nor torch.
"""

from pipelines.sample_frames.output import read_frame_indices, read_records, video_key

__all__ = ["read_frame_indices", "read_records", "video_key"]
