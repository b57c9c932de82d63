//! A TCP proxy between one operator replica and the API server, whose traffic a test delays,
//! holds or cuts. TLS passes through untouched: the replica still checks the API server's
//! certificate (issued for 127.0.0.1, where the proxy listens too).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with the bytes it carries, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Each chunk waits this long (in order), as a slow network carries it.
    Delay(Duration),
    /// Nothing goes through; what was sent waits (a request hangs, unanswered).
    Hang,
    /// Every connection closed, new ones refused.
    Cut,
}

pub struct Proxy {
    pub port: u16,
    state: watch::Sender<State>,
    task: JoinHandle<()>,
}

/// The mode, and how many cuts there have been: a connection held through a cut is closed even
/// if the mode is Pass again by the time it looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    mode: Mode,
    cuts: u64,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`), passing everything until told otherwise.
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
        let port = listener.local_addr().expect("a bound port").port();
        let (tx, rx) = watch::channel(State { mode: Mode::Pass, cuts: 0 });
        let task = tokio::spawn(async move {
            // The connections' tasks, aborted with this one (a JoinSet aborts its tasks when
            // dropped): nothing goes on forwarding after the proxy is gone.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if rx.borrow().mode == Mode::Cut {
                    continue; // dropped: the connection is refused
                }
                let (rx, upstream) = (rx.clone(), upstream.clone());
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    // Either way ending (or a cut) drops both halves: the connection closes.
                    tokio::select! {
                        _ = pipe(client_read, server_write, rx.clone()) => {}
                        _ = pipe(server_read, client_write, rx) => {}
                    }
                });
            }
        });
        Proxy { port, state: tx, task }
    }

    pub fn set(&self, mode: Mode) {
        self.state.send_modify(|s| {
            s.mode = mode;
            s.cuts += u64::from(mode == Mode::Cut);
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<State>) {
    let mut buf = vec![0u8; 16 * 1024];
    let cuts = state.borrow().cuts;
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = state.wait_for(|s| s.cuts != cuts) => return,
        };
        loop {
            let now = *state.borrow_and_update();
            if now.cuts != cuts {
                return;
            }
            match now.mode {
                Mode::Pass => break,
                Mode::Delay(d) => {
                    tokio::time::sleep(d).await;
                    break;
                }
                Mode::Cut => return,
                Mode::Hang => {
                    if state.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The API server's `host:port`, from a kubeconfig's first cluster.
pub fn upstream(kubeconfig: &std::path::Path) -> anyhow::Result<String> {
    let k: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    let server = k["clusters"][0]["cluster"]["server"].as_str().unwrap_or_default();
    let host = server.trim_start_matches("https://").trim_end_matches('/');
    anyhow::ensure!(!host.is_empty(), "{} names no server", kubeconfig.display());
    Ok(host.to_string())
}
