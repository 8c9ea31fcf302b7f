"""`mossforge serve` needs a Prefect server that outlives it, and says so clearly when there is none
(tests/test_managed_server.py: it uses the managed one; tests/test_server_ui.py: a run and SIGTERM)."""

from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from mossforge.cli import app


class Outcome:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # rich wraps long messages


def serve(*args):
    return Outcome(CliRunner().invoke(app, ["serve", "--cron", "0 3 * * *", *args]))


def test_serve_refuses_the_temporary_server_and_says_why(monkeypatch):
    monkeypatch.setenv("MOSSFORGE_SERVER", "temporary")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = serve()
    assert result.exit_code == 2
    assert "MOSSFORGE_SERVER=temporary is set" in result.output and "outlives the command" in result.output


def test_serve_with_an_unreachable_server_names_it_without_its_credentials():
    with temporary_settings(updates={PREFECT_API_URL: "http://me:s3cret@127.0.0.1:9/api"}):
        result = serve()
    assert result.exit_code == 1
    assert "PREFECT_API_URL=http://127.0.0.1:9/api is set, but no Prefect server answers there" in result.output
    assert "s3cret" not in result.output


def test_serve_checks_the_config_first(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[plan]\nper_tpye = 3\n")
    result = serve("--config", str(bad))
    assert result.exit_code == 2 and "plan.per_tpye: unknown key" in result.output


def test_serve_names_a_bad_cron_or_time_zone_without_pydantics_text():
    """A bad --timezone was reported as a --cron error, in pydantic's words with its URL."""
    zone = Outcome(CliRunner().invoke(app, ["serve", "--cron", "0 3 * * *", "--timezone", "Mars/Base"]))
    assert zone.exit_code == 2 and "--timezone 'Mars/Base' is not a time zone name" in zone.output
    cron = Outcome(CliRunner().invoke(app, ["serve", "--cron", "every day"]))
    assert cron.exit_code == 2 and "--cron 'every day' is not a cron expression" in cron.output
    assert "pydantic" not in cron.output + zone.output and "--cron" not in zone.output
