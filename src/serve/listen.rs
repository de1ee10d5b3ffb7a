//! The connections: accepted, and served by hyper's HTTP/1 server under axum's router, with
//! hyper's own timeout for reading a request's headers (`--read-timeout`; axum's `serve` takes
//! no settings, and its documentation sends those who need some to hyper and hyper-util), and
//! hyper-util's graceful shutdown: once the stop signal comes, no new connections; open ones
//! close when their answers end (the schedulers end what still streams at the grace period),
//! and any still open `CLOSE_AFTER` past the grace period, whatever its client does, is
//! dropped.
//!
//! Owns accepting, the connections' settings and how long shutdown may take. Does not route
//! or answer (`server`).

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long past the grace period the connections still open are waited for: time for the
/// schedulers' last error events to go out.
pub const CLOSE_AFTER: Duration = Duration::from_millis(500);

/// How the connections are served.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A request's headers must arrive within this time of the connection's first wait for
    /// them (hyper closes the connection otherwise).
    pub read_timeout: Duration,
    /// Open streams get this long to finish after `stop`.
    pub grace: Duration,
}

/// Serves `router` on `listener` until `stop` completes, then shuts down within the grace
/// period and `CLOSE_AFTER`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    s: Settings,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Server-sent events are many small writes: send each at once.
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(router.clone());
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(s.read_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                // Out of file descriptors, say: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            () = &mut stop => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(s.grace + CLOSE_AFTER, graceful.shutdown()).await;
}
