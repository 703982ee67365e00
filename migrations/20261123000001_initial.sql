-- bounced schema, version 1.
--
-- Times are TEXT in RFC 3339 UTC with second precision ("2026-11-23T04:30:00Z"):
-- readable in any SQLite shell and ordered correctly by plain string comparison.
-- Enumerations are TEXT with the stable names the CLI prints; CHECK
-- constraints keep them honest.

-- messages: one row per message seen on the server, whatever it was.
-- A row is written in the same transaction as its events and address updates,
-- so "a row exists" means "this message is fully accounted for".
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    -- The [[mailbox]] name from the config (not the IMAP folder name).
    mailbox       TEXT    NOT NULL,
    -- The folder's UIDVALIDITY when the message was read; with uid it names
    -- the message on the server for as long as UIDVALIDITY does not change.
    uidvalidity   INTEGER NOT NULL,
    uid           INTEGER NOT NULL,
    -- The message's own Message-ID header, if any.
    message_id    TEXT,
    -- bounce | delay | autoreply | feedback | delivered | not_bounce (the
    -- classifier's kinds), or unparseable (could not be read as a message:
    -- left on the server, see error).
    kind          TEXT    NOT NULL CHECK (kind IN ('bounce', 'delay', 'autoreply',
                          'feedback', 'delivered', 'not_bounce', 'unparseable')),
    -- RFC822.SIZE as the server reported it, in bytes.
    size          INTEGER NOT NULL,
    -- The server's INTERNALDATE (arrival time), RFC 3339 UTC.
    internal_date TEXT,
    -- Why the message could not be classified (kind = unparseable), else NULL.
    error         TEXT,
    -- SHA-256 of the raw message bytes, lower-case hex. Recognises the same
    -- message again after a UIDVALIDITY change so that it is not counted twice.
    fingerprint   TEXT    NOT NULL,
    -- The id of the earlier row with the same fingerprint in this mailbox
    -- when this row is a re-read of an already counted message (no events
    -- are recorded for a duplicate), else NULL.
    duplicate_of  INTEGER REFERENCES messages (id),
    -- The Message-ID of the returned original message, when the bounce carried it.
    original_message_id TEXT,
    -- When bounced stored the row, RFC 3339 UTC.
    processed_at  TEXT    NOT NULL,
    -- The after-action decided for this message ("seen", "move:FOLDER",
    -- "delete" or "none"), and whether it was applied on the server (1) or
    -- is still owed (0). A crash between the commit and the server command
    -- leaves after_done = 0; the next pass re-applies it.
    after_action  TEXT    NOT NULL,
    after_done    INTEGER NOT NULL DEFAULT 0 CHECK (after_done IN (0, 1)),
    UNIQUE (mailbox, uidvalidity, uid)
);
CREATE INDEX messages_fingerprint ON messages (mailbox, fingerprint);
CREATE INDEX messages_after_pending ON messages (mailbox, uidvalidity) WHERE after_done = 0;

-- bounce_events: one row per recipient a message reports on (bounces,
-- delays, auto-replies, feedback reports, delivery reports alike). Only
-- events with severity hard or soft count toward an address's verdict.
CREATE TABLE bounce_events (
    id            INTEGER PRIMARY KEY,
    message       INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The recipient the report is about (lower-case domain).
    address       TEXT    NOT NULL,
    -- The original or expanded address the report also gives, if different.
    alias         TEXT,
    -- Sisimai's reason name: userunknown, mailboxfull, hostunknown, ...
    reason        TEXT    NOT NULL,
    -- hard (the address cannot exist), soft (may pass), none (not a failure).
    severity      TEXT    NOT NULL CHECK (severity IN ('hard', 'soft', 'none')),
    -- The enhanced status code (RFC 3463), e.g. 5.1.1.
    status        TEXT,
    -- The SMTP reply code, e.g. 550.
    reply_code    INTEGER,
    -- The SMTP command the failure answered: RCPT, DATA, ...
    command       TEXT,
    -- The DSN Action: failed, delayed, delivered, relayed, expanded.
    action        TEXT,
    -- The remote MTA that answered, if known.
    remote_mta    TEXT,
    -- The diagnostic text, unfolded.
    diagnostic    TEXT,
    -- For ARF feedback reports: the Feedback-Type (abuse, opt-out, ...).
    feedback_type TEXT,
    -- The classifier's evidence for this recipient plus the message-level
    -- evidence, as a JSON object {"recipient": [...], "message": [...]}.
    evidence      TEXT    NOT NULL,
    -- When it bounced: the bounce's Date header when plausible, else its
    -- INTERNALDATE; RFC 3339 UTC.
    occurred_at   TEXT    NOT NULL
);
CREATE INDEX bounce_events_address ON bounce_events (address, occurred_at);
CREATE INDEX bounce_events_message ON bounce_events (message);

-- addresses: the current verdict per failing address; the list that feeds
-- list cleanup (`bounced addresses`). Recomputed from bounce_events with the
-- [policy] rules each time a hard or soft bounce for the address is stored.
CREATE TABLE addresses (
    address       TEXT    PRIMARY KEY,
    -- hard_fail (at least one hard bounce ever) or soft_fail (only soft ones).
    status        TEXT    NOT NULL CHECK (status IN ('hard_fail', 'soft_fail')),
    -- remove (unsubscribe it) or keep (keep sending).
    action        TEXT    NOT NULL CHECK (action IN ('remove', 'keep')),
    -- How many hard and soft bounce events are recorded for the address.
    hard_count    INTEGER NOT NULL,
    soft_count    INTEGER NOT NULL,
    -- occurred_at of its first and last hard or soft bounce, RFC 3339 UTC.
    first_bounce  TEXT    NOT NULL,
    last_bounce   TEXT    NOT NULL,
    -- Reason and enhanced status code of the last bounce.
    last_reason   TEXT    NOT NULL,
    last_status   TEXT,
    -- Why the action, in one sentence (from the policy).
    why           TEXT    NOT NULL,
    -- When the verdict was last recomputed, RFC 3339 UTC.
    updated_at    TEXT    NOT NULL
);
CREATE INDEX addresses_action ON addresses (action, status);

-- mailbox_state: one row per configured mailbox: what the last pass saw.
CREATE TABLE mailbox_state (
    -- The [[mailbox]] name from the config.
    mailbox       TEXT    PRIMARY KEY,
    -- The folder's UIDVALIDITY at the last successful SELECT; a change is
    -- logged and handled through messages.fingerprint.
    uidvalidity   INTEGER,
    -- Start of the last pass that completed without error, RFC 3339 UTC.
    last_success  TEXT,
    -- Start of the last pass that was attempted, RFC 3339 UTC.
    last_attempt  TEXT,
    -- The error of the last failed pass; NULL after a successful one.
    last_error    TEXT,
    -- Messages newly stored by the last pass.
    last_messages INTEGER NOT NULL DEFAULT 0
);
