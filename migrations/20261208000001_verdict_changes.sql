-- Verdict history (README, "Verdict changes"; src/store.rs, record_change).

-- change_counter: one row (id = 1) holding the last seq handed out. A change
-- takes its seq by incrementing this row inside the same transaction that
-- changes the verdict, so seqs become visible in commit order with no gap: a
-- transaction that rolls back gives its seq back. A free-running sequence
-- could let a consumer see seq 8 committed before seq 7 and skip 7 forever.
CREATE TABLE change_counter (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO change_counter (id, last_seq) VALUES (1, 0);

-- verdict_changes: one row per change of an address's action or status
-- (its first verdict included), written in the transaction that changes it.
-- A sync job remembers the last seq it saw and asks for the rows after it
-- (`bounced changes --since SEQ`): it never misses or repeats a change.
CREATE TABLE verdict_changes (
    -- Strictly increasing, from change_counter; 1, 2, 3, ... without gaps.
    seq        INTEGER PRIMARY KEY,
    -- The address (lower-case domain).
    address    TEXT    NOT NULL,
    -- The verdict before the change; NULL for an address's first verdict.
    old_action TEXT    CHECK (old_action IN ('remove', 'keep')),
    old_status TEXT    CHECK (old_status IN ('hard_fail', 'soft_fail')),
    -- The verdict after it.
    new_action TEXT    NOT NULL CHECK (new_action IN ('remove', 'keep')),
    new_status TEXT    NOT NULL CHECK (new_status IN ('hard_fail', 'soft_fail')),
    -- The reason the new verdict rests on (a Sisimai reason name).
    reason     TEXT    NOT NULL,
    -- The new verdict's explanation, as addresses.why.
    why        TEXT    NOT NULL,
    -- What changed it: bounce (a new bounce was stored), delivery (a
    -- successful-delivery report), ageing (counted soft bounces left the
    -- window), quiet (the quiet period passed), policy (the [policy] changed
    -- or `bounced reevaluate`), forgive (`bounced forgive`), reclassify
    -- (`bounced reclassify`).
    cause      TEXT    NOT NULL CHECK (cause IN ('bounce', 'delivery', 'ageing', 'quiet',
                       'policy', 'forgive', 'reclassify')),
    -- When, RFC 3339 UTC.
    changed_at TEXT    NOT NULL,
    -- Free text given with the change (`bounced forgive --note`), else NULL.
    note       TEXT
);
CREATE INDEX verdict_changes_address ON verdict_changes (address, seq);

-- addresses.reason: the reason the current verdict rests on (the hard
-- bounce's, or the most frequent counted soft reason), where last_reason is
-- only the latest bounce's and may be a later soft one.
ALTER TABLE addresses ADD COLUMN reason TEXT;
UPDATE addresses SET reason = last_reason;

-- addresses.changed_at: when the action or status last changed, RFC 3339
-- UTC (updated_at moves at every recomputation, changed_at only with a
-- change). `bounced addresses --since TIME` filters on it.
ALTER TABLE addresses ADD COLUMN changed_at TEXT;
UPDATE addresses SET changed_at = updated_at;
CREATE INDEX addresses_changed_at ON addresses (changed_at);

-- Verdicts that existed before this table get one row each (their first
-- verdict, cause bounce, in address order), so a consumer starting from
-- seq 0 sees every address once.
INSERT INTO verdict_changes (seq, address, old_action, old_status, new_action, new_status,
                             reason, why, cause, changed_at)
SELECT row_number() OVER (ORDER BY address), address, NULL, NULL, action, status,
       last_reason, why, 'bounce', updated_at
  FROM addresses;
UPDATE change_counter SET last_seq = (SELECT count(*) FROM verdict_changes) WHERE id = 1;
