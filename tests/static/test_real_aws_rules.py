"""Rules a real AWS account enforces that the local rehearsal cannot see: the template and the state machine
definition are checked against them here, each rule against the files as they are."""

from __future__ import annotations

import json
import re

import botocore.session
import botocore.validate
import pytest
from policy_checks import INFRA, load_template, role_statements

from mlops.names import execution_name_for, model_artifact_key_for, release_names_for

APP = INFRA / "template.yaml"
DEFINITION = json.loads((INFRA.parent / "statemachine" / "mlops.asl.json").read_text())


@pytest.fixture(scope="module")
def app() -> dict:
    return load_template(APP)


def test_the_model_registry_outlives_the_stack_that_created_it(app):
    # CloudFormation cannot delete a group that still holds versions: deleting the stack would fail.
    group = app["Resources"]["ModelPackageGroup"]
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"


def _state(name: str) -> dict:
    return DEFINITION["States"][name]


ROLLBACK_ALARMS = ("EndpointErrorsAlarm", "EndpointLatencyAlarm", "ModelErrorsAlarm")


def _default(app: dict, value) -> int:
    """A property's number: itself, or the default of the parameter it refers to."""
    return int(app["Parameters"][value["Ref"]]["Default"]) if isinstance(value, dict) else int(value)


def test_each_traffic_step_bakes_longer_than_every_rollback_alarms_window(app):
    # SageMaker watches the rollback alarms only while a step bakes; a shorter bake cannot roll back.
    baking = app["Parameters"]["DeploymentBakingSeconds"]
    for name in ROLLBACK_ALARMS:
        alarm = app["Resources"][name]["Properties"]
        window = _default(app, alarm["Period"]) * alarm["EvaluationPeriods"]
        assert baking["Default"] > window, name
        allowed = app["Parameters"][alarm["Period"]["Ref"]]["AllowedValues"]
        assert all(period % 60 == 0 for period in allowed), name  # SageMaker's metrics are per minute
    assert (
        baking["MaxValue"] <= 3600
    )  # the API's limit for WaitIntervalInSeconds and TerminationWaitInSeconds
    assert app["Parameters"]["DeploymentTerminationWaitSeconds"]["MaxValue"] <= 3600


def test_the_default_timeout_outlasts_every_strategys_waits_with_time_to_provision(app):
    parameters = app["Parameters"]
    baking = parameters["DeploymentBakingSeconds"]["Default"]
    termination = parameters["DeploymentTerminationWaitSeconds"]["Default"]
    percent = parameters["DeploymentTrafficPercent"]["Default"]
    steps = {"ALL_AT_ONCE": 1, "CANARY": 1, "LINEAR": -(-100 // percent)}
    timeout = parameters["DeploymentTimeoutSeconds"]
    assert (timeout["MinValue"], timeout["MaxValue"]) == (600, 28800)  # MaximumExecutionTimeoutInSeconds
    for strategy in parameters["DeploymentStrategy"]["AllowedValues"]:
        assert timeout["Default"] >= steps[strategy] * baking + termination + 300, strategy
    percent = parameters["DeploymentTrafficPercent"]
    assert percent["MinValue"] >= 10 and percent["MaxValue"] <= 50  # canary at most half; linear steps 10-50%


def _update_endpoint_request(routing_state: str) -> dict:
    """UpdateEndpoint's parameters as the state machine sends them after `routing_state`, with numbers."""
    config = {
        "deployment_traffic_percent": 10,
        "deployment_baking_seconds": 300,
        "deployment_termination_wait_seconds": 120,
        "deployment_timeout_seconds": 3600,
    }

    def resolve(value):
        if isinstance(value, dict):
            return {k.removesuffix(".$"): resolve(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("$.config."):
            return config[value.removeprefix("$.config.")]
        return value

    routing = resolve(_state(routing_state)["Parameters"])
    request = resolve(_state("UpdateEndpoint")["Parameters"])
    request["EndpointConfigName"] = "config"
    request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] = routing
    return request


@pytest.mark.parametrize("routing_state", ["AllAtOnceRouting", "CanaryRouting", "LinearRouting"])
def test_every_traffic_routing_the_strategy_chooses_is_a_valid_update_endpoint_request(routing_state):
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("UpdateEndpoint").input_shape
    request = _update_endpoint_request(routing_state)
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    policy = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    kind = policy["TrafficRoutingConfiguration"]["Type"]
    assert (
        kind
        in shape.members["DeploymentConfig"]
        .members["BlueGreenUpdatePolicy"]
        .members["TrafficRoutingConfiguration"]
        .members["Type"]
        .enum
    )


def test_the_strategy_choice_covers_every_allowed_strategy(app):
    choices = {c["StringEquals"]: c["Next"] for c in _state("TrafficRouting")["Choices"]}
    routed = {**choices, "ALL_AT_ONCE": _state("TrafficRouting")["Default"]}
    assert set(routed) == set(app["Parameters"]["DeploymentStrategy"]["AllowedValues"])
    for strategy, state in routed.items():
        assert _state(state)["Parameters"]["Type"] == strategy


def _sdk_error_names(service: str) -> set[str]:
    """The error names Step Functions gives an AWS SDK integration of this service: the SDK id, a dot, each
    modelled exception with an "Exception" suffix, and <Id>Exception for everything the API does not model
    (throttling and validation errors among them)."""
    model = botocore.session.get_session().get_service_model(service)
    prefix = model.service_id.replace(" ", "")
    modelled = {shape.name.removesuffix("Exception") for shape in model.error_shapes}
    return {f"{prefix}.{name}Exception" for name in modelled | {prefix}}


def _error_names(state: dict) -> set[str]:
    rules = state.get("Retry", []) + state.get("Catch", [])
    return {name for rule in rules for name in rule["ErrorEquals"]}


SDK_TASKS = {
    name: state
    for name, state in DEFINITION["States"].items()
    if state.get("Resource", "").startswith("arn:aws:states:::aws-sdk:sagemaker:")
}


def test_sdk_sagemaker_tasks_retry_and_catch_only_names_aws_raises():
    assert SDK_TASKS
    real = _sdk_error_names("sagemaker")
    for name, state in SDK_TASKS.items():
        sagemaker_names = {e for e in _error_names(state) if e.startswith("SageMaker.")}
        assert sagemaker_names <= real, f"{name}: {sorted(sagemaker_names - real)} never match an SDK task"
        retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
        # A throttled SDK call arrives as the unmodelled SageMaker.SageMakerException: retry it.
        assert "SageMaker.SageMakerException" in retried, name


def test_the_sdk_names_come_from_the_service_model():
    names = _sdk_error_names("sagemaker")
    assert {"SageMaker.SageMakerException", "SageMaker.ResourceNotFoundException"} <= names
    assert "SageMaker.AmazonSageMakerException" not in names


# Fields of the optimised `arn:aws:states:::sagemaker:*` integrations that Step Functions documents (the CDK
# tasks that render them use no others). Step Functions checks these Parameters at CreateStateMachine and
# refuses others (SCHEMA_VALIDATION_FAILED); a field outside them needs the aws-sdk integration.
OPTIMISED_FIELDS = {
    "createModel": {"ModelName", "ExecutionRoleArn", "PrimaryContainer", "EnableNetworkIsolation", "Tags"},
    "createEndpointConfig": {"EndpointConfigName", "ProductionVariants", "KmsKeyId", "Tags"},
    "createEndpoint": {"EndpointName", "EndpointConfigName", "Tags"},
    "updateEndpoint": {"EndpointName", "EndpointConfigName"},
}
OPTIMISED_CONTAINER_FIELDS = {"Image", "ModelDataUrl", "Environment", "ContainerHostname", "Mode"}


def _fields(parameters: dict) -> set[str]:
    return {key.removesuffix(".$") for key in parameters}


def test_optimised_sagemaker_tasks_use_only_documented_fields():
    checked = 0
    for name, state in DEFINITION["States"].items():
        match = re.fullmatch(r"arn:aws:states:::sagemaker:(\w+)", state.get("Resource", ""))
        if not match or match.group(1) not in OPTIMISED_FIELDS:
            continue
        checked += 1
        parameters = state["Parameters"]
        assert _fields(parameters) <= OPTIMISED_FIELDS[match.group(1)], name
        assert _fields(parameters.get("PrimaryContainer", {})) <= OPTIMISED_CONTAINER_FIELDS, name
    assert checked >= 2  # createModel, createEndpoint (CreateEndpointConfig needs DataCaptureConfig: SDK)


def test_sagemaker_jobs_stay_on_the_optimised_sync_integration():
    jobs = {s["Resource"] for s in DEFINITION["States"].values() if s.get("Resource", "").endswith(".sync")}
    assert jobs == {
        "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "arn:aws:states:::sagemaker:createTransformJob.sync",
    }


def _edges(state: dict) -> set[str]:
    targets = {state.get("Next"), state.get("Default")}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    targets |= {catch["Next"] for catch in state.get("Catch", [])}
    return targets - {None}


def _reachable_avoiding(gates: set[str]) -> set[str]:
    seen, todo = set(), [DEFINITION["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name in gates:
            continue
        seen.add(name)
        todo.extend(_edges(DEFINITION["States"][name]))
    return seen


def _creates_model(state: dict) -> bool:
    return state.get("Resource", "").endswith("sagemaker:createModel")


def test_a_model_is_created_from_the_registry_only_after_the_package_is_approved():
    # SageMaker deploys a versioned model package only once it is Approved.
    from_package = {
        name
        for name, state in DEFINITION["States"].items()
        if _creates_model(state) and "ModelPackageName.$" in state["Parameters"]["PrimaryContainer"]
    }
    assert from_package
    approval_gates = {"ApproveModelPackage", "PackageApproved"}
    assert not from_package & _reachable_avoiding(approval_gates)


def test_the_evaluation_runs_a_model_built_from_the_image_and_the_training_artifact():
    transform = _state("BatchTransform")["Parameters"]["ModelName.$"]
    (creator,) = [
        state
        for state in DEFINITION["States"].values()
        if _creates_model(state) and state["Parameters"]["ModelName.$"] == transform
    ]
    assert creator["Parameters"]["PrimaryContainer"] == {
        "Image.$": "$.release.image_uri",
        "ModelDataUrl.$": "$.training.model_data",
    }
    served = _state("CreateEndpointConfig")["Parameters"]["ProductionVariants"][0]["ModelName.$"]
    assert served != transform


def test_the_rejection_recorded_in_the_registry_is_the_functions_bounded_text(app):
    # UpdateModelPackage refuses an ApprovalDescription above 1,024 characters: the raw cause can be longer.
    reject = _state("RejectModelPackage")["Parameters"]
    assert reject["ApprovalDescription.$"] == "$.rejection.description"
    (describer,) = [s for s in DEFINITION["States"].values() if s.get("Next") == "RejectModelPackage"]
    assert describer["Parameters"]["FunctionName"] == "${RegistryNoteFunctionArn}"
    assert describer["ResultPath"] == "$.rejection"
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["RegistryNoteFunctionArn"] == {"Fn::GetAtt": ["RegistryNoteFunction", "Arn"]}


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's Resource wildcards: `*` any run of characters (slashes included), `?` one character."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None


def test_the_prod_sagemaker_role_can_read_the_model_artifact_staging_trained(app):
    # A promoted model is created from the package, whose ModelDataUrl is in the staging stack's bucket.
    execution = execution_name_for("0123456789abcdef0123456789abcdef01234567", 1, "42")
    staging_job = release_names_for("mlops-iris", "staging", execution).training_job
    artifact = f"arn:aws:s3:::mlops-iris-staging-artifactbucket-1a2b3c/{model_artifact_key_for(staging_job)}"
    prod_job = release_names_for("mlops-iris", "prod", execution).training_job
    not_staging = f"arn:aws:s3:::mlops-iris-staging-artifactbucket-1a2b3c/{model_artifact_key_for(prod_job)}"

    grants = [
        statement
        for statement in role_statements(app, "SageMakerExecutionRole")
        if statement.allows and "s3:GetObject" in statement.actions
    ]
    readers = []
    for statement in grants:
        for resource in statement.resources:
            rendered = resource.replace("${AWS::Partition}", "aws").replace("${ProjectName}", "mlops-iris")
            if _iam_match(rendered, artifact):
                readers.append(statement)
                assert not _iam_match(rendered, not_staging)
    assert readers, "no statement lets the SageMaker role read the staging model artifact"
    for statement in readers:
        # The bucket's generated name is not known to this stack: the owner account scopes the wildcard.
        equals = statement.body["Condition"]["StringEquals"]
        assert equals["s3:ResourceAccount"] == {"Ref": "AWS::AccountId"}
        policy = app["Resources"][statement.where.split("/")[0]]
        assert app["Conditions"][policy["Condition"]] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}


def _configured(app: dict) -> dict:
    """What the Configure state puts in $.config from a parameter's default: `States.StringToJson('${Name}')`
    and plain `${Name}` of the substitutions that are a parameter's value."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in app["Parameters"].items()}
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    values = {name: defaults[ref["Ref"]] for name, ref in substitutions.items() if ref.get("Ref") in defaults}
    config = {}
    for key, value in _state("Configure")["Parameters"].items():
        parsed = re.fullmatch(r"States\.StringToJson\('\$\{(\w+)\}'\)", value)
        plain = re.fullmatch(r"\$\{(\w+)\}", value)
        if parsed and parsed.group(1) in values:
            config[key.removesuffix(".$")] = json.loads(values[parsed.group(1)])
        elif plain and plain.group(1) in values:
            config[key] = values[plain.group(1)]
    return config


def _request(parameters, context: dict):
    """A task's Parameters as the API receives them: `.$` paths read from the context, `${}` left as text."""
    if isinstance(parameters, list):
        return [_request(item, context) for item in parameters]
    if not isinstance(parameters, dict):
        return parameters
    request = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            found = context
            for part in value.removeprefix("$.").split("."):
                found = found[part]
            request[key.removesuffix(".$")] = found
        else:
            request[key] = _request(value, context)
    return request


def _out_of_range(value, shape, where: str = "") -> list[str]:
    """Fields outside the model's min/max (botocore's own validation checks only the minimum)."""
    if shape.type_name == "structure":
        return [p for k, v in value.items() for p in _out_of_range(v, shape.members[k], f"{where}.{k}")]
    if shape.type_name == "list":
        return [p for item in value for p in _out_of_range(item, shape.member, where)]
    if shape.type_name == "integer" and not (
        shape.metadata.get("min", value) <= value <= shape.metadata.get("max", value)
    ):
        return [f"{where}={value}"]
    return []


@pytest.mark.parametrize("endpoint_type", ["instance", "serverless"])
def test_each_endpoint_type_creates_a_config_the_sagemaker_api_accepts(app, endpoint_type):
    config = {**_configured(app), "endpoint_type": endpoint_type}
    choice = _state("ServerlessOrInstances")
    state_name = next(
        (c["Next"] for c in choice["Choices"] if c["StringEquals"] == endpoint_type), choice["Default"]
    )
    context = {
        "config": config,
        "names": {"endpoint_config": "mlops-iris-staging-0123abcd-1-config", "model": "mlops-iris-staging-m"},
        "release": {"commit": "0123456789abcdef0123456789abcdef01234567"},
    }
    request = _request(_state(state_name)["Parameters"], context)
    operation = (
        botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateEndpointConfig")
    )
    botocore.validate.validate_parameters(request, operation.input_shape)  # raises ParamValidationError
    assert _out_of_range(request, operation.input_shape) == []
    (variant,) = request["ProductionVariants"]
    if endpoint_type == "serverless":
        # Serverless excludes data capture; a variant with instance fields as well is refused.
        assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
        assert not {"InstanceType", "InitialInstanceCount"} & set(variant)
        assert "DataCaptureConfig" not in request
    else:
        assert "ServerlessConfig" not in variant and "DataCaptureConfig" in request


def test_the_serverless_parameters_allow_only_what_the_api_accepts(app):
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("ProductionVariantServerlessConfig")
    )
    memory, concurrency = shape.members["MemorySizeInMB"].metadata, shape.members["MaxConcurrency"].metadata
    memory_sizes = app["Parameters"]["ServerlessMemorySizeInMB"]["AllowedValues"]
    # The API's range is 1024-6144, but only whole gigabytes are valid memory sizes.
    assert memory_sizes == list(range(memory["min"], memory["max"] + 1, 1024))
    max_concurrency = app["Parameters"]["ServerlessMaxConcurrency"]
    assert (max_concurrency["MinValue"], max_concurrency["MaxValue"]) == (
        concurrency["min"],
        concurrency["max"],
    )
    assert app["Parameters"]["EndpointType"]["AllowedValues"] == ["instance", "serverless"]


def test_a_serverless_endpoint_registers_no_instance_count_to_scale(app):
    # Application Auto Scaling's DesiredInstanceCount applies to instance variants only.
    scaling = {"ScaleWithTraffic", "TrackInvocationsPerInstance"}
    into_scaling = {
        name for name, state in DEFINITION["States"].items() if "ScaleWithTraffic" in _edges(state)
    }
    assert into_scaling == {"ScalesByInstances"}
    choice = _state("ScalesByInstances")
    (serverless,) = choice["Choices"]
    assert (serverless["Variable"], serverless["StringEquals"]) == ("$.config.endpoint_type", "serverless")
    assert serverless["Next"] not in scaling and choice["Default"] == "ScaleWithTraffic"
    assert _state("Configure")["Parameters"]["endpoint_type"] == "${EndpointType}"


# --- the training job's request, as SageMaker receives it ------------------------------------------------

SAMPLE_SUBSTITUTIONS = {
    "SageMakerRoleArn": "arn:aws:iam::123456789012:role/mlops-iris-staging-SageMakerExecutionRole",
    "ArtifactBucket": "mlops-iris-staging-artifactbucket-1a2b3c",
}


def _rendered_definition(app: dict, **parameters: str) -> dict:
    """The definition with its ${...} filled as DefinitionSubstitutions would: each parameter's default
    (or `parameters`), and a sample value for what CloudFormation computes."""
    values = {**SAMPLE_SUBSTITUTIONS}
    for name, spec in app["Parameters"].items():
        values[name] = str(parameters.get(name, spec.get("Default", "")))
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    text = (INFRA.parent / "statemachine" / "mlops.asl.json").read_text()

    def fill(match: re.Match) -> str:
        source = substitutions.get(match.group(1))
        if isinstance(source, dict) and "Ref" in source:
            return values[source["Ref"]]
        return values.get(match.group(1), "sample")

    return json.loads(re.sub(r"\$\{(\w+)\}", fill, text))


def _evaluate(expression: str, data: dict):
    """The JSONPath and the two intrinsic functions the training states use."""
    if expression.startswith("$."):
        value = data
        for part in expression[2:].split("."):
            value = value[part]
        return value
    if match := re.fullmatch(r"States\.StringToJson\('(.*)'\)", expression):
        return json.loads(match.group(1))
    if match := re.fullmatch(r"States\.Format\('([^']*)', (\$[\w.]+)\)", expression):
        return match.group(1).replace("{}", str(_evaluate(match.group(2), data)), 1)
    raise AssertionError(f"the check cannot evaluate {expression!r}")


def _resolved(parameters, data: dict):
    if isinstance(parameters, dict):
        return {
            key.removesuffix(".$"): _evaluate(value, data) if key.endswith(".$") else _resolved(value, data)
            for key, value in parameters.items()
        }
    if isinstance(parameters, list):
        return [_resolved(item, data) for item in parameters]
    return parameters


def _training_request(app: dict, spot: str) -> dict:
    """CreateTrainingJob's request for a release, through Configure, the capacity choice and Train."""
    definition = _rendered_definition(app, UseSpotTraining=spot)
    states = definition["States"]
    execution = execution_name_for("0123456789abcdef0123456789abcdef01234567", 1, "42")
    data = {
        "names": release_names_for("mlops-iris", "staging", execution).as_dict(),
        "release": {
            "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-iris:abc",
            "commit": "abc",
        },
        "hyperparameters": {"max_depth": "3"},
        "data": {"train_uri": "s3://mlops-iris-staging-artifactbucket-1a2b3c/data/train/"},
    }
    read_by_training = {"use_spot_training", "training_instance_count"}
    configure = states["Configure"]["Parameters"]
    data["config"] = _resolved({k: v for k, v in configure.items() if k[:-2] in read_by_training}, data)
    data["config"]["training_distribution"] = states["ReplicateTrainingData"]["Result"]
    choice = states["TrainingCapacity"]
    (rule,) = choice["Choices"]
    taken = rule["Next"] if _evaluate(rule["Variable"], data) is rule["BooleanEquals"] else choice["Default"]
    limits = states[taken]
    assert limits["ResultPath"] == "$.config.training_stopping" and limits["Next"] == "Train"
    data["config"]["training_stopping"] = limits.get("Result") or _resolved(limits["Parameters"], data)
    return _resolved(states["Train"]["Parameters"], data)


def _validated(request: dict) -> dict:
    model = botocore.session.get_session().get_service_model("sagemaker")
    botocore.validate.validate_parameters(request, model.operation_model("CreateTrainingJob").input_shape)
    return request


def test_the_on_demand_training_request_is_valid_and_has_no_spot_wait(app):
    request = _validated(_training_request(app, "false"))
    assert request["EnableManagedSpotTraining"] is False
    # SageMaker refuses MaxWaitTimeInSeconds unless EnableManagedSpotTraining is true
    assert set(request["StoppingCondition"]) == {"MaxRuntimeInSeconds"}


def test_the_spot_training_request_is_valid_and_waits_at_least_its_max_runtime(app):
    request = _validated(_training_request(app, "true"))
    assert request["EnableManagedSpotTraining"] is True
    stopping = request["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    # any value the parameter accepts is one SageMaker accepts
    assert app["Parameters"]["MaxWaitTimeInSeconds"]["MinValue"] >= stopping["MaxRuntimeInSeconds"]


@pytest.mark.parametrize("spot", ["true", "false"])
def test_the_training_job_checkpoints_to_its_own_prefix_in_the_artifact_bucket(app, spot):
    request = _training_request(app, spot)
    execution = execution_name_for("0123456789abcdef0123456789abcdef01234567", 1, "42")
    names = release_names_for("mlops-iris", "staging", execution)
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://{SAMPLE_SUBSTITUTIONS['ArtifactBucket']}/{names.checkpoints}",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert names.checkpoints.startswith(f"checkpoints/{request['TrainingJobName']}/")
