"""Every `mlops` command explains itself: a description, a help line per argument, defaults shown; and the
reference page's table of `mlops rehearse` options is the command's own list."""

import argparse
import re
from pathlib import Path

import pytest

from mlops.cli import build_parser

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
PARSER = build_parser()
COMMANDS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_description_and_every_argument_a_help_line(name):
    command = COMMANDS[name]
    assert command.description, f"mlops {name} --help has no description"
    for action in command._actions:
        assert action.help, f"mlops {name}: {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_defaults_worth_knowing_are_shown(name):
    text = COMMANDS[name].format_help()
    for action in COMMANDS[name]._actions:
        if action.default not in (None, False, [], "", argparse.SUPPRESS) and not action.required:
            # argparse wraps long defaults at spaces and hyphens: compare without the white space.
            shown = f"(default:{action.default})".replace(" ", "")
            assert shown in "".join(text.split()), (name, action.dest)


def test_the_reference_lists_exactly_the_options_of_mlops_rehearse():
    table = REFERENCE.read_text().split("Options of `mlops rehearse`", 1)[1].split("\n\n", 2)[1]
    in_reference = set(re.findall(r"^\| `(--[a-z-]+)", table, flags=re.M))
    in_parser = {o for a in COMMANDS["rehearse"]._actions for o in a.option_strings if o.startswith("--")}
    assert in_reference == in_parser - {"--help"}


def test_the_fault_option_names_every_fault_the_rehearsal_can_inject():
    from mlops.local.sagemaker import FAULTS
    from mlops.rehearsal import DATA_FAULTS

    (fault,) = [a for a in COMMANDS["rehearse"]._actions if "--fault" in a.option_strings]
    named = set(re.findall(r"[a-z]+(?:-[a-z]+)*", fault.help))
    assert set(FAULTS) | set(DATA_FAULTS) <= named
