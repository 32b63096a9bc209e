"""aggregate() reproduces the paper's Table 1 averages from its per-task scores and VSI-Bench's counts."""

from __future__ import annotations

import pytest

from pipelines.evaluate import PAPER_TABLE, TASKS, VSI_BENCH_COUNTS, aggregate
from pipelines.evaluate.aggregate import task_of


def paper_rows(model: str, whole: bool = False) -> list[dict]:
    """VSI-Bench-sized rows scoring like `model` in Table 1 (its one rel-dir number for all three
    levels). whole=False: every row scores the task's fraction; True: 0/1 rows in that proportion."""
    scores = PAPER_TABLE[model]["per_task"]
    rows = []
    for qtype, count in VSI_BENCH_COUNTS.items():
        frac = scores[task_of(qtype)] / 100
        if whole:
            ones = round(count * frac)
            rows += [{"question_type": qtype, "score": float(i < ones)} for i in range(count)]
        else:
            rows += [{"question_type": qtype, "score": frac}] * count
    return rows


def test_spatial_mllm_micro_is_48_4():
    for whole in (False, True):
        result = aggregate(paper_rows("Spatial-MLLM-4B", whole))
        assert result["micro"] == pytest.approx(48.4, abs=0.05)
        assert result["num_rows"] == 5130


def test_gpt4o_macro_is_34_0():
    for whole in (False, True):
        result = aggregate(paper_rows("GPT-4o", whole))
        assert result["macro"] == pytest.approx(34.0, abs=0.05)
        assert list(result["per_task"]) == list(TASKS)
        assert result["per_task"]["object_abs_distance"] == pytest.approx(5.3, abs=0.1)


@pytest.mark.parametrize("model", sorted(PAPER_TABLE))
def test_every_paper_row_reproduces_its_printed_average(model):
    row = PAPER_TABLE[model]
    result = aggregate(paper_rows(model))
    assert result[row["average_kind"]] == pytest.approx(row["average"], abs=0.1)


def test_direction_levels_are_averaged_unweighted_into_one_task():
    rows = (
        [{"question_type": "object_rel_direction_easy", "score": 1.0}] * 1
        + [{"question_type": "object_rel_direction_hard", "score": 0.0}] * 3
        + [{"question_type": "object_counting", "score": 0.5}] * 4
    )
    result = aggregate(rows)
    assert result["per_task"] == {"object_counting": 50.0, "object_rel_direction": 50.0}
    assert result["levels"] == {
        "object_counting": 50.0,
        "object_rel_direction_easy": 100.0,
        "object_rel_direction_hard": 0.0,
    }
    assert result["counts"]["object_rel_direction_hard"] == 3
    assert result["macro"] == 50.0
    assert result["micro"] == pytest.approx(100 * (1 + 2) / 8)


def test_bad_rows_are_errors():
    with pytest.raises(ValueError, match="no rows"):
        aggregate([])
    with pytest.raises(ValueError, match="outside"):
        aggregate([{"question_type": "object_counting", "score": 48.0}])
    with pytest.raises(ValueError, match="row 0"):
        aggregate([{"score": 1.0}])


def test_camera_motion_types_are_scored_apart_from_vsi_bench():
    rows = (
        [{"question_type": "object_counting", "score": 0.5}] * 2
        + [{"question_type": "camera_displacement", "score": 0.8}] * 3
        + [{"question_type": "camera_movement_direction", "score": 0.0}, {"question_type": "camera_movement_direction", "score": 1.0}]
    )
    result = aggregate(rows)
    # VSI-Bench's figures see only the counting rows.
    assert result["per_task"] == {"object_counting": 50.0} and result["micro"] == 50.0 and result["macro"] == 50.0
    assert result["counts"] == {"object_counting": 2} and result["num_rows"] == 2
    camera = result["camera_motion"]
    assert camera["per_task"] == pytest.approx({"camera_displacement": 80.0, "camera_movement_direction": 50.0})
    assert camera["mean"] == pytest.approx(65.0) and camera["num_rows"] == 5
    assert camera["counts"] == {"camera_displacement": 3, "camera_movement_direction": 2}
    # Without VSI-Bench rows there is no VSI-Bench score; without camera rows no camera block.
    alone = aggregate(rows[2:])
    assert alone["per_task"] == {} and alone["micro"] is None and alone["macro"] is None
    assert "camera_motion" not in aggregate(rows[:2])
