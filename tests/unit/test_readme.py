import json
import re
from pathlib import Path

from mlops.diagram import condition, mermaid

REPO = Path(__file__).resolve().parents[2]


def test_readme_diagram_is_generated_from_the_definition():
    import json

    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- diagram:start -->\n```mermaid\n(.*?)\n```\n<!-- diagram:end -->", readme, re.S)
    assert block, "README lost its diagram markers"
    expected = mermaid(json.loads((REPO / "statemachine" / "mlops.asl.json").read_text()))
    assert block.group(1) == expected, "run: mlops diagram, and paste it into the README"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "scripts/test" in readme and "scripts/rehearse" in readme
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def test_diagram_shows_every_state_and_catch_edge():
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Next": "B",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}],
            },
            "B": {"Type": "Succeed"},
            "F": {"Type": "Fail"},
        },
    }
    text = mermaid(definition)
    assert "A -->|States.ALL| F" in text
    assert "A --> B" in text


def test_every_choice_edge_says_its_condition():
    definition = json.loads((REPO / "statemachine" / "mlops.asl.json").read_text())
    text = mermaid(definition)
    assert "|yes|" not in text
    assert "QualityGate -->|accuracy ≥ min_accuracy| RequestApproval" in text
    assert "EndpointStatus -->|EndpointStatus = Failed| EndpointFailed" in text
    assert "ReleaseOrPromote -->|promote is set| DescribePackage" in text


def test_choice_conditions_read_as_written():
    assert condition({"Variable": "$.a.count", "NumericLessThanEquals": 3}) == "count ≤ 3"
    assert condition(
        {"Or": [{"Variable": "$.s", "StringMatches": "x*"}, {"Variable": "$.t", "IsPresent": False}]}
    ) == ("s matches x* or t is not present")
    assert condition({"Not": {"Variable": "$.b", "BooleanEquals": True}}) == "not (b = true)"
