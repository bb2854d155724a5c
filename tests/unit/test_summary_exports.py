"""The export lines `mlops rehearse --serve` prints are pasted into a shell as they are."""

import subprocess

from mlops.summary import export_lines

SUMMARY = {
    "work_dir": "/tmp/a folder/with 'quotes'",
    "api_url": "http://127.0.0.1:4001/Prod",
    "aws_endpoint_url": "http://127.0.0.1:4002",
    "execution_arn": "arn:aws:states:eu-west-1:123456789012:execution:mlops-iris-staging-release:abc-1-1",
}


def _pasted(lines: list[str], names: str) -> list[str]:
    script = "\n".join(lines) + "\n" + "".join(f'printf "%s\\n" "${name}"\n' for name in names.split())
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env={})
    return done.stdout.splitlines()


def test_export_lines_set_the_try_it_variables_as_the_summary_has_them():
    assert _pasted(export_lines(SUMMARY), "WORK API AWS_ENDPOINT ARN") == [
        SUMMARY["work_dir"],
        SUMMARY["api_url"],
        SUMMARY["aws_endpoint_url"],
        SUMMARY["execution_arn"],
    ]


def test_export_lines_give_the_local_aws_fake_credentials_and_the_execution_region():
    values = _pasted(export_lines(SUMMARY), "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION")
    assert values == ["testing", "testing", "eu-west-1"]


def test_a_later_stage_api_is_exported_by_its_stage_name():
    stages = {
        "staging": {"api_url": SUMMARY["api_url"]},
        "prod": {"api_url": "http://127.0.0.1:4003/Prod"},
    }
    lines = export_lines({**SUMMARY, "stages": stages})
    assert _pasted(lines, "PROD_API") == ["http://127.0.0.1:4003/Prod"]
    assert "STAGING_API" not in "".join(lines)


def test_a_run_without_an_execution_exports_nothing():
    assert export_lines({**SUMMARY, "execution_arn": None}) == []
