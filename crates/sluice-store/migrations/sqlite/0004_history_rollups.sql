-- History rollups: one row per (closed hour, namespace, level) with what Store::history needs of
-- that hour, so that a query over whole hours reads one row per hour and series instead of every
-- job. Written by Store::roll_up_history; read by Store::history for the hours before
-- history_rollup.next_hour. See src/history.rs. Keep in step with
-- ../postgres/0004_history_rollups.sql.
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
    hour INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    level TEXT NOT NULL,
    sums TEXT NOT NULL,
    queued INTEGER NOT NULL,
    held_n INTEGER NOT NULL,
    held_cpu INTEGER NOT NULL,
    held_mem INTEGER NOT NULL,
    PRIMARY KEY (hour, namespace, level)
) WITHOUT ROWID;

-- One row: every hour before next_hour (hours since the Unix epoch) is rolled up; NULL: none.
CREATE TABLE history_rollup (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_hour INTEGER
);
INSERT INTO history_rollup (id, next_hour) VALUES (1, NULL);

-- Hours from which the rollups are stale: a write into an hour already rolled up (times come
-- from callers: tests, backfills, a requeue, a purge) adds the earliest hour it touched, in its
-- own transaction (triggers below). Readers use rollups only before the earliest of these; the
-- next roll-up deletes the rows from there on and rolls those hours again.
CREATE TABLE history_stale (hour INTEGER NOT NULL);
CREATE INDEX history_stale_hour ON history_stale (hour);

-- Jobs whose times are out of order (left the queue before entering it, ended before being
-- admitted): the roll-up needs them to carry the levels from hour to hour exactly. Normally empty.
-- (SQLite uses a partial index only if the query repeats its condition as written, column first.)
CREATE INDEX jobs_hist_left_early ON jobs (enqueued_at / 3600000, namespace, level, enqueued_at,
    admitted_at, dequeued_at) WHERE enqueued_at > COALESCE(admitted_at, dequeued_at);
CREATE INDEX jobs_hist_ended_early ON jobs (admitted_at / 3600000, namespace, level, admitted_at,
    finished_at, cpu_milli, mem_mib) WHERE finished_at < admitted_at;

-- Which rollup rows a change of a job touches: its times (enqueued_at, admitted_at, dequeued_at,
-- finished_at) are compared with hour boundaries, so a change touches the hours from the earlier
-- of the old and new value on. A change of state touches the hour it finished in (counts by
-- state); of cpu or mem, the hours it was admitted and finished in; of the wait's start, the
-- hour it was admitted in. 9223372036854775807 stands for "no time" (SQLite's min() of several
-- values is NULL if any of them is).
CREATE TRIGGER jobs_history_stale_insert AFTER INSERT ON jobs
BEGIN
    INSERT INTO history_stale (hour)
    SELECT m / 3600000 FROM (
        SELECT NULLIF(min(
            COALESCE(NEW.enqueued_at, 9223372036854775807),
            COALESCE(NEW.admitted_at, 9223372036854775807),
            COALESCE(NEW.dequeued_at, 9223372036854775807),
            COALESCE(NEW.finished_at, 9223372036854775807)), 9223372036854775807) AS m)
    WHERE m / 3600000 < (SELECT next_hour FROM history_rollup WHERE id = 1);
END;

CREATE TRIGGER jobs_history_stale_delete AFTER DELETE ON jobs
BEGIN
    INSERT INTO history_stale (hour)
    SELECT m / 3600000 FROM (
        SELECT NULLIF(min(
            COALESCE(OLD.enqueued_at, 9223372036854775807),
            COALESCE(OLD.admitted_at, 9223372036854775807),
            COALESCE(OLD.dequeued_at, 9223372036854775807),
            COALESCE(OLD.finished_at, 9223372036854775807)), 9223372036854775807) AS m)
    WHERE m / 3600000 < (SELECT next_hour FROM history_rollup WHERE id = 1);
END;

CREATE TRIGGER jobs_history_stale_update AFTER UPDATE OF namespace, level, state, enqueued_at,
    admitted_at, dequeued_at, finished_at, cpu_milli, mem_mib ON jobs
BEGIN
    INSERT INTO history_stale (hour)
    SELECT m / 3600000 FROM (
        SELECT NULLIF(min(
            CASE WHEN k OR e THEN min(COALESCE(OLD.enqueued_at, 9223372036854775807),
                COALESCE(NEW.enqueued_at, 9223372036854775807)) ELSE 9223372036854775807 END,
            CASE WHEN k OR e OR a OR r THEN min(COALESCE(OLD.admitted_at, 9223372036854775807),
                COALESCE(NEW.admitted_at, 9223372036854775807)) ELSE 9223372036854775807 END,
            CASE WHEN k OR d THEN min(COALESCE(OLD.dequeued_at, 9223372036854775807),
                COALESCE(NEW.dequeued_at, 9223372036854775807)) ELSE 9223372036854775807 END,
            CASE WHEN k OR a OR f OR s OR r THEN min(COALESCE(OLD.finished_at, 9223372036854775807),
                COALESCE(NEW.finished_at, 9223372036854775807)) ELSE 9223372036854775807 END),
            9223372036854775807) AS m
        FROM (SELECT
            (OLD.namespace IS NOT NEW.namespace OR OLD.level IS NOT NEW.level) AS k,
            OLD.enqueued_at IS NOT NEW.enqueued_at AS e,
            OLD.admitted_at IS NOT NEW.admitted_at AS a,
            OLD.dequeued_at IS NOT NEW.dequeued_at AS d,
            OLD.finished_at IS NOT NEW.finished_at AS f,
            OLD.state IS NOT NEW.state AS s,
            (OLD.cpu_milli IS NOT NEW.cpu_milli OR OLD.mem_mib IS NOT NEW.mem_mib) AS r))
    WHERE m / 3600000 < (SELECT next_hour FROM history_rollup WHERE id = 1);
END;
