//! A loopback TCP proxy in front of one broker port that can silently stop forwarding: the stall the watchdog
//! must notice. `black_hole_existing` makes every open connection drop what it reads in both directions while
//! its sockets stay open (no FIN, no RST: the peer sees silence); connections accepted afterwards forward
//! normally, so a client recovers only by opening new connections. Runs on a runtime of its own (one thread),
//! so a test that blocks its own thread (the harness's Kafka helpers do) never stalls the proxy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy; dropping it stops it (and closes every connection).
pub struct Proxy {
    /// The loopback port it listens on.
    pub port: u16,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Default)]
struct State {
    upstream: Mutex<Option<String>>,
    /// One switch per connection accepted: set, it drops what it reads.
    connections: Mutex<Vec<Arc<AtomicBool>>>,
}

impl Proxy {
    /// Listens on a free loopback port; forwards nowhere until [`Proxy::forward_to`].
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let listener = {
            let _in_runtime = runtime.enter();
            TcpListener::from_std(std_listener).unwrap()
        };
        let state = Arc::new(State::default());
        runtime.spawn(accept(listener, Arc::clone(&state)));
        Self {
            port,
            state,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where connections go (`host:port`).
    pub fn forward_to(&self, upstream: &str) {
        *self.state.upstream.lock().unwrap() = Some(upstream.to_owned());
    }

    /// Every connection open now goes silent for good (it reads and drops, both ways; its sockets stay
    /// open); new connections forward. Returns how many went silent.
    pub fn black_hole_existing(&self) -> usize {
        let conns = self.state.connections.lock().unwrap();
        for c in conns.iter() {
            c.store(true, Ordering::SeqCst);
        }
        conns.len()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.connections.lock().unwrap().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
        let upstream = state.upstream.lock().unwrap().clone();
        let Some(upstream) = upstream else { continue };
        let Ok(server) = TcpStream::connect(&upstream).await else {
            continue;
        };
        let silent = Arc::new(AtomicBool::new(false));
        state.connections.lock().unwrap().push(Arc::clone(&silent));
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::spawn(pump(cr, sw, Arc::clone(&silent)));
        tokio::spawn(pump(sr, cw, silent));
    }
}

/// Copies `from` to `to` until `from` ends, dropping what it reads once `silent` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if !silent.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    }
}
