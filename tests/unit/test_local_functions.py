"""The template's functions in this process: loaded in the background, invoked as Lambda would invoke them."""

import pytest

from mlops.local.functions import FunctionLoadError, FunctionSpec, LocalFunctions, invoke_any


def functions_from(tmp_path, source, environment=None):
    (tmp_path / "some_handler.py").write_text(source)
    spec = FunctionSpec("SomeFunction", tmp_path, "some_handler", "handler", {}, ())
    return LocalFunctions({"SomeFunction": spec}, {"SomeFunction": environment or {}}, "us-east-1")


def test_a_handler_runs_with_its_environment_and_its_errors_come_back_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("GREETING", "overridden by the function's environment")
    functions = functions_from(
        tmp_path,
        "import os\n"
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('bad event')\n"
        "    return {'greeting': os.environ['GREETING'], 'name': context.function_name}\n",
        {"GREETING": "hello"},
    )
    assert functions.invoke("SomeFunction", {}) == (True, {"greeting": "hello", "name": "SomeFunction"})
    assert functions.invoke("SomeFunction", {"fail": True}) == (
        False,
        {"errorType": "ValueError", "errorMessage": "bad event"},
    )


def test_a_module_that_cannot_load_fails_each_invoke_with_the_reason(tmp_path):
    functions = functions_from(tmp_path, "raise ImportError('no module named nowhere')\n")
    ok, error = functions.invoke("SomeFunction", {})
    assert not ok
    assert error == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": "ImportError: no module named nowhere",
    }
    with pytest.raises(FunctionLoadError, match="no module named nowhere"):
        functions.loaded()


def test_variables_that_disagree_between_functions_are_refused_at_once(tmp_path):
    spec = FunctionSpec("A", tmp_path, "a", "handler", {}, ())
    with pytest.raises(ValueError, match="B sets TABLE='two' but another function sets 'one'"):
        LocalFunctions({"A": spec, "B": spec}, {"A": {"TABLE": "one"}, "B": {"TABLE": "two"}}, "us-east-1")


def test_closed_functions_are_no_longer_found_by_invoke(tmp_path):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return event\n")
    spec = FunctionSpec("Echo", tmp_path, "echo", "handler", {}, ())
    arn = "arn:aws:lambda:us-east-1:123456789012:function:closing-Echo-A1B2C3"  # as CloudFormation names it
    functions = LocalFunctions({"Echo": spec}, {"Echo": {}}, "us-east-1", arns={"Echo": arn})
    assert invoke_any(arn, {"n": 1}) == (True, {"n": 1})
    functions.close()
    ok, error = invoke_any(functions.arns["Echo"], {"n": 1})
    assert not ok
    assert error["errorType"] == "ResourceNotFoundException"
    functions.close()  # twice is harmless
