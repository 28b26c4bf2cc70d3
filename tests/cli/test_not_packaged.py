"""The CLI and its libraries stay out of the Lambda artefacts (tools/package.py)."""

from __future__ import annotations

from tools.package import export_requirements


def test_the_lambda_requirements_have_no_cli_libraries() -> None:
    names = {line.split("==")[0].split(";")[0].strip().lower() for line in export_requirements() if line.strip()}
    assert "boto3" in names  # the export is the real runtime list
    assert not names & {"rich", "markdown-it-py", "mdurl"}, names
