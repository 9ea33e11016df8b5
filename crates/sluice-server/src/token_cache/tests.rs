use std::sync::Arc;

use sluice_backend::clock::SystemClock;
use sluice_core::access::{AccessRole, Binding};
use sluice_core::spec::Levels;
use sluice_store::{NewToken, Store, TokenRecord};

use super::{MAX_TOKENS, TokenCache};
use crate::queue::{QueueBook, TrackedStore};

fn record(hash: &str) -> TokenRecord {
    TokenRecord {
        id: format!("tok_{hash}"),
        subject: "alice".into(),
        secret_hash: hash.into(),
        bindings: vec![Binding::new("*", AccessRole::Viewer).unwrap()],
        created_at_ms: 0,
        created_by: None,
        expires_at_ms: None,
        revoked_at_ms: None,
    }
}

#[test]
fn keeps_found_tokens_never_revoked_ones_nor_one_read_before_a_revocation() {
    let cache = TokenCache::default();
    let g = cache.get("h1").unwrap_err();
    cache.keep(&record("h1"), g);
    assert_eq!(cache.get("h1").unwrap().id, "tok_h1");

    let mut revoked = record("h2");
    revoked.revoked_at_ms = Some(5);
    let g = cache.get("h2").unwrap_err();
    cache.keep(&revoked, g);
    assert!(cache.get("h2").is_err(), "a revoked token is never kept");

    // Read from the store before a revocation forgot everything: not kept afterwards.
    let g = cache.get("h3").unwrap_err();
    cache.forget_all();
    assert!(cache.get("h1").is_err(), "forgotten");
    cache.keep(&record("h3"), g);
    assert!(cache.get("h3").is_err(), "read before the revocation");
    let g = cache.get("h3").unwrap_err();
    cache.keep(&record("h3"), g);
    assert!(cache.get("h3").is_ok());
}

#[test]
fn a_full_cache_starts_afresh() {
    let cache = TokenCache::default();
    for i in 0..MAX_TOKENS {
        let h = format!("h{i}");
        let g = cache.get(&h).unwrap_err();
        cache.keep(&record(&h), g);
    }
    assert_eq!(cache.len(), MAX_TOKENS);
    let g = cache.get("one-more").unwrap_err();
    cache.keep(&record("one-more"), g);
    assert_eq!(cache.len(), 1);
    assert!(cache.get("one-more").is_ok());
}

/// Through the server's store on SQLite: a token is read from the store once, then kept; a
/// revocation through the server's store is seen at the very next lookup. (A revocation
/// written behind the server's back, straight into the database, is not: why the cache is
/// only for a server that is the only one on its database.)
#[tokio::test]
async fn a_revocation_through_the_server_is_seen_at_the_next_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let inner = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let book = Arc::new(QueueBook::new(
        Arc::new(Levels::default()),
        Arc::new(SystemClock),
    ));
    let store = TrackedStore::new(inner.clone(), book).caching_tokens();
    for (id, hash) in [("tok_a", "ha"), ("tok_b", "hb")] {
        store
            .create_token(&NewToken {
                id: id.into(),
                subject: "alice".into(),
                secret_hash: hash.into(),
                bindings: vec![Binding::new("*", AccessRole::Viewer).unwrap()],
                created_at_ms: 1,
                created_by: None,
                expires_at_ms: None,
            })
            .await
            .unwrap();
    }
    assert!(store.token_by_hash("nope").await.unwrap().is_none());
    assert_eq!(
        store.token_by_hash("ha").await.unwrap().unwrap().id,
        "tok_a"
    );
    assert_eq!(
        store.token_by_hash("hb").await.unwrap().unwrap().id,
        "tok_b"
    );

    // Behind the server's back: the kept record still answers.
    inner.revoke_token("tok_b", 10).await.unwrap();
    let b = store.token_by_hash("hb").await.unwrap().unwrap();
    assert_eq!(b.revoked_at_ms, None, "served from the cache");

    // Through the server's store: the next lookup reads the store again.
    store.revoke_token("tok_a", 20).await.unwrap();
    let a = store.token_by_hash("ha").await.unwrap().unwrap();
    assert_eq!(a.revoked_at_ms, Some(20));
    let b = store.token_by_hash("hb").await.unwrap().unwrap();
    assert_eq!(b.revoked_at_ms, Some(10));
    // Revoked records are not kept: read again each time.
    store.revoke_token("tok_a", 30).await.ok();
    assert!(
        store
            .token_by_hash("ha")
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
}
