//! Leases and the change feed over [`SqlStore`]: the statements behind the store's leader
//! election methods (see [`crate::lease`]), and PostgreSQL's LISTEN/NOTIFY as the feed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::mpsc;

use super::pool::{CHANNEL, SqlStore};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::lease::{Lease, StoreChange};
use crate::text::exact;

/// How many changes the feed holds for a slow reader before it reports a [`StoreChange::Resync`]
/// instead.
const FEED_CAPACITY: usize = 4096;

/// The database's clock, in milliseconds since the Unix epoch, as SQL.
fn db_now(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

fn decode_lease(row: &AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        name: row.try_get("name")?,
        holder: row.try_get("holder")?,
        epoch: row.try_get("epoch")?,
        expires_at_ms: row.try_get("expires_at")?,
        acquired_at_ms: row.try_get("acquired_at")?,
        db_now_ms: row.try_get("db_now")?,
    })
}

/// What one notification payload says, unless it is this store's own.
fn parse_payload(payload: &str, own: &str) -> Option<StoreChange> {
    let mut parts = payload.splitn(3, '|');
    let (kind, origin, rest) = (parts.next()?, parts.next()?, parts.next()?);
    match kind {
        "j" if origin != own => Some(StoreChange::Jobs(
            rest.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        "s" if !rest.is_empty() => Some(StoreChange::StopRequested(rest.to_string())),
        _ => None,
    }
}

/// The columns of a lease, read from `leases l JOIN lease_renewals r`.
const LEASE_COLUMNS: &str = "l.name AS name, l.holder AS holder, l.epoch AS epoch, \
     r.expires_at AS expires_at, l.acquired_at AS acquired_at";

impl SqlStore {
    pub(super) async fn acquire_lease_sql(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        exact("lease", name)?;
        exact("holder", holder)?;
        let mut w = self.begin_write().await?;
        let result = self.acquire_in(&mut w.tx, name, holder, ttl_ms).await;
        w.finish(result).await
    }

    async fn acquire_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.relax_commit(tx).await?;
        let now = db_now(self.dialect);
        // Lock the lease row first: a takeover waits here for the fenced writes in flight.
        let lock = match self.dialect {
            Dialect::Sqlite => "SELECT holder, epoch FROM leases WHERE name = $1",
            Dialect::Postgres => "SELECT holder, epoch FROM leases WHERE name = $1 FOR UPDATE",
        };
        let current = sqlx::query(lock)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(current) = current else {
            let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO leases (name, holder, epoch, acquired_at) VALUES ($1, $2, 1, {now}) \
                 ON CONFLICT (name) DO NOTHING"
            )))
            .bind(name)
            .bind(holder)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // Another replica made it meanwhile.
                return Ok(None);
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO lease_renewals (name, epoch, expires_at) VALUES ($1, 1, {now} + $2)"
            )))
            .bind(name)
            .bind(ttl_ms)
            .execute(&mut **tx)
            .await?;
            return self.read_lease(tx, name).await;
        };
        let current_holder: String = current.try_get("holder")?;
        let epoch: i64 = current.try_get("epoch")?;
        let expired: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CASE WHEN expires_at <= {now} OR epoch <> $2 THEN 1 ELSE 0 END AS free \
             FROM lease_renewals WHERE name = $1"
        )))
        .bind(name)
        .bind(epoch)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get("free"))
        .transpose()?;
        if expired != Some(1) && current_holder != holder {
            return Ok(None);
        }
        let next = epoch + 1;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE leases SET holder = $2, epoch = $3, acquired_at = {now} WHERE name = $1"
        )))
        .bind(name)
        .bind(holder)
        .bind(next)
        .execute(&mut **tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO lease_renewals (name, epoch, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, \
             expires_at = excluded.expires_at"
        )))
        .bind(name)
        .bind(next)
        .bind(ttl_ms)
        .execute(&mut **tx)
        .await?;
        self.read_lease(tx, name).await
    }

    async fn read_lease(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        name: &str,
    ) -> Result<Option<Lease>, StoreError> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS}, {} AS db_now FROM leases l \
             JOIN lease_renewals r ON r.name = l.name WHERE l.name = $1",
            db_now(self.dialect)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(decode_lease).transpose()
    }

    pub(super) async fn renew_lease_sql(
        &self,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let now = db_now(self.dialect);
        // The epoch names the term (and so its holder); the leases row is not touched, so a
        // renewal never waits for the leader's own fenced writes.
        let sql = format!(
            "UPDATE lease_renewals SET expires_at = {now} + $3 \
             WHERE name = $1 AND epoch = $2 RETURNING expires_at, {now} AS db_now"
        );
        let mut tx = self.pool.begin().await?;
        self.relax_commit(&mut tx).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&lease.name)
            .bind(lease.epoch)
            .bind(ttl_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let renewed = match row {
            None => None,
            Some(row) => Some(Lease {
                expires_at_ms: row.try_get("expires_at")?,
                db_now_ms: row.try_get("db_now")?,
                ..lease.clone()
            }),
        };
        tx.commit().await?;
        Ok(renewed)
    }

    /// Lease changes do not wait for the write-ahead log to reach the disk (PostgreSQL's
    /// `synchronous_commit = off`, for this transaction only): a slow disk must not cost a
    /// leader its lease. Safe: a change lost in a database crash only shortens a lease or
    /// undoes an acquisition, and every fenced write, committed durably, carries the lease
    /// change before it in the log.
    async fn relax_commit(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn release_lease_sql(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query("UPDATE lease_renewals SET expires_at = 0 WHERE name = $1 AND epoch = $2")
            .bind(&lease.name)
            .bind(lease.epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn get_lease_sql(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        exact("lease", name)?;
        let sql = format!(
            "SELECT {LEASE_COLUMNS}, {} AS db_now FROM leases l \
             JOIN lease_renewals r ON r.name = l.name WHERE l.name = $1",
            db_now(self.dialect)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_lease).transpose()
    }

    pub(super) fn fenced_sql(&self, lease: &Lease) -> SqlStore {
        let mut view = self.clone();
        view.fence = Some(Arc::new(lease.clone()));
        view
    }

    pub(super) async fn request_stop_sql(&self, id: &str) -> Result<bool, StoreError> {
        if self.dialect != Dialect::Postgres {
            return Ok(false);
        }
        exact("id", id)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("s|{}|{id}", self.origin))
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    /// LISTENs on its own connection; a task forwards what other processes announce until the
    /// receiver is dropped. A heartbeat this store sends itself every [`HEARTBEAT`] proves that
    /// the connection still hears: after [`HEARD_WITHIN`] without any notification the
    /// connection is made again (a silent connection gives no error otherwise). Each time the
    /// feed was interrupted, a [`StoreChange::Resync`] is sent (notifications may have been
    /// missed).
    pub(super) async fn changes_sql(
        &self,
    ) -> Result<Option<mpsc::Receiver<StoreChange>>, StoreError> {
        let Some(url) = self.url.clone() else {
            return Ok(None);
        };
        let listener = listen(&url.0).await?;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        tokio::spawn(supervise(listener, url.0, tx, self.origin.clone()));
        Ok(Some(rx))
    }
}

/// How often the change feed checks that it still hears.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the change feed may hear nothing (its own heartbeats included) before it connects
/// again.
const HEARD_WITHIN: Duration = Duration::from_secs(20);

async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect(url)
        .await
        .map_err(StoreError::from)?;
    listener.listen(CHANNEL).await.map_err(StoreError::from)?;
    Ok(listener)
}

/// Runs the feed's reader, sends the heartbeats, and makes the connection again when the
/// reader stopped hearing.
async fn supervise(
    mut listener: sqlx::postgres::PgListener,
    url: String,
    tx: mpsc::Sender<StoreChange>,
    own: Arc<str>,
) {
    loop {
        let heard = Arc::new(std::sync::Mutex::new(Instant::now()));
        let reader = tokio::spawn(read(listener, tx.clone(), own.clone(), heard.clone()));
        loop {
            tokio::select! {
                _ = tx.closed() => {
                    reader.abort();
                    return;
                }
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
            let last = match heard.lock() {
                Ok(g) => *g,
                Err(poisoned) => *poisoned.into_inner(),
            };
            if last.elapsed() >= HEARTBEAT {
                // Nothing heard lately: send ourselves a notification, on a connection of its
                // own (dropped whole if the network is silent, so it never holds a pool slot).
                let _ = tokio::time::timeout(HEARTBEAT, heartbeat(&url, &own)).await;
            }
            if reader.is_finished() || last.elapsed() > HEARD_WITHIN {
                tracing::warn!(
                    "change feed: nothing heard for {} s; connecting again",
                    last.elapsed().as_secs()
                );
                reader.abort();
                break;
            }
        }
        // Listen again first, then ask for the resync: a reader that reloads everything
        // after this point misses nothing.
        listener = loop {
            match listen(&url).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!("change feed: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if tx.is_closed() {
                        return;
                    }
                }
            }
        };
        if tx.send(StoreChange::Resync).await.is_err() {
            return;
        }
    }
}

/// Sends this store's heartbeat notification.
async fn heartbeat(url: &str, own: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("h|{own}|"))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Forwards notifications until aborted; every notification (a heartbeat too) counts as
/// heard.
async fn read(
    mut listener: sqlx::postgres::PgListener,
    tx: mpsc::Sender<StoreChange>,
    own: Arc<str>,
    heard: Arc<std::sync::Mutex<Instant>>,
) {
    loop {
        let change = match listener.try_recv().await {
            Ok(Some(n)) => {
                match heard.lock() {
                    Ok(mut g) => *g = Instant::now(),
                    Err(poisoned) => *poisoned.into_inner() = Instant::now(),
                }
                match parse_payload(n.payload(), &own) {
                    Some(c) => c,
                    None => continue,
                }
            }
            // The connection dropped; the next call connects again.
            Ok(None) => StoreChange::Resync,
            Err(e) => {
                tracing::warn!("change feed: {e}; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match tx.try_send(change) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The reader is behind: it will read everything again anyway.
                let _ = tx.send(StoreChange::Resync).await;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pool::job_payloads;
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_their_own_origin() {
        let ids: Vec<String> = (0..2000).map(|i| format!("job-{i:05}")).collect();
        let payloads = job_payloads("me", &ids);
        assert!(payloads.len() > 1, "2000 ids need several payloads");
        assert!(payloads.iter().all(|p| p.len() <= 7000));
        let mut back = Vec::new();
        for p in &payloads {
            assert_eq!(
                parse_payload(p, "me"),
                None,
                "own writes are not reported back"
            );
            match parse_payload(p, "other") {
                Some(StoreChange::Jobs(ids)) => back.extend(ids),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, ids);
        assert!(job_payloads("me", &[]).is_empty());
        assert_eq!(
            parse_payload("s|me|job-1", "me"),
            Some(StoreChange::StopRequested("job-1".into()))
        );
        assert_eq!(parse_payload("garbage", "x"), None);
    }
}
