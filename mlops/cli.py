"""``mlops``: the command line of the release pipeline."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import tempfile
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
    from .rehearsal import EXAMPLE_PARAMETERS, Options, parse_fault
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
    workflow = Path(args.workflow).resolve() if args.workflow else None
    if workflow and not workflow.is_file():
        raise ReleaseError(f"--workflow {workflow} does not exist")
    from .traffic import feature_names_of, parse_shift

    if args.shift and not args.traffic:
        raise ReleaseError("--shift changes the rows --traffic sends: give --traffic N too")
    shifts = [parse_shift(text, feature_names_of(args.model)) for text in args.shift]
    # A canary that fails on some requests only shows with requests: send some unless told a rate.
    canary_errors = any(name == "canary-errors" for name, _ in faults)
    options = Options(
        update_traffic=args.update_traffic if args.update_traffic is not None else 10.0 * canary_errors,
        traffic=args.traffic or 0,
        shifts=shifts,
        **({"workflow": workflow} if workflow else {}),
        stages=stages,
        faults=faults,
        approve=args.approve,
        hyperparameters=parse_hyperparameters(args.hyperparameters),
        releases=args.releases,
        serve=args.serve,
        timeout=args.timeout,
        rollback=args.rollback,
    )
    if args.rollback and args.releases < 2:
        raise ReleaseError("--rollback needs --releases 2 or more: the first release is what it goes back to")
    parameters = dict(parse_hyperparameters(args.parameter)) if args.parameter else {}
    parameters = {**EXAMPLE_PARAMETERS[getattr(args, "model", "iris")], **parameters}
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
    try:  # an existing folder may still refuse writes (a read-only mount, another user's folder)
        tempfile.TemporaryFile(dir=work_dir).close()
    except OSError as error:
        raise ReleaseError(f"--work-dir {work_dir}: cannot write there ({error.strerror})") from error
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
        # 2: the workflow stopped before a release started, as when `mlops release` refuses to start one.
        return {"SUCCEEDED": 0, "NOT_STARTED": 2}.get(summary["status"], 1)
    except KeyboardInterrupt:
        out.write("\nInterrupted: stopping the local AWS and the programs it runs\n")
        raise
    finally:
        stack.stop()


def _print_summary(summary: dict, out, serving: bool) -> None:
    from .summary import export_lines

    out.write(f"\nRelease {summary['status']}\n")
    if summary["status"] == "NOT_STARTED":
        tail = "".join(f"    {line}\n" for line in summary.get("tail", []))
        out.write(
            f"  {summary['failed_workflow']}: step {summary.get('failed_step')!r} failed, so nothing started\n"
            f"  reason:   {summary.get('reason')}\n"
            + (f"  its last output lines:\n{tail}" if tail else "")
            + f"  log:      {summary['workflow_log']}\n  work dir: {summary['work_dir']}\n\n"
        )
    elif summary["status"] == "SUCCEEDED":
        out.write(
            f"  endpoint  {summary['endpoint_name']}\n  API       {summary['api_url']}\n"
            + "".join(
                f"  {stage:<9} endpoint {record['endpoint_name']}, API {record['api_url']}\n"
                for stage, record in list((summary.get("stages") or {}).items())[1:]
            )
            + f"  mail      {summary['outbox']}\n  local AWS {summary['aws_endpoint_url']}\n"
            f"  work dir  {summary['work_dir']} (kept: its mail, logs and job files are this run's record)\n"
            f"  {'try it:' if serving else 'asked: '}   {summary['curl']}\n  answer:   {summary['prediction']}\n"
        )
        if not serving:
            out.write("  (the local AWS stops now: `scripts/rehearse --serve` keeps it up for you to try)\n")
        out.write("\n")
    else:
        out.write(
            f"  failed at {summary.get('failed_state')}: {summary.get('error')}\n"
            f"  reason:   {summary.get('reason') or summary.get('cause')}\n"
            + (
                f"  record:   {summary['failure_record']} (the whole cause)\n"
                if summary.get("failure_record")
                else ""
            )
            + f"  mail:     {summary['outbox']}\n"
            f"  work dir: {summary['work_dir']} (logs/ has the functions' and the local AWS's logs)\n\n"
        )
    exports = export_lines(summary) if serving else []
    if exports:
        out.write(
            'To try it by hand (README, "Try it by hand"), paste these into a new shell: the credentials are\n'
            "the local AWS's fake ones and replace your own there.\n"
            + "".join(f"  {line}\n" for line in exports)
            + "\n"
        )
    out.flush()


def _mail(args: argparse.Namespace) -> int:
    from . import mailbox

    work_dir = Path(args.work_dir) if args.work_dir else mailbox.latest_work_dir()
    if work_dir is None:
        raise ReleaseError("no rehearsal work dir found: name one with --work-dir (the summary's work_dir)")
    outbox = work_dir / "outbox"
    found = mailbox.mails(outbox)
    if not found:
        raise ReleaseError(f"--work-dir {work_dir}: no mail in {outbox}")
    if args.number is None:
        print(f"{outbox}:\n{mailbox.listing(outbox)}")
    elif args.number > len(found):
        raise ReleaseError(f"there are {len(found)} mails in {outbox}; pick N from 1 to {len(found)}")
    else:
        print(mailbox.readable(found[args.number - 1]))
    return 0


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
    started = {
        "execution_arn": execution_arn,
        "execution_name": release.execution_name,
        "console_url": console,
    }
    if args.github_output:
        from .github_output import write_github_output

        write_github_output(started)
    print(json.dumps(started))
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
    started = {
        "execution_arn": execution_arn,
        "model_package_arn": args.model_package_arn,
        "stage": args.stage,
    }
    if args.github_output:
        from .github_output import write_github_output

        write_github_output(started)
    print(json.dumps(started))
    return 0


def _image_exists(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .release import pushed_image_digest

    try:
        digest = pushed_image_digest(boto3.client("ecr"), args.repository, args.tag)
    except (ClientError, BotoCoreError) as error:  # not "absent": the push must not go ahead blindly
        raise ReleaseError(f"cannot tell whether {args.repository}:{args.tag} exists: {error}") from error
    exists = digest is not None
    found = {"repository": args.repository, "tag": args.tag, "exists": exists}
    if args.registry:
        found["uri"] = f"{args.registry}/{args.repository}:{args.tag}"
    if digest:
        found["digest"] = digest
    if args.github_output:
        from .github_output import write_github_output

        write_github_output({k: found.get(k, "") for k in ("exists", "uri", "digest")})
    print(json.dumps(found))
    # With --github-output the outputs answer the question; exit 1 is kept for scripts that test the code.
    return 0 if exists or args.github_output else 1


def _rollback(args: argparse.Namespace) -> int:
    import boto3

    from .rollback import start_rollback

    started = start_rollback(
        boto3.client("stepfunctions"),
        boto3.client("sagemaker"),
        args.state_machine_arn,
        args.project,
        args.stage,
        args.to,
        args.attempt,
        args.run_id,
    )
    if args.github_output:
        from .github_output import write_github_output

        write_github_output(started)
    print(json.dumps(started))
    return 0


def _iam_report(args: argparse.Namespace) -> int:
    from . import iam_report

    work_dirs = {}
    for run in args.run or []:
        label, _, folder = run.partition("=")
        if not label or not folder:
            raise ReleaseError(f"--run {run!r}: expected LABEL=DIR (e.g. release=/tmp/mlops-rehearsal-x)")
        work_dirs[label] = Path(folder)
    if not work_dirs:
        root = Path(args.work_root) if args.work_root else Path(tempfile.mkdtemp(prefix="mlops-iam-report-"))
        work_dirs = iam_report.rehearse_paths(root)
    try:
        runs = iam_report.load(work_dirs)
    except FileNotFoundError as error:
        raise ReleaseError(str(error)) from error
    statements = iam_report.measure(runs)
    text = iam_report.markdown(statements, runs)
    unused = iam_report.unused(statements)
    for statement in unused:
        print(f"unused: {statement.role} {statement.policy} {statement.label}", file=sys.stderr)
    if args.output is None:
        print(text, end="")
    elif args.check:
        current = Path(args.output).read_text() if Path(args.output).is_file() else ""
        if current != text:
            print(
                f"{args.output} is not the report of these rehearsals: run scripts/iam-report",
                file=sys.stderr,
            )
            return 1
    else:
        Path(args.output).write_text(text)
        print(
            f"wrote {args.output}: {len(statements)} Allow statements, {len(unused)} unused", file=sys.stderr
        )
    return 1 if args.check and unused else 0


def _diagram(args: argparse.Namespace) -> int:
    from .diagram import mermaid

    if not args.execution:
        print(mermaid(json.loads(Path(args.definition).read_text())))
        return 0
    import io

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .execution import Progress

    sfn = boto3.client("stepfunctions", endpoint_url=args.endpoint_url)
    try:
        definition = json.loads(
            sfn.describe_state_machine_for_execution(executionArn=args.execution)["definition"]
        )
        progress = Progress(sfn, args.execution, io.StringIO())
        progress.poll()
    except (BotoCoreError, ClientError) as error:
        raise ReleaseError(f"--execution {args.execution}: {error}") from error
    print(mermaid(definition, taken={name: progress.durations.get(name, 0.0) for name in progress.states}))
    return 0


def _traffic(args: argparse.Namespace) -> int:
    from . import traffic
    from .data import write_split

    features = traffic.feature_names_of(args.model)
    shifts = [traffic.parse_shift(text, features) for text in args.shift]
    if args.data:
        source = Path(args.data)
        if not source.is_file():
            raise ReleaseError(f"--data {source} does not exist")
        rows = traffic.held_out_rows(source)
    else:
        with tempfile.TemporaryDirectory() as folder:
            rows = traffic.held_out_rows(write_split(args.model, folder)[1])
    sent = traffic.send(args.api_url, traffic.traffic_rows(rows, args.rows, features, shifts), args.api_key)
    print(json.dumps(sent))
    return 0 if sent["failed"] == 0 else 1


def _drift(args: argparse.Namespace) -> int:
    import boto3

    from .drift import drift_function_name, drift_record, invoke_drift

    function = drift_function_name(boto3.client("cloudformation"), args.project, args.stage)
    record = drift_record(invoke_drift(boto3.client("lambda"), function, args.hours))
    print(json.dumps(record))
    return 1 if record["drifted"] or record["prediction_drifted"] else 0


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
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__, formatter_class=_HelpFormatter)
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
        help="click: follow the mail's Approve link over HTTP; manual: print the link and wait for you; "
        "reject: click Reject",
    )
    rehearse.add_argument(
        "--runner",
        choices=["process", "image"],  # mlops.local.runners.RUNNERS (not imported here: start-up time)
        default="process",
        help="run the container programs as processes, or inside the model image built from "
        "container/ with Docker when its daemon answers, else podman (MLOPS_IMAGE_ENGINE=docker|podman "
        "chooses)",
    )
    rehearse.add_argument(
        "--definition", metavar="FILE", help="an ASL file to run instead of statemachine/mlops.asl.json"
    )
    rehearse.add_argument(
        "--template",
        metavar="FILE",
        help="a SAM template to deploy to the local AWS instead of infra/template.yaml (its CodeUri and "
        "DefinitionUri paths are relative to it)",
    )
    rehearse.add_argument(
        "--workflow",
        metavar="FILE",
        help="a copy of .github/workflows/release.yml whose job starts each release instead of that file",
    )
    rehearse.add_argument(
        "--oidc-template",
        metavar="FILE",
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
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. MinAccuracy=0.95 (repeatable; several may follow one --parameter)",
    )
    rehearse.add_argument(
        "--model",
        choices=("iris", "diabetes"),  # mlops.data.EXAMPLES (not imported: numpy is slow to load)
        default="iris",
        help="the example to release: iris (a classifier) or diabetes (a regression, gated on RMSE ≤ 70); "
        "it sets the template's Model, GateMetric and GateThreshold unless --parameter does",
    )
    rehearse.add_argument(
        "--releases",
        type=_positive(int),
        default=1,
        metavar="N",
        help="release N times against the same local AWS",
    )
    rehearse.add_argument(
        "--rollback",
        action="store_true",
        help="after the releases (and promotions), run rollback.yml for the first stage: its endpoint goes back "
        "to the previous Approved package",
    )
    rehearse.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[@N]",
        help="inject a fault into every release, or release N only: train-crash, spot-interrupt, serve-crash, "
        "throttle, canary-errors, no-training-data, malformed-test-data, duplicate-execution (see docs/faults.md)",
    )
    rehearse.add_argument(
        "--stages",
        default="staging",
        metavar="STAGE,STAGE",
        help="release to staging, then promote the approved model package to the next stages, e.g. staging,prod",
    )
    rehearse.add_argument(
        "--timeout",
        type=_positive(float),
        default=600.0,
        metavar="SECONDS",
        help="how long each release may run; past it the execution is stopped (ABORTED)",
    )
    rehearse.add_argument(
        "--work-dir",
        metavar="DIR",
        help="where mail, jobs and logs go; kept after the run (by default a new temporary folder)",
    )
    rehearse.add_argument(
        "--traffic",
        type=_positive(int),
        metavar="N",
        help="after the release, send N held-out rows through the API, then run the scheduled drift check "
        "(the summary gains traffic, capture and drift; see docs/drift.md)",
    )
    rehearse.add_argument(
        "--shift",
        action="append",
        default=[],
        metavar="FEATURE=DELTA",
        help="with --traffic: add DELTA to FEATURE in every row sent, e.g. petal_width=+1.5 (repeatable)",
    )
    rehearse.add_argument(
        "--update-traffic",
        type=_positive(float),
        metavar="RPS",
        help="while an endpoint update runs, send RPS held-out rows per second through the API (each release's "
        "deployment record counts them; default: 10 with --fault canary-errors, else none)",
    )
    rehearse.set_defaults(func=_rehearse)

    release = commands.add_parser(
        "release",
        help="start a release execution on AWS (what the workflow and CodePipeline run)",
        description="Starts the release state machine for a commit-tagged image. Prints a JSON line with the "
        "execution ARN. Exit 2 with advice if that commit and attempt were released already.",
    )
    release.add_argument("--state-machine-arn", required=True, help="the app stack's release state machine")
    release.add_argument("--image-uri", required=True, help="the commit-tagged image in ECR")
    release.add_argument("--commit", required=True, help="full commit SHA")
    release.add_argument("--data-uri", required=True, help="s3://bucket/prefix holding train/ and test/")
    release.add_argument("--project", default="mlops-iris", help="the stack's ProjectName")
    release.add_argument("--stage", default="staging", choices=["staging", "prod"], help="the stack's Stage")
    release.add_argument(
        "--image-digest",
        default="unknown",
        help="sha256:... of the pushed image, recorded in the model registry",
    )
    release.add_argument(
        "--attempt", type=_positive(int), default=1, help="the CI run attempt; a rerun needs a new one"
    )
    release.add_argument("--run-id", default="", help="the CI run id, so reruns from new runs never collide")
    release.add_argument(
        "--hyperparameters", nargs="*", default=[], metavar="NAME=VALUE", help="training hyperparameters"
    )
    release.add_argument(
        "--github-output",
        action="store_true",
        help="also write execution_arn, execution_name and console_url to $GITHUB_OUTPUT (a workflow step's "
        "outputs)",
    )
    release.set_defaults(func=_release)

    promote = commands.add_parser(
        "promote",
        help="deploy an approved model package that serves in staging to prod (no retraining)",
        description="Refuses (exit 2) unless the package is Approved and the staging endpoint serves it and "
        "answers a smoke test; then starts the prod stack's state machine in promotion mode.",
    )
    promote.add_argument("--state-machine-arn", required=True, help="the prod stack's release state machine")
    promote.add_argument(
        "--model-package-arn",
        required=True,
        help="the Approved package serving in staging (its mails name it)",
    )
    promote.add_argument("--project", default="mlops-iris", help="the stacks' ProjectName")
    promote.add_argument("--stage", default="prod", choices=["prod"], help="the stage to promote to")
    promote.add_argument(
        "--staging-endpoint", help="the endpoint that must serve the package (<project>-staging)"
    )
    _add_deploy_run_arguments(promote)
    promote.set_defaults(func=_promote)

    rollback = commands.add_parser(
        "rollback",
        help="put a stage's endpoint back on an earlier Approved model package (no retraining)",
        description="Picks the newest Approved package older than the one the stage's endpoint serves (or "
        "--to PACKAGE, which must be Approved), then starts the stage's state machine in promotion mode with it: "
        "the same blue/green update, no new training or approval. Refuses (exit 2) when there is nothing to go "
        "back to.",
    )
    rollback.add_argument("--state-machine-arn", required=True, help="the stage's release state machine")
    rollback.add_argument(
        "--stage", required=True, choices=["staging", "prod"], help="the stage to roll back"
    )
    rollback.add_argument("--to", metavar="MODEL_PACKAGE_ARN", help="the Approved package to go back to")
    rollback.add_argument("--project", default="mlops-iris", help="the stacks' ProjectName")
    _add_deploy_run_arguments(rollback)
    rollback.set_defaults(func=_rollback)

    image_exists = commands.add_parser(
        "image-exists",
        help="exit 0 if REPOSITORY:TAG is already in ECR (the push is then skipped), 1 if absent, 2 on errors",
    )
    image_exists.add_argument("repository", help="the ECR repository's name")
    image_exists.add_argument("tag", help="the image tag (the commit SHA)")
    image_exists.add_argument(
        "--registry", help="the registry host (ECR login's output): adds the image's uri to what is printed"
    )
    image_exists.add_argument(
        "--github-output",
        action="store_true",
        help="write exists=true|false, uri and digest to $GITHUB_OUTPUT and exit 0 whether or not the tag "
        "exists (2 still means it could not be told)",
    )
    image_exists.set_defaults(func=_image_exists)

    traffic = commands.add_parser(
        "traffic",
        help="send held-out rows (optionally shifted) through the inference API, e.g. to try the drift check",
        description="POSTs N rows of the held-out iris data (in order, starting over as needed) to "
        'API/v1/invokeSagemakerAPI, each as {"data": "..."}. Prints a JSON line: sent, answered, failed, '
        "the answers' counts.",
    )
    traffic.add_argument("--api-url", required=True, help="the API stage's base URL (ends in /Prod)")
    traffic.add_argument(
        "--rows", type=_positive(int), required=True, metavar="N", help="how many rows to send"
    )
    traffic.add_argument(
        "--shift",
        action="append",
        default=[],
        metavar="FEATURE=DELTA",
        help="add DELTA to FEATURE in every row, e.g. petal_width=+1.5 (repeatable)",
    )
    traffic.add_argument(
        "--api-key", help="the x-api-key value when the API requires a key (InferenceAuth=API_KEY)"
    )
    traffic.add_argument(
        "--data",
        metavar="FILE",
        help="a label-first CSV file to send rows from (default: the iris held-out split)",
    )
    traffic.add_argument(
        "--model",
        choices=("iris", "diabetes"),
        default="iris",
        help="the example the endpoint serves: its held-out rows and feature names",
    )
    traffic.set_defaults(func=_traffic)

    drift = commands.add_parser(
        "drift",
        help="run a stage's drift check now: captured traffic against the training baseline",
        description="Invokes the stack's drift function (the one its schedule runs daily) for the last N hours "
        "of captured traffic and prints its report as a JSON line: report URIs, each feature's population "
        "stability index, the drifted features. Exit 1 if something drifted. See docs/drift.md.",
    )
    drift.add_argument("--stage", default="staging", choices=["staging", "prod"], help="the stack's Stage")
    drift.add_argument("--project", default="mlops-iris", help="the stack's ProjectName")
    drift.add_argument(
        "--hours", type=_positive(int), default=24, metavar="N", help="how many hours of captures to read"
    )
    drift.set_defaults(func=_drift)

    add_aws_commands(commands)

    mail = commands.add_parser(
        "mail",
        help="list a rehearsal's mails, or print mail N readably (its text and its links)",
        description="Reads the outbox of a rehearsal's work dir: without N a numbered list (date, subject); "
        "with N that mail's headers, text part and links (the approval mail's Approve and Reject links).",
    )
    mail.add_argument("number", nargs="?", type=_positive(int), metavar="N", help="the mail to print")
    mail.add_argument(
        "--work-dir",
        metavar="DIR",
        help="the rehearsal's work dir (by default the newest in the temp folder)",
    )
    mail.set_defaults(func=_mail)

    iam = commands.add_parser(
        "iam-report",
        help="which rehearsed calls need each Allow statement of the templates' roles (least privilege, measured)",
        description="Takes each Allow statement out of its role in turn and checks the calls of rehearsals again "
        "(their logs/iam-calls.json): the calls AWS would then refuse are the ones that need it. Without --run, "
        "it first rehearses its paths side by side: two releases promoted to prod with drift-checked traffic and "
        "staging rolled back, and a "
        "rejected release.",
    )
    iam.add_argument(
        "--run",
        action="append",
        metavar="LABEL=DIR",
        help="a rehearsal's work dir to read, under a label (repeatable); without it the paths are rehearsed",
    )
    iam.add_argument(
        "--work-root",
        metavar="DIR",
        help="where the rehearsed paths' work dirs go (default: a new temporary folder)",
    )
    iam.add_argument(
        "--output", metavar="FILE", help="write the report there (e.g. docs/iam.md) instead of printing it"
    )
    iam.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a statement is unused, or (with --output) if FILE is not this report",
    )
    iam.set_defaults(func=_iam_report)

    diagram = commands.add_parser("diagram", help="print a mermaid diagram of a state machine definition")
    diagram.add_argument(
        "definition",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1] / "statemachine" / "mlops.asl.json"),
        help="an ASL file",
    )
    diagram.add_argument(
        "--execution",
        metavar="ARN",
        help="draw that execution's definition with the path it took highlighted and each state's time",
    )
    diagram.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="with --execution: the local AWS of a rehearsal (aws_endpoint_url)",
    )
    diagram.set_defaults(func=_diagram)
    _explain_every_command(commands)
    return parser


def _add_deploy_run_arguments(command: argparse.ArgumentParser) -> None:
    """What promote and rollback share: the CI run they belong to, and the workflow's step outputs."""
    command.add_argument(
        "--attempt", type=_positive(int), default=1, help="the CI run attempt; a rerun needs a new one"
    )
    command.add_argument("--run-id", default="", help="the CI run id")
    command.add_argument(
        "--github-output",
        action="store_true",
        help="also write execution_arn, model_package_arn and stage to $GITHUB_OUTPUT",
    )


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (unless there is none to speak of); descriptions keep their
    own line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, [], "", argparse.SUPPRESS) or action.required:
            return action.help
        return super()._get_help_string(action)


def _explain_every_command(commands) -> None:
    """Every subcommand's --help starts with what it does (its one-line help when it has no longer
    description) and shows defaults."""
    for command in commands.choices.values():
        command.formatter_class = _HelpFormatter
        if not command.description:
            command.description = next(
                action.help for action in commands._choices_actions if action.dest == command.prog.split()[-1]
            )


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
