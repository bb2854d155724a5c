"""SageMaker Serverless Inference for the local SageMaker: what AWS refuses, and the concurrency it throttles at.

moto keeps serverless endpoint configs and shows their ServerlessConfig in DescribeEndpoint, but checks only
the memory size. AWS also refuses (ValidationException) a MaxConcurrency outside 1-200, a variant with both
ServerlessConfig and instance fields, and the real-time features serverless excludes that an endpoint config
can carry: data capture and more than one variant (developer guide, "Deploy models with Amazon SageMaker
Serverless Inference", feature exclusions; older versions of that list also named KMS keys, the current one
does not). An instance endpoint cannot be updated to serverless
(the other way is allowed), and a rolling update cannot deploy a serverless variant. An invocation beyond
MaxConcurrency is throttled.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

from moto.sagemaker.utils import ValidationError

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
INSTANCE_FIELDS = (
    "InstanceType",
    "InitialInstanceCount",
    "AcceleratorType",
    "VolumeSizeInGB",
    "ManagedInstanceScaling",
    "InstancePools",
)


def serverless_config_of(variants: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The ServerlessConfig of a config's variants, or None for an instance config."""
    return next((v["ServerlessConfig"] for v in variants or [] if v.get("ServerlessConfig")), None)


def _refuse(where: str, value: object, constraint: str) -> None:
    raise ValidationError(
        message=f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: {constraint}"
    )


def check_endpoint_config(variants: list[dict[str, Any]], data_capture_config: dict[str, Any] | None) -> None:
    """Raises ValidationError for a serverless endpoint config AWS would refuse; instance configs pass."""
    for index, variant in enumerate(variants, start=1):
        config = variant.get("ServerlessConfig")
        if not config:
            continue
        where = f"productionVariants.{index}.member"
        instance = [field for field in INSTANCE_FIELDS if field in variant]
        if instance:
            raise ValidationError(
                message=f"Variant {variant.get('VariantName')} has ServerlessConfig and {', '.join(instance)}: "
                "a serverless variant names no instances."
            )
        memory = config.get("MemorySizeInMB")
        if memory not in MEMORY_SIZES_MB:
            _refuse(
                f"{where}.serverlessConfig.memorySizeInMB",
                memory,
                f"Member must be one of {', '.join(map(str, MEMORY_SIZES_MB))}",
            )
        concurrency = config.get("MaxConcurrency")
        if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
            _refuse(
                f"{where}.serverlessConfig.maxConcurrency",
                concurrency,
                f"Member must have value between 1 and {MAX_CONCURRENCY}",
            )
        provisioned = config.get("ProvisionedConcurrency")
        if provisioned is not None and not 1 <= provisioned <= concurrency:
            _refuse(
                f"{where}.serverlessConfig.provisionedConcurrency",
                provisioned,
                "Member must be between 1 and MaxConcurrency",
            )
    if serverless_config_of(variants) is None:
        return
    if len(variants) > 1:
        raise ValidationError(message="A serverless endpoint config takes one production variant.")
    if data_capture_config:
        raise ValidationError(message="DataCaptureConfig is not supported for serverless endpoints.")


def serves_serverless(endpoint_variants: list[dict[str, Any]] | None) -> bool:
    """Whether an endpoint's variants, as DescribeEndpoint has them, are serverless."""
    return any(v.get("CurrentServerlessConfig") for v in endpoint_variants or [])


def check_update(
    serverless_now: bool, new: list[dict[str, Any]], deployment_config: dict[str, Any] | None
) -> None:
    """Raises ValidationError for an UpdateEndpoint AWS refuses: to the new config's variants from an endpoint
    that is serverless now or not."""
    if serverless_config_of(new) is None:
        return  # serverless to instances is allowed (and one-way)
    if not serverless_now:
        raise ValidationError(
            message="An instance-based endpoint cannot be updated to a serverless endpoint config; "
            "delete the endpoint and create it with the serverless config."
        )
    if (deployment_config or {}).get("RollingUpdatePolicy"):
        raise ValidationError(message="Rolling deployments are not supported for serverless endpoints.")


class ConcurrencyLimit:
    """A serverless endpoint's MaxConcurrency: how many invocations run at once; the next one is refused."""

    def __init__(self, limit: int):
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[bool]:
        """Yields whether the invocation may run; its place is freed when it ends."""
        with self._lock:
            admitted = self._running < self.limit
            if admitted:
                self._running += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._running -= 1


def limit_for(variant: dict[str, Any]) -> ConcurrencyLimit | None:
    config = variant.get("ServerlessConfig")
    return ConcurrencyLimit(int(config["MaxConcurrency"])) if config else None


def throttled(endpoint_name: str, limit: int) -> tuple[int, dict[str, str], bytes]:
    """SageMaker Runtime's answer to an invocation over the limit: ThrottlingException, which the SDKs
    retry with backoff (moto takes the status from the "status" header)."""
    message = (
        f"Endpoint {endpoint_name} is running its maximum of {limit} concurrent invocations (MaxConcurrency)."
    )
    return (
        400,
        {"x-amzn-ErrorType": "ThrottlingException", "status": "400"},
        json.dumps({"message": message}).encode(),
    )
