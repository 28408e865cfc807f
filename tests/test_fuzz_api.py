"""schemathesis against the service's own OpenAPI schema, over HTTP: no 5xx, responses match the schema.

Driven through hypothesis directly: schemathesis 4.32's pytest plugin does not load under pytest 9."""
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES_PER_OPERATION = 30


# Refusals the schema cannot express, each with its reason: a section id is free text in the schema (ids
# differ per index), and an upload's file is any bytes there, while the service reads only some types
# and checks that a file is what its name says.
MEANINGFUL_REFUSALS = ("unknown section id", "unsupported file type", "is not a PDF", "is empty", "binary file",
                       "not UTF-8", "has no name", "cannot read PDF", "no extractable text", "no body text",
                       "nothing could be read", "UTF-16")
# Operations that change the library run against a throwaway copy of the index, not the shared server.
WRITES = {"POST /documents", "DELETE /documents/{key}"}


def schema_valid_is_accepted(ctx, response, case):
    """Like schemathesis's positive-data check, except for the refusals above (415/422 with the reason)."""
    if response.status_code in (415, 422):
        error = response.json().get("error", "")
        if not any(reason in error for reason in MEANINGFUL_REFUSALS):
            return positive_data_acceptance(ctx, response, case)
    return None


def test_api_conforms_to_its_schema(server):
    tried = fuzz(server, lambda label: label not in WRITES)
    assert len(tried) >= 9 and all(n > 0 for n in tried.values())


def test_library_writes_conform_to_their_schema(settings, built_index, embedder, passage_embedder, tmp_path):
    import shutil
    from pathlib import Path

    from library_samples import serve

    shutil.copytree(Path(settings.index_dir), tmp_path / "index")
    scratch = serve(settings, embedder, passage_embedder, index_dir=tmp_path / "index")
    try:
        tried = fuzz(scratch, lambda label: label in WRITES)
    finally:
        scratch.stop()
    assert set(tried) == WRITES and all(n > 0 for n in tried.values())


def fuzz(server, wanted) -> dict[str, int]:
    """Every schemathesis check on each operation ``wanted(label)`` selects; cases tried per operation."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    tried = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not wanted(operation.label):
            continue
        count = 0

        @given(case=operation.as_strategy())
        @hsettings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                   database=None)
        def check(case):
            nonlocal count
            count += 1
            # Every schemathesis check: no 5xx, documented status codes, bodies matching their schemas.
            case.call_and_validate(base_url=server.url, excluded_checks=[positive_data_acceptance],
                                   additional_checks=[schema_valid_is_accepted])

        check()
        tried[operation.label] = count
    print(f"schemathesis: {sum(tried.values())} cases over {len(tried)} operations: {tried}")
    return tried
