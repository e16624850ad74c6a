"""The CLI as a whole: help, README coverage, the console script, init and check."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edumail.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def all_commands() -> list:
    group = typer.main.get_command(app)
    found = []

    def walk(prefix: str, command) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
            if getattr(command, "invoke_without_command", False) and prefix:
                found.append((prefix, command))
        else:
            found.append((prefix, command))

    walk("", group)
    return found


def test_every_command_has_one_line_help():
    for name, command in all_commands():
        assert (command.help or "").strip(), f"`edumail {name}` has no help text"
        for param in command.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.help, f"`edumail {name}` option {param.opts} has no help"


def test_every_command_appears_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, _ in all_commands():
        # `edumail event` must not pass on the strength of `edumail events`.
        found = re.search(rf"edumail {re.escape(name)}(?![\w-])", readme)
        assert found, f"`edumail {name}` is not in README.md"


def test_help_lists_every_top_level_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:", 1)[1]
    shown = re.findall(r"^\s+([a-z][a-z-]*)\s", listed, flags=re.MULTILINE)
    registered = set(typer.main.get_command(app).commands)
    expected = {
        "init",
        "check",
        "contacts",
        "event",
        "events",
        "preview",
        "run",
        "plan",
        "send",
        "serve",
        "stats",
        "purge",
        "bounces",
        "inbox",
        "outbox",
        "demo",
    }
    assert expected <= registered
    assert sorted(shown) == sorted(registered)  # each command once, by its exact name


def test_init_creates_a_project_that_passes_check(tmp_path):
    target = tmp_path / "demo-centre"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    for name in (
        "edumail.yaml",
        ".edumail-secret",
        "contacts.csv.example",
        "templates",
        "sequences",
        "files/programme.pdf",
    ):
        assert (target / name).exists(), name
    assert (target / ".edumail-secret").stat().st_mode & 0o777 == 0o600
    checked = runner.invoke(app, ["--project", str(target), "check"])
    assert checked.exit_code == 0, checked.output


def test_init_refuses_to_overwrite_a_project(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "p")])
    (tmp_path / "p" / "edumail.yaml").write_text("sender: {name: Mine, email: me@x.fr}\n")
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 1 and "already exists" in result.output
    assert "Mine" in (tmp_path / "p" / "edumail.yaml").read_text()


def test_check_prints_file_line_messages(cli, project_dir):
    (project_dir / "edumail.yaml").write_text("sender:\n  name: A\n  email: a@b.fr\ntransport: pigeon\n")
    result = cli("check")
    assert result.exit_code == 1
    assert (
        "edumail.yaml:4: transport: expected one of file, smtp, brevo, mailjet, ses, postmark, got 'pigeon'"
        in result.output
    )


def test_a_command_outside_a_project_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["--project", str(tmp_path), "contacts", "list"])
    assert result.exit_code == 1 and "edumail init" in result.output


def test_project_from_environment(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "p")])
    result = runner.invoke(app, ["contacts", "list"], env={"EDUMAIL_PROJECT": str(tmp_path / "p")})
    assert result.exit_code == 0 and "0 contact(s)" in result.output


def _console_script() -> str:
    found = shutil.which("edumail", path=str(Path(sys.executable).parent)) or shutil.which("edumail")
    if not found:
        pytest.fail("the edumail console script is not installed next to this Python")
    return found


def test_installed_console_script_runs_init_check_import_show(tmp_path):
    exe = _console_script()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    env["EDUMAIL_NOW"] = "2026-11-20T10:00:00+01:00"

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)

    assert run("init", "demo-centre", cwd=tmp_path).returncode == 0
    centre = tmp_path / "demo-centre"
    checked = run("check", cwd=centre)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (centre / "c.csv").write_bytes(
        "email;prénom\nélodie@example.fr;Élodie\nbad;x\nÉLODIE@example.fr;Élodie\n".encode("cp1252")
    )
    imported = run("contacts", "import", "c.csv", cwd=centre)
    assert "1 created, 1 updated, 1 skipped" in imported.stdout, imported.stdout + imported.stderr
    shown = run("contacts", "show", "élodie@example.fr", cwd=centre)
    assert shown.returncode == 0 and "Élodie" in shown.stdout
    missing = run("contacts", "show", "x@example.fr", cwd=centre)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_python_dash_m_works(tmp_path):
    result = subprocess.run([sys.executable, "-m", "edumail", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("edumail ")


# What `--help` may load: every cron line and every typo pays the start-up (issue 17).
HEAVY = (
    "apscheduler",
    "asyncio",
    "babel",
    "css_inline",
    "dkim",
    "email_validator",
    "httpx",
    "jinja2",
    "pydantic",
    "pydantic_core",
    "rich",
    "sqlite_utils",
    "starlette",
    "uvicorn",
    "yaml",
)


@pytest.mark.parametrize("argv", [["--help"], ["contacts", "--help"], ["send", "--help"], ["serve", "--help"]])
def test_help_imports_no_heavy_library(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['edumail', *{argv!r}]\n"
        "from edumail.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage:" in result.stdout, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def _modules_after(
    argv: list[str], project: Path, prefixes: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess, list]:
    """Run `edumail ARGV` in a fresh interpreter; the loaded modules whose top package is in `prefixes`."""
    code = (
        "import sys\n"
        f"sys.argv = ['edumail', *{argv!r}]\n"
        "from edumail.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({prefixes!r})), file=sys.stderr)\n"
    )
    env = {**os.environ, "EDUMAIL_PROJECT": str(project), "EDUMAIL_NOW": "2026-12-01T08:00:00+01:00"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    return result, ast.literal_eval(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["run", "--once"], ["contacts", "list", "--limit", "5"], ["outbox"]])
def test_commands_convert_their_options_without_pydantic(argv, project_dir):
    # typer converts options through pydantic TypeAdapters (0.1 s of imports): edumail's plain options do not.
    result, loaded = _modules_after(argv, project_dir, ("pydantic", "pydantic_core"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert loaded == []


def test_a_bad_option_value_is_still_worded_by_typer(cli):
    result = cli("contacts", "list", "--limit", "abc")
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output and "valid integer" in result.output
    assert cli("contacts", "list", "--limit", "+3").exit_code == 0


def test_help_imports_no_command_module():
    # `edumail --help` lists the commands from cli/lazy.py's table; `run` loads cli/engine.py only.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nsys.argv = ['edumail', '--help']\nfrom edumail.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('edumail.cli.')), file=sys.stderr)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Usage:" in result.stdout
    assert ast.literal_eval(result.stderr.strip().splitlines()[-1]) == [
        "edumail.cli.coercion",
        "edumail.cli.common",
        "edumail.cli.lazy",
    ]


def test_run_imports_only_its_own_command_module(project_dir):
    code = (
        "import sys\nsys.argv = ['edumail', 'run', '--once']\nfrom edumail.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('edumail.cli.')), file=sys.stderr)"
    )
    env = {**os.environ, "EDUMAIL_PROJECT": str(project_dir), "EDUMAIL_NOW": "2026-12-01T08:00:00+01:00"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "Nothing was due" in result.stdout, result.stderr
    loaded = ast.literal_eval(result.stderr.strip().splitlines()[-1])
    assert loaded == ["edumail.cli.coercion", "edumail.cli.common", "edumail.cli.engine", "edumail.cli.lazy"]


def test_run_once_with_nothing_due_loads_no_template_scheduler_or_web_library(project_dir):
    # What a cron line pays every minute: the library's sequence files, no template rendered, nothing due.
    shutil.copytree(ROOT / "sequences", project_dir / "sequences", dirs_exist_ok=True)
    shutil.copytree(ROOT / "templates", project_dir / "templates", dirs_exist_ok=True)
    heavy = ("apscheduler", "asyncio", "css_inline", "dkim", "httpx", "jinja2", "pydantic", "sqlite_utils")
    heavy += ("email_validator",)  # its regexes: the settings' plain addresses are checked without it
    result, loaded = _modules_after(["run", "--once"], project_dir, heavy)
    assert "Nothing was due" in result.stdout, result.stdout + result.stderr
    assert loaded == []


def test_the_table_of_commands_matches_the_commands():
    """cli/lazy.py says, without importing them, what each command's modules register and its help."""
    import importlib
    import pkgutil

    from typer._click.utils import make_default_short_help

    import edumail.cli
    from edumail.cli import lazy

    for module in pkgutil.iter_modules(edumail.cli.__path__):
        importlib.import_module(f"edumail.cli.{module.name}")
    homes: dict[str, set[str]] = {}
    for info in app.registered_commands:
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        homes.setdefault(name, set()).add(info.callback.__module__.rsplit(".", 1)[1])
    for info in app.registered_groups:
        modules = {c.callback.__module__.rsplit(".", 1)[1] for c in info.typer_instance.registered_commands}
        homes.setdefault(info.name, set()).update(modules)
    assert {name: set(modules) for name, (modules, _) in lazy.COMMANDS.items()} == homes
    group = typer.main.get_command(app)
    for name, (_, text) in lazy.COMMANDS.items():
        command = dict.get(group.commands, name) or group.commands[name]
        assert not command.hidden and not command.deprecated
        for limit in (30, 45, 70, 200):
            assert command.get_short_help_str(limit) == make_default_short_help(text, limit), name


def test_rich_markup_in_contact_data_is_printed_as_written(cli, project_dir, tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text(
        "email,prenom,nom,tags\nmarkup@example.org,[/bold],[link=https://evil.example]ici[/link],[red]x\n",
        encoding="utf-8",
    )
    assert cli("contacts", "import", str(csv)).exit_code == 0
    listed = cli("contacts", "list")
    assert listed.exit_code == 0, listed.output
    assert "[/bold]" in listed.output and "[link=https://evil.example]" in listed.output
    shown = cli("contacts", "show", "markup@example.org")
    assert shown.exit_code == 0, shown.output
    assert "[/bold]" in shown.output and "[red]x" in shown.output
    assert "Traceback" not in listed.output + shown.output


def test_an_import_with_a_skipped_row_exits_1(cli, tmp_path):
    contacts_csv = tmp_path / "c.csv"
    contacts_csv.write_text("email\nok@example.org\nnot-an-address\n", encoding="utf-8")
    result = cli("contacts", "import", str(contacts_csv))
    assert result.exit_code == 1 and "1 created" in result.output and "skipped" in result.output
    events_csv = tmp_path / "e.csv"
    events_csv.write_text("email,name\nnot-an-address,inscription\n", encoding="utf-8")
    result = cli("events", "import", str(events_csv))
    assert result.exit_code == 1 and "0 recorded" in result.output
    events_csv.write_text("email,name\nok@example.org,inscription\n", encoding="utf-8")
    assert cli("events", "import", str(events_csv)).exit_code == 0


def test_check_flags_an_unknown_session_field_until_a_session_has_it(cli, project_dir):
    (project_dir / "templates" / "salle.html").write_text(
        '---\nsubject: "{{ session.formation }}"\n---\n<p>Salle {{ session.salle }}</p>\n', encoding="utf-8"
    )
    result = cli("check")
    assert result.exit_code == 1
    assert "templates/salle.html:4: undefined variable 'session.salle' (sessions have: cancel_reason" in result.output
    (project_dir / "s.csv").write_text(
        "id;formation;debut;fin;salle\nS-1;Excel;14/12/2026 09:30;14/12/2026 17:00;B12\n"
    )
    assert cli("sessions", "import", str(project_dir / "s.csv"), now="2026-12-01T10:00:00+01:00").exit_code == 0
    result = cli("check")
    assert result.exit_code == 0, result.output
