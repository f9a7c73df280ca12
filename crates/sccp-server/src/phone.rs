//! Tokio driver for the sans-IO [`PhoneSession`]: owns the TCP connections to the
//! CallManagers of the phone's list and runs its timers. The emulator reuses it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sccp::{PhoneAction, PhoneConfig, PhoneEvent, PhoneSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A snapshot of the phone's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneStatus {
    pub active: Option<usize>,
    pub standby: Option<usize>,
    pub in_service: bool,
    pub version: u8,
    pub lines: Vec<String>,
}

/// A running phone.
pub struct PhoneHandle {
    pub events: mpsc::UnboundedReceiver<PhoneEvent>,
    pub status: watch::Receiver<PhoneStatus>,
    cmd: mpsc::UnboundedSender<PhoneCmd>,
    task: JoinHandle<()>,
}

enum PhoneCmd {
    Unregister,
    Stop,
}

impl PhoneHandle {
    /// Waits until the status satisfies `pred`, at most `timeout`.
    pub async fn wait_status(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&PhoneStatus) -> bool,
    ) -> Option<PhoneStatus> {
        let fut = self.status.wait_for(|s| pred(s));
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Waits for an event matching `pred`, at most `timeout`.
    pub async fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&PhoneEvent) -> bool,
    ) -> Option<PhoneEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return Some(e),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    pub fn unregister(&self) {
        let _ = self.cmd.send(PhoneCmd::Unregister);
    }

    /// Closes every connection and ends the task.
    pub async fn stop(self) {
        let _ = self.cmd.send(PhoneCmd::Stop);
        let _ = self.task.await;
    }
}

/// Starts a phone that registers to `servers` (index 0 = primary).
pub fn spawn_phone(mut cfg: PhoneConfig, servers: Vec<SocketAddr>) -> PhoneHandle {
    cfg.servers = servers.len().max(1);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (st_tx, st_rx) = watch::channel(PhoneStatus::default());
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(drive(PhoneSession::new(cfg), servers, ev_tx, st_tx, cmd_rx));
    PhoneHandle {
        events: ev_rx,
        status: st_rx,
        cmd: cmd_tx,
        task,
    }
}

enum Inbound {
    Connected(usize, u64, TcpStream),
    Failed(usize, u64),
    Data(usize, u64, Vec<u8>),
    Closed(usize, u64),
}

struct Link {
    gen: u64,
    writer: Option<OwnedWriteHalf>,
    reader: Option<JoinHandle<()>>,
}

async fn drive(
    mut phone: PhoneSession,
    servers: Vec<SocketAddr>,
    ev_tx: mpsc::UnboundedSender<PhoneEvent>,
    st_tx: watch::Sender<PhoneStatus>,
    mut cmd_rx: mpsc::UnboundedReceiver<PhoneCmd>,
) {
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Inbound>();
    let mut links: Vec<Link> = servers
        .iter()
        .map(|_| Link {
            gen: 0,
            writer: None,
            reader: None,
        })
        .collect();
    let mut gen = 0u64;
    phone.start(Instant::now());
    loop {
        // Perform what the state machine asked for.
        while let Some(a) = phone.poll_action() {
            match a {
                PhoneAction::Connect(i) => {
                    gen += 1;
                    links[i].gen = gen;
                    let (addr, tx, g) = (servers[i], in_tx.clone(), gen);
                    tokio::spawn(async move {
                        let r =
                            tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
                                .await;
                        let _ = match r {
                            Ok(Ok(s)) => tx.send(Inbound::Connected(i, g, s)),
                            _ => tx.send(Inbound::Failed(i, g)),
                        };
                    });
                }
                PhoneAction::Send(i, bytes) => {
                    let failed = match links[i].writer.as_mut() {
                        Some(w) => w.write_all(&bytes).await.is_err(),
                        None => false,
                    };
                    if failed {
                        close_link(&mut links[i], &mut gen);
                        phone.handle_closed(i, Instant::now());
                    }
                }
                PhoneAction::Close(i) => close_link(&mut links[i], &mut gen),
            }
        }
        while let Some(e) = phone.poll_event() {
            let _ = ev_tx.send(e);
        }
        st_tx.send_if_modified(|s| {
            let n = PhoneStatus {
                active: phone.active(),
                standby: phone.standby(),
                in_service: phone.is_in_service(),
                version: phone.version(),
                lines: phone.lines().to_vec(),
            };
            let changed = *s != n;
            *s = n;
            changed
        });
        let deadline = phone
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(m) = in_rx.recv() => {
                let now = Instant::now();
                match m {
                    Inbound::Connected(i, g, s) if links[i].gen == g => {
                        let _ = s.set_nodelay(true);
                        let (mut rd, wr) = s.into_split();
                        links[i].writer = Some(wr);
                        let tx = in_tx.clone();
                        links[i].reader = Some(tokio::spawn(async move {
                            let mut buf = vec![0u8; 4096];
                            loop {
                                match rd.read(&mut buf).await {
                                    Ok(0) | Err(_) => {
                                        let _ = tx.send(Inbound::Closed(i, g));
                                        return;
                                    }
                                    Ok(n) => {
                                        if tx.send(Inbound::Data(i, g, buf[..n].to_vec())).is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        }));
                        phone.handle_connected(i, now);
                    }
                    Inbound::Failed(i, g) if links[i].gen == g => {
                        links[i].gen = 0;
                        phone.handle_closed(i, now);
                    }
                    Inbound::Data(i, g, d) if links[i].gen == g => phone.handle_bytes(i, &d, now),
                    Inbound::Closed(i, g) if links[i].gen == g => {
                        close_link(&mut links[i], &mut gen);
                        phone.handle_closed(i, now);
                    }
                    _ => {}
                }
            }
            c = cmd_rx.recv() => match c {
                Some(PhoneCmd::Unregister) => phone.unregister(),
                Some(PhoneCmd::Stop) | None => break,
            },
            _ = tokio::time::sleep_until(deadline) => phone.handle_timeout(Instant::now()),
        }
    }
    for l in &mut links {
        close_link(l, &mut gen);
    }
}

fn close_link(l: &mut Link, gen: &mut u64) {
    *gen += 1;
    l.gen = 0;
    l.writer = None;
    if let Some(r) = l.reader.take() {
        r.abort();
    }
}

/// Registers one phone over one connection from `local` (if given) to `server`, returning
/// the open connection once every post-registration request is answered. For load tests:
/// no standby connection, no timers.
pub async fn register_once(
    mut cfg: PhoneConfig,
    server: SocketAddr,
    local: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    cfg.servers = 1;
    cfg.standby = false;
    cfg.fallback = false;
    let fut = async {
        let mut stream = match local {
            Some(l) => {
                let sock = TcpSocket::new_v4()?;
                sock.bind(l)?;
                sock.connect(server).await?
            }
            None => TcpStream::connect(server).await?,
        };
        stream.set_nodelay(true)?;
        let mut phone = PhoneSession::new(cfg);
        let now = Instant::now();
        phone.start(now);
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::new();
        loop {
            while let Some(a) = phone.poll_action() {
                match a {
                    PhoneAction::Connect(_) => phone.handle_connected(0, now),
                    // Batched: a phone pipelines its requests in few segments.
                    PhoneAction::Send(_, b) => out.extend_from_slice(&b),
                    PhoneAction::Close(_) => {}
                }
            }
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            while let Some(e) = phone.poll_event() {
                if let PhoneEvent::Rejected { text, .. } = e {
                    return Err(io::Error::new(io::ErrorKind::PermissionDenied, text));
                }
            }
            if phone.is_in_service() {
                return Ok(stream);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            phone.handle_bytes(0, &buf[..n], Instant::now());
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "registration timed out"))?
}
