"""Least privilege, measured: which rehearsed calls each Allow statement of the templates' roles serves.

Every rehearsal keeps what the local AWS checked (logs/iam-calls.json: each call with the actions, resources
and request context evaluated, and each role's policies and trust policy). For every Allow statement, the
report takes it out of its role, evaluates the same calls again, and lists the ones AWS would then refuse:
those calls need the statement. A statement no rehearsed call needs is reported as unused.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .local.iam import evaluate, trust_allows

# The rehearsal paths the report measures, together touching every role the templates define: two releases
# (the endpoint created, then updated blue/green) promoted to prod, with shifted traffic and the scheduled drift
# check (which mails) after them, then staging rolled back to the first; a release its approver rejects; and a
# spot release whose training restarts from its checkpoint (the only path that reads one back).
PATHS: dict[str, tuple[str, ...]] = {
    "release": (
        "--stages",
        "staging,prod",
        "--releases",
        "2",
        "--rollback",
        "--traffic",
        "50",
        "--shift",
        "petal_width=+1.5",
    ),
    "reject": ("--approve", "reject"),
    "spot": ("--parameter", "UseSpotTraining=true", "--fault", "spot-interrupt"),
}
RECORD = Path("logs") / "iam-calls.json"


@dataclass
class Statement:
    role: str  # "<template file> <logical id>"
    policy: str  # the policy's name, or "trust policy"
    index: int
    sid: str | None
    actions: tuple[str, ...]
    needed_by: dict[str, set[str]] = field(default_factory=dict)  # "service:Operation (action)" -> run labels
    unexercised: set[str] | None = None  # its actions whose removal alone no rehearsed call notices

    @property
    def label(self) -> str:
        return self.sid or f"#{self.index}"


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _without(document: Mapping[str, Any], index: int, action: str | None = None) -> dict[str, Any]:
    """The document without statement `index`, or with only `action` taken out of that statement's Action."""
    reduced = copy.deepcopy(dict(document))
    statements = _statements(reduced)
    if action is None:
        reduced["Statement"] = [s for i, s in enumerate(statements) if i != index]
        return reduced
    actions = statements[index]["Action"]
    statements[index]["Action"] = [
        a for a in ([actions] if isinstance(actions, str) else actions) if a != action
    ]
    reduced["Statement"] = statements
    return reduced


def _reduced(
    role: Mapping[str, Any], policy: str, document: Mapping[str, Any], index: int, action=None
) -> dict:
    if policy == "trust policy":
        return {**role, "trust": _without(document, index, action)}
    return {**role, "policies": {**role["policies"], policy: _without(document, index, action)}}


def _allowed(call: Mapping[str, Any], role: Mapping[str, Any]) -> bool:
    """Whether the role as given allows every check of the call (a trust check: its trust policy)."""
    for check in call["checks"]:
        if call.get("trust"):
            kind, value = call["trust"]
            decision = trust_allows(role["trust"], kind, value, check["action"], check["context"])
        else:
            decision = evaluate(role["policies"], check["action"], check["resources"], check["context"])
        if not decision.allowed:
            return False
    return True


def _refused_check(call: Mapping[str, Any], role: Mapping[str, Any]) -> str:
    for check in call["checks"]:
        if not _allowed({**call, "checks": [check]}, role):
            return check["action"]
    return ""


def measure(runs: Mapping[str, Mapping[str, Any]]) -> list[Statement]:
    """`runs`: label -> a rehearsal's iam-calls.json. Every Allow statement of every role a call used, with
    the calls that are refused without it."""
    found: dict[tuple[str, str, int], Statement] = {}
    for label, record in runs.items():
        for arn, role in record["roles"].items():
            calls = [c for c in record["calls"] if c["principal"] == arn and c["allowed"]]
            documents = {
                **{name: doc for name, doc in role["policies"].items()},
                "trust policy": role["trust"],
            }
            for policy, document in documents.items():
                for index, statement in enumerate(_statements(document)):
                    if statement.get("Effect") != "Allow":
                        continue
                    key = (role["name"], policy, index)
                    actions = statement.get("Action", statement.get("NotAction", []))
                    entry = found.setdefault(
                        key,
                        Statement(
                            role["name"],
                            policy,
                            index,
                            statement.get("Sid"),
                            tuple([actions] if isinstance(actions, str) else actions),
                        ),
                    )
                    reduced = _reduced(role, policy, document, index)
                    if len(entry.actions) > 1 and "Action" in statement:
                        quiet = {
                            action
                            for action in entry.actions
                            if all(
                                _allowed(c, _reduced(role, policy, document, index, action)) for c in calls
                            )
                        }
                        entry.unexercised = quiet if entry.unexercised is None else entry.unexercised & quiet
                    for call in calls:
                        if not _allowed(call, reduced):
                            refused = _refused_check(call, reduced)
                            shown = (
                                call["call"]
                                if refused.lower() == call["call"].lower()
                                else f"{call['call']} ({refused})"
                            )
                            entry.needed_by.setdefault(shown, set()).add(label)
    return sorted(found.values(), key=lambda s: (s.role, s.policy != "trust policy", s.policy, s.index))


def load(work_dirs: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """Each rehearsal's record, by label; a work dir without one is an error naming it."""
    runs = {}
    for label, work_dir in work_dirs.items():
        record = Path(work_dir) / RECORD
        if not record.is_file():
            raise FileNotFoundError(f"{label}={work_dir}: no {RECORD} (is it a rehearsal's work dir?)")
        runs[label] = json.loads(record.read_text())
    return runs


def rehearse_paths(
    root: Path, out: TextIO = sys.stderr, paths: Mapping[str, tuple[str, ...]] = PATHS
) -> dict[str, Path]:
    """Runs each path's rehearsal side by side (work dirs under `root`); returns the work dirs by label."""
    started = {}
    Path(root).mkdir(parents=True, exist_ok=True)
    for label, args in paths.items():
        work = Path(root) / label
        out.write(f"==> rehearsing {label}: mlops rehearse {' '.join(args)}\n")
        log = (Path(root) / f"{label}.log").open("w")
        command = [sys.executable, "-m", "mlops", "rehearse", "--work-dir", str(work), *args]
        started[label] = (work, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log), log)
    for label, (work, process, log) in started.items():
        process.wait()
        log.close()
        if not (work / RECORD).is_file():
            raise RuntimeError(
                f"the {label} rehearsal ended (exit {process.returncode}) without {RECORD}: see {log.name}"
            )
    return {label: work for label, (work, _, _) in started.items()}


def unused(statements: Iterable[Statement]) -> list[Statement]:
    return [s for s in statements if not s.needed_by]


def markdown(statements: list[Statement], runs: Iterable[str]) -> str:
    lines = [
        "# IAM: which calls each statement serves",
        "",
        "Generated by `scripts/iam-report` from the rehearsal paths "
        + ", ".join(f"`{r}`" for r in runs)
        + ": each Allow statement of each role was taken out and the calls those rehearsals made were checked "
        "again; the calls listed are the ones AWS would then refuse (with the refused action in brackets when it "
        "is not the call's own). An action marked 'not exercised' can go from its statement without any rehearsed "
        "call noticing: it serves a path the rehearsal does not take (say, stopping a job) or nothing. "
        "Do not edit by hand.",
        "",
    ]
    role = None
    for statement in statements:
        if statement.role != role:
            role = statement.role
            lines += [
                "",
                f"## {role}",
                "",
                "| Policy | Statement | Actions | Needed by (rehearsal path) |",
                "|---|---|---|---|",
            ]
        needed = (
            "<br>".join(
                f"{call} ({', '.join(sorted(labels))})"
                for call, labels in sorted(statement.needed_by.items())
            )
            or "**unused**"
        )
        quiet = statement.unexercised or set()
        actions = ", ".join(f"`{a}`" + (" (not exercised)" if a in quiet else "") for a in statement.actions)
        lines.append(f"| {statement.policy} | {statement.label} | {actions} | {needed} |")
    return "\n".join(lines) + "\n"
