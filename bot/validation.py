"""Validate a loaded platform: every problem of every object, in one run.

`validate_platform` returns the problems `load_platform` already collected (unreadable or
malformed files, duplicates) followed by those of the checks, sorted by file and line. Each
names the file, the line of the offending field and the field path. The per-kind rules live in
bot/validate_promise.py (contract §1.1, §4.6), bot/validate_stores.py (§3.5-§3.7) and below
(Resource requests against their Promise's API schema, bot/schema.py).
"""

from __future__ import annotations

from collections.abc import Callable

from bot import schema
from bot.model import Platform, Problem, Promise, ResourceRequest, Source
from bot.validate_common import Report, check_keys, check_metadata, label_error
from bot.validate_promise import check_promise
from bot.validate_stores import check_destination, check_destination_paths, check_state_store
from bot.yamlload import YamlDoc

REQUEST_NAME_MAX = 63  # Kratix forces metadata.name maxLength 63 on Promise APIs (§4.1 step 5)


def validate_platform(platform: Platform) -> list[Problem]:
    """All load and validation problems of `platform` (errors and warnings), sorted by place."""
    documents: dict[Source, YamlDoc] = getattr(platform, "documents", {})

    def report_for(source: Source) -> Report:
        return Report(documents.get(source), source)

    reports: list[Report] = []
    for promise in platform.promises.values():
        reports.append(report := report_for(promise.source))
        check_promise(promise, report)
    _check_api_claims(list(platform.promises.values()), report_for, reports)
    _check_requirements(platform, report_for, reports)

    store_refs = {(ref.kind, ref.name) for ref in platform.state_stores}
    for store in platform.state_stores.values():
        reports.append(report := report_for(store.source))
        check_state_store(store, report)
    dest_reports: dict[str, Report] = {}
    for dest in platform.destinations.values():
        reports.append(report := report_for(dest.source))
        dest_reports[dest.name] = report
        check_destination(dest, report, store_refs)
    check_destination_paths(list(platform.destinations.values()), dest_reports)

    for request in platform.requests.values():
        reports.append(report := report_for(request.source))
        promise = platform.promise_for_request(request)
        if promise is not None:
            check_request(request, promise, report)

    problems = list(platform.problems) + [p for r in reports for p in r.problems]
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.source.file, p.source.line, p.field, p.message))


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
    if api is None or not api.schema or schema.check_schema(api.schema):
        check_keys(report, body, (), ("apiVersion", "kind", "metadata", "spec", "status"))
        return  # the Promise's own errors say why its schema cannot be used
    for error in schema.validate(body, api.schema):
        if error.path[:1] != ("metadata",):
            report.error(error.path, error.message)
