-- History rollups: one row per (closed hour, namespace, level) with what Store::history needs of
-- that hour, so that a query over whole hours reads one row per hour and series instead of every
-- job. Written by Store::roll_up_history; read by Store::history for the hours before
-- history_rollup.next_hour. See src/history.rs. Keep in step with
-- ../sqlite/0004_history_rollups.sql.
--
-- `sums` holds, as text, the sums the history queries compute when they group the jobs by hour
-- (`column / 3600000`; offsets are `column % 3600000`, whole ms), as whole numbers separated by
-- `:`, then the waits (a query joins the rows of each series into one text with `;`: a month
-- is then a few rows to fetch instead of 720 per series):
--   hour : enq_n : enq_off : left_n : left_off : adm_n : adm_cpu : adm_mem : adm_off :
--   adm_off_cpu : adm_off_mem : fin_n : succeeded : failed : cancelled : rel_n : rel_cpu :
--   rel_mem : rel_off : rel_off_cpu : rel_off_mem : waits
-- where enq_*: entered the queue (enqueued_at in the hour): count, sum of offsets; left_*: left
-- the queue (COALESCE(admitted_at, dequeued_at) in the hour): count, offsets; adm_*: admitted
-- (admitted_at in the hour): count, cpu, mem, sums of offsets (plain, times cpu, times mem);
-- fin_n: ended (finished_at in the hour), then of those by terminal state; rel_*: ended while
-- holding resources (finished_at in the hour, admitted_at set), as adm_*; waits: the
-- admitted_at - enqueued_at (ms) of the jobs admitted, sorted, as `a,b,c` (empty if none).
-- queued, held_*: jobs waiting (enqueued_at < end <= COALESCE(admitted_at, dequeued_at)) and
-- held (admitted_at < end <= finished_at; count, cpu, mem) at the hour's end.
-- A row exists for every hour and series with anything in the hour or anything waiting or held
-- at its end; no row means zeros.
CREATE TABLE history_hours (
    hour BIGINT NOT NULL,
    namespace TEXT NOT NULL,
    level TEXT NOT NULL,
    sums TEXT NOT NULL,
    queued BIGINT NOT NULL,
    held_n BIGINT NOT NULL,
    held_cpu BIGINT NOT NULL,
    held_mem BIGINT NOT NULL,
    PRIMARY KEY (hour, namespace, level)
);

-- One row: every hour before next_hour (hours since the Unix epoch) is rolled up; NULL: none.
CREATE TABLE history_rollup (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_hour BIGINT
);
INSERT INTO history_rollup (id, next_hour) VALUES (1, NULL);

-- Hours from which the rollups are stale: a write into an hour already rolled up (times come
-- from callers: tests, backfills, a requeue, a purge) adds the earliest hour it touched, in its
-- own transaction (triggers below). Readers use rollups only before the earliest of these; the
-- next roll-up deletes the rows from there on and rolls those hours again.
CREATE TABLE history_stale (hour BIGINT NOT NULL);
CREATE INDEX history_stale_hour ON history_stale (hour);

-- Jobs whose times are out of order (left the queue before entering it, ended before being
-- admitted): the roll-up needs them to carry the levels from hour to hour exactly. Normally empty.
-- (SQLite uses a partial index only if the query repeats its condition as written, column first.)
CREATE INDEX jobs_hist_left_early ON jobs ((enqueued_at / 3600000), namespace, level, enqueued_at,
    admitted_at, dequeued_at) WHERE enqueued_at > COALESCE(admitted_at, dequeued_at);
CREATE INDEX jobs_hist_ended_early ON jobs ((admitted_at / 3600000), namespace, level, admitted_at,
    finished_at, cpu_milli, mem_mib) WHERE finished_at < admitted_at;

-- Which rollup rows a change of a job touches: its times (enqueued_at, admitted_at, dequeued_at,
-- finished_at) are compared with hour boundaries, so a change touches the hours from the earlier
-- of the old and new value on. A change of state touches the hour it finished in (counts by
-- state); of cpu or mem, the hours it was admitted and finished in; of the wait's start, the
-- hour it was admitted in.
--
-- Several servers may share the database: a write that changes any of these takes a shared
-- transaction-level advisory lock (key 8317151707346042881: "sluice" then 0x0001),
-- held until it commits, and Store::roll_up_history takes the same lock exclusively. So a roll-up
-- reads the jobs only when no such write is in flight, and a write that comes later sees the
-- next_hour the roll-up committed (writes run at READ COMMITTED: each statement of the trigger
-- takes a new snapshot after the lock is granted).
CREATE FUNCTION history_mark_stale(m BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF m IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(8317151707346042881);
    INSERT INTO history_stale (hour)
    SELECT m / 3600000 FROM history_rollup WHERE id = 1 AND m / 3600000 < next_hour;
END
$$;

CREATE FUNCTION history_stale_insert() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM history_mark_stale(
        (SELECT MIN(LEAST(enqueued_at, admitted_at, dequeued_at, finished_at)) FROM new_jobs));
    RETURN NULL;
END
$$;

CREATE FUNCTION history_stale_delete() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM history_mark_stale(
        (SELECT MIN(LEAST(enqueued_at, admitted_at, dequeued_at, finished_at)) FROM old_jobs));
    RETURN NULL;
END
$$;

CREATE FUNCTION history_stale_update() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    k BOOLEAN := OLD.namespace IS DISTINCT FROM NEW.namespace
        OR OLD.level IS DISTINCT FROM NEW.level;
    e BOOLEAN := OLD.enqueued_at IS DISTINCT FROM NEW.enqueued_at;
    a BOOLEAN := OLD.admitted_at IS DISTINCT FROM NEW.admitted_at;
    d BOOLEAN := OLD.dequeued_at IS DISTINCT FROM NEW.dequeued_at;
    f BOOLEAN := OLD.finished_at IS DISTINCT FROM NEW.finished_at;
    s BOOLEAN := OLD.state IS DISTINCT FROM NEW.state;
    r BOOLEAN := OLD.cpu_milli IS DISTINCT FROM NEW.cpu_milli
        OR OLD.mem_mib IS DISTINCT FROM NEW.mem_mib;
BEGIN
    -- LEAST ignores NULLs (and is NULL when every argument is).
    PERFORM history_mark_stale(LEAST(
        CASE WHEN k OR e THEN LEAST(OLD.enqueued_at, NEW.enqueued_at) END,
        CASE WHEN k OR e OR a OR r THEN LEAST(OLD.admitted_at, NEW.admitted_at) END,
        CASE WHEN k OR d THEN LEAST(OLD.dequeued_at, NEW.dequeued_at) END,
        CASE WHEN k OR a OR f OR s OR r THEN LEAST(OLD.finished_at, NEW.finished_at) END));
    RETURN NULL;
END
$$;

-- Inserts and deletes once per statement (a bulk load or a purge is one call).
CREATE TRIGGER jobs_history_stale_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION history_stale_insert();
CREATE TRIGGER jobs_history_stale_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION history_stale_delete();
CREATE TRIGGER jobs_history_stale_update AFTER UPDATE OF namespace, level, state, enqueued_at,
    admitted_at, dequeued_at, finished_at, cpu_milli, mem_mib ON jobs
    FOR EACH ROW EXECUTE FUNCTION history_stale_update();
