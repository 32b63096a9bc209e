"""python -m jobs.sample_frames --config FILE [key=value ...]: space-aware frame indices of videos
under run_dir/frames (sample_frames.* keys: videos_dir, video_list or vsibench_file, preset, weights)."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("sample_frames")
    from pipelines.sample_frames.run import run

    run_job("sample_frames", run, cfg)
