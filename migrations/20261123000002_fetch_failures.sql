-- fetch_failures: messages the server failed to return (it answered NO or
-- closed the connection while sending them). Without this, one unreadable
-- message (a broken file on the server) would fail every pass and block the
-- whole mailbox. A UID listed here is fetched on its own, before the others;
-- after 3 failed attempts it is recorded in messages as `unparseable` (the
-- error says why) and left on the server for a person to look at.
CREATE TABLE fetch_failures (
    -- The [[mailbox]] name, UIDVALIDITY and UID of the message.
    mailbox      TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    -- Failed attempts to fetch this message on its own. A failure of a
    -- batch it was part of only lists it here (0 attempts): the culprit is
    -- not known yet. Network errors and timeouts never count.
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- The last error, and when, RFC 3339 UTC.
    last_error   TEXT,
    last_attempt TEXT,
    PRIMARY KEY (mailbox, uidvalidity, uid)
);
