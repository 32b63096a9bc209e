"""The data plan (order and sharding as pure functions) and the checks that run before training."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_gen.schema import RECORD_SCHEMA
from pipelines.config import build_config
from pipelines.train.data import DataError, DataPlan, keep_good_records, read_split
from pipelines.train.sources import read_mixture


def plan(**kw) -> DataPlan:
    base = dict(num_records=10, seed=0, shuffle=True, world_size=2, micro_batch=1, global_batch=4, total_steps=6)
    return DataPlan(**{**base, **kw})


def test_every_step_is_split_across_ranks_without_overlap():
    p = plan()
    assert p.accumulation == 2 and p.per_rank == 2
    r0, r1 = p.rank_positions(0, 0).reshape(6, 2), p.rank_positions(1, 0).reshape(6, 2)  # [steps, M*A]
    for step in range(6):
        assert sorted([*r0[step], *r1[step]]) == list(range(step * 4, step * 4 + 4))


def test_order_is_a_pure_function_and_resume_is_a_suffix():
    p = plan()
    assert np.array_equal(p.record_rows(p.rank_positions(1, 0)), plan().record_rows(plan().rank_positions(1, 0)))
    full, resumed = p.rank_positions(0, 0), p.rank_positions(0, 3)
    assert np.array_equal(full[3 * p.per_rank :], resumed)
    assert np.array_equal(p.record_rows(full)[3 * p.per_rank :], p.record_rows(resumed))


def test_each_epoch_is_a_permutation_and_epochs_differ():
    p = plan(total_steps=5)  # 20 samples = 2 epochs of 10
    rows = p.record_rows(np.arange(20))
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:]) == list(range(10))
    assert not np.array_equal(rows[:10], rows[10:])
    assert plan(shuffle=False).record_rows(np.arange(12)).tolist() == [*range(10), 0, 1]
    assert p.epoch_of_step(5) == 2.0


def test_missing_dataset_and_empty_split(tmp_path):
    with pytest.raises(DataError, match="no dataset folder"):
        read_split(tmp_path / "dataset", "train")
    (tmp_path / "dataset" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no \\*.parquet"):
        read_split(tmp_path / "dataset", "train")
    pq.write_table(RECORD_SCHEMA.empty_table(), tmp_path / "dataset" / "train" / "part-00000.parquet")
    with pytest.raises(DataError, match="has no records"):
        read_split(tmp_path / "dataset", "train")


def check(table, *, skip: bool, max_fraction: float = 1.0):
    return keep_good_records(table, [], sampling="space_aware", num_frames=4, skip=skip,
                             skip_option="sft.skip_bad_records", max_fraction=max_fraction)  # fmt: skip


def test_missing_frames_fail_or_are_skipped_and_counted_up_to_the_budget(sft_data, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "dataset").mkdir(parents=True)
    (run_dir / "dataset" / "train").symlink_to(sft_data / "dataset" / "train", target_is_directory=True)
    table = read_mixture(build_config(None, [f"run_dir={run_dir}", f"data.scans_dir={sft_data / 'scans'}"]), "train").table
    kept, skipped = check(table, skip=False)
    assert kept.num_rows == table.num_rows and skipped == []
    # A scans root holding only the first record's scene: the others' frames are missing.
    scene = table["video"][0].as_py()
    (tmp_path / scene).symlink_to(sft_data / "scans" / scene, target_is_directory=True)
    table = read_mixture(build_config(None, [f"run_dir={run_dir}", f"data.scans_dir={tmp_path}"]), "train").table
    others = sum(v != scene for v in table["video"].to_pylist())
    with pytest.raises(DataError, match=f"{others} of {table.num_rows} records cannot be used \\(set sft.skip"):
        check(table, skip=False)
    kept, skipped = check(table, skip=True)
    assert len(skipped) == others and kept.num_rows == table.num_rows - others
    assert set(kept["video"].to_pylist()) == {scene}
    assert all("missing" in line for line in skipped)
    with pytest.raises(DataError, match=f"{others} of {table.num_rows} records cannot be used, more than "
                                        "train.max_bad_record_fraction=0.3 allows"):  # fmt: skip
        check(table, skip=True, max_fraction=0.3)


def test_prepare_writes_the_records_file_or_nothing(sft_data, tmp_path):
    """SFT's records file holds the mixture as read (our split, with where its frames are); when the
    records are refused (missing frames, no skipping) no records file is left to look complete."""
    from pipelines.sft import stage as sft
    from pipelines.train.records_file import open_records

    run_dir = tmp_path / "run"
    (run_dir / "dataset").mkdir(parents=True)
    (run_dir / "dataset" / "train").symlink_to(sft_data / "dataset" / "train", target_is_directory=True)
    overrides = [f"run_dir={run_dir}", "model.preset=tiny", "sft.max_steps=1", "sft.global_batch_size=2",
                 "sft.micro_batch_size=1", "train.num_workers=2"]  # fmt: skip
    prep = sft.prepare(build_config(None, [*overrides, f"data.scans_dir={sft_data / 'scans'}"]), log=lambda *_: None)
    written = open_records(prep.records.path)
    split = pq.read_table(sft_data / "dataset" / "train")
    assert prep.records.path == run_dir / "sft" / "records.arrow"
    assert written["id"].to_pylist() == split["id"].to_pylist() == prep.records.ids
    assert written.select(split.column_names).equals(split.cast(RECORD_SCHEMA))
    assert written["media_paths"].to_pylist() == [[str(sft_data / "scans" / v)] for v in split["video"].to_pylist()]

    prep.records.path.unlink()
    with pytest.raises(DataError, match="records cannot be used"):
        sft.prepare(build_config(None, [*overrides, f"data.scans_dir={tmp_path / 'nowhere'}"]), log=lambda *_: None)
    assert sorted(p.name for p in (run_dir / "sft").iterdir()) == []
