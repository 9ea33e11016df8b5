//! The API tokens a single server has looked up, kept in memory so that a request does not
//! read its token from the store each time.
//!
//! Only where this server is the only one (SQLite: one server per database; with PostgreSQL
//! every replica reads the store at each request, since a revocation may come through another
//! replica). A token's record changes only when it is revoked, and on SQLite every revocation
//! goes through this server's store ([`crate::queue::TrackedStore::revoke_token`]), which
//! forgets every kept token when it returns: a revoked token is refused at the very next
//! request, as without the cache. Expiry is checked at each request from the kept record.
//!
//! Only tokens found and not revoked are kept (never an unknown or revoked one), keyed by the
//! secret's hash (the secret itself is not kept), at most [`MAX_TOKENS`] (all are dropped when
//! it is full). A lookup that raced a revocation (it read the token before the revocation
//! committed and would keep it after the revocation forgot everything) is not kept: each
//! revocation moves a generation counter, and a record is kept only if the counter did not move
//! since its lookup began.
//!
//! Measured (BENCHMARKS.md, issue 12): the store lookup took about a third of the server's CPU
//! per submit on SQLite (three of the pool's four connection threads busy with it).

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_store::TokenRecord;

/// The most tokens kept; when full, all are dropped and kept again as they are used.
pub const MAX_TOKENS: usize = 10_000;

/// Tokens kept by the hash of their secret, and the revocation generation.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    tokens: HashMap<String, TokenRecord>,
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves at worst a map to drop: start afresh.
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.tokens.clear();
            inner.generation += 1;
            inner
        })
    }

    /// The kept record of the token whose secret hashes to `secret_hash`, or, if none is kept,
    /// the generation to pass to [`TokenCache::keep`] after reading it from the store.
    pub fn get(&self, secret_hash: &str) -> Result<TokenRecord, u64> {
        let inner = self.lock();
        inner
            .tokens
            .get(secret_hash)
            .cloned()
            .ok_or(inner.generation)
    }

    /// Keeps `rec`, read from the store at `generation`, if it is not revoked and no
    /// revocation happened since. (An expired one may be kept: expiry is checked at each
    /// request.)
    pub fn keep(&self, rec: &TokenRecord, generation: u64) {
        if rec.revoked_at_ms.is_some() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.tokens.len() >= MAX_TOKENS {
            inner.tokens.clear();
        }
        inner.tokens.insert(rec.secret_hash.clone(), rec.clone());
    }

    /// Forgets every kept token (a token was revoked, or may have been).
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tokens.clear();
    }

    /// How many tokens are kept.
    pub fn len(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
