"""The local step runner on small workflow files: outputs, env, path, summary, if:, failures, always()."""

import os
import textwrap
from pathlib import Path

import pytest

from mlops.local.workflow import ActionFailed, Event, JobRunner, WorkflowError

WORKFLOW = """
name: demo
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      ref:
        required: false
        default: ""
permissions: {}
env:
  TOP: top
jobs:
  build:
    runs-on: ubuntu-24.04
    defaults:
      run:
        shell: bash
    env:
      REGION: ${{ vars.AWS_REGION }}
      WANTED: ${{ inputs.ref || github.sha }}
    steps:
      - name: Outputs
        id: first
        run: |
          echo "sha=$(echo "$GITHUB_SHA")" >> "$GITHUB_OUTPUT"
          {
            echo "notes<<EOF"
            echo "line one"
            echo "line two"
            echo "EOF"
          } >> "$GITHUB_OUTPUT"
          echo "LATER=from-env-file" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/tools" && printf '#!/bin/sh\\necho tool-ran\\n' > "$RUNNER_TEMP/tools/mytool"
          chmod +x "$RUNNER_TEMP/tools/mytool" && echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
          echo "## hello" >> "$GITHUB_STEP_SUMMARY"
      - name: Reads them
        id: second
        env:
          NOTES: ${{ steps.first.outputs.notes }}
        run: |
          test "$NOTES" = "$(printf 'line one\\nline two')"
          test "$LATER" = from-env-file && test "$TOP" = top && test "$REGION" = eu-west-1
          echo "tool=$(mytool)" >> "$GITHUB_OUTPUT"
          echo "wanted=$WANTED" >> "$GITHUB_OUTPUT"
          echo "pwd=$(pwd)" >> "$GITHUB_OUTPUT"
      - name: Only when asked
        if: steps.second.outputs.tool == 'nothing'
        run: exit 9
      - name: Pipes fail under shell bash
        run: |
          echo "::error::the pipe broke"
          false | true
          echo "never printed"
      - name: Skipped after a failure
        run: echo skipped
      - name: Always runs
        id: last
        if: always()
        run: echo "ran=yes" >> "$GITHUB_OUTPUT"
      - name: Only on failure
        if: failure()
        run: echo on-failure
"""


def runner(tmp_path: Path, text: str = WORKFLOW, event: Event | None = None, **kw) -> JobRunner:
    path = tmp_path / "demo.yml"
    path.write_text(textwrap.dedent(text))
    settings = {
        "actions": {},
        "variables": {"AWS_REGION": "eu-west-1"},
        "sha": "a" * 40,
        "repository": "owner/repo",
        "run_id": "42",
        "run_attempt": 1,
        "workspace": tmp_path,
        "runner_temp": tmp_path / "temp",
        "base_env": {"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        **kw,
    }
    return JobRunner(path, event or Event(), **settings)


def test_steps_share_outputs_env_path_and_summary_and_a_failure_skips_all_but_always(tmp_path):
    result = runner(tmp_path).run()
    outcomes = [(s.name, s.outcome) for s in result.steps]
    assert outcomes == [
        ("Outputs", "success"),
        ("Reads them", "success"),
        ("Only when asked", "skipped"),
        ("Pipes fail under shell bash", "failure"),
        ("Skipped after a failure", "skipped"),
        ("Always runs", "success"),
        ("Only on failure", "success"),
    ]
    assert result.outputs("first") == {"sha": "a" * 40, "notes": "line one\nline two"}
    assert result.outputs("second") == {"tool": "tool-ran", "wanted": "a" * 40, "pwd": str(tmp_path)}
    assert result.outputs("last") == {"ran": "yes"}
    assert result.summary == "## hello\n"
    failed = result.failed_step
    assert failed.name == "Pipes fail under shell bash" and result.status == "failure"
    assert failed.errors == ["the pipe broke", "Process completed with exit code 1."]
    assert "never printed" not in "\n".join(failed.tail)
    assert failed.as_dict()["tail"] == ["::error::the pipe broke"]


def test_dispatch_inputs_replace_the_defaults(tmp_path):
    result = runner(tmp_path, event=Event("workflow_dispatch", inputs={"ref": "v1"})).run()
    assert result.outputs("second")["wanted"] == "v1"


def test_an_unspecified_shell_is_bash_without_pipefail_as_on_github(tmp_path):
    text = """
    on: push
    jobs:
      j:
        steps:
          - id: s
            run: |
              false | true
              echo "went=on" >> "$GITHUB_OUTPUT"
    """
    assert runner(tmp_path, text).run().outputs("s") == {"went": "on"}


def test_an_expression_the_runner_cannot_evaluate_fails_its_step_naming_both(tmp_path):
    text = """
    on: push
    jobs:
      j:
        steps:
          - name: Uses a function
            env:
              X: ${{ format('{0}', github.sha) }}
            run: echo "$X"
    """
    step = runner(tmp_path, text).run().failed_step
    assert step.name == "Uses a function"
    assert "format('{0}', github.sha)" in step.errors[0] and "does not evaluate format()" in step.errors[0]


def test_uses_calls_the_local_action_by_name_and_an_unknown_action_fails(tmp_path):
    seen = {}

    def login(call):
        seen.update(call.inputs)
        call.set_env("FROM_ACTION", "1")
        call.record["login"] = True
        return {"registry": "local.registry"}

    def refuses(call):
        raise ActionFailed("refused on purpose")

    text = """
    on: push
    jobs:
      j:
        steps:
          - uses: example/login@0123456789012345678901234567890123456789
            id: login
            with:
              region: ${{ vars.AWS_REGION }}
          - id: after
            env:
              REGISTRY: ${{ steps.login.outputs.registry }}
            run: echo "seen=$REGISTRY/$FROM_ACTION" >> "$GITHUB_OUTPUT"
          - uses: example/refuses@v1
          - uses: example/unknown@v1
            if: always()
    """
    result = runner(tmp_path, text, actions={"example/login": login, "example/refuses": refuses}).run()
    assert seen == {"region": "eu-west-1"} and result.record == {"login": True}
    assert result.outputs("after") == {"seen": "local.registry/1"}
    assert [s.outcome for s in result.steps] == ["success", "success", "failure", "failure"]
    assert result.steps[2].errors == ["refused on purpose"]
    assert "no local equivalent of example/unknown" in result.steps[3].errors[0]


def test_a_malformed_output_line_fails_the_step(tmp_path):
    text = """
    on: push
    jobs:
      j:
        steps:
          - run: echo "no equals sign" >> "$GITHUB_OUTPUT"
    """
    assert "invalid line" in runner(tmp_path, text).run().failed_step.errors[0]


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (Event("pull_request"), "does not run on pull_request"),
        (Event("workflow_dispatch", inputs={"nope": "1"}), "unknown input(s) nope"),
        (Event("push", inputs={"ref": "x"}), "inputs are given only to workflow_dispatch"),
    ],
)
def test_an_event_the_workflow_does_not_take_is_refused(tmp_path, event, says):
    with pytest.raises(WorkflowError, match=None) as raised:
        runner(tmp_path, event=event)
    assert says in str(raised.value)


def test_working_directory_and_continue_on_error(tmp_path):
    (tmp_path / "sub").mkdir()
    text = """
    on: push
    jobs:
      j:
        steps:
          - id: where
            working-directory: sub
            run: echo "dir=$(pwd)" >> "$GITHUB_OUTPUT"
          - name: Allowed to fail
            continue-on-error: true
            run: exit 4
          - id: after
            run: echo "ran=yes" >> "$GITHUB_OUTPUT"
    """
    result = runner(tmp_path, text).run()
    assert result.outputs("where") == {"dir": str(tmp_path / "sub")}
    allowed = result.steps[1]
    assert (allowed.outcome, allowed.conclusion) == ("failure", "success")
    assert result.outputs("after") == {"ran": "yes"} and result.status == "success"
