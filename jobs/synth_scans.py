"""python -m jobs.synth_scans --config FILE [key=value ...]: synthetic scans under run_dir/scans.

What the old flags did, as keys: `run_dir=DIR` writes DIR/scans/scene0000_00, ... (as `--out DIR`
did), `data.synthetic.num_scenes=N`, `seed=S`, `data.synthetic.num_frames=F`,
`data.synthetic.width=W`, `data.synthetic.height=H`, `data.synthetic.sens=true`; --config is optional.
"""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("synth_scans")
    from pipelines.scans import run

    run_job("synth_scans", run, cfg)
