import json
import re
from pathlib import Path

import pytest

from mlops.diagram import condition, mermaid

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_pipeline_page_diagram_is_generated_from_the_definition():
    page = (REPO / "docs" / "pipeline.md").read_text()
    block = re.search(r"<!-- diagram:start -->\n```mermaid\n(.*?)\n```\n<!-- diagram:end -->", page, re.S)
    assert block, "docs/pipeline.md lost its diagram markers"
    expected = mermaid(json.loads((REPO / "statemachine" / "mlops.asl.json").read_text()))
    assert block.group(1) == expected, "run: mlops diagram, and paste it into docs/pipeline.md"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "scripts/test" in readme and "scripts/rehearse" in readme
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def test_readme_leads_with_a_quickstart_then_contents_and_deploy_before_reference():
    readme = (REPO / "README.md").read_text()
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Quickstart", "## Contents"]
    assert readme.splitlines().index("## Contents") < 60, "the Quickstart must fit in the first 60 lines"
    order = ["## Explore locally", "## Customise", "## Deploy to AWS", "## Reference"]
    assert [h for h in headings if h in order] == order
    quickstart = readme.split("## Quickstart", 1)[1].split("## Contents", 1)[0]
    assert "scripts/rehearse      #" in quickstart and "scripts/test          #" in quickstart
    assert '{"result":"setosa"}' in quickstart


def test_readme_stays_short_and_the_rest_lives_in_docs():
    size = len((REPO / "README.md").read_bytes())
    assert size < 15_000, f"README.md is {size:,} bytes: move detail into docs/"


def test_the_benchmarks_page_keeps_the_table_that_scripts_bench_rewrites():
    page = (REPO / "docs" / "benchmarks.md").read_text()
    assert page.count("<!-- bench:start -->") == page.count("<!-- bench:end -->") == 1
    assert "| figure | ours | baseline | ours / baseline |" in page


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_and_anchor_of_the_readme_and_docs_resolves(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"", page.read_text()):
        link = next(t for t in target if t)
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and anchor not in anchors(file)):
            broken.append(link)
    assert broken == []


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    if page.suffix != ".md":
        return set()
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


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
    assert "QualityGate -->|direction = higher and value ≥ threshold| RequestApproval" in text
    assert "QualityGate -->|direction = lower and value ≤ threshold| RequestApproval" in text
    assert "EndpointStatus -->|EndpointStatus = Failed| EndpointFailed" in text
    assert "ReleaseOrPromote -->|promote is set| DescribePackage" in text


def test_choice_conditions_read_as_written():
    assert condition({"Variable": "$.a.count", "NumericLessThanEquals": 3}) == "count ≤ 3"
    assert condition(
        {"Or": [{"Variable": "$.s", "StringMatches": "x*"}, {"Variable": "$.t", "IsPresent": False}]}
    ) == ("s matches x* or t is not present")
    assert condition({"Not": {"Variable": "$.b", "BooleanEquals": True}}) == "not (b = true)"
