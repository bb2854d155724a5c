"""Deletes what a release superseded, so nothing is left behind to pay for.

Kept: the endpoint config the endpoint serves, the one it is moving to while it updates, the one it served
before (for a rollback), and their models.
After a success, older configs and models of this project go; after a failure, this release's own config
and models (the evaluation model and the endpoint's) go unless the endpoint uses them. Endpoints are never
deleted here.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

PROJECT_NAME = os.environ["PROJECT_NAME"]
STAGE = os.environ["STAGE"]

logger = Logger()
tracer = Tracer()
sagemaker = boto3.client("sagemaker")


def _pages(operation: str, key: str, **kwargs) -> list[dict[str, Any]]:
    return [item for page in sagemaker.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _not_found(exc: ClientError) -> bool:
    error = exc.response["Error"]
    return error["Code"] == "ValidationException" and "Could not find" in error.get("Message", "")


def endpoint_configs(endpoint_name: str) -> set[str]:
    """The config the endpoint serves and, while it is updating, the one it is moving to; none without an
    endpoint. Any other error stops the cleanup: deleting blind could take what the endpoint needs."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if _not_found(exc):
            return set()
        raise
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    return {c for c in (endpoint.get("EndpointConfigName"), pending) if c}


def models_of(config_name: str) -> set[str]:
    try:
        variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    except ClientError as exc:
        if _not_found(exc):
            return set()
        raise
    return {v["ModelName"] for v in variants}


def plan(
    endpoint_name: str, names: dict[str, str], outcome: str, previous_config: str | None
) -> dict[str, list]:
    """What to delete and what to keep; a plain function so the rules can be read and tested alone."""
    kept_configs = endpoint_configs(endpoint_name) | ({previous_config} if previous_config else set())
    if outcome == "succeeded":
        kept_configs.add(names["endpoint_config"])
    kept_models = set().union(*(models_of(c) for c in sorted(kept_configs)))
    prefix = f"{PROJECT_NAME}-{STAGE}-"  # never another stage's resources
    if outcome == "succeeded":
        configs = _pages("list_endpoint_configs", "EndpointConfigs", NameContains=prefix)
        models = _pages("list_models", "Models", NameContains=prefix)
        own = {c["EndpointConfigName"]: c["CreationTime"] for c in configs}
        cutoff = own.get(names["endpoint_config"])
        doomed_configs = [
            n
            for n, created in own.items()
            if n.startswith(prefix) and n not in kept_configs and (cutoff is None or created <= cutoff)
        ]
        doomed_models = [
            m["ModelName"]
            for m in models
            if m["ModelName"].startswith(prefix)
            and m["ModelName"] not in kept_models
            and (cutoff is None or m["CreationTime"] <= cutoff)
        ]
    else:
        doomed_configs = [names["endpoint_config"]] if names["endpoint_config"] not in kept_configs else []
        own_models = [names[kind] for kind in ("evaluation_model", "model") if names.get(kind)]
        doomed_models = [m for m in own_models if m not in kept_models]
    return {
        "delete_configs": sorted(doomed_configs),
        "delete_models": sorted(doomed_models),
        "kept_configs": sorted(kept_configs),
        "kept_models": sorted(kept_models),
    }


def _delete(call, **kwargs) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if _not_found(exc):  # already gone
            return False
        raise


@tracer.capture_method
def clean_up(event: dict[str, Any]) -> dict[str, Any]:
    steps = plan(event["endpoint_name"], event["names"], event["outcome"], event.get("previous_config"))
    deleted = [
        c for c in steps["delete_configs"] if _delete(sagemaker.delete_endpoint_config, EndpointConfigName=c)
    ]
    deleted += [m for m in steps["delete_models"] if _delete(sagemaker.delete_model, ModelName=m)]
    logger.info(
        "cleaned up", extra={"deleted": deleted, "kept": steps["kept_configs"] + steps["kept_models"]}
    )
    return {"deleted": deleted, "kept_configs": steps["kept_configs"], "kept_models": steps["kept_models"]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return clean_up(event)
