-- Signed-bounce verification (README, "Signed bounces"; src/trust.rs).

-- bounce_events.verified: 1 when a valid, unexpired signed token (from the
-- bounce's envelope-side headers or the returned original's X-Bounced-Token)
-- names this recipient; 0 when it was checked and did not verify
-- (verify_note says why: "no token", "bad signature", "token expired …",
-- "token is for X, not Y"); NULL when no [verify] section is configured.
ALTER TABLE bounce_events ADD COLUMN verified INTEGER CHECK (verified IN (0, 1));
ALTER TABLE bounce_events ADD COLUMN verify_note TEXT;

-- addresses.verified: 1 when a verified bounce is among those that decided
-- the current action, else 0. With [verify] require = true only verified
-- bounces can make the action "remove"; the status still reflects every
-- bounce seen, and `why` says how many unverified ones were not counted.
ALTER TABLE addresses ADD COLUMN verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1));
