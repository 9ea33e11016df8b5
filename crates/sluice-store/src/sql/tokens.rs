//! API tokens and the audit log over [`SqlStore`]: the statements behind the store's
//! authentication and audit methods.

use sluice_core::access::Binding;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::pool::SqlStore;
use super::rows::DynQuery;
use crate::auth::{AuditEntry, AuditFilter, NewToken, TokenRecord};
use crate::error::StoreError;
use crate::text::{exact, exact_opt};

const TOKEN_COLUMNS: &str =
    "id, subject, secret_hash, bindings, created_at, created_by, expires_at, revoked_at";
pub(super) const AUDIT_COLUMNS: &str =
    "id, at, actor, subject, action, namespace, target, detail, peer";
/// One row's values of `INSERT INTO audit_log`, `$1`-based.
pub(super) const AUDIT_INSERT_ROW: &str = "($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// The binds of [`AUDIT_INSERT_ROW`].
pub(super) const AUDIT_INSERT_BINDS: usize = 9;

fn decode_token(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let bindings: String = row.try_get("bindings")?;
    let bindings: Vec<Binding> = serde_json::from_str(&bindings).map_err(|e| {
        StoreError::Corrupt(format!(
            "api_tokens.bindings of token {id:?} = {bindings:?}: {e}"
        ))
    })?;
    Ok(TokenRecord {
        subject: row.try_get("subject")?,
        secret_hash: row.try_get("secret_hash")?,
        bindings,
        created_at_ms: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at_ms: row.try_get("expires_at")?,
        revoked_at_ms: row.try_get("revoked_at")?,
        id,
    })
}

fn decode_audit(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at_ms: row.try_get("at")?,
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        action: row.try_get("action")?,
        namespace: row.try_get("namespace")?,
        target: row.try_get("target")?,
        detail: row.try_get("detail")?,
        peer: row.try_get("peer")?,
    })
}

impl SqlStore {
    pub(super) async fn create_token_sql(&self, t: &NewToken) -> Result<TokenRecord, StoreError> {
        exact("id", &t.id)?;
        exact("subject", &t.subject)?;
        exact("secret_hash", &t.secret_hash)?;
        exact_opt("created_by", t.created_by.as_ref())?;
        let bindings = serde_json::to_string(&t.bindings)
            .map_err(|e| StoreError::Corrupt(format!("encoding token bindings: {e}")))?;
        let mut w = self.begin_write().await?;
        let result = async {
            let taken: Option<String> =
                sqlx::query_scalar("SELECT id FROM api_tokens WHERE id = $1 OR secret_hash = $2")
                    .bind(&t.id)
                    .bind(&t.secret_hash)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if taken.is_some() {
                return Err(StoreError::DuplicateToken(t.id.clone()));
            }
            let sql = format!(
                "INSERT INTO api_tokens ({TOKEN_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING {TOKEN_COLUMNS}"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&t.id)
                .bind(&t.subject)
                .bind(&t.secret_hash)
                .bind(&bindings)
                .bind(t.created_at_ms)
                .bind(t.created_by.as_deref())
                .bind(t.expires_at_ms)
                .fetch_one(&mut *w.tx)
                .await?;
            decode_token(&row)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn token_by_hash_sql(
        &self,
        secret_hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        exact("secret_hash", secret_hash)?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_token).transpose()
    }

    pub(super) async fn list_tokens_sql(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_token).collect()
    }

    pub(super) async fn revoke_token_sql(
        &self,
        id: &str,
        at_ms: i64,
    ) -> Result<TokenRecord, StoreError> {
        exact("id", id)?;
        let mut w = self.begin_write().await?;
        let result = async {
            // A token revoked already keeps the time it was first revoked.
            let sql = format!(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
                 RETURNING {TOKEN_COLUMNS}"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(at_ms)
                .fetch_optional(&mut *w.tx)
                .await?;
            match row {
                Some(r) => decode_token(&r),
                None => Err(StoreError::NoToken(id.to_string())),
            }
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn count_tokens_sql(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn record_audit_sql(&self, e: &AuditEntry) -> Result<(), StoreError> {
        check_audit(e)?;
        let mut w = self.begin_write().await?;
        let result = insert_audit_in(&mut w.tx, e).await;
        w.finish(result).await
    }

    /// The entries in one transaction (group commit); an entry with bad input gets its error
    /// and the others go on. If the transaction fails, each entry is written again alone so
    /// that each gets the answer it would have had alone.
    pub(super) async fn record_audits_sql(
        &self,
        entries: &[AuditEntry],
    ) -> Vec<Result<(), StoreError>> {
        let checked: Vec<Result<(), StoreError>> = entries.iter().map(check_audit).collect();
        if checked.iter().all(Result::is_err) {
            return checked;
        }
        if let Ok(mut w) = self.begin_write().await {
            let mut ok = true;
            for (e, c) in entries.iter().zip(&checked) {
                if c.is_ok() && insert_audit_in(&mut w.tx, e).await.is_err() {
                    ok = false;
                    break;
                }
            }
            if ok && w.finish(Ok(())).await.is_ok() {
                return checked;
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for (e, c) in entries.iter().zip(checked) {
            out.push(match c {
                Ok(()) => self.record_audit_sql(e).await,
                Err(err) => Err(err),
            });
        }
        out
    }

    pub(super) async fn audit_log_sql(
        &self,
        f: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        exact_opt("namespace", f.namespace.as_ref())?;
        exact_opt("actor", f.actor.as_ref())?;
        exact_opt("action", f.action.as_ref())?;
        let mut q = DynQuery::default();
        let mut conditions = Vec::new();
        if let Some(ns) = &f.namespace {
            conditions.push(format!("namespace = {}", q.text(ns.as_str())));
        }
        if let Some(a) = &f.actor {
            conditions.push(format!("actor = {}", q.text(a.as_str())));
        }
        if let Some(a) = &f.action {
            conditions.push(format!("action = {}", q.text(a.as_str())));
        }
        if let Some(t) = f.since_ms {
            conditions.push(format!("at >= {}", q.int(t)));
        }
        if let Some(t) = f.until_ms {
            conditions.push(format!("at < {}", q.int(t)));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = q.int(i64::from(limit.max(1)));
        q.sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log {where_clause} \
             ORDER BY at DESC, id DESC LIMIT {limit}"
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_audit).collect()
    }

    pub(super) async fn purge_audit_sql(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut w = self.begin_write().await?;
        let result = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before_ms)
            .execute(&mut *w.tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from);
        w.finish(result).await
    }
}

/// The exact fields of an audit entry, checked before any write.
pub(super) fn check_audit(e: &AuditEntry) -> Result<(), StoreError> {
    exact("id", &e.id)?;
    exact("actor", &e.actor)?;
    exact("action", &e.action)?;
    exact_opt("namespace", e.namespace.as_ref())?;
    exact_opt("target", e.target.as_ref())
}

/// An entry's free text for people, made storable: control characters become U+FFFD rather
/// than fail the write. `(subject, detail, peer)`.
pub(super) fn audit_text(e: &AuditEntry) -> (String, Option<String>, Option<String>) {
    let subject = crate::text::sanitize(&e.subject).into_owned();
    let detail = e
        .detail
        .as_deref()
        .map(|d| crate::text::sanitize(d).into_owned());
    let peer = e
        .peer
        .as_deref()
        .map(|p| crate::text::sanitize(p).into_owned());
    (subject, detail, peer)
}

/// Inserts one (checked) audit entry inside the caller's transaction.
async fn insert_audit_in(conn: &mut sqlx::AnyConnection, e: &AuditEntry) -> Result<(), StoreError> {
    let (subject, detail, peer) = audit_text(e);
    let sql = format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES {AUDIT_INSERT_ROW}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&e.id)
        .bind(e.at_ms)
        .bind(&e.actor)
        .bind(subject)
        .bind(&e.action)
        .bind(e.namespace.as_deref())
        .bind(e.target.as_deref())
        .bind(detail)
        .bind(peer)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
}
