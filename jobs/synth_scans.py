"""Synthetic ScanNet-style scans.

    python -m jobs.synth_scans --out DIR --num-scenes N --seed S [--frames F] [--width W --height H] [--sens]
    python -m jobs.synth_scans --config FILE [key=value ...]     (writes run_dir/scans)
"""

import argparse
import sys

from pipelines.config import job_config, run_job


def main(argv: list[str]) -> None:
    if "-h" in argv or "--help" in argv:
        print(__doc__)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        cfg = job_config("synth_scans", argv)
        from pipelines.scans import run

        run_job("synth_scans", run, cfg)
        return
    p = argparse.ArgumentParser(prog="python -m jobs.synth_scans", description=__doc__.splitlines()[1])
    p.add_argument("--out", required=True, help="writes OUT/scans/scene0000_00, scene0001_00, ...")
    p.add_argument("--num-scenes", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=96, help="frames per scene (24 fps)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--sens", action="store_true", help="one .sens file per scene instead of exported folders")
    a = p.parse_args(argv)
    from data_gen.synthetic.scenes import synthesize_scans

    if a.num_scenes < 1 or a.frames < 2 or a.width < 16 or a.height < 16:
        p.error("need --num-scenes >= 1, --frames >= 2, --width/--height >= 16")
    paths = synthesize_scans(
        a.out, a.num_scenes, a.seed, num_frames=a.frames, width=a.width, height=a.height, sens=a.sens
    )
    print(f"wrote {len(paths)} scenes under {a.out}/scans")


if __name__ == "__main__":
    main(sys.argv[1:])
