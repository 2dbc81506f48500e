//! A loopback TCP proxy in front of one broker port that can silently stop forwarding: the stall the watchdog
//! must notice. `black_hole_existing` makes every open connection drop what it reads in both directions while
//! its sockets stay open (no FIN, no RST: the peer sees silence); connections accepted afterwards forward
//! normally, so a client recovers only by opening new connections. `hold_answers_after` lets one kind of Kafka
//! request through and then holds every answer of the broker for a while: the request took effect, the client
//! does not know it yet (a commit whose outcome is unknown). Runs on a runtime of its own (one thread), so a
//! test that blocks its own thread (the harness's Kafka helpers do) never stalls the proxy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Armed by [`Proxy::hold_answers_after`]: the request's API key and how long to hold the answers.
    hold_after: Mutex<Option<(i16, Duration)>>,
    /// Until when the broker's answers are held (on every connection).
    held_until: Mutex<Option<Instant>>,
    /// How many holds started.
    holds: AtomicUsize,
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

    /// Once a request with Kafka API key `api_key` (e.g. 26, EndTxn) has been passed to the broker, every
    /// answer of the broker, on every connection, waits `hold` before it reaches the client (nothing is
    /// lost; requests still pass). Once.
    pub fn hold_answers_after(&self, api_key: i16, hold: Duration) {
        *self.state.hold_after.lock().unwrap() = Some((api_key, hold));
    }

    /// How many holds [`Proxy::hold_answers_after`] started.
    pub fn holds(&self) -> usize {
        self.state.holds.load(Ordering::SeqCst)
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
        let to_broker = Direction::ToBroker(Frames::default(), Arc::clone(&state));
        let to_client = Direction::ToClient(Arc::clone(&state));
        tokio::spawn(pump(cr, sw, Arc::clone(&silent), to_broker));
        tokio::spawn(pump(sr, cw, silent, to_client));
    }
}

/// Which way a pump copies.
enum Direction {
    /// Client → broker: requests, whose API keys are read to start a hold.
    ToBroker(Frames, Arc<State>),
    /// Broker → client: answers, held while a hold lasts.
    ToClient(Arc<State>),
}

/// Where the client's byte stream is in its request frames (4-byte size, then the header, whose first two
/// bytes are the API key).
#[derive(Default)]
struct Frames {
    /// Bytes of the current frame still to pass.
    rest: usize,
    /// The size and API key read so far of the next frame.
    head: Vec<u8>,
}

impl Frames {
    /// The API keys of the requests that start in `bytes`.
    fn keys(&mut self, mut bytes: &[u8]) -> Vec<i16> {
        let mut keys = Vec::new();
        while !bytes.is_empty() {
            if self.rest > 0 {
                let n = self.rest.min(bytes.len());
                self.rest -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (6 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.head.len() == 6 {
                let size = u32::from_be_bytes(self.head[..4].try_into().unwrap()) as usize;
                keys.push(i16::from_be_bytes(self.head[4..6].try_into().unwrap()));
                self.rest = size.saturating_sub(2);
                self.head.clear();
            }
        }
        keys
    }
}

impl Direction {
    /// Before `bytes` are written on: waits out a hold (answers), or starts one (requests).
    async fn before_write(&mut self, bytes: &[u8]) {
        match self {
            Self::ToBroker(frames, state) => {
                let keys = frames.keys(bytes);
                let mut armed = state.hold_after.lock().unwrap();
                if let Some((key, hold)) = *armed
                    && keys.contains(&key)
                {
                    *armed = None;
                    *state.held_until.lock().unwrap() = Some(Instant::now() + hold);
                    state.holds.fetch_add(1, Ordering::SeqCst);
                }
            }
            Self::ToClient(state) => {
                let until = *state.held_until.lock().unwrap();
                if let Some(until) = until {
                    tokio::time::sleep_until(until.into()).await;
                }
            }
        }
    }
}

/// Copies `from` to `to` until `from` ends, dropping what it reads once `silent` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
    mut direction: Direction,
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
        direction.before_write(&buf[..n]).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if !silent.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    }
}
