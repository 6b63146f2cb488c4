"""docs/api.md, the project's API reference, describes exactly the operations of the served schema."""

import subprocess
import sys

from tests.support import REPO

CHECK = [sys.executable, "scripts/check_api_docs.py"]
DOCS = REPO / "docs" / "api.md"


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CHECK + list(args), cwd=REPO, capture_output=True, text=True, timeout=120)


def test_docs_api_md_matches_the_openapi_schema():
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert "docs/api.md matches the OpenAPI schema" in result.stdout


def test_the_check_names_what_is_missing_and_what_does_not_exist(tmp_path):
    docs = DOCS.read_text()
    assert "### `POST /api/orders/{id}/pay/`" in docs and "`idempotency_key_reused`" in docs
    edited = (
        docs.replace("### `POST /api/orders/{id}/pay/`", "### `POST /api/orders/{id}/refund/`")
        .replace("`idempotency_key_reused`", "idempotency_key_reused")
        .replace("`expires_at`", "expires_at")
    )
    (tmp_path / "api.md").write_text(edited)

    result = run_check("--docs", str(tmp_path / "api.md"))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "not in docs/api.md: POST /api/orders/{}/pay/",
        "in docs/api.md but not in the schema: POST /api/orders/{}/refund/",
        "field not in docs/api.md: `expires_at`",
        "error code not in docs/api.md: `idempotency_key_reused`",
    ]


def test_the_readme_points_to_the_projects_own_reference():
    readme = (REPO / "README.md").read_text()
    assert "docs/api.md" in readme
    assert "../shared" not in readme and "api-contract" not in readme
