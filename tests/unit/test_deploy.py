"""What the deploy targets rely on: the dbt profile follows the GCP connection's kind of
credentials, and the Docker build context leaves secrets and local state out."""

from __future__ import annotations

import ast
import json
import re

import pytest
import yaml

from sfpd.config import Settings
from sfpd.cosmos_dbt import GoogleCloudConnectionProfileMapping, profile_config
from tests.conftest import PROJECT_ROOT

KEY_JSON = {
    "type": "service_account",
    "project_id": "sfpd-test",
    "private_key_id": "abc123",
    "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
    "client_email": "dbt@sfpd-test.iam.gserviceaccount.com",
}


def rendered_profile(monkeypatch, extra: dict) -> tuple[dict, GoogleCloudConnectionProfileMapping]:
    """The dbt profile (one output) rendered for a GCP connection with ``extra``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCP_UNDER_TEST",
        json.dumps({"conn_type": "google_cloud_platform", "extra": extra}),
    )
    settings = Settings.from_env(
        {"SFPD_WAREHOUSE": "bigquery", "SFPD_LAKE_URI": "gs://lake/sfpd",
         "SFPD_GCP_PROJECT": "sfpd-test", "SFPD_GCP_CONN_ID": "gcp_under_test"}
    )  # fmt: skip
    config = profile_config(settings)
    mapping = config.profile_mapping
    assert isinstance(mapping, GoogleCloudConnectionProfileMapping)
    contents = yaml.safe_load(mapping.get_profile_file_contents("sfpd", "bigquery"))
    return contents["sfpd"]["outputs"]["bigquery"], mapping


def test_a_key_file_connection_gives_dbt_the_key_file(monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(KEY_JSON))
    output, mapping = rendered_profile(monkeypatch, {"key_path": str(key)})
    assert output["method"] == "service-account"
    assert output["keyfile"] == str(key)
    assert (output["project"], output["location"]) == ("sfpd-test", "US")
    assert type(mapping.chosen).__name__ == "GoogleCloudServiceAccountFileProfileMapping"


def test_a_key_json_connection_gives_dbt_the_key_json_with_secrets_in_env_vars(monkeypatch):
    output, mapping = rendered_profile(monkeypatch, {"keyfile_dict": json.dumps(KEY_JSON)})
    assert output["method"] == "service-account-json"
    assert output["keyfile_json"]["client_email"] == KEY_JSON["client_email"]
    # the private key goes through an env var, never into the profiles.yml on disk
    assert KEY_JSON["private_key"] not in json.dumps(output)
    assert KEY_JSON["private_key"] in mapping.env_vars.values()


def test_a_keyless_connection_uses_oauth_default_credentials(monkeypatch):
    output, mapping = rendered_profile(monkeypatch, {})
    assert output["method"] == "oauth"
    assert "keyfile" not in output and "keyfile_json" not in output
    assert mapping.env_vars == {}


def test_the_mapping_reads_no_connection_until_a_task_renders_the_profile(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GCP_UNDER_TEST", raising=False)
    mapping = GoogleCloudConnectionProfileMapping("gcp_under_test", {"project": "p"})
    assert mapping.mock_profile["method"] == "oauth"  # parse time: no connection needed
    assert "chosen" not in vars(mapping)
    with pytest.raises(Exception):  # noqa: B017 (the missing connection: its error differs by version)
        _ = mapping.profile


def docker_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: patterns are matched from the context root (Go's
    filepath.Match, ``**`` for any number of directories), the last matching pattern wins
    (``!`` re-includes), and a path is excluded with any excluded parent directory."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        return re.fullmatch(regex.replace(r"\?", "[^/]"), candidate) is not None

    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        candidate, excluded = "/".join(parts[:depth]), False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if matches(pattern.lstrip("!"), candidate):
                excluded = not negated
        if excluded:
            return True
    return False


DOCKERIGNORE = [
    line.strip()
    for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", ".venv/bin/python", ".venv-emulators/bq/bin/python",
     "data/lake/x.parquet", "dist/composer/dags/x.py", ".airflow/airflow.db",
     "airflow_settings.yaml",
     "plugins/sfpd/__pycache__/tasks.cpython-312.pyc", "include/dbt/target/manifest.json",
     "dev/sfpd_dev/bench.py", "dev/sfpd_dev/replay.py", "dev/sfpd_dev/local.py"],
)  # fmt: skip
def test_dockerignore_keeps_secrets_state_and_tooling_out_of_the_image(path):
    assert docker_excludes(path, DOCKERIGNORE)


@pytest.mark.parametrize(
    "path",
    ["Dockerfile", "requirements.txt", "packages.txt", "dags/sfpd_incidents_daily.py",
     "plugins/sfpd/tasks.py", "include/dbt/dbt_project.yml", "include/seeds/police_districts.csv",
     ".env.example", "tests/unit/test_window.py"],
)  # fmt: skip
def test_dockerignore_keeps_what_the_image_runs(path):
    assert not docker_excludes(path, DOCKERIGNORE)


def test_the_dockerignore_matcher_can_tell_the_difference():
    assert docker_excludes("a/b/c.txt", ["a"]) and not docker_excludes("b/a", ["a"])
    assert docker_excludes("x/__pycache__/y", ["**/__pycache__"])
    assert not docker_excludes(".env.example", [".env*", "!.env.example"])


INSTALL_FILES = ["requirements.txt", "requirements-composer.txt", "include/dbt/requirements.txt"]


@pytest.mark.parametrize("install_file", INSTALL_FILES)
def test_every_install_file_pins_what_the_tests_run(install_file):
    """One version of each package everywhere: a deploy target installs what CI tested."""
    from sfpd_dev.targets import pins

    locked = pins((PROJECT_ROOT / "requirements.lock").read_text())
    pinned = pins((PROJECT_ROOT / install_file).read_text())
    assert pinned, f"{install_file} pins nothing"
    assert {name: locked.get(name) for name in pinned} == pinned


def test_the_composer_dbt_virtualenv_gets_the_dbt_pins(tmp_path):
    from cosmos.constants import ExecutionMode

    from sfpd.cosmos_dbt import _execution
    from sfpd_dev.targets import pins

    settings = Settings.from_env(
        {"SFPD_WAREHOUSE": "bigquery", "SFPD_LAKE_URI": "gs://lake/sfpd",
         "SFPD_GCP_PROJECT": "sfpd-project", "SFPD_DBT_EXECUTION_MODE": "virtualenv",
         "SFPD_DBT_VIRTUALENV_DIR": str(tmp_path)}
    )  # fmt: skip
    config, _, operator_args = _execution(settings)
    assert config.execution_mode == ExecutionMode.VIRTUALENV
    assert str(config.virtualenv_dir) == str(tmp_path)
    requirements = pins("\n".join(operator_args["py_requirements"]))
    assert set(requirements) == {"dbt-core", "dbt-bigquery", "dbt-duckdb"}
    assert requirements == pins((PROJECT_ROOT / "include/dbt/requirements.txt").read_text())


def test_what_workers_run_imports_no_development_tooling():
    """plugins/ (on every worker's sys.path, in the image and the Composer bucket) and dags/
    import neither the development package (replay server, local runner, benchmarks) nor the
    tests, and read no test fixtures."""
    runtime = [*(PROJECT_ROOT / "plugins").rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]
    assert len(runtime) > 10
    for path in runtime:
        text = path.read_text()
        tree = ast.parse(text)
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {name.split(".")[0] for name in imported} & {"sfpd_dev", "tests"}, path
        assert "fixtures" not in text, path
