-- Leader election for several replicas on one database. Keep in step with ../postgres/0007_leases.sql.
--
-- leases: one row per lease (the scheduler's is named "scheduler"). holder is the replica that
--   holds it, epoch a number that grows by one at every acquisition (the fencing token: every
--   write the leader makes checks, in its own transaction, that the row still has its holder and
--   epoch), expires_at the database's own time (milliseconds since the Unix epoch) after which
--   another replica may take it, acquired_at when the holder took it.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
