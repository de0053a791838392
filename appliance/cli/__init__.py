"""The `appliance` command. Commands are thin: they gather options, call the library, print results.
Every failure is one line on stderr and a non-zero exit; no traceback reaches the user."""

import errno
import functools
import logging
import os
import sys
import time
import traceback
import uuid
from pathlib import Path

import click

from appliance.errors import AccessError, ApplianceError, KeyMaterialError, os_reason
from appliance.home import Home, resolve_home
from appliance.keys import Credentials

log = logging.getLogger("appliance")


def passphrase_source(env_name: str, prompt: str, confirm: bool = False):
    def read() -> str:
        value = os.environ.get(env_name)
        if value is not None:
            return value
        if not sys.stdin.isatty():
            raise KeyMaterialError(f"no passphrase: set {env_name} or run in a terminal")
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)

    return read


def credentials_from(key_file: str | None, *, new: bool = False) -> Credentials:
    """The KEK comes the same way for every command: key file option or env, passphrase env, or a prompt."""
    key_file = key_file or os.environ.get("APPLIANCE_KEY_FILE")
    if key_file:
        return Credentials(key_file=Path(key_file))
    return Credentials(passphrase=passphrase_source("APPLIANCE_PASSPHRASE", "Passphrase", confirm=new))


home_option = click.option("--home", "home_dir", type=click.Path(file_okay=False),
                           help="Appliance home (default: $APPLIANCE_HOME).")
key_file_option = click.option("--key-file", type=click.Path(dir_okay=False),
                               help="Key file holding the key-encryption key (default: $APPLIANCE_KEY_FILE; "
                                    "else the passphrase from $APPLIANCE_PASSPHRASE or a prompt).")


user_option = click.option("--user", "user_name", envvar="APPLIANCE_USER",
                           help="Who acts (default: $APPLIANCE_USER); the password comes from "
                                "$APPLIANCE_USER_PASSWORD or a prompt.")


def secret(env_name: str, prompt: str, confirm: bool = False) -> str:
    return passphrase_source(env_name, prompt, confirm)()


def sign_in(home: Home, name: str | None):
    """Authenticate the person acting; success and failure both go to the audit log."""
    if not name:
        raise AccessError("this command acts for a person: pass --user NAME or set APPLIANCE_USER")
    return home.sign_in(name, secret("APPLIANCE_USER_PASSWORD", f"Password for {name}"))


def acting(permission: str):
    """For commands that act for a person: opens the home, signs the user in, checks the permission, and
    passes `home` and `actor`."""

    def decorate(command):
        @home_option
        @key_file_option
        @user_option
        @functools.wraps(command)
        def wrapper(home_dir, key_file, user_name, **kwargs):
            with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
                actor = sign_in(home, user_name)
                actor.require(permission)
                return command(home=home, actor=actor, **kwargs)

        return wrapper

    return decorate


def with_home(command):
    """Opens the home from --home/--key-file and passes it as `home`; closes it afterwards."""

    @home_option
    @key_file_option
    @functools.wraps(command)
    def wrapper(home_dir, key_file, **kwargs):
        with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
            return command(home=home, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="insight-appliance")
def cli():
    """Insight Appliance: on-prem, privacy-first customer insight for banks."""


# Each module registers its commands on `cli` when imported.
from appliance.cli import auditing, data, demo, exporting, homes, insights, people  # noqa: E402,F401


def _run() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="appliance")
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ApplianceError as exc:
        log.warning("refused", extra={"error": exc.message, "kind": exc.code})
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file the command itself writes or reads: say what is wrong, and where
        where = f" ({Path(exc.filename).name})" if isinstance(exc.filename, str) else ""
        click.echo(f"error: {os_reason(exc)}{where}", err=True)
        sys.exit(6 if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO) else 1)
    except RecursionError:
        click.echo("error: the input is nested too deeply to read", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing half-written was kept", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no data in the message
        incident = uuid.uuid4().hex[:12]
        log.error("internal error", extra={"incident": incident}, exc_info=exc)
        frames = "".join(traceback.format_tb(exc.__traceback__))
        # Only the exception type and code locations: an exception's text may quote data.
        sys.stderr.write(f"error: internal error {incident} ({type(exc).__name__}); "
                         "set APPLIANCE_DEBUG=1 for code locations\n")
        if os.environ.get("APPLIANCE_DEBUG") == "1":
            sys.stderr.write(frames)
        sys.exit(70)


def _command_words(argv: list[str]) -> list[str]:
    """The command and subcommand named, and nothing else from the command line: an argument may be a
    customer's identifier."""
    words, group = [], cli
    for arg in argv:
        if not isinstance(group, click.Group) or arg not in group.commands:
            break
        words.append(arg)
        group = group.commands[arg]
    return words


def main() -> None:
    started, code = time.monotonic(), 0
    try:
        _run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        raise
    finally:
        log.info("command finished", extra={"command": " ".join(_command_words(sys.argv[1:])), "exit": code,
                                            "seconds": round(time.monotonic() - started, 2)})
