"""Bad command-line values are argparse usage errors naming the option, before anything starts."""

import pytest

from mlops.cli import build_parser


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rehearse", "--releases", "0"], "argument --releases: '0' must be above 0"),
        (["rehearse", "--releases", "two"], "argument --releases: 'two' is not an integer"),
        (["rehearse", "--timeout", "-5"], "argument --timeout: '-5' must be above 0"),
        (["rehearse", "--timeout", "nan"], "argument --timeout: 'nan' must be above 0"),
        (["rehearse", "--timeout", "soon"], "argument --timeout: 'soon' is not a number"),
        (["promote", "--state-machine-arn", "a", "--model-package-arn", "b", "--attempt", "0"], "--attempt"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_numbers_in_range_are_taken():
    args = build_parser().parse_args(["rehearse", "--releases", "2", "--timeout", "0.5"])
    assert (args.releases, args.timeout) == (2, 0.5)
