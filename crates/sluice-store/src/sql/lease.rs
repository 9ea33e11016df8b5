//! Leases and the change feed over [`SqlStore`]: the statements behind the store's leader
//! election methods (see [`crate::lease`]), and PostgreSQL's LISTEN/NOTIFY as the feed.

use std::sync::Arc;

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

impl SqlStore {
    fn returning(&self) -> String {
        format!(
            "RETURNING name, holder, epoch, expires_at, acquired_at, {} AS db_now",
            db_now(self.dialect)
        )
    }

    pub(super) async fn acquire_lease_sql(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        exact("lease", name)?;
        exact("holder", holder)?;
        let now = db_now(self.dialect);
        let sql = format!(
            "INSERT INTO leases (name, holder, epoch, expires_at, acquired_at) \
             VALUES ($1, $2, 1, {now} + $3, {now}) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
               epoch = leases.epoch + 1, expires_at = excluded.expires_at, \
               acquired_at = excluded.acquired_at \
             WHERE leases.expires_at <= {now} OR leases.holder = excluded.holder {}",
            self.returning()
        );
        let mut w = self.begin_write().await?;
        if let Err(e) = self.relax_commit(&mut w.tx).await {
            return w.finish(Err(e)).await;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(holder)
            .bind(ttl_ms)
            .fetch_optional(&mut *w.tx)
            .await;
        let result = match row {
            Ok(Some(row)) => decode_lease(&row).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        };
        w.finish(result).await
    }

    pub(super) async fn renew_lease_sql(
        &self,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let now = db_now(self.dialect);
        let sql = format!(
            "UPDATE leases SET expires_at = {now} + $4 \
             WHERE name = $1 AND holder = $2 AND epoch = $3 {}",
            self.returning()
        );
        let mut tx = self.pool.begin().await?;
        self.relax_commit(&mut tx).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&lease.name)
            .bind(&lease.holder)
            .bind(lease.epoch)
            .bind(ttl_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let lease = row.as_ref().map(decode_lease).transpose()?;
        tx.commit().await?;
        Ok(lease)
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
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(&lease.name)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn get_lease_sql(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        exact("lease", name)?;
        let sql = format!(
            "SELECT name, holder, epoch, expires_at, acquired_at, {} AS db_now \
             FROM leases WHERE name = $1",
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
    /// receiver is dropped. The connection is re-made when it drops, and a
    /// [`StoreChange::Resync`] sent then (notifications may have been missed).
    pub(super) async fn changes_sql(
        &self,
    ) -> Result<Option<mpsc::Receiver<StoreChange>>, StoreError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(&url.0)
            .await
            .map_err(StoreError::from)?;
        listener.listen(CHANNEL).await.map_err(StoreError::from)?;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let own = self.origin.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    n = listener.try_recv() => n,
                };
                let change = match next {
                    Ok(Some(n)) => match parse_payload(n.payload(), &own) {
                        Some(c) => c,
                        None => continue,
                    },
                    // The connection dropped; the next call connects again.
                    Ok(None) => StoreChange::Resync,
                    Err(e) => {
                        tracing::warn!("change feed: {e}; retrying in 1 s");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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
        });
        Ok(Some(rx))
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
