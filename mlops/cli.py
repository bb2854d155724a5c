"""``mlops``: the command line of the release pipeline."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .aws_cli import add_commands as add_aws_commands
from .names import InvalidNameError
from .release import ReleaseError, parse_hyperparameters

if TYPE_CHECKING:
    from .local.stack import LocalStack
    from .rehearsal import Options


@contextmanager
def _long_lived_heap() -> Iterator[None]:
    """Start-up builds objects that live as long as the process (moto, botocore's models, the parsed state
    machine). Collecting while that heap grows walks it again and again (about 0.8 s of a rehearsal), so the
    collector waits until start-up is done and then leaves what it built out of later collections."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _start_rehearsal(args: argparse.Namespace, out: TextIO) -> tuple[LocalStack, Options]:
    """The options and a started local stack, or a ReleaseError naming the bad argument."""
    from .local.images import ImageError
    from .local.runners import runner_named
    from .local.stack import ACCESS_TEMPLATE_PATH, LocalStack, new_work_dir
    from .local.template import Template, TemplateError
    from .rehearsal import Options, parse_fault
    from .sourceinfo import current_commit

    try:
        faults = [parse_fault(f) for f in args.fault]
    except ValueError as error:
        raise ReleaseError(f"--fault: {error}") from error
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    if len(set(stages)) != len(stages) or not set(stages) <= {"staging", "prod"} or stages[0] != "staging":
        raise ReleaseError(
            f"--stages {args.stages!r}: list distinct stages starting with staging, e.g. staging,prod"
        )
    options = Options(
        stages=stages,
        faults=faults,
        approve=args.approve,
        hyperparameters=parse_hyperparameters(args.hyperparameters),
        releases=args.releases,
        serve=args.serve,
        timeout=args.timeout,
    )
    parameters = dict(parse_hyperparameters(args.parameter)) if args.parameter else {}
    try:
        template = Template(Path(args.template).resolve()) if args.template else Template()
    except TemplateError as error:
        raise ReleaseError(f"--template: {error}") from error
    try:
        access_template = Template(Path(args.oidc_template or ACCESS_TEMPLATE_PATH).resolve())
    except TemplateError as error:
        raise ReleaseError(f"--oidc-template: {error}") from error
    try:
        template.check_parameters(parameters)
    except ValueError as error:
        raise ReleaseError(f"--parameter {error}") from error
    work_dir = Path(args.work_dir) if args.work_dir else new_work_dir()
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReleaseError(f"--work-dir {work_dir}: cannot create it ({error.strerror})") from error
    definition = Path(args.definition).resolve() if args.definition else None
    if definition and not definition.is_file():
        raise ReleaseError(f"--definition {definition} does not exist")
    out.write(f"Starting the local AWS (runner: {args.runner}, work dir: {work_dir})\n")
    try:
        runner = runner_named(args.runner, current_commit(), out)
    except ImageError as error:
        raise ReleaseError(f"--runner {args.runner}: {error}") from error
    try:
        stack = LocalStack(
            work_dir=work_dir,
            runner=runner,
            template=template,
            access_template=access_template,
            parameters=parameters,
            definition_path=definition,
        ).start()
    except TemplateError as error:  # it names the template or the stack
        raise ReleaseError(str(error)) from error
    return stack, options


def _rehearse(args: argparse.Namespace) -> int:
    out = sys.stderr
    with _long_lived_heap():
        stack, options = _start_rehearsal(args, out)
    from .rehearsal import rehearse

    try:
        summary = rehearse(stack, options, out)
        _print_summary(summary, out, serving=args.serve)
        stopped = threading.Event()
        if args.serve:
            # Before the JSON line: whoever reads it may signal at once, and the stack must still stop cleanly.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stopped.set())
            out.write("Serving until Ctrl-C (SIGINT/SIGTERM).\n")
            out.flush()
        print(json.dumps(summary), flush=True)
        if args.serve:
            stopped.wait()
        return 0 if summary["status"] == "SUCCEEDED" else 1
    except KeyboardInterrupt:
        out.write("\nInterrupted: stopping the local AWS and the programs it runs\n")
        raise
    finally:
        stack.stop()


def _print_summary(summary: dict, out, serving: bool) -> None:
    out.write(f"\nRelease {summary['status']}\n")
    if summary["status"] == "SUCCEEDED":
        out.write(
            f"  endpoint  {summary['endpoint_name']}\n  API       {summary['api_url']}\n"
            f"  mail      {summary['outbox']}\n  local AWS {summary['aws_endpoint_url']}\n"
            f"  {'try it:' if serving else 'asked: '}   {summary['curl']}\n  answer:   {summary['prediction']}\n"
        )
        if not serving:
            out.write("  (the local AWS stops now: `scripts/rehearse --serve` keeps it up for you to try)\n")
        out.write("\n")
    else:
        out.write(
            f"  failed at {summary.get('failed_state')}: {summary.get('error')}\n"
            f"  cause:    {summary.get('cause')}\n  mail:     {summary['outbox']}\n\n"
        )
    out.flush()


def _release(args: argparse.Namespace) -> int:
    import boto3

    from .release import Release, start_release

    release = Release(
        project=args.project,
        stage=args.stage,
        commit=args.commit,
        image_uri=args.image_uri,
        data_uri=args.data_uri,
        attempt=args.attempt,
        run_id=args.run_id,
        hyperparameters=parse_hyperparameters(args.hyperparameters),
        image_digest=args.image_digest,
    )
    execution_arn = start_release(boto3.client("stepfunctions"), args.state_machine_arn, release)
    region = execution_arn.split(":")[3]
    console = f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    print(
        json.dumps(
            {"execution_arn": execution_arn, "execution_name": release.execution_name, "console_url": console}
        )
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    import boto3

    from .names import endpoint_name_for
    from .promotion import start_promotion

    staging_endpoint = args.staging_endpoint or endpoint_name_for(args.project, "staging")
    execution_arn = start_promotion(
        boto3.client("stepfunctions"),
        boto3.client("sagemaker"),
        boto3.client("sagemaker-runtime"),
        args.state_machine_arn,
        args.model_package_arn,
        staging_endpoint,
        args.project,
        args.stage,
        args.attempt,
        args.run_id,
    )
    print(
        json.dumps(
            {"execution_arn": execution_arn, "model_package_arn": args.model_package_arn, "stage": args.stage}
        )
    )
    return 0


def _image_exists(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .release import image_tag_exists

    try:
        exists = image_tag_exists(boto3.client("ecr"), args.repository, args.tag)
    except (ClientError, BotoCoreError) as error:  # not "absent": the push must not go ahead blindly
        raise ReleaseError(f"cannot tell whether {args.repository}:{args.tag} exists: {error}") from error
    print(json.dumps({"repository": args.repository, "tag": args.tag, "exists": exists}))
    return 0 if exists else 1


def _diagram(args: argparse.Namespace) -> int:
    from .diagram import mermaid

    print(mermaid(json.loads(Path(args.definition).read_text())))
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number above zero, or argparse's usage error naming the option."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    rehearse = commands.add_parser(
        "rehearse",
        help="run the whole release pipeline on this machine (no AWS account needed)",
        description="Runs statemachine/mlops.asl.json on a local AWS: training, batch transform, approval mail, "
        "endpoint, API. The last stdout line is a JSON summary.",
    )
    rehearse.add_argument(
        "--approve",
        choices=["click", "manual", "reject"],
        default="click",
        help="click: follow the mail's Approve link over HTTP (default); manual: print the "
        "link and wait for you; reject: click Reject",
    )
    rehearse.add_argument(
        "--runner",
        choices=["process", "image"],  # mlops.local.runners.RUNNERS (not imported here: start-up time)
        default="process",
        help="run the container programs as processes (default), or inside the model image built from "
        "container/ with Docker when its daemon answers, else podman (MLOPS_IMAGE_ENGINE=docker|podman "
        "chooses)",
    )
    rehearse.add_argument("--definition", help="an ASL file to run instead of statemachine/mlops.asl.json")
    rehearse.add_argument(
        "--template",
        help="a SAM template to deploy to the local AWS instead of infra/template.yaml (its CodeUri and "
        "DefinitionUri paths are relative to it)",
    )
    rehearse.add_argument(
        "--oidc-template",
        help="a template to deploy as the release access stack instead of infra/github-oidc.yaml",
    )
    rehearse.add_argument(
        "--serve",
        action="store_true",
        help="keep the local AWS, API, mail and endpoint up after the summary until Ctrl-C (a failed run too)",
    )
    rehearse.add_argument(
        "--hyperparameters",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="training hyperparameters, e.g. max_depth=3 (a bad value fails Train, naming it)",
    )
    rehearse.add_argument(
        "--parameter",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. MinAccuracy=0.95",
    )
    rehearse.add_argument(
        "--releases", type=_positive(int), default=1, help="release N times against the same local AWS"
    )
    rehearse.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[@N]",
        help="inject a fault into every release, or release N only: train-crash, serve-crash, throttle, "
        "no-training-data, malformed-test-data, duplicate-execution (see the README's reliability section)",
    )
    rehearse.add_argument(
        "--stages",
        default="staging",
        help="release to staging, then promote the approved model package to the next stages, e.g. staging,prod",
    )
    rehearse.add_argument(
        "--timeout", type=_positive(float), default=600.0, help="seconds to wait for each release"
    )
    rehearse.add_argument("--work-dir", help="where mail, jobs and logs go (default: a new temporary folder)")
    rehearse.set_defaults(func=_rehearse)

    release = commands.add_parser(
        "release",
        help="start a release execution on AWS (what the workflow and CodePipeline run)",
        description="Starts the release state machine for a commit-tagged image. Prints a JSON line with the "
        "execution ARN. Exit 2 with advice if that commit and attempt were released already.",
    )
    release.add_argument("--state-machine-arn", required=True)
    release.add_argument("--image-uri", required=True, help="the commit-tagged image in ECR")
    release.add_argument("--commit", required=True, help="full commit SHA")
    release.add_argument("--data-uri", required=True, help="s3://bucket/prefix holding train/ and test/")
    release.add_argument("--project", default="mlops-iris")
    release.add_argument("--stage", default="staging", choices=["staging", "prod"])
    release.add_argument(
        "--image-digest",
        default="unknown",
        help="sha256:... of the pushed image, recorded in the model registry",
    )
    release.add_argument(
        "--attempt", type=_positive(int), default=1, help="the CI run attempt; a rerun needs a new one"
    )
    release.add_argument("--run-id", default="", help="the CI run id, so reruns from new runs never collide")
    release.add_argument("--hyperparameters", nargs="*", default=[], metavar="NAME=VALUE")
    release.set_defaults(func=_release)

    promote = commands.add_parser(
        "promote",
        help="deploy an approved model package that serves in staging to prod (no retraining)",
        description="Refuses (exit 2) unless the package is Approved and the staging endpoint serves it and "
        "answers a smoke test; then starts the prod stack's state machine in promotion mode.",
    )
    promote.add_argument("--state-machine-arn", required=True, help="the prod stack's release state machine")
    promote.add_argument("--model-package-arn", required=True)
    promote.add_argument("--project", default="mlops-iris")
    promote.add_argument("--stage", default="prod", choices=["prod"])
    promote.add_argument("--staging-endpoint", help="default: <project>-staging")
    promote.add_argument(
        "--attempt", type=_positive(int), default=1, help="the CI run attempt; a rerun needs a new one"
    )
    promote.add_argument("--run-id", default="", help="the CI run id")
    promote.set_defaults(func=_promote)

    image_exists = commands.add_parser(
        "image-exists",
        help="exit 0 if REPOSITORY:TAG is already in ECR (the push is then skipped), 1 if absent, 2 on errors",
    )
    image_exists.add_argument("repository")
    image_exists.add_argument("tag")
    image_exists.set_defaults(func=_image_exists)

    add_aws_commands(commands)

    diagram = commands.add_parser("diagram", help="print a mermaid diagram of a state machine definition")
    diagram.add_argument(
        "definition",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1] / "statemachine" / "mlops.asl.json"),
    )
    diagram.set_defaults(func=_diagram)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ReleaseError, InvalidNameError) as error:
        print(f"mlops: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # what a command started locally is stopped on the way out
        print("mlops: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `mlops` command. Whatever main() leaves is freed when the process ends: frozen, it is not walked by
    the interpreter's last collections (about 2 s after a rehearsal)."""
    code = main()
    gc.freeze()
    sys.exit(code)
