//! The HTTP server's accept loop: at most `limits.max_connections` connections served at once
//! (further ones wait in the kernel's backlog), each given `limits.header_timeout_secs` to send
//! a request's headers (which also closes a connection idle between requests), the peer's
//! address passed to the router (`ConnectInfo`) for the rate limit, and an accept error (out of
//! file descriptors) survived instead of ending the server. With `[tls]`, each connection is
//! a TLS handshake first (given the same header timeout), after a check that the certificate
//! files have not changed ([`crate::tls`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::LimitsConfig;
use crate::tls::Tls;

/// How long a shutdown waits for the connections in flight to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` under `limits` (over TLS when `tls` is given) until
/// `shutdown` completes; then stops accepting and waits (up to 10 s) for the connections in
/// flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handshake_timeout = Duration::from_secs(limits.header_timeout_secs);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs));
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment and go on, as the next accept may succeed.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        );
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                        .with_upgrades()
                        .await
                }
                Some(tls) => {
                    tls.certificates.reload_if_changed();
                    match tokio::time::timeout(handshake_timeout, tls.acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            http.serve_connection(
                                TokioIo::new(stream),
                                TowerToHyperService::new(svc),
                            )
                            .with_upgrades()
                            .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection: {e}");
            }
            drop(permit);
        });
    }
    // Wait for the connections in flight: every slot free again.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    Ok(())
}

/// Raises the open-file soft limit to `target` (never above the hard limit, never lowers it):
/// the soft limit before and after.
pub fn raise_open_files(target: u64) -> Result<(u64, u64), nix::Error> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = target.min(hard);
    if want > soft {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard)?;
        return Ok((soft, want));
    }
    Ok((soft, soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_up_to_the_hard_limit() {
        use nix::sys::resource::{Resource, getrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let (_, now) = raise_open_files(u64::MAX).unwrap();
        assert_eq!(now, hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
        // Never lowered.
        let (before, after) = raise_open_files(1).unwrap();
        assert_eq!(before, after);
    }
}
