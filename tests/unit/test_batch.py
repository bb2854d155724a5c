import pytest

from mlops.local.batch import CsvFilter, TransformInputError, batches, join_outputs, split_lines


@pytest.mark.parametrize(
    ("expression", "record", "expected"),
    [
        ("$", b"setosa,5.1,3.5,1.4,0.2", b"setosa,5.1,3.5,1.4,0.2"),
        ("$[1:]", b"setosa,5.1,3.5,1.4,0.2", b"5.1,3.5,1.4,0.2"),
        ("$[0,-1]", b"setosa,5.1,3.5,1.4,0.2,versicolor", b"setosa,versicolor"),
        ("$[0:2,4]", b"a,b,c,d,e", b"a,b,e"),
        ("$[1]", b"a,b,c", b"b"),
    ],
)
def test_csv_filters_select_columns_as_sagemaker_does(expression, record, expected):
    assert CsvFilter.parse(expression).apply(record) == expected


@pytest.mark.parametrize("expression", ["$.features", "[1:]", "$[a]", "$[1:2:3]"])
def test_unsupported_filters_are_refused_with_the_expression(expression):
    with pytest.raises(ValueError, match="unsupported CSV filter"):
        CsvFilter.parse(expression)


def test_a_filter_beyond_the_record_names_the_column():
    with pytest.raises(TransformInputError, match="column 7"):
        CsvFilter.parse("$[7]").apply(b"a,b")


def test_split_lines_drops_blank_lines_and_carriage_returns():
    assert split_lines(b"a,1\r\n\nb,2\n") == [b"a,1", b"b,2"]


def test_multi_record_batches_respect_the_payload_limit_and_keep_order():
    records = [f"{i},1.0,2.0".encode() for i in range(100)]
    chunks = list(batches(records, "MultiRecord", 64))
    assert [r for _, chunk in chunks for r in chunk] == records
    assert all(sum(len(r) + 1 for r in chunk) <= 64 for _, chunk in chunks)
    assert [first for first, _ in chunks][:2] == [0, len(chunks[0][1])]


def test_single_record_sends_one_record_per_request():
    assert [chunk for _, chunk in batches([b"a", b"b"], "SingleRecord", 10)] == [[b"a"], [b"b"]]


def test_a_record_larger_than_the_payload_is_an_error():
    with pytest.raises(TransformInputError, match="record 2"):
        list(batches([b"a", b"x" * 100], "MultiRecord", 50))


def test_join_source_input_then_output_filter_keeps_label_and_prediction():
    joined = join_outputs([b"setosa,5.1,3.5,1.4,0.2"], [b"setosa"], "Input", CsvFilter.parse("$[0,-1]"))
    assert joined == [b"setosa,setosa"]


def test_output_count_mismatch_is_an_error():
    with pytest.raises(ValueError):
        join_outputs([b"a", b"b"], [b"x"], "Input", CsvFilter.parse("$"))


def chunk_bytes(chunks) -> list[bytes]:
    return [bytes(chunk) for _, _, chunk in chunks]


def test_line_chunks_keep_whole_lines_within_the_payload_and_count_records():
    from mlops.local.batch import plain_line_chunks

    data = b"".join(f"{i},1.5,2.5,3.5\n".encode() for i in range(1000))
    chunks = plain_line_chunks(data, 100)
    assert b"".join(chunk_bytes(chunks)) == data
    assert all(len(chunk) <= 100 and chunk.endswith(b"\n") for chunk in chunk_bytes(chunks))
    assert [count for _, count, _ in chunks] == [chunk.count(b"\n") for chunk in chunk_bytes(chunks)]
    assert [first for first, _, _ in chunks] == [
        sum(count for _, count, _ in chunks[:i]) for i in range(len(chunks))
    ]


@pytest.mark.parametrize("ending", [b"", b"\n", b"\n\n\n"])
def test_line_chunks_end_every_record_with_one_newline_whatever_the_object_ends_with(ending):
    from mlops.local.batch import plain_line_chunks

    chunks = plain_line_chunks(b"a,1\nb,2\nc,3" + ending, 8)
    assert chunk_bytes(chunks) == [b"a,1\nb,2\n", b"c,3\n"]
    assert [(first, count) for first, count, _ in chunks] == [(0, 2), (2, 1)]


def test_line_chunks_refuse_a_record_longer_than_the_payload():
    from mlops.local.batch import plain_line_chunks

    with pytest.raises(TransformInputError, match="record 2"):
        plain_line_chunks(b"a\n" + b"x" * 50 + b"\n", 20)


@pytest.mark.parametrize(
    ("data", "plain"),
    [
        (b"a,1\nb,2\n", True),
        (b"a,1\nb,2", True),
        (b"a,1\n\nb,2\n", False),
        (b"a,1\r\nb,2\r\n", False),
        (b"\na,1\nb,2\n", False),
        (b"\n", False),
        (b"", False),
    ],
)
def test_only_plain_lines_take_the_passthrough_path(data, plain):
    from mlops.local.batch import plain_line_chunks

    assert (plain_line_chunks(data, 1024) is not None) is plain


@pytest.mark.parametrize(
    ("total", "workers", "expected_payloads"), [(16, 2, 4), (10, 2, 2), (4, 2, 2), (13, 3, 3)]
)
def test_payloads_come_in_multiples_of_the_worker_count(total, workers, expected_payloads):
    from mlops.local.batch import payload_bytes, plain_line_chunks

    data = b"".join(f"{i % 10}.5,1.5,2.5,3.5\n".encode() for i in range(total * 64))  # 16 bytes a line
    size = payload_bytes(len(data), 6 * 1024, workers, min_bytes=0)
    chunks = plain_line_chunks(data, 6 * 1024, size)
    assert len(chunks) == expected_payloads
    assert b"".join(chunk_bytes(chunks)) == data
    assert all(len(chunk) <= 6 * 1024 and chunk.endswith(b"\n") for chunk in chunk_bytes(chunks))


def test_count_lines_counts_newlines():
    from mlops.local.batch import count_lines

    assert [count_lines(b""), count_lines(b"a"), count_lines(b"a\nb\n\n")] == [0, 0, 3]


def test_small_objects_are_not_split():
    from mlops.local.batch import payload_bytes

    assert payload_bytes(1000, 6 * 2**20, 2) >= 1000
