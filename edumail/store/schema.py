"""Schema migrations: a list of steps, each run once, in order, on open.

A project created by an older edumail opens with a newer one: the store
records its version in `schema_version` and runs the steps it lacks.
Add a new step at the end; never edit a step that has been released.
"""

from __future__ import annotations

V1 = """
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,            -- lower-cased; 'forgotten-<id>@invalid' once forgotten
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    consent TEXT NOT NULL DEFAULT 'unknown',   -- opted_in | unknown | opted_out
    consent_basis TEXT,                        -- opt_in | customer | professional
    timezone TEXT,
    fields TEXT NOT NULL DEFAULT '{}',         -- JSON object of custom fields
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    bounced_at TEXT,                           -- hard bounce or 3 soft: suppressed
    soft_bounces INTEGER NOT NULL DEFAULT 0,
    forgotten_at TEXT,
    last_inbound_at TEXT                       -- last sign of life (click, reply, event)
);
CREATE INDEX contacts_stage ON contacts(stage);

CREATE TABLE tags (
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    tag TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX tags_tag ON tags(tag);

CREATE TABLE consent_log (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    at TEXT NOT NULL,
    consent TEXT NOT NULL,
    basis TEXT,
    source TEXT NOT NULL,                      -- import, cli, api, unsubscribe link, confirmation link...
    proof TEXT NOT NULL DEFAULT '{}'           -- JSON: file, line, ip, user_agent, command...
);
CREATE INDEX consent_log_contact ON consent_log(contact_id, at);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    name TEXT NOT NULL,
    at TEXT NOT NULL,                          -- when it happened (UTC)
    recorded_at TEXT NOT NULL,                 -- when edumail learnt it
    data TEXT NOT NULL DEFAULT '{}',           -- JSON object
    source TEXT NOT NULL DEFAULT '',           -- cli, import, api, engine, tracking...
    mail_id INTEGER,                           -- for email_* and bounced
    machine INTEGER NOT NULL DEFAULT 0         -- an open/click by a proxy or scanner
);
CREATE INDEX events_name ON events(name, id);
CREATE INDEX events_contact ON events(contact_id, name, at);
CREATE INDEX events_mail ON events(mail_id, name);

CREATE TABLE sequences_seen (
    name TEXT PRIMARY KEY,
    first_seen_at TEXT NOT NULL,
    first_event_id INTEGER NOT NULL,           -- enrol from events after this id (unless --backfill)
    cursor_event_id INTEGER NOT NULL,          -- last event id examined for enrolment
    last_schedule_at TEXT                      -- last cron / at firing handled
);

CREATE TABLE journeys (
    id INTEGER PRIMARY KEY,
    sequence TEXT NOT NULL,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    trigger_key TEXT NOT NULL,                 -- 'event:<id>', 'segment', 'inactive:<n>', 'schedule:<iso>'
    trigger_event_id INTEGER,
    purpose TEXT NOT NULL DEFAULT 'marketing', -- the sequence's, so an unsubscribe ends the right journeys
    started_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',      -- active | completed | exited
    step_index INTEGER NOT NULL DEFAULT 0,     -- the next step to run
    last_step_at TEXT,                         -- when the previous step ran (for wait:)
    due_at TEXT,                               -- when the next step is due (NULL: compute)
    ended_at TEXT,
    end_reason TEXT,
    UNIQUE (sequence, contact_id, trigger_key)
);
CREATE INDEX journeys_due ON journeys(state, due_at);
CREATE INDEX journeys_contact ON journeys(contact_id);

CREATE TABLE journey_log (
    id INTEGER PRIMARY KEY,
    journey_id INTEGER NOT NULL REFERENCES journeys(id),
    step_id TEXT NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,                     -- done | sent | skipped | exited | failed | entered
    reason TEXT NOT NULL DEFAULT '',
    mail_id INTEGER
);
CREATE INDEX journey_log_journey ON journey_log(journey_id);

CREATE TABLE segment_members (                 -- who matched a segment trigger at the last run
    sequence TEXT NOT NULL,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    PRIMARY KEY (sequence, contact_id)
);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    template TEXT NOT NULL,
    audience TEXT NOT NULL DEFAULT '{}',       -- JSON: tag, stage, where
    scheduled_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'scheduled'    -- scheduled | queued | done
);

CREATE TABLE mails (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,           -- stable across retries
    contact_id INTEGER REFERENCES contacts(id),
    to_email TEXT,                             -- for staff notifications (no contact)
    template TEXT NOT NULL,
    purpose TEXT NOT NULL,                     -- marketing | service
    context TEXT NOT NULL DEFAULT '{}',        -- JSON: event data and extras for rendering
    journey_id INTEGER,
    step_id TEXT,
    sequence TEXT,
    campaign_id INTEGER,
    state TEXT NOT NULL DEFAULT 'queued',      -- queued | sending | sent | failed | cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TEXT NOT NULL,                  -- earliest send (send window, retry backoff)
    queued_at TEXT NOT NULL,
    sending_at TEXT,
    sent_at TEXT,
    last_error TEXT,
    subject TEXT,
    links TEXT NOT NULL DEFAULT '[]',          -- JSON list of the original URLs, by index
    UNIQUE (journey_id, step_id),
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX mails_state ON mails(state, not_before);
CREATE INDEX mails_contact ON mails(contact_id, queued_at);

CREATE TABLE suppressions (
    hash TEXT PRIMARY KEY,                     -- salted SHA-256 of the lower-cased address
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                        -- webhook
    payload TEXT NOT NULL,
    journey_id INTEGER,
    step_id TEXT,
    state TEXT NOT NULL DEFAULT 'pending',     -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX tasks_due ON tasks(state, not_before);
"""

# forms15 (SPEC 16-17): campaign data/content/deadline/topic, the stage an
# import last wrote, topic choices, and the proof kept for each form signup.
V6 = """
ALTER TABLE campaigns ADD COLUMN data TEXT NOT NULL DEFAULT '{}';   -- --data: what templates read as event.*
ALTER TABLE campaigns ADD COLUMN content TEXT;                      -- --content: the Markdown, rendered to HTML
ALTER TABLE campaigns ADD COLUMN until TEXT;                        -- --until: a mail not sent by then is dropped
ALTER TABLE campaigns ADD COLUMN topic TEXT;                        -- --topic
ALTER TABLE contacts ADD COLUMN imported_stage TEXT;                -- the stage the last import's file gave
ALTER TABLE contacts ADD COLUMN imported_at TEXT;
-- Stages already stored came from an import unless a sequence or the CLI set them last.
UPDATE contacts SET imported_stage = stage WHERE stage != '' AND COALESCE((SELECT e.source FROM events e
    WHERE e.contact_id = contacts.id AND e.name = 'stage_changed' ORDER BY e.id DESC LIMIT 1), '')
    NOT LIKE 'sequence:%' AND COALESCE((SELECT e.source FROM events e WHERE e.contact_id = contacts.id
    AND e.name = 'stage_changed' ORDER BY e.id DESC LIMIT 1), '') != 'cli';

CREATE TABLE topic_choices (                   -- no row: the contact has not left the topic
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    topic TEXT NOT NULL,
    state TEXT NOT NULL,                       -- in | out
    at TEXT NOT NULL,
    PRIMARY KEY (contact_id, topic)
);
CREATE INDEX topic_choices_topic ON topic_choices(topic, state);

CREATE TABLE form_signups (                    -- what a public form received: the proof the confirmation uses
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    form TEXT NOT NULL,
    at TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT NOT NULL DEFAULT '',
    wording TEXT NOT NULL,                     -- the consent sentence shown beside the box
    topics TEXT NOT NULL DEFAULT '[]',         -- JSON: the topics chosen
    form_snapshot TEXT NOT NULL DEFAULT '{}',  -- JSON: the form as it was shown (title, fields, wording, topics)
    event_id INTEGER,                          -- the subscribed event
    confirmed_at TEXT
);
CREATE INDEX form_signups_contact ON form_signups(contact_id, at);
"""

# Journeys remember the id of the last step they ran, never a position (SPEC 12: live edits).
# Existing journeys take it from their log: the last step that ran, was skipped or was passed.
V2 = """
ALTER TABLE journeys ADD COLUMN last_step_id TEXT;           -- the last step run (NULL: none yet)
UPDATE journeys SET last_step_id = (
    SELECT l.step_id FROM journey_log l WHERE l.journey_id = journeys.id AND l.step_id != ''
    AND l.outcome IN ('sent', 'done', 'skipped') ORDER BY l.id DESC LIMIT 1
);
ALTER TABLE sequences_seen ADD COLUMN steps TEXT;            -- JSON [[id, timing], ...] as last run (check compares)
"""

# Training sessions (SPEC 13): the centre's calendar, and which events and journeys hang on a session.
V3 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,                       -- the centre's code, e.g. EXCEL-2026-12-LYON
    formation TEXT NOT NULL DEFAULT '',
    start_at TEXT NOT NULL,                    -- UTC
    end_at TEXT NOT NULL,                      -- UTC
    lieu TEXT NOT NULL DEFAULT '',
    formateur TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'planned',    -- planned | cancelled
    fields TEXT NOT NULL DEFAULT '{}',         -- JSON object of custom fields (other columns)
    cancel_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sessions_start ON sessions(start_at);
ALTER TABLE events ADD COLUMN session_id TEXT;  -- data.session, so a session's events are one index away
CREATE INDEX events_session ON events(session_id, contact_id, name);
ALTER TABLE journeys ADD COLUMN session_id TEXT;  -- a session journey: its trigger event named a session
CREATE INDEX journeys_session ON journeys(session_id, state);
"""

# bounce13 (SPEC 19): the 2-day retry age counts from a mail's first attempt, not from queued_at.
# A mail already deferred takes its last claim as its first attempt.
V11 = """
ALTER TABLE mails ADD COLUMN first_attempt_at TEXT;                 -- the first (failed) attempt: retries count from it
UPDATE mails SET first_attempt_at = sending_at WHERE state = 'queued' AND attempts > 0;
"""

# imports17 (issue 17): events without a mail or a session (every imported or posted event) stay out of the
# mail and session indexes, which every query reaches with `mail_id = ...` / `session_id = ...` (or IS NOT NULL):
# an events import writes two index entries fewer per row.
V12 = """
DROP INDEX events_mail;
CREATE INDEX events_mail ON events(mail_id, name) WHERE mail_id IS NOT NULL;
DROP INDEX events_session;
CREATE INDEX events_session ON events(session_id, contact_id, name) WHERE session_id IS NOT NULL;
"""

# startup17 (issue 17): an `inactive:` trigger finds who went quiet through the last sign of life, by range,
# not by reading every contact at each run.
V13 = """
CREATE INDEX contacts_last_sign ON contacts(COALESCE(last_inbound_at, created_at)) WHERE forgotten_at IS NULL;
"""

# (version, SQL script), sorted by version. Versions are reserved per change; the store applies
# every listed version it has not recorded yet, so a lower one may land after a higher one.
MIGRATIONS: list[tuple[int, str]] = [
    (1, V1),
    (2, V2),
    (3, V3),
    (6, V6),
    (11, V11),
    (12, V12),
    (13, V13),
]
