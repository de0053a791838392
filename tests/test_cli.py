"""The command line: every command has one-line help, reference docs match --help, errors are one line."""

import re

from click.testing import CliRunner

from appliance import reference
from appliance.cli import cli
from appliance.settings import SETTINGS, Settings
from tests.conftest import assert_one_line_error, run_cli


def test_every_command_is_listed_with_one_line_help():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^  ([a-z][a-z-]+)\s{2,}\S", result.output, flags=re.M)
    assert sorted(listed) == sorted(cli.commands)
    for name, command in cli.commands.items():
        assert command.help and command.get_short_help_str(200).strip(), name


def test_reference_docs_are_current():
    assert (reference.DOCS / "cli.md").read_text(encoding="utf-8") == reference.cli_markdown(), \
        "docs/cli.md is stale: run python -m appliance.reference"
    assert (reference.DOCS / "settings.md").read_text(encoding="utf-8") == reference.settings_markdown()
    assert (reference.DOCS / "features.md").read_text(encoding="utf-8") == reference.features_markdown()


def test_every_setting_is_documented_and_validated(tmp_path):
    text = (reference.DOCS / "settings.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text and setting.help in text
    config = tmp_path / "config.yaml"
    config.write_text("ingest.chunk_rows: 10\n")
    import pytest

    from appliance.errors import ConfigError
    with pytest.raises(ConfigError, match="'ingest.chunk_rows' must be at least 100"):
        Settings.load(config)
    config.write_text("ingest:\n  colour: blue\n")
    with pytest.raises(ConfigError, match="unknown setting 'ingest.colour'"):
        Settings.load(config)


def test_usage_errors_and_bad_config_are_one_line(tmp_path):
    home = tmp_path / "h"
    env = {"APPLIANCE_PASSPHRASE": "pw"}
    run_cli("init", "--home", home, env_extra=env, check=True)
    assert_one_line_error(run_cli("init", "--home", home, env_extra=env), "already an appliance home")
    (home / "config.yaml").write_text("store.busy_timeout_ms: lots\n")
    assert_one_line_error(run_cli("status", "--home", home, env_extra=env), "busy_timeout_ms' must be int")
    result = run_cli("status")
    assert_one_line_error(result, "no home given")
    result = run_cli("ingest", "--home", home, "--source", "demo", tmp_path / "missing.csv", env_extra=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # click's own usage error
