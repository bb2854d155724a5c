"""An execution reuses the program its state machine's validation parsed; no two executions share one."""

import json
import time

import boto3
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from mlops.local import engine

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/states"


def wait_for(sfn, arn):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_first_execution_reuses_the_validation_parse_and_later_ones_parse_their_own(
    aws_with_sfn_engine, monkeypatch, request
):
    programs = []
    engine.uninstall()  # moto's own parse, counted, is what install wraps
    original = AmazonStateLanguageParser.parse

    def counting(definition):
        parsed = original(definition)
        programs.append(parsed[0])
        return parsed

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    engine.install(lambda arn, event: (True, {}))
    request.addfinalizer(engine.uninstall)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name="parse-once", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    assert len(programs) == 1  # the validation

    first = sfn.start_execution(stateMachineArn=arn, name="first")["executionArn"]
    assert wait_for(sfn, first) == "SUCCEEDED"
    assert len(programs) == 1  # the first execution ran the validated program

    second = sfn.start_execution(stateMachineArn=arn, name="second")["executionArn"]
    assert wait_for(sfn, second) == "SUCCEEDED"
    assert len(programs) == 2 and programs[0] is not programs[1]
