"""The least an inference function can be: boto3 and one client, no validation, no logging, no tracing.

The cold-start figure compares functions/inference/app.py with this. Only the benchmark uses it.
"""

import json
import os

import boto3

runtime = boto3.client("sagemaker-runtime")


def handler(event, context):
    row = json.loads(event["body"])["data"]
    answer = runtime.invoke_endpoint(
        EndpointName=os.environ["ENDPOINT_NAME"], ContentType="text/csv", Accept="text/csv", Body=row.encode()
    )
    return {"statusCode": 200, "body": json.dumps({"result": answer["Body"].read().decode().strip()})}
