//! WebSocket market streams: raw (`/ws/<stream>`) and combined
//! (`/stream?streams=a/b`) endpoints, SUBSCRIBE / UNSUBSCRIBE /
//! LIST_SUBSCRIPTIONS, server pings with a pong deadline, a limit on
//! incoming messages and streams per connection, a connection lifetime that
//! ends with a `serverShutdown` event, and the replay endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig,
};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::config::Stats;
use super::rest::SimBody;
use super::state::{Kind, Shared};

fn plain(status: u16, code: i64, msg: &str) -> Response<SimBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8")
        .body(SimBody::Full(Some(Bytes::from(format!(
            "{{\"code\":{code},\"msg\":{}}}",
            serde_json::Value::from(msg)
        )))))
        .unwrap_or_else(|_| Response::new(SimBody::Full(None)))
}

/// Whether a request is for one of the WebSocket endpoints.
pub fn is_ws_path(path: &str) -> bool {
    path == "/ws" || path.starts_with("/ws/") || path == "/stream" || path == "/replay"
}

/// Answers the upgrade request and starts the connection's task.
pub fn upgrade(sh: Arc<Shared>, mut req: Request<Incoming>) -> Response<SimBody> {
    if sh.faults.read().maintenance {
        Stats::inc(&sh.stats.injected_maintenance);
        return plain(
            503,
            -1016,
            "This service is no longer available: system maintenance.",
        );
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return plain(400, -1000, "A WebSocket upgrade is expected on this path.");
    };
    let replay = path == "/replay";
    let mut streams: Vec<String> = Vec::new();
    let mut combined = false;
    let mut count: u64 = 0;
    if replay {
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k == "count" {
                match v.parse() {
                    Ok(n) => count = n,
                    Err(_) => {
                        return plain(400, -1100, "Illegal characters found in parameter 'count'.")
                    }
                }
            }
        }
    } else if path == "/stream" {
        combined = true;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k == "streams" {
                streams.extend(v.split('/').filter(|s| !s.is_empty()).map(str::to_string));
            }
        }
    } else if let Some(rest) = path.strip_prefix("/ws/") {
        streams.extend(
            rest.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    if streams.len() > sh.cfg.ws_max_streams {
        return plain(
            400,
            -1000,
            &format!(
                "Too many streams: at most {} per connection.",
                sh.cfg.ws_max_streams
            ),
        );
    }
    let mut subs = Vec::new();
    for s in &streams {
        match sh.parse_stream(s) {
            Some(x) => subs.push((x, s.clone())),
            None => return plain(400, -1121, &format!("Invalid stream name {s:?}.")),
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = on_upgrade.await else { return };
        let io = TokioIo::new(io);
        if replay {
            run_replay(sh, io, count).await;
        } else {
            let mut cfg = WebSocketConfig::default();
            cfg.max_message_size = Some(1 << 16);
            cfg.max_frame_size = Some(1 << 16);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg)).await;
            Connection::new(sh, combined, subs).run(ws).await;
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", key)
        .body(SimBody::Full(None))
        .unwrap_or_else(|_| Response::new(SimBody::Full(None)))
}

struct Connection {
    sh: Arc<Shared>,
    combined: bool,
    subs: HashMap<(usize, Kind), String>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (sym, kind) in self.subs.keys() {
            self.sh.want(*sym, *kind, false);
        }
        self.sh
            .stats
            .ws_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

struct Reply(String);

impl Connection {
    fn new(sh: Arc<Shared>, combined: bool, initial: Vec<((usize, Kind), String)>) -> Connection {
        Stats::inc(&sh.stats.ws_connections);
        Stats::inc(&sh.stats.ws_open);
        let mut c = Connection {
            sh,
            combined,
            subs: HashMap::new(),
        };
        for (k, name) in initial {
            c.subscribe(k, name);
        }
        c
    }

    fn subscribe(&mut self, k: (usize, Kind), name: String) {
        if !self.subs.contains_key(&k) {
            self.sh.want(k.0, k.1, true);
            self.subs.insert(k, name);
        }
    }

    fn message(&mut self, text: &str) -> Reply {
        let err = |code: i64, msg: String, id: &serde_json::Value| {
            Reply(serde_json::json!({"error": {"code": code, "msg": msg}, "id": id}).to_string())
        };
        let null = serde_json::Value::Null;
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return err(3, format!("Invalid JSON: {e}"), &null),
        };
        let Some(obj) = v.as_object() else {
            return err(2, "Invalid request: expected an object".into(), &null);
        };
        let id = obj.get("id").cloned().unwrap_or(serde_json::Value::Null);
        if !(id.is_null() || id.is_u64() || id.is_i64() || id.is_string()) {
            return err(
                1,
                "Invalid value type: expected an integer, a string or null for 'id'".into(),
                &null,
            );
        }
        for k in obj.keys() {
            if !matches!(k.as_str(), "method" | "params" | "id") {
                return err(0, format!("Unknown property '{k}'"), &id);
            }
        }
        let Some(method) = obj.get("method").and_then(|m| m.as_str()) else {
            return err(
                1,
                "Invalid value type: expected a string for 'method'".into(),
                &id,
            );
        };
        let params: Vec<serde_json::Value> = match obj.get("params") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(a)) => a.clone(),
            Some(_) => {
                return err(
                    1,
                    "Invalid value type: expected an array for 'params'".into(),
                    &id,
                )
            }
        };
        let ok = |result: serde_json::Value| {
            Reply(serde_json::json!({"result": result, "id": id}).to_string())
        };
        match method {
            "SUBSCRIBE" | "UNSUBSCRIBE" => {
                let mut parsed = Vec::new();
                for p in &params {
                    let Some(name) = p.as_str() else {
                        return err(
                            1,
                            "Invalid value type: expected a string stream name".into(),
                            &id,
                        );
                    };
                    match self.sh.parse_stream(name) {
                        Some(k) => parsed.push((k, name.to_string())),
                        None => {
                            return err(2, format!("Invalid request: unknown stream '{name}'"), &id)
                        }
                    }
                }
                if method == "SUBSCRIBE" {
                    let new = parsed
                        .iter()
                        .filter(|(k, _)| !self.subs.contains_key(k))
                        .count();
                    if self.subs.len() + new > self.sh.cfg.ws_max_streams {
                        return err(
                            2,
                            format!(
                                "Invalid request: too many streams, at most {} per connection",
                                self.sh.cfg.ws_max_streams
                            ),
                            &id,
                        );
                    }
                    for (k, name) in parsed {
                        self.subscribe(k, name);
                    }
                } else {
                    for (k, _) in parsed {
                        if self.subs.remove(&k).is_some() {
                            self.sh.want(k.0, k.1, false);
                        }
                    }
                }
                ok(serde_json::Value::Null)
            }
            "LIST_SUBSCRIPTIONS" => {
                let mut names: Vec<&String> = self.subs.values().collect();
                names.sort();
                ok(serde_json::json!(names))
            }
            "SET_PROPERTY" => match params.as_slice() {
                [serde_json::Value::String(p), serde_json::Value::Bool(b)] if p == "combined" => {
                    self.combined = *b;
                    ok(serde_json::Value::Null)
                }
                _ => err(
                    2,
                    "Invalid request: SET_PROPERTY takes [\"combined\", true|false]".into(),
                    &id,
                ),
            },
            "GET_PROPERTY" => match params.as_slice() {
                [serde_json::Value::String(p)] if p == "combined" => {
                    ok(serde_json::Value::Bool(self.combined))
                }
                _ => err(
                    2,
                    "Invalid request: GET_PROPERTY takes [\"combined\"]".into(),
                    &id,
                ),
            },
            _ => err(
                2,
                format!("Invalid request: unknown method '{method}'"),
                &id,
            ),
        }
    }

    fn frame(&self, ev: &super::state::Event) -> Option<Utf8Bytes> {
        let name = self.subs.get(&(ev.symbol, ev.kind))?;
        Some(if self.combined {
            ev.combined(name)
        } else {
            ev.raw.clone()
        })
    }

    async fn run<S>(mut self, ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let sh = self.sh.clone();
        let cfg = &sh.cfg;
        let (mut tx, mut rx) = ws.split();
        let mut events = sh.events.subscribe();
        let mut shutdown = sh.shutdown.subscribe();
        let mut ping = tokio::time::interval(sh.clock.wall(cfg.ws_ping_interval_ms));
        ping.tick().await;
        let pong_timeout = sh.clock.wall(cfg.ws_pong_timeout_ms);
        let lifetime = tokio::time::sleep(sh.clock.wall(cfg.ws_lifetime_ms));
        tokio::pin!(lifetime);
        let mut awaiting_pong: Option<Instant> = None;
        let rate_window = sh.clock.wall(1000);
        let mut window_start = Instant::now();
        let mut incoming = 0u32;
        let close = |code: CloseCode, reason: &'static str| {
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        };
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(RecvError::Lagged(n)) => {
                            sh.stats.ws_lagged.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        Err(RecvError::Closed) => break,
                    };
                    let drop_rate = sh.faults.read().ws_drop_rate;
                    let mut sent = 0u64;
                    let mut next = Some(ev);
                    while let Some(ev) = next.take() {
                        if let Some(f) = self.frame(&ev) {
                            if tx.feed(Message::Text(f)).await.is_err() {
                                return;
                            }
                            sent += 1;
                            if sh.dice.hit(drop_rate) {
                                Stats::inc(&sh.stats.injected_ws_drops);
                                let _ = tx.flush().await;
                                return;
                            }
                        }
                        if sent >= 256 {
                            break;
                        }
                        next = match events.try_recv() {
                            Ok(e) => Some(e),
                            Err(TryRecvError::Lagged(n)) => {
                                sh.stats.ws_lagged.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                                events.try_recv().ok()
                            }
                            Err(_) => None,
                        };
                    }
                    if sent > 0 {
                        sh.stats.ws_messages_sent.fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
                        if tx.flush().await.is_err() {
                            return;
                        }
                    }
                }
                msg = rx.next() => {
                    let Some(Ok(msg)) = msg else { return };
                    if matches!(msg, Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Binary(_)) {
                        Stats::inc(&sh.stats.ws_messages_received);
                        if window_start.elapsed() >= rate_window {
                            window_start = Instant::now();
                            incoming = 0;
                        }
                        incoming += 1;
                        if incoming > cfg.ws_max_incoming_per_s {
                            Stats::inc(&sh.stats.ws_rate_closes);
                            finish(&mut tx, &mut rx, close(CloseCode::Policy, "Too many messages")).await;
                            return;
                        }
                    }
                    match msg {
                        Message::Text(t) => {
                            let Reply(s) = self.message(t.as_str());
                            if tx.send(Message::Text(s.into())).await.is_err() {
                                return;
                            }
                        }
                        Message::Binary(_) => {
                            let reply = serde_json::json!({"error": {"code": 3, "msg": "Invalid JSON: binary frames are not accepted"}, "id": null});
                            if tx.send(Message::Text(reply.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                        Message::Ping(p) => {
                            if tx.send(Message::Pong(p)).await.is_err() {
                                return;
                            }
                        }
                        Message::Pong(_) => awaiting_pong = None,
                        Message::Close(_) => {
                            let _ = tx.close().await;
                            return;
                        }
                        Message::Frame(_) => {}
                    }
                }
                _ = ping.tick() => {
                    if awaiting_pong.is_some_and(|t| t.elapsed() >= pong_timeout) {
                        Stats::inc(&sh.stats.ws_pong_timeouts);
                        finish(&mut tx, &mut rx, close(CloseCode::Policy, "Pong timeout")).await;
                        return;
                    }
                    Stats::inc(&sh.stats.ws_pings);
                    let payload = Bytes::from(sh.server_ms().to_string());
                    if tx.send(Message::Ping(payload)).await.is_err() {
                        return;
                    }
                    awaiting_pong.get_or_insert_with(Instant::now);
                }
                _ = &mut lifetime => {
                    Stats::inc(&sh.stats.ws_lifetime_closes);
                    let ev = format!("{{\"e\":\"serverShutdown\",\"E\":{}}}", sh.server_ms());
                    let _ = tx.send(Message::Text(ev.into())).await;
                    finish(&mut tx, &mut rx, close(CloseCode::Away, "Connection lifetime reached")).await;
                    return;
                }
                _ = super::state::stopping(&mut shutdown) => {
                    let ev = format!("{{\"e\":\"serverShutdown\",\"E\":{}}}", sh.server_ms());
                    let _ = tx.send(Message::Text(ev.into())).await;
                    finish(&mut tx, &mut rx, close(CloseCode::Away, "Server shutting down")).await;
                    return;
                }
            }
            // a pong deadline can pass between pings when the ping interval
            // is longer than the deadline
            if awaiting_pong.is_some_and(|t| t.elapsed() >= pong_timeout) {
                Stats::inc(&sh.stats.ws_pong_timeouts);
                finish(&mut tx, &mut rx, close(CloseCode::Policy, "Pong timeout")).await;
                return;
            }
        }
    }
}

/// Sends a close frame and waits (briefly) for the client's, so that the
/// client sees a clean close with the server's code.
async fn finish<S>(
    tx: &mut futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    rx: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
    msg: Message,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if tx.send(msg).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(m)) = rx.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
}

/// One text frame as a server sends it (unmasked).
pub fn encode_text_frame(out: &mut BytesMut, payload: &[u8]) {
    out.put_u8(0x81);
    let n = payload.len();
    if n < 126 {
        out.put_u8(n as u8);
    } else if n <= 0xFFFF {
        out.put_u8(126);
        out.put_u16(n as u16);
    } else {
        out.put_u8(127);
        out.put_u64(n as u64);
    }
    out.put_slice(payload);
}

/// The default replay frames: `@trade` events of the first symbol from the
/// price process, pre-serialised.
pub fn default_replay_frames(sh: &Shared, n: usize) -> Vec<Bytes> {
    let s = &sh.specs[0];
    let t0 = sh.cfg.epoch_ms;
    (0..n)
        .map(|k| {
            let ms = t0 + k as i64 * 7;
            let p = sh.prices.price_at(s, ms);
            let q = sh.prices.trade_qty(s, ms, k as u64);
            Bytes::from(format!(
                "{{\"e\":\"trade\",\"E\":{ms},\"s\":\"{}\",\"t\":{},\"p\":\"{}\",\"q\":\"{}\",\"T\":{ms},\"m\":{},\"M\":true}}",
                s.name,
                1_000_000 + k,
                super::price::fmt8(p),
                super::price::fmt8(q),
                k % 2 == 0
            ))
        })
        .collect()
}

/// Sends `count` pre-serialised frames (cycling through the configured
/// list) as fast as the socket takes them, then a close frame.
async fn run_replay<S>(sh: Arc<Shared>, mut io: S, count: u64)
where
    S: tokio::io::AsyncWrite + Unpin,
{
    let frames = {
        let f = sh.replay.read().clone();
        if f.is_empty() {
            Arc::new(default_replay_frames(&sh, 4096))
        } else {
            f
        }
    };
    let mut ring = BytesMut::new();
    for f in frames.iter() {
        encode_text_frame(&mut ring, f);
    }
    let ring = ring.freeze();
    // offsets of frame boundaries so a partial cycle ends on a whole frame
    let mut bounds = Vec::with_capacity(frames.len() + 1);
    let mut off = 0usize;
    bounds.push(0);
    for f in frames.iter() {
        off += f.len()
            + if f.len() < 126 {
                2
            } else if f.len() <= 0xFFFF {
                4
            } else {
                10
            };
        bounds.push(off);
    }
    let per_cycle = frames.len() as u64;
    let mut left = count;
    // batch several cycles per write when cycles are small
    let reps = (65536 / ring.len().max(1)).max(1) as u64;
    let mut batch = BytesMut::with_capacity(ring.len() * reps as usize);
    for _ in 0..reps {
        batch.put_slice(&ring);
    }
    let batch = batch.freeze();
    while left > 0 {
        let (buf, n) = if left >= per_cycle * reps {
            (batch.clone(), per_cycle * reps)
        } else if left >= per_cycle {
            (ring.clone(), per_cycle)
        } else {
            (ring.slice(..bounds[left as usize]), left)
        };
        if io.write_all(&buf).await.is_err() {
            return;
        }
        left -= n;
        sh.stats
            .replay_frames
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = io.write_all(&[0x88, 0x02, 0x03, 0xE8]).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}
