"""edumail.yaml -> validated, typed settings (SPEC section 2).

Every problem is reported as `edumail.yaml:LINE: what is wrong, what was
expected`. Each key can be overridden from the environment as
EDUMAIL_SECTION_KEY (EDUMAIL_SMTP_HOST, EDUMAIL_TRANSPORT, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edumail import plain_address, yamlfile
from edumail.clock import UTC, parse_duration, zone
from edumail.errors import ConfigError, InputError, Problem

SETTINGS_FILE = "edumail.yaml"
SECRET_FILE = ".edumail-secret"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    reply_to: str | None = None

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class Smtp:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_env: str = "EDUMAIL_SMTP_PASSWORD"
    concurrency: int = 4
    rate_per_minute: int = 0
    timeout: int = 30

    def password(self) -> str | None:
        return os.environ.get(self.password_env) or None


@dataclass(frozen=True)
class Tracking:
    base_url: str | None = None
    secret_env: str = "EDUMAIL_SECRET"
    opens: bool = True
    clicks: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


@dataclass(frozen=True)
class SendWindow:
    days: tuple[str, ...] = DAYS
    hours: str = "00:00-24:00"

    @property
    def start_end(self) -> tuple[int, int]:
        """Minutes after midnight: (start, end)."""
        start, end = self.hours.split("-")
        return _minutes(start), _minutes(end)

    def next_opening(self, moment: datetime, tz: Any) -> datetime:
        """`moment` if the window is open then (in `tz`), else when it next opens (UTC)."""
        local = moment.astimezone(tz)
        start, end = self.start_end
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days:
                continue
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            opens, closes = midnight + timedelta(minutes=start), midnight + timedelta(minutes=end)
            if opens <= local < closes:
                return moment
            if local < opens:
                return opens.astimezone(UTC)
        return moment


@dataclass(frozen=True)
class Limits:
    marketing_per_week: int = 3
    max_late: timedelta = timedelta(days=1)
    attachments_mb: int = 10


@dataclass(frozen=True)
class Api:
    token_env: str = "EDUMAIL_API_TOKEN"

    def token(self) -> str | None:
        return os.environ.get(self.token_env) or None


@dataclass(frozen=True)
class Dkim:
    selector: str
    domain: str
    private_key_file: str


@dataclass(frozen=True)
class Imap:
    host: str
    port: int = 993
    security: str = "ssl"
    username: str | None = None
    password_env: str = "EDUMAIL_IMAP_PASSWORD"
    folder: str = "INBOX"

    def password(self) -> str | None:
        return os.environ.get(self.password_env) or None


@dataclass(frozen=True)
class Alerts:
    email: str  # staff, told when delivery stops or a sequence is skipped (SPEC 11)


@dataclass(frozen=True)
class Provider:
    """`provider:` for transport brevo / mailjet / ses / postmark (SPEC 18); secrets come from the environment."""

    key_env: str
    secret_env: str | None = None
    region: str | None = None
    base_url: str | None = None  # replaces the provider's API address (regional endpoint, local test server)
    webhook_secret_env: str | None = None
    concurrency: int = 4
    rate_per_minute: int = 0


PROVIDERS = ("brevo", "mailjet", "ses", "postmark")


@dataclass(frozen=True)
class Settings:
    sender: Sender
    transport: str = "file"
    smtp: Smtp = field(default_factory=Smtp)
    database: str = "edumail.db"
    timezone: str = "Europe/Paris"
    locale: str = "fr_FR"
    tracking: Tracking = field(default_factory=Tracking)
    send_window: SendWindow | None = None
    limits: Limits = field(default_factory=Limits)
    api: Api = field(default_factory=Api)
    dkim: Dkim | None = None
    imap: Imap | None = None
    provider: Provider | None = None
    alerts: Alerts | None = None
    topics: dict[str, str] = field(default_factory=dict)  # name -> label (SPEC 17)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)


# --- validation -------------------------------------------------------------

Check = Callable[[Any], Any]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    return int(hours) * 60 + int(minutes)


def _str(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError("expected text")
    text = str(value).strip()
    if not text:
        raise ValueError("expected a non-empty text")
    return text


def _int(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ValueError(f"expected a whole number {bound}, got {value}")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            hint = yamlfile.did_you_mean(str(value), options)
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}{hint}")
        return str(value)

    return check


def _email(value: Any) -> str:
    text = _str(value)
    try:
        return plain_address.normalized(text)
    except ValueError as exc:  # email_validator's EmailNotValidError
        raise ValueError(f"expected an e-mail address, got {text!r} ({exc})") from None


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _timezone(value: Any) -> str:
    try:
        zone(_str(value))
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


def _locale(value: Any) -> str:
    from babel import Locale, UnknownLocaleError  # only a project that names its locale pays babel's import

    try:
        Locale.parse(_str(value))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"unknown locale {value!r} (expected e.g. fr_FR)") from None
    return str(value)


def _url(value: Any) -> str:
    text = _str(value).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"expected an http(s) URL such as https://mail.centre.example, got {value!r}")
    return text


def _days(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a list of days such as [mon, tue, wed, thu, fri]")
    days = []
    for day in value:
        key = str(day).strip().lower()[:3]
        if key not in DAYS:
            raise ValueError(f"unknown day {day!r} (expected mon, tue, wed, thu, fri, sat, sun)")
        days.append(key)
    return tuple(days)


def _hours(value: Any) -> str:
    text = _str(value)
    match = re.match(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$", text)
    if not match:
        raise ValueError(f'expected hours as "08:00-19:00", got {value!r}')
    h1, m1, h2, m2 = (int(x) for x in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 * 60 + m1) >= (h2 * 60 + m2):
        raise ValueError(f"expected a start before the end, within 00:00-24:00, got {value!r}")
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


_SECTIONS: dict[str, tuple[type, dict[str, Check], set[str]]] = {
    "sender": (Sender, {"name": _str, "email": _email, "reply_to": _email}, {"name", "email"}),
    "smtp": (
        Smtp,
        {
            "host": _str,
            "port": _int(1, 65535),
            "security": _choice("starttls", "ssl", "none"),
            "username": _optional_str,
            "password_env": _str,
            "concurrency": _int(1, 64),
            "rate_per_minute": _int(0),
            "timeout": _int(1, 600),
        },
        set(),
    ),
    "tracking": (Tracking, {"base_url": _url, "secret_env": _str, "opens": _bool, "clicks": _bool}, set()),
    "send_window": (SendWindow, {"days": _days, "hours": _hours}, set()),
    "limits": (Limits, {"marketing_per_week": _int(0), "max_late": _duration, "attachments_mb": _int(1)}, set()),
    "api": (Api, {"token_env": _str}, set()),
    "dkim": (
        Dkim,
        {"selector": _str, "domain": _str, "private_key_file": _str},
        {"selector", "domain", "private_key_file"},
    ),
    "imap": (
        Imap,
        {
            "host": _str,
            "port": _int(1, 65535),
            "security": _choice("ssl", "starttls", "none"),
            "username": _optional_str,
            "password_env": _str,
            "folder": _str,
        },
        {"host"},
    ),
    "alerts": (Alerts, {"email": _email}, {"email"}),
    "provider": (
        Provider,
        {"key_env": _str, "secret_env": _optional_str, "region": _optional_str, "base_url": _url}
        | {"webhook_secret_env": _optional_str, "concurrency": _int(1, 64), "rate_per_minute": _int(0)},
        {"key_env"},
    ),
}
_SCALARS: dict[str, Check] = {
    "transport": _choice("file", "smtp", *PROVIDERS),
    "database": _str,
    "timezone": _timezone,
    "locale": _locale,
}
_KNOWN = set(_SECTIONS) | set(_SCALARS) | {"topics"}
_TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _topics(raw: Any, problems: list[Problem]) -> dict[str, str] | None:
    """`topics: {newsletter: La lettre mensuelle, offres: Offres et promotions}`."""
    if not isinstance(raw, dict) or not raw:
        line = raw.line if isinstance(raw, yamlfile.YDict) else 0
        problems.append(Problem(SETTINGS_FILE, line, "topics: expected a mapping of name: label, e.g. newsletter: X"))
        return None
    topics: dict[str, str] = {}
    for name, label in raw.items():
        line = raw.line_of(name) if isinstance(raw, yamlfile.YDict) else 0
        if not isinstance(name, str) or not _TOPIC_NAME.match(name):
            problems.append(
                Problem(SETTINGS_FILE, line, f"topics: {name!r} is not a topic name (lower case, digits, - and _)")
            )
        elif not isinstance(label, str) or not label.strip():
            problems.append(Problem(SETTINGS_FILE, line, f"topics.{name}: expected the label people read, in French"))
        else:
            topics[name] = label.strip()
    return topics


def _env_overrides(data: dict[str, Any]) -> list[str]:
    """Apply EDUMAIL_SECTION_KEY variables onto `data`; returns the names used."""
    used = []
    for key in _SCALARS:
        name = f"EDUMAIL_{key.upper()}"
        if name in os.environ:
            data[key] = _env_value(os.environ[name])
            used.append(name)
    for section, (_, checks, _) in _SECTIONS.items():
        for key in checks:
            name = f"EDUMAIL_{section.upper()}_{key.upper()}"
            if name in os.environ:
                target = data.get(section)
                if not isinstance(target, dict):
                    target = data[section] = yamlfile.YDict()
                target[key] = _env_value(os.environ[name])
                if isinstance(target, yamlfile.YDict):
                    target.key_lines[key] = -1  # -1: the value came from the environment
                used.append(name)
    return used


def _env_value(raw: str) -> Any:
    try:
        return yamlfile.loads(raw, "environment")
    except ConfigError:
        return raw


def _where(mapping: Any, key: str, section: str) -> tuple[str, int]:
    """The file and line a value came from (or the environment variable)."""
    line = mapping.line_of(key) if isinstance(mapping, yamlfile.YDict) else 0
    if line == -1:
        name = f"EDUMAIL_{section.upper()}_{key.upper()}" if section else f"EDUMAIL_{key.upper()}"
        return name, 0
    return SETTINGS_FILE, line


def parse(data: Any, problems: list[Problem]) -> Settings | None:
    """Validate a parsed edumail.yaml; appends problems and returns None on any."""
    if not isinstance(data, dict):
        problems.append(
            Problem(
                SETTINGS_FILE, getattr(data, "line", 1), "expected a mapping of settings (sender:, transport:, ...)"
            )
        )
        return None
    _env_overrides(data)
    values: dict[str, Any] = {}
    for key, raw in data.items():
        file, line = _where(data, key, "")
        if key not in _KNOWN:
            hint = yamlfile.did_you_mean(str(key), _KNOWN)
            problems.append(Problem(file, line, f"unknown setting {key!r}{hint}"))
        elif key == "topics":
            topics = _topics(raw, problems)
            if topics is not None:
                values[key] = topics
        elif key in _SCALARS:
            try:
                values[key] = _SCALARS[key](raw)
            except ValueError as exc:
                problems.append(Problem(file, line, f"{key}: {exc}"))
        else:
            section = _section(key, raw, data, problems)
            if section is not None:
                values[key] = section
    if "sender" not in data:
        problems.append(Problem(SETTINGS_FILE, 1, "missing required section 'sender' (with name and email)"))
    if problems:
        return None
    settings = Settings(**values)
    needs = {"smtp": ("smtp", "host, port, ...")} | {
        p: ("provider", "key_env: the variable holding the API key, webhook_secret_env, ...") for p in PROVIDERS
    }
    if settings.transport in needs and needs[settings.transport][0] not in data:
        section, keys = needs[settings.transport]
        line = data.line_of("transport") if isinstance(data, yamlfile.YDict) else 0
        problems.append(
            Problem(
                SETTINGS_FILE, line, f"transport is {settings.transport} but there is no {section}: section ({keys})"
            )
        )
        return None
    return settings


def _section(name: str, raw: Any, parent: Any, problems: list[Problem]) -> Any:
    cls, checks, required = _SECTIONS[name]
    file, line = _where(parent, name, "")
    if raw is None and name in ("send_window", "dkim", "imap", "provider", "alerts"):
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(file, line, f"{name}: expected a mapping with keys {', '.join(checks)}"))
        return None
    before = len(problems)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kfile, kline = _where(raw, key, name)
        if key not in checks:
            hint = yamlfile.did_you_mean(str(key), list(checks))
            problems.append(Problem(kfile, kline, f"unknown setting {name}.{key}{hint} (known: {', '.join(checks)})"))
            continue
        try:
            values[key] = checks[key](value)
        except ValueError as exc:
            problems.append(Problem(kfile, kline, f"{name}.{key}: {exc}"))
    for key in sorted(required - set(raw)):
        problems.append(Problem(file, line, f"{name}: missing required key {key!r}"))
    if len(problems) > before:
        return None
    return cls(**values)


def load(project_dir: Path) -> Settings:
    """Load and validate `project_dir/edumail.yaml`; ConfigError lists every problem."""
    path = project_dir / SETTINGS_FILE
    if not path.exists():
        missing = "no edumail.yaml here: run `edumail init` to create a project, or pass --project DIR"
        raise ConfigError([Problem(str(path), 0, missing)])
    data = yamlfile.load(path, SETTINGS_FILE)
    problems: list[Problem] = []
    settings = parse(data, problems)
    if settings is None:
        raise ConfigError(problems)
    return settings


def as_dict(settings: Any) -> Any:
    """Settings as plain data (for `check --json` and the README)."""
    if is_dataclass(settings):
        return {f.name: as_dict(getattr(settings, f.name)) for f in fields(settings)}
    if isinstance(settings, timedelta):
        return f"{int(settings.total_seconds())}s"
    if isinstance(settings, tuple):
        return list(settings)
    return settings
