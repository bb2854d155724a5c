import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlmodel.fastcsv import _parse_fixed_layout, parse_plain_decimals
from mlmodel.payload import (
    CSV,
    FEATURE_LIMIT,
    JSON,
    CsvLabels,
    InvalidPayload,
    format_json,
    is_csv,
    media_type,
    parse_rows,
    response_type,
)

# --- content negotiation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/csv", True),
        ("text/csv; charset=utf-8", True),
        ("TEXT/CSV", True),
        (" text/csv ", True),
        ("application/json", False),
        ("text/plain", False),
        ("", False),
        (None, False),
        ("text/csvx", False),
    ],
)
def test_only_csv_request_bodies_are_read(header, expected):
    assert is_csv(header) is expected


def test_media_type_drops_parameters():
    assert media_type("Application/JSON; charset=utf-8") == "application/json"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, CSV),
        ("", CSV),
        ("*/*", CSV),
        ("text/csv", CSV),
        ("text/*", CSV),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("application/*", JSON),
        ("application/json, text/csv;q=0.5", JSON),
        ("text/csv;q=0.2, application/json;q=0.9", JSON),
        ("application/json, text/csv", CSV),  # equal quality: the server's preference
        ("*/*;q=0.1, application/json", JSON),
        ("text/html, */*;q=0.8", CSV),
        ("text/csv;q=0, */*", JSON),  # q=0 means "not this one", the most specific range decides
    ],
)
def test_response_type_follows_accept(accept, expected):
    assert response_type(accept) == expected


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml", "text/csv;q=0", "image/*", "text/csv;q=x"]
)
def test_response_type_is_none_when_neither_format_is_acceptable(accept):
    assert response_type(accept) is None


# --- CSV rows in -----------------------------------------------------------------------------------


def test_one_row_parses():
    assert parse_rows(b"4.5,1.3,0.3,0.3", 4).tolist() == [[4.5, 1.3, 0.3, 0.3]]


def test_many_rows_keep_their_order():
    body = b"1,2,3,4\n5,6,7,8\n-9,10.5,.25,+3."
    assert parse_rows(body, 4).tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [-9, 10.5, 0.25, 3.0]]


@pytest.mark.parametrize(
    "body", [b"1,2,3,4\n5,6,7,8\n", b"1,2,3,4\r\n5,6,7,8\r\n", b"1,2,3,4\n5,6,7,8\n\n\n"]
)
def test_trailing_newlines_and_crlf_are_tolerated(body):
    assert parse_rows(body, 4).tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_single_row_with_crlf_is_tolerated():
    assert parse_rows(b"5.9,3,5.1,1.8\r\n", 4).tolist() == [[5.9, 3, 5.1, 1.8]]


def test_other_number_syntax_is_read_by_the_general_path():
    body = b"1e1, 2 ,3E-1,4\n 5,6,7,8"
    assert parse_rows(body, 4).tolist() == [[10, 2, 0.3, 4], [5, 6, 7, 8]]


@pytest.mark.parametrize("body", [b"", b"\n", b"\r\n\r\n", b"   "])
def test_empty_body_is_rejected(body):
    with pytest.raises(InvalidPayload, match="empty") as raised:
        parse_rows(body, 4)
    assert raised.value.row is None


@pytest.mark.parametrize(
    ("body", "row", "message"),
    [
        (b"1,2,3", 1, "row 1 has 3 values: expected 4"),
        (b"1,2,3,4,5", 1, "row 1 has 5 values: expected 4"),
        (b"1,2,3,4\n1,2,3", 2, "row 2 has 3 values: expected 4"),
        (b"1,2,3,4\n1,2,3,4\n1,2,3,4,5\n1,2,3,4", 3, "row 3 has 5 values"),
        (b"1,2,3,4\n\n1,2,3,4", 2, "row 2 is empty"),
        (b"1,2,x,4", 1, "row 1 value 3 'x' is not a number"),
        (b"1,2,3,4\n1,2,,4", 2, "row 2 value 3 '' is not a number"),
        (b"1,2,3,4\n1,2,3,4\nsetosa,1,2,3", 3, "row 3 value 1 'setosa' is not a number"),
        (b"nan,2,3,4", 1, "row 1 value 1 'nan' is not a finite number"),
        (b"1,2,3,4\n1,inf,3,4", 2, "row 2 value 2 'inf' is not a finite number"),
        (b"1,2,3,4\n1,2,-Infinity,4", 2, "row 2 value 3 '-Infinity' is not a finite number"),
        (b"1,2,3,4\n1,2,3,1e999", 2, "row 2 value 4 '1e999' is not a finite number"),
        (b"1,2,3,4\n1,2,3,\xff\xfe", 2, "row 2 value 4"),
        (b"1_0,2,3,4", 1, "row 1 value 1 '1_0' is not a number"),  # Python's float() would read 10
        (b"1,2,3,4\n1,2,3,4_5", 2, "row 2 value 4 '4_5' is not a number"),
        ("1,2,3,\uff14.5".encode(), 1, "row 1 value 4 '\uff14.5' is not a number"),  # a full-width digit
    ],
)
def test_bad_row_is_named_by_its_1_based_number(body, row, message):
    with pytest.raises(InvalidPayload) as raised:
        parse_rows(body, 4)
    assert raised.value.row == row
    assert message in str(raised.value)


@pytest.mark.parametrize("body", [b"1,2,3,1e300", b"1,2,3,4\n1,2,3,-1e39", b"1,2,3,4\n1,2,3,4\n1,2,3,3.5e38"])
def test_values_beyond_float32_range_are_rejected(body):
    rows = body.count(b"\n") + 1
    with pytest.raises(InvalidPayload, match=f"row {rows} value 4 .* is too large") as raised:
        parse_rows(body, 4)
    assert raised.value.row == rows


def test_feature_limit_is_where_float32_rounding_overflows():
    below = float(np.nextafter(FEATURE_LIMIT, 0))
    with np.errstate(over="ignore"):
        assert np.isfinite(np.float32(below)) and not np.isfinite(np.float32(FEATURE_LIMIT))
    assert parse_rows(f"{below!r},-3.4e38,0,0".encode(), 4)[0, 0] == below
    assert parse_rows(f"{below!r},-3.4e38,0,0\n1,2,3,4".encode(), 4)[0, 0] == below


def test_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(InvalidPayload) as raised:
        parse_rows(b"1,2,3," + b"x" * 500, 4)
    assert len(str(raised.value)) < 100


# --- the vectorised parser agrees with float() ------------------------------------------------------


@st.composite
def plain_decimal(draw) -> str:
    """`[+-]?digits[.digits]` with either side possibly empty (`5.`, `.5`), as people and tools write them."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(st.text("0123456789", max_size=7))
    fraction = draw(st.none() | st.text("0123456789", max_size=7))
    if not whole and not fraction:
        whole = "0"
    return sign + whole + ("" if fraction is None else "." + fraction)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(plain_decimal(), min_size=4, max_size=4), min_size=1, max_size=20))
def test_vectorised_parse_is_bit_identical_to_float(rows):
    assert_parses_as_float(parse_plain_decimals, rows)


def assert_parses_as_float(parse, rows: list[list[str]]) -> bytes:
    """``parse`` gives exactly what ``float()`` gives for each field; returns the body it parsed."""
    body = "\n".join(",".join(row) for row in rows).encode()
    parsed = parse(body, 4)
    expected = np.array([[float(v) for v in row] for row in rows])
    assert parsed is not None
    assert parsed.tobytes() == expected.tobytes()
    return body


def test_vectorised_parse_handles_fifteen_digits_exactly():
    values = ["123456789012345", "0.00000000000001", "-99999999.9999999", "1.5"]
    parsed = parse_plain_decimals(",".join(values).encode(), 4)
    assert parsed is not None
    assert parsed.tobytes() == np.array([[float(v) for v in values]]).tobytes()


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,3",  # field count
        b"1,2,3,4\n5,6,7",
        b"1,2,3,4,5\n6,7,8",  # the right total, the wrong rows
        b"1,,3,4",
        b"1.2.3,1,1,1",
        b"1-2,1,1,1",
        b"--1,1,1,1",
        b".,1,1,1",
        b"-,1,1,1",
        b"1,2,3,4,",
        b"1e3,1,1,1",
        b"1/2,1,1,1",
        b" 1,2,3,4",
        b"nan,1,1,1",
        b"1234567890123456,1,1,1",  # more digits than a double holds exactly
        b"",
    ],
)
def test_vectorised_parse_declines_what_it_does_not_handle(body):
    assert parse_plain_decimals(body, 4) is None


def test_large_batch_parses_the_same_on_both_paths():
    rng = np.random.default_rng(7)
    values = np.round(rng.uniform(-100, 100, (5000, 4)), 3)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in values).encode()
    fast = parse_plain_decimals(body, 4)
    assert fast is not None
    general = np.array(body.replace(b"\n", b",").split(b","), dtype=np.float64).reshape(-1, 4)
    assert fast.tobytes() == general.tobytes()


# --- labels out ------------------------------------------------------------------------------------


def test_csv_output_is_one_label_per_line_in_order():
    labels = CsvLabels(["setosa", "versicolor", "virginica"])
    assert labels.format([0, 2, 0]) == b"setosa\nvirginica\nsetosa"
    many = np.array([1, 0, 2] * 100, dtype=np.uint8)
    assert labels.format(many) == b"\n".join([b"versicolor", b"setosa", b"virginica"] * 100)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=5, unique=True).flatmap(
        lambda labels: st.tuples(
            st.just(labels), st.lists(st.integers(0, len(labels) - 1), min_size=0, max_size=300)
        )
    )
)
def test_csv_output_of_any_labels_is_their_utf8_joined_by_newlines(case):
    """Both paths (a join for few rows, padded arrays for many), any label: empty, non-ASCII, NUL bytes."""
    labels, indices = case
    expected = b"\n".join(labels[i].encode() for i in indices)
    assert CsvLabels(labels).format(np.array(indices, dtype=np.intp)) == expected


def test_json_output_is_a_list_of_labels():
    assert json.loads(format_json(["setosa", "virginica"])) == ["setosa", "virginica"]


def test_parsed_values_are_finite_floats():
    rows = parse_rows(b"0.1,0.2,0.3,0.4\n1,2,3,4", 4)
    assert rows.dtype == np.float64
    assert all(math.isfinite(v) for v in rows.ravel())


@st.composite
def same_layout_rows(draw) -> list[list[str]]:
    """Rows that all share the first row's layout (same signs, points and digit counts), digits varying."""
    template = draw(st.lists(plain_decimal(), min_size=4, max_size=4))
    count = draw(st.integers(min_value=2, max_value=30))
    rows = []
    for _ in range(count):
        row = []
        for field in template:
            digits = draw(st.text("0123456789", min_size=len(field), max_size=len(field)))
            row.append("".join(d if c.isdigit() else c for c, d in zip(field, digits, strict=True)))
        rows.append(row)
    return rows


@settings(max_examples=100, deadline=None)
@given(same_layout_rows())
def test_rows_of_one_layout_take_the_matrix_path_bit_identical_to_float(rows):
    body = assert_parses_as_float(_parse_fixed_layout, rows)
    assert parse_plain_decimals(body, 4).tobytes() == _parse_fixed_layout(body, 4).tobytes()


@pytest.mark.parametrize(
    "body",
    [
        b"5.1,3.5,1.4,0.2\n15.1,3.5,1.4,0.2",  # a longer second row
        b"5.1,3.5,1.4,0.2\n5.1,3.5,1.4,0.2\n5.1,3.5,1.4,0.",  # a shorter last row
        b"5.1,3.5,1.4,0.2\n5.1,3.5,1.4,-.2",  # a sign where the first row has a digit
        b"5.1,3.5,1.4,0.2\n5.1,3.5,1.4.0,2",  # a point and a comma swapped
        b"5.1,3.5,1.4,0.2\n5.1,3.5,1.4,0e2",
        b"5.1,3.5,1.4\n5.1,3.5,1.4",  # three fields a row
        b"5.1,3.5,1.4,0.2,1\n5.1,3.5,1.4,0.2,1",
        b"1234567890123456,1,1,1\n1234567890123456,1,1,1",
    ],
)
def test_rows_that_break_the_first_rows_layout_leave_the_matrix_path(body):
    assert _parse_fixed_layout(body, 4) is None


def test_mixed_layouts_parse_the_same_as_float_on_the_per_field_path():
    rows = [["5.1", "3.5", "1.4", "0.2"], ["15.25", "-3", "+.5", "0"], ["5.1", "3.5", "1.4", "0.2"]]
    body = "\n".join(",".join(row) for row in rows).encode()
    assert (
        parse_plain_decimals(body, 4).tobytes() == np.array([[float(v) for v in r] for r in rows]).tobytes()
    )
