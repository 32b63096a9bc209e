"""Space-aware frame sampling on videos: VGGT's predicted depth and cameras for 128 evenly spaced
candidate frames, then the greedy voxel coverage the dataset build uses on scans picks 16.

- `run.py`: the stage (`python -m jobs.sample_frames`), a Ray Data pipeline with one VGGT per actor;
- `inputs.py`: which videos (a folder, a list file, a VSI-Bench question file) and their candidates;
- `sampler.py`: one video's candidates -> VGGT -> the chosen frames (`FrameSampler`, `sample_positions`);
- `frame_folders.py`: the optional frame folders.

Its output, `run_dir/frames/space_aware.jsonl` and `frame_indices.json`, is the frame-indices file
of `pipelines.formats.frame_indices` (format in its docstring; `read_frame_indices(path) -> {key:
[frame index, ...]}`, the reader evaluation and mp4 training use).

Importing this package imports neither Ray nor torch.
"""
