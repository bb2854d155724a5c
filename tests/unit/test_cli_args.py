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


def test_an_unknown_model_is_a_usage_error_naming_the_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["rehearse", "--model", "wine"])
    assert exited.value.code == 2
    assert "argument --model: invalid choice: 'wine'" in (err := capsys.readouterr().err)
    assert "iris" in err and "diabetes" in err


def test_every_example_has_data_a_sample_row_and_stack_parameters_the_template_accepts():
    from mlops.data import EXAMPLES, SAMPLE_ROWS
    from mlops.local.template import Template
    from mlops.rehearsal import EXAMPLE_PARAMETERS

    choices = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices["rehearse"]._actions
        if a.dest == "model"
    )
    assert tuple(choices.choices) == EXAMPLES == tuple(EXAMPLE_PARAMETERS) == tuple(SAMPLE_ROWS)
    for parameters in EXAMPLE_PARAMETERS.values():
        Template().check_parameters(parameters)


def test_every_parameter_given_is_kept_whether_repeated_or_listed():
    args = build_parser().parse_args(
        [
            "rehearse",
            "--parameter",
            "DeploymentStrategy=LINEAR",
            "--parameter",
            "A=1",
            "B=2",
            "--releases",
            "2",
        ]
    )
    assert args.parameter == ["DeploymentStrategy=LINEAR", "A=1", "B=2"]
    assert args.releases == 2
