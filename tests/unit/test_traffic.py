"""mlops traffic: which rows are sent, how a shift changes them, and errors that name the option."""

from __future__ import annotations

import pytest

from mlops.release import ReleaseError
from mlops.traffic import IRIS_FEATURES, held_out_rows, parse_shift, traffic_rows

SOURCE = [["5.1", "3.5", "1.4", "0.2"], ["6.3", "3.3", "6.0", "2.5"]]


def test_rows_follow_the_source_in_order_and_start_over():
    assert traffic_rows(SOURCE, 3, IRIS_FEATURES) == ["5.1,3.5,1.4,0.2", "6.3,3.3,6.0,2.5", "5.1,3.5,1.4,0.2"]


def test_a_shift_adds_its_delta_to_one_column_only():
    rows = traffic_rows(SOURCE, 2, IRIS_FEATURES, [parse_shift("petal_width=+1.5", IRIS_FEATURES)])
    assert rows == ["5.1,3.5,1.4,1.7", "6.3,3.3,6.0,4"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("petal_width", "expected FEATURE=DELTA"),
        ("=1", "expected FEATURE=DELTA"),
        ("petal_size=1", "no feature 'petal_size'; the features are sepal_length"),
        ("petal_width=lots", "DELTA 'lots' is not a number"),
    ],
)
def test_a_bad_shift_names_the_option_and_what_is_wrong(text, says):
    with pytest.raises(ReleaseError, match="--shift") as error:
        parse_shift(text, IRIS_FEATURES)
    assert says in str(error.value)


def test_names_must_match_the_datas_columns():
    with pytest.raises(ReleaseError, match="4 feature columns but 2 feature names"):
        traffic_rows(SOURCE, 1, ("a", "b"))


def test_an_empty_data_file_is_refused(tmp_path):
    empty = tmp_path / "test.csv"
    empty.write_text("\n")
    with pytest.raises(ReleaseError, match="has no rows to send"):
        held_out_rows(empty)


def test_held_out_rows_drop_the_label(tmp_path):
    data = tmp_path / "test.csv"
    data.write_text("setosa,5.1,3.5,1.4,0.2\n")
    assert held_out_rows(data) == [["5.1", "3.5", "1.4", "0.2"]]
