-- Leader election for several replicas on one database. Keep in step with ../sqlite/0007_leases.sql.
--
-- leases: one row per lease (the scheduler's is named "scheduler"): who holds it and its epoch,
--   a number that grows by one at every acquisition (the fencing token: every write the leader
--   makes reads this row FOR SHARE in its own transaction and checks holder and epoch, so a
--   takeover, which updates the row, waits for writes in flight and then fences off the rest).
--   Changed only by acquisitions.
-- lease_renewals: the expiry of the current term (epoch), on the database's own clock
--   (milliseconds since the Unix epoch); 0 once released. Kept apart so that renewing, which
--   happens every second, never waits for the leader's own writes in flight.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);

CREATE TABLE lease_renewals (
    name       TEXT PRIMARY KEY NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
