//! Starting and stopping a simulated exchange on the shared runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::config::SimConfig;
use super::state::Shared;
use super::{market, rest, ws};
use crate::errors::{ErrorKind, FtError, FtResult};

/// A running simulated exchange.
pub struct Sim {
    pub shared: Arc<Shared>,
    pub addr: SocketAddr,
    /// Becomes true when the accept loop has ended.
    done: watch::Receiver<bool>,
}

impl Sim {
    /// Binds the listener and starts the server and the market on the
    /// runtime; returns once the port accepts connections.
    pub fn start(cfg: SimConfig) -> FtResult<Sim> {
        if !(cfg.time_scale.is_finite() && cfg.time_scale > 0.0) {
            return Err(FtError::config("time_scale must be a positive number"));
        }
        let handle = crate::runtime::handle()?;
        let shared = Arc::new(Shared::new(cfg).map_err(FtError::config)?);
        let std_listener = std::net::TcpListener::bind((shared.cfg.host.as_str(), shared.cfg.port))
            .map_err(|e| FtError::with_cause(ErrorKind::Config, "cannot listen", &e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| FtError::with_cause(ErrorKind::Ferrotick, "cannot listen", &e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| FtError::with_cause(ErrorKind::Ferrotick, "cannot listen", &e))?;
        let listener = {
            let _guard = handle.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| FtError::with_cause(ErrorKind::Ferrotick, "cannot listen", &e))?
        };
        let (done_tx, done) = watch::channel(false);
        handle.spawn(market::run(shared.clone()));
        let sh = shared.clone();
        handle.spawn(async move {
            accept_loop(sh, listener).await;
            let _ = done_tx.send(true);
        });
        Ok(Sim { shared, addr, done })
    }

    /// Stops accepting, closes every connection (WebSocket clients get a
    /// `serverShutdown` event) and stops the market.
    pub fn stop(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Resolves when the listener has closed.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut done = self.done.clone();
        async move {
            let _ = done.wait_for(|d| *d).await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(sh: Arc<Shared>, listener: tokio::net::TcpListener) {
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // out of descriptors or a reset during accept: go on
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = super::state::stopping(&mut shutdown) => return,
        };
        let _ = stream.set_nodelay(true);
        let sh = sh.clone();
        tokio::spawn(async move {
            let ip = peer.ip();
            let svc_sh = sh.clone();
            let svc = service_fn(move |req| {
                let sh = svc_sh.clone();
                async move {
                    if ws::is_ws_path(req.uri().path()) {
                        return Ok::<_, Infallible>(ws::upgrade(sh, req));
                    }
                    Ok(rest::handle(sh, ip, req).await)
                }
            });
            // writev: large cached bodies go to the socket without a copy
            let conn = http1::Builder::new()
                .keep_alive(true)
                .writev(true)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let mut shutdown = sh.shutdown.subscribe();
            tokio::select! {
                _ = conn => {}
                _ = super::state::stopping(&mut shutdown) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::Faults;
    use crate::sim::limits::LimitConfig;

    fn config() -> SimConfig {
        SimConfig {
            symbols: vec!["BTCUSDT".into()],
            seed: 1,
            epoch_ms: 1_704_067_200_000,
            time_scale: 1.0,
            host: "127.0.0.1".into(),
            port: 0,
            api_keys: vec![("k".into(), "s".into())],
            balances: vec![],
            limits: LimitConfig::default(),
            book_levels: 10,
            trade_rate: 10.0,
            ws_ping_interval_ms: 20_000,
            ws_pong_timeout_ms: 60_000,
            ws_lifetime_ms: 86_400_000,
            ws_max_streams: 1024,
            ws_max_incoming_per_s: 5,
            faults: Faults::default(),
        }
    }

    #[test]
    fn stopping_right_after_starting_closes_every_task() {
        let handle = crate::runtime::handle().unwrap();
        for _ in 0..20 {
            // stop before the spawned tasks had a chance to subscribe
            let sim = Sim::start(config()).unwrap();
            sim.stop();
            let closed = sim.closed();
            handle
                .block_on(async move { tokio::time::timeout(Duration::from_secs(5), closed).await })
                .expect("the listener closed");
        }
    }
}
