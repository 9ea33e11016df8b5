//! What a follower asks the leader: why a queued job waits, and its place in the queue. Only
//! the leader's scheduling cycle knows (see [`crate::state::CycleView`]); a follower reads the
//! leader's address from the lease ([`crate::leader::holder_address`]) and asks its
//! `GET /v1/jobs/{id}` with the caller's own credentials, so the answer is exactly what the
//! caller may see there. Bounded by [`ASK_TIMEOUT`]; any failure leaves the wait unknown.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::HeaderValue;

use crate::leader::{LEASE_NAME, holder_address};
use crate::state::{AppState, WaitInfo};

/// How long a follower waits for the leader's answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            sluice_backend::install_crypto_provider();
            reqwest::Client::builder()
                .timeout(ASK_TIMEOUT)
                .build()
                .map_err(|e| tracing::warn!("building the client to the leader: {e}"))
                .ok()
        })
        .as_ref()
}

/// The leader's wait information for queued job `id`, asked with `authorization`; none when
/// this replica leads, no leader gave an address, or the leader does not answer in time.
pub async fn leader_wait(
    st: &AppState,
    authorization: Option<&HeaderValue>,
    id: &str,
) -> Option<WaitInfo> {
    if !st.leader.is_elected() || st.leader.holds() {
        return None;
    }
    let lease = st.store.get_lease(LEASE_NAME).await.ok()??;
    if lease.expired() {
        return None;
    }
    let address = holder_address(&lease.holder)?;
    let mut req = client()?.get(format!("{address}/v1/jobs/{id}"));
    if let Some(auth) = authorization {
        req = req.header(axum::http::header::AUTHORIZATION, auth.clone());
    }
    let resp = match req.send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            tracing::debug!(job = %id, status = %r.status(), "the leader did not say why the job waits");
            return None;
        }
        Err(e) => {
            tracing::debug!(job = %id, "asking the leader why the job waits: {e}");
            return None;
        }
    };
    let body: serde_json::Value = resp.json().await.ok()?;
    serde_json::from_value(body.get("wait")?.clone()).ok()
}
