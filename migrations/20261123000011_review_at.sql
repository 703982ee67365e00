-- Soft verdicts that age (README, "Policy"; src/policy.rs).

-- addresses.review_at: when the verdict may next change with no new bounce,
-- RFC 3339 UTC: the second a counted soft bounce leaves [policy] soft_window
-- (or a future-dated one enters it), e.g. when an address marked remove by
-- soft bounces goes back to keep. NULL when only a new bounce can change it
-- (a counted hard bounce decided it, or no soft bounce counts). The verdicts
-- that are due are recomputed by the daemon at start and then hourly, and by
-- `bounced addresses` before it reads, with the policy recorded in
-- settings.policy (so the command needs no config).
ALTER TABLE addresses ADD COLUMN review_at TEXT;

-- Rows written before this column existed are due at once: the first
-- re-evaluation recomputes each of them and sets its real review time.
UPDATE addresses SET review_at = updated_at;

CREATE INDEX addresses_review_at ON addresses (review_at) WHERE review_at IS NOT NULL;
