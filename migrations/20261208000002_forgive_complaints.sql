-- Forgiven addresses and complaints (README, "Forgive", "Policy").
--
-- Two more address statuses, so the CHECK constraints of addresses and
-- verdict_changes are widened (SQLite cannot alter a CHECK: the tables are
-- rebuilt with the same rows):
--   complained: an ARF feedback report (a complaint) decided the verdict;
--               [policy.reason.feedback] action says what it does (default
--               remove).
--   forgiven:   `bounced forgive` reset the address and no bounce counted
--               since; its action is keep.

CREATE TABLE addresses_new (
    address       TEXT    PRIMARY KEY,
    status        TEXT    NOT NULL CHECK (status IN ('hard_fail', 'soft_fail', 'complained',
                          'forgiven')),
    action        TEXT    NOT NULL CHECK (action IN ('remove', 'keep')),
    hard_count    INTEGER NOT NULL,
    soft_count    INTEGER NOT NULL,
    first_bounce  TEXT    NOT NULL,
    last_bounce   TEXT    NOT NULL,
    last_reason   TEXT    NOT NULL,
    last_status   TEXT,
    why           TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    verified      INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    review_at     TEXT,
    reason        TEXT,
    changed_at    TEXT,
    -- `bounced forgive`: the highest bounce_events.id at the time (events
    -- up to it no longer count; a later bounce counts afresh), when, and the
    -- operator's --note. NULL when never forgiven.
    forgive_event INTEGER,
    forgiven_at   TEXT,
    forgive_note  TEXT,
    -- How many ARF complaints (feedback reports) are recorded.
    complaint_count INTEGER NOT NULL DEFAULT 0
);
INSERT INTO addresses_new (address, status, action, hard_count, soft_count, first_bounce,
        last_bounce, last_reason, last_status, why, updated_at, verified, review_at, reason,
        changed_at)
    SELECT address, status, action, hard_count, soft_count, first_bounce, last_bounce,
           last_reason, last_status, why, updated_at, verified, review_at, reason, changed_at
      FROM addresses;
DROP TABLE addresses;
ALTER TABLE addresses_new RENAME TO addresses;
CREATE INDEX addresses_action ON addresses (action, status);
CREATE INDEX addresses_review_at ON addresses (review_at) WHERE review_at IS NOT NULL;
CREATE INDEX addresses_changed_at ON addresses (changed_at);

CREATE TABLE verdict_changes_new (
    seq        INTEGER PRIMARY KEY,
    address    TEXT    NOT NULL,
    old_action TEXT    CHECK (old_action IN ('remove', 'keep')),
    old_status TEXT    CHECK (old_status IN ('hard_fail', 'soft_fail', 'complained', 'forgiven')),
    new_action TEXT    NOT NULL CHECK (new_action IN ('remove', 'keep')),
    new_status TEXT    NOT NULL CHECK (new_status IN ('hard_fail', 'soft_fail', 'complained',
                       'forgiven')),
    reason     TEXT    NOT NULL,
    why        TEXT    NOT NULL,
    cause      TEXT    NOT NULL CHECK (cause IN ('bounce', 'delivery', 'ageing', 'quiet',
                       'policy', 'forgive', 'reclassify')),
    changed_at TEXT    NOT NULL,
    note       TEXT
);
INSERT INTO verdict_changes_new SELECT seq, address, old_action, old_status, new_action,
       new_status, reason, why, cause, changed_at, note FROM verdict_changes;
DROP TABLE verdict_changes;
ALTER TABLE verdict_changes_new RENAME TO verdict_changes;
CREATE INDEX verdict_changes_address ON verdict_changes (address, seq);

-- Complaints and delivery reports now reach the verdict: settings.policy is
-- dropped so the next daemon start recomputes every verdict once (recording
-- only real changes, cause policy).
DELETE FROM settings WHERE key = 'policy';
