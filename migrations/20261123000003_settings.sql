-- settings: small facts about the database itself, one row per key.
--   policy: the [policy] the address verdicts were last computed with (a
--           canonical text form). When the configured policy differs at
--           start or on reload, every address verdict is recomputed.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
