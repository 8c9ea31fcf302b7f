"""`mossforge serve` needs a reachable Prefect server, and says so clearly when there is none."""

from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from mossforge.cli import app


class Outcome:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # rich wraps long messages


def serve(*args):
    return Outcome(CliRunner().invoke(app, ["serve", "--cron", "0 3 * * *", *args]))


def test_serve_without_a_server_url_explains_how_to_start_one():
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = serve()
    assert result.exit_code == 2
    assert "PREFECT_API_URL is not set" in result.output
    assert "cannot schedule" in result.output and "prefect server start" in result.output


def test_serve_with_an_unreachable_server_names_it():
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = serve()
    assert result.exit_code == 2
    assert "http://127.0.0.1:9/api is not reachable" in result.output


def test_serve_checks_the_config_first(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[plan]\nper_tpye = 3\n")
    result = serve("--config", str(bad))
    assert result.exit_code == 2 and "plan.per_tpye: unknown key" in result.output
