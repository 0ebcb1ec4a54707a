"""Validate a loaded platform: every problem of every object, in one run.

`validate_platform` returns the problems `load_platform` already collected (unreadable or
malformed files, duplicates) followed by those of the checks, sorted by file and line. Each
names the file, the line of the offending field and the field path. The per-kind rules live in
bot/platform/validate/promise.py (contract §1.1, §4.6), bot/platform/validate/stores.py (§3.5-§3.7) and below
(Resource requests against their Promise's API schema, bot/platform/schema.py; the `.promisebot.yaml`
`stateBranch` against the GitStateStores, bot/settings.py).

`invalid_objects` gives the same errors keyed by object, for the engine to leave those alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.gitcmd import GitError
from bot.model.objects import GIT_STATE_STORE, Platform, Problem, Promise, Ref, ResourceRequest, Source
from bot.platform import schema
from bot.platform.sources import DirSource, FileError, GitTreeSource, PlatformFile, PlatformSource
from bot.platform.validate.common import Report, check_keys, check_metadata, label_error
from bot.platform.validate.promise import check_promise
from bot.platform.validate.stores import check_destination, check_destination_paths, check_state_store
from bot.platform.yamlload import YamlDoc, load_yaml_bytes
from bot.settings import SETTINGS_FILE, load_settings, state_branch_conflict, state_branch_error

REQUEST_NAME_MAX = 63  # Kratix forces metadata.name maxLength 63 on Promise APIs (§4.1 step 5)
SETTINGS_READ_CAP = 1 << 20  # a settings file is a few lines; larger ones are read_settings' problem


def validate_platform(platform: Platform) -> list[Problem]:
    """All load and validation problems of `platform` (errors and warnings), sorted by place."""
    reports = [report for _, report in _object_reports(platform)]
    settings_problems, replaced = _check_settings(platform)
    loaded = [p for p in platform.problems if not (replaced and _is_state_branch_load_problem(p))]
    problems = loaded + settings_problems + [p for r in reports for p in r.problems]
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.source.file, p.source.line, p.field, p.message))


def object_errors(platform: Platform) -> dict[Ref, list[Problem]]:
    """The validation errors of each Promise, Destination, State Store and Resource request that
    has any, keyed by its `ref`: what the engine must not reconcile (an unsafe `spec.path` or
    `filepath.filename`, a non-structural API schema...). Load problems belong to no object."""
    out: dict[Ref, list[Problem]] = {}
    for ref, report in _object_reports(platform):
        errors = [p for p in report.problems if p.severity == "error"]
        if errors:
            out.setdefault(ref, []).extend(errors)
    return out


def invalid_objects(platform: Platform) -> dict[Ref, list[str]]:
    """`object_errors` as `"<field>: <reason>"` lines."""
    return {ref: [f"{p.field}: {p.message}" if p.field else p.message for p in problems]
            for ref, problems in object_errors(platform).items()}


def _object_reports(platform: Platform) -> list[tuple[Ref, Report]]:
    """Every check of every object, as (the object's ref, its report); an object may have several."""
    documents: dict[Source, YamlDoc] = getattr(platform, "documents", {})

    def report_for(source: Source) -> Report:
        return Report(documents.get(source), source)

    reports: list[tuple[Ref, Report]] = []
    by_source: dict[Source, Ref] = {}
    promise_reports: list[Report] = []
    for promise in platform.promises.values():
        by_source[promise.source] = promise.ref
        reports.append((promise.ref, report := report_for(promise.source)))
        check_promise(promise, report)
    _check_api_claims(list(platform.promises.values()), report_for, promise_reports)
    _check_requirements(platform, report_for, promise_reports)
    reports.extend((by_source[r.source], r) for r in promise_reports)

    store_refs = {(ref.kind, ref.name) for ref in platform.state_stores}
    for store in platform.state_stores.values():
        reports.append((store.ref, report := report_for(store.source)))
        check_state_store(store, report)
    dest_reports: dict[str, Report] = {}
    for dest in platform.destinations.values():
        reports.append((dest.ref, report := report_for(dest.source)))
        dest_reports[dest.name] = report
        check_destination(dest, report, store_refs)
    check_destination_paths(list(platform.destinations.values()), dest_reports, platform.state_stores)

    for request in platform.requests.values():
        reports.append((request.ref, report := report_for(request.source)))
        requested = platform.promise_for_request(request)
        if requested is not None:
            check_request(request, requested, report)
    return reports


def _check_settings(platform: Platform) -> tuple[list[Problem], bool]:
    """`.promisebot.yaml`'s stateBranch: a valid branch name other than main/master (else the
    loader fell back to the default settings), and never the branch a GitStateStore writes to.

    Returns the problems and whether they replace the loader's less precise one about an
    invalid stateBranch (reported without a line or field)."""
    problems: list[Problem] = []
    replaced = False
    settings = getattr(platform, "settings", None)
    effective = (settings if settings is not None else load_settings()).state_branch
    doc = _settings_doc(platform)
    explicit = doc is not None and isinstance(doc.data, dict) and "stateBranch" in doc.data
    where = doc.source_at(("stateBranch",)) if doc is not None else Source(SETTINGS_FILE)
    if explicit:
        assert doc is not None
        value: Any = doc.data["stateBranch"]
        message = state_branch_error(value) if isinstance(value, str) else \
            f"must be a branch name (a string), not {type(value).__name__}"
        if message:
            problems.append(Problem(where, "stateBranch", f"{message}; using the default settings"))
            replaced = True
            explicit = False  # the default branch is the one in use
        else:
            effective = value  # what the file asks for (the loader may have fallen back for another key)
    for store in platform.state_stores.values():
        if store.kind != GIT_STATE_STORE:
            continue
        branch = store.spec.get("branch")
        if not isinstance(branch, str) or not state_branch_conflict(effective, branch):
            continue
        if explicit:
            problems.append(Problem(where, "stateBranch", f"{effective!r} is the branch GitStateStore {store.name} "
                                    f"({store.source}) writes to; the bookkeeping branch must be one nothing else "
                                    "writes to"))
        else:
            documents: dict[Source, YamlDoc] = getattr(platform, "documents", {})
            report = Report(documents.get(store.source), store.source)
            report.error(("spec", "branch"), f"{branch!r} is the platform repo's bookkeeping branch (stateBranch "
                         f"{effective!r}); set another stateBranch in {SETTINGS_FILE} or another branch here")
            problems.extend(report.problems)
    return problems, replaced


def _is_state_branch_load_problem(problem: Problem) -> bool:
    return problem.source.file == SETTINGS_FILE and not problem.field and problem.message.startswith("stateBranch: ")


def _settings_doc(platform: Platform) -> YamlDoc | None:
    """The first document of the repo's `.promisebot.yaml` (None if absent or unreadable)."""
    root = getattr(platform, "root", None)
    if root is None:
        return None
    try:
        source: PlatformSource = (GitTreeSource(root, platform.revision, frozenset({SETTINGS_FILE}))
                                  if platform.revision else DirSource(root))
        entry = next((f for f in source.files() if isinstance(f, PlatformFile) and f.path == SETTINGS_FILE), None)
        if entry is None:
            return None
        loaded = load_yaml_bytes(source.read(entry, SETTINGS_READ_CAP), SETTINGS_FILE, SETTINGS_READ_CAP)
    except (FileError, GitError, OSError, ValueError):
        return None
    return loaded.docs[0] if loaded.docs and isinstance(loaded.docs[0].data, dict) else None


def _check_api_claims(promises: list[Promise], report_for: Callable[[Source], Report], reports: list[Report]) -> None:
    """Two Promises must not provide the same API group/kind (or group/plural)."""
    kinds: dict[tuple[str, str], Promise] = {}
    plurals: dict[tuple[str, str], Promise] = {}
    for promise in promises:
        api = promise.api
        if api is None or not api.group:
            continue
        for table, name, field in ((kinds, api.kind, "kind"), (plurals, api.plural, "plural")):
            if not name:
                continue
            first = table.setdefault((api.group, name), promise)
            if first is not promise:
                reports.append(report := report_for(promise.source))
                report.error(("spec", "api", "spec", "names", field),
                             f"{name}.{api.group} is already provided by Promise {first.name} ({first.source})")


def _check_requirements(platform: Platform, report_for: Callable[[Source], Report], reports: list[Report]) -> None:
    """A required Promise missing from the repo is only a warning: Kratix waits for it (§4.6)."""
    for promise in platform.promises.values():
        for i, required in enumerate(promise.required_promises):
            name = required["name"]
            if name and name not in platform.promises:
                reports.append(report := report_for(promise.source))
                report.warn(("spec", "requiredPromises", i, "name"),
                            f"Promise {name} is not in this platform repo; {promise.name} stays "
                            "unavailable until it is")


def check_request(request: ResourceRequest, promise: Promise, report: Report) -> None:
    """metadata rules, then the defaulted body against the storage version's openAPIV3Schema."""
    body = request.body
    check_metadata(report, body, name_max=REQUEST_NAME_MAX)
    namespace = (body.get("metadata") or {}).get("namespace")
    if namespace is not None and (message := label_error(namespace)):
        report.error(("metadata", "namespace"), message)
    api = promise.api
    if api is None or not api.schema or schema.schema_errors(api.schema):
        check_keys(report, body, (), ("apiVersion", "kind", "metadata", "spec", "status"))
        return  # the Promise's own errors say why its schema cannot be used
    for error in schema.validate(body, api.schema):
        if error.path[:1] != ("metadata",):
            report.error(error.path, error.message)
