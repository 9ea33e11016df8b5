//! Conformance checks of authentication and the audit log: API tokens (kept by the hash of
//! their secret, revoked at once), the namespace scope of job lists and selections, and the
//! audit log with its retention. Included by `conformance.rs`, whose `conformance!` macro runs
//! each against SQLite and PostgreSQL.

use std::sync::Arc;

use sluice_core::access::{AccessRole, Binding};
use sluice_store::{
    AuditEntry, AuditFilter, JobFilter, JobSet, NewToken, SetFilter, Store, StoreError,
};
use sqlx::{AnyConnection, Connection, Row};

use crate::job;

fn token(id: &str, hash: &str, bindings: &[(&str, AccessRole)], at: i64) -> NewToken {
    NewToken {
        id: id.into(),
        subject: format!("subject of {id}"),
        secret_hash: hash.into(),
        bindings: bindings
            .iter()
            .map(|(ns, r)| Binding::new(ns, *r).unwrap())
            .collect(),
        created_at_ms: at,
        created_by: None,
        expires_at_ms: None,
    }
}

pub async fn tokens_round_trip_and_revoke(store: Arc<dyn Store>) {
    assert_eq!(store.count_tokens().await.unwrap(), 0);
    let mut a = token(
        "tok-a",
        "aa11",
        &[("a", AccessRole::Submitter), ("*", AccessRole::Viewer)],
        1_000,
    );
    a.expires_at_ms = Some(5_000);
    a.created_by = Some("tok-root".into());
    let made = store.create_token(&a).await.unwrap();
    assert_eq!(made.id, "tok-a");
    assert_eq!(made.bindings, a.bindings);
    assert_eq!(made.expires_at_ms, Some(5_000));
    assert_eq!(made.created_by.as_deref(), Some("tok-root"));
    assert_eq!(made.revoked_at_ms, None);
    assert!(made.is_active(4_999));
    assert!(!made.is_active(5_000), "expired at its expiry time");
    let b = token("tok-b", "bb22", &[("*", AccessRole::Admin)], 2_000);
    store.create_token(&b).await.unwrap();
    assert_eq!(store.count_tokens().await.unwrap(), 2);

    // Found by the hash only.
    let found = store.token_by_hash("aa11").await.unwrap().unwrap();
    assert_eq!(found, made);
    assert!(store.token_by_hash("tok-a").await.unwrap().is_none());
    assert!(store.token_by_hash("cc33").await.unwrap().is_none());

    // Same id or same secret hash: refused, nothing written.
    for dup in [
        token("tok-a", "dd44", &[("a", AccessRole::Viewer)], 3_000),
        token("tok-c", "bb22", &[("a", AccessRole::Viewer)], 3_000),
    ] {
        match store.create_token(&dup).await {
            Err(StoreError::DuplicateToken(_)) => {}
            other => panic!("expected DuplicateToken, got {other:?}"),
        }
    }
    let all = store.list_tokens().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["tok-a", "tok-b"]);

    // Revoked at once; a second revocation keeps the first time.
    let r = store.revoke_token("tok-b", 7_000).await.unwrap();
    assert_eq!(r.revoked_at_ms, Some(7_000));
    assert!(!r.is_active(7_001));
    let again = store.revoke_token("tok-b", 9_000).await.unwrap();
    assert_eq!(again.revoked_at_ms, Some(7_000));
    let seen = store.token_by_hash("bb22").await.unwrap().unwrap();
    assert_eq!(seen.revoked_at_ms, Some(7_000));
    match store.revoke_token("tok-zz", 1).await {
        Err(StoreError::NoToken(id)) => assert_eq!(id, "tok-zz"),
        other => panic!("expected NoToken, got {other:?}"),
    }
    // Revoked tokens stay listed (who had access, until when).
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);
}

/// The database holds the hash the caller gave and nothing it was not given: a secret never
/// passed to the store cannot be in it. The server's tests check that the hash is not the secret.
pub async fn tokens_are_stored_as_given_hashes(store: Arc<dyn Store>, url: String) {
    store
        .create_token(&token("tok-h", "0123abcd", &[("a", AccessRole::Viewer)], 1))
        .await
        .unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT id, subject, secret_hash, bindings FROM api_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("secret_hash"), "0123abcd");
    let bindings: String = row.get("bindings");
    let v: serde_json::Value = serde_json::from_str(&bindings).unwrap();
    assert_eq!(v[0]["namespace"], "a");
    assert_eq!(v[0]["role"], "viewer");
    conn.close().await.unwrap();
}

pub async fn lists_and_selections_keep_to_the_namespaces_given(store: Arc<dyn Store>) {
    for (id, ns, at) in [
        ("j1", "a", 1),
        ("j2", "b", 2),
        ("j3", "c", 3),
        ("j4", "a", 4),
    ] {
        store.insert_job(&job(id, ns, "normal", at)).await.unwrap();
    }
    let list = |nss: Option<Vec<&'static str>>| {
        let store = store.clone();
        let nss: Option<Vec<String>> = nss.map(|v| v.into_iter().map(String::from).collect());
        async move {
            let f = JobFilter {
                namespace_in: nss,
                ..Default::default()
            };
            let mut ids = Vec::new();
            let mut cursor = None;
            // Pages of one: the scope holds across pages.
            loop {
                let page = store.list_jobs(&f, 1, cursor.as_deref()).await.unwrap();
                ids.extend(page.jobs.into_iter().map(|j| j.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            ids
        }
    };
    assert_eq!(list(None).await, ["j4", "j3", "j2", "j1"]);
    assert_eq!(list(Some(vec!["a"])).await, ["j4", "j1"]);
    assert_eq!(list(Some(vec!["a", "c"])).await, ["j4", "j3", "j1"]);
    assert!(list(Some(vec![])).await.is_empty(), "no namespace: no job");
    assert!(list(Some(vec!["zz"])).await.is_empty());
    // With another filter too.
    let f = JobFilter {
        namespace: Some("b".into()),
        namespace_in: Some(vec!["a".into()]),
        ..Default::default()
    };
    assert!(store.list_jobs(&f, 10, None).await.unwrap().jobs.is_empty());

    let select = |nss: Option<Vec<&'static str>>| {
        let store = store.clone();
        let nss: Option<Vec<String>> = nss.map(|v| v.into_iter().map(String::from).collect());
        async move {
            let mut f = SetFilter::all(JobSet::Queued);
            f.namespace_in = nss;
            assert!(!f.narrows(), "a caller's scope is not an explicit filter");
            let mut ids: Vec<String> = store
                .select_jobs(&f, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.job.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(select(None).await, ["j1", "j2", "j3", "j4"]);
    assert_eq!(select(Some(vec!["b", "c"])).await, ["j2", "j3"]);
    assert!(select(Some(vec![])).await.is_empty());
    // A NUL in a scope namespace is invalid input, as in every filter.
    let mut f = SetFilter::all(JobSet::Queued);
    f.namespace_in = Some(vec!["a\0".into()]);
    assert!(matches!(
        store.select_jobs(&f, 1).await,
        Err(StoreError::InvalidInput { .. })
    ));
}

fn entry(id: &str, at: i64, actor: &str, action: &str, ns: Option<&str>) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        at_ms: at,
        actor: actor.into(),
        subject: format!("{actor}'s subject"),
        action: action.into(),
        namespace: ns.map(String::from),
        target: Some(format!("target-{id}")),
        detail: None,
        peer: Some("127.0.0.1:5555".into()),
    }
}

pub async fn audit_log_filters_and_retention(store: Arc<dyn Store>) {
    let entries = [
        entry("01", 1_000, "tok-a", "job.submit", Some("a")),
        entry("02", 2_000, "tok-b", "job.cancel", Some("b")),
        entry("03", 3_000, "tok-a", "token.create", None),
        entry("04", 3_000, "tok-a", "job.submit", Some("b")),
    ];
    for e in &entries {
        store.record_audit(e).await.unwrap();
    }
    // Free text is kept storable; exact values with NUL are refused.
    let mut odd = entry("05", 4_000, "tok-a", "job.submit", Some("a"));
    odd.detail = Some("filter label=x\0y".into());
    store.record_audit(&odd).await.unwrap();
    let mut bad = entry("06", 4_000, "tok-a", "job.submit", Some("a\0"));
    bad.detail = None;
    assert!(matches!(
        store.record_audit(&bad).await,
        Err(StoreError::InvalidInput { .. })
    ));

    let ids = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = store.audit_log(&AuditFilter::default(), 100).await.unwrap();
    assert_eq!(all[0].detail.as_deref(), Some("filter label=x\u{FFFD}y"));
    assert_eq!(all[1], entries[3], "round trip");
    assert_eq!(ids(all), ["05", "04", "03", "02", "01"]);
    let by = |f: AuditFilter| {
        let store = store.clone();
        async move { ids(store.audit_log(&f, 100).await.unwrap()) }
    };
    assert_eq!(
        by(AuditFilter {
            namespace: Some("b".into()),
            ..Default::default()
        })
        .await,
        ["04", "02"]
    );
    assert_eq!(
        by(AuditFilter {
            actor: Some("tok-a".into()),
            action: Some("job.submit".into()),
            ..Default::default()
        })
        .await,
        ["05", "04", "01"]
    );
    assert_eq!(
        by(AuditFilter {
            since_ms: Some(2_000),
            until_ms: Some(3_001),
            ..Default::default()
        })
        .await,
        ["04", "03", "02"]
    );
    assert_eq!(
        ids(store.audit_log(&AuditFilter::default(), 2).await.unwrap()),
        ["05", "04"]
    );
    // Retention: entries before the cut go, the rest stay.
    assert_eq!(store.purge_audit(3_000).await.unwrap(), 2);
    assert_eq!(by(AuditFilter::default()).await, ["05", "04", "03"]);
    assert_eq!(store.purge_audit(3_000).await.unwrap(), 0);
}

/// `record_audits` (group commit): every good entry is written, a bad one gets its own error
/// and does not stop the others; a duplicate id fails only its entry.
pub async fn audit_batch(store: Arc<dyn Store>) {
    let mut bad = entry("b2", 2_000, "tok-a", "job.submit", Some("a\0"));
    bad.detail = None;
    let batch = [
        entry("b1", 1_000, "tok-a", "job.submit", Some("a")),
        bad,
        entry("b3", 3_000, "tok-b", "job.cancel", Some("b")),
    ];
    let results = store.record_audits(&batch).await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::InvalidInput { .. })),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    // A second batch repeating an id: the repeat fails alone, the new entry is written.
    let again = [
        entry("b4", 4_000, "tok-a", "job.submit", Some("a")),
        entry("b1", 5_000, "tok-a", "job.submit", Some("a")),
    ];
    let results = store.record_audits(&again).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[1].is_err(), "a repeated id is refused");
    assert!(store.record_audits(&[]).await.is_empty());
    let ids: Vec<String> = store
        .audit_log(&AuditFilter::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["b4", "b3", "b1"]);
}
