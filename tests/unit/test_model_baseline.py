"""The training data's baseline in metadata.json: bins, counts, moments, missing values, label shares."""

import json
from bisect import bisect_right

import numpy as np
import pytest
from mlmodel import train as train_module
from mlmodel.baseline import baseline_of, feature_baseline
from mlmodel.contract import METADATA_FILE
from test_model_train import (
    base,  # noqa: F401
    iris_channel,  # noqa: F401 - fixtures
)


def test_counts_cover_every_row_and_bins_follow_bisect_right():
    values = np.arange(1.0, 101.0)
    stats = feature_baseline(values, "x", bins=4)
    assert sum(stats["counts"]) == 100
    assert len(stats["counts"]) == len(stats["edges"]) + 1 == 4
    rebinned = np.bincount([bisect_right(stats["edges"], v) for v in values], minlength=4)
    assert rebinned.tolist() == stats["counts"]
    assert stats["counts"] == [25, 25, 25, 25]


def test_mean_std_range_and_quantiles_are_the_datas():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    stats = feature_baseline(values, "x")
    assert stats["mean"] == pytest.approx(4.0)
    assert stats["std"] == pytest.approx(np.std(values))
    assert (stats["min"], stats["max"]) == (1.0, 10.0)
    assert stats["quantiles"]["p50"] == 3.0


def test_nan_counts_as_missing_and_stays_out_of_the_bins():
    stats = feature_baseline(np.array([1.0, np.nan, 3.0, np.nan]), "x")
    assert stats["missing"] == 2
    assert stats["count"] == 2 == sum(stats["counts"])


def test_repeated_quantiles_make_fewer_bins_not_empty_ones():
    stats = feature_baseline(np.array([0.2] * 30 + [1.5] * 10), "x", bins=4)
    assert stats["edges"] == sorted(set(stats["edges"]))
    assert all(count > 0 for count in stats["counts"])


def test_label_distribution_counts_each_class():
    labels = np.array(["a", "b", "a", "c"])
    baseline = baseline_of(np.zeros((4, 2)), labels)
    assert baseline["label"]["counts"] == {"a": 2, "b": 1, "c": 1}
    assert [f["name"] for f in baseline["features"]] == ["feature_1", "feature_2"]


def test_names_must_match_the_columns():
    with pytest.raises(ValueError, match="feature_names has 1 names for 2 feature columns"):
        baseline_of(np.zeros((3, 2)), np.array(["a", "b", "a"]), feature_names=["only"])


def test_fewer_than_two_bins_is_refused():
    with pytest.raises(ValueError, match="bins must be at least 2"):
        feature_baseline(np.arange(3.0), "x", bins=1)


def test_train_writes_the_baseline_into_metadata(iris_channel):  # noqa: F811
    train_module.train(iris_channel)
    metadata = json.loads((iris_channel.model_dir / METADATA_FILE).read_text())
    baseline = metadata["baseline"]
    assert baseline["rows"] == metadata["metrics"]["training"]["rows"] == 120
    assert [f["name"] for f in baseline["features"]] == metadata["feature_names"]
    assert baseline["label"]["counts"] == metadata["metrics"]["training"]["class_counts"]
    for feature in baseline["features"]:
        assert sum(feature["counts"]) == 120 and feature["missing"] == 0
    json.dumps(baseline, allow_nan=False)  # plain JSON: a check without numpy reads it


def test_a_regression_target_gets_numeric_statistics_not_classes():
    baseline = baseline_of(np.zeros((4, 1)), np.array(["1.5", "2.5", "3.5", "10"]), problem_type="regression")
    assert baseline["label"]["kind"] == "numeric"
    assert baseline["label"]["mean"] == pytest.approx(4.375)
    assert sum(baseline["label"]["counts"]) == 4
