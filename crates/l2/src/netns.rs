//! Run socket-opening code inside a named network namespace (`ip netns add NAME`).
//!
//! A socket keeps the namespace it was created in, so a short-lived thread enters the
//! namespace, creates the socket and hands it back; the caller's thread never moves.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Runs `f` in a fresh thread that has joined network namespace `name`
/// (`/var/run/netns/NAME`). Needs CAP_SYS_ADMIN.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = format!("/var/run/netns/{name}");
    let ns = File::open(&path)?;
    std::thread::spawn(move || {
        // SAFETY: setns on a valid namespace fd; it only affects this thread.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Two network namespaces joined by a veth pair, for tests and labs; removed on drop (also
/// when a test panics). Names are unique per process and call: `<prefix><pid>x<n>`.
#[derive(Debug)]
pub struct VethPair {
    /// Namespace and interface of side A.
    pub ns_a: String,
    pub if_a: String,
    /// Namespace and interface of side B.
    pub ns_b: String,
    pub if_b: String,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = std::process::Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl VethPair {
    /// Creates `<prefix>..a` / `<prefix>..b` namespaces with one veth end in each, both up.
    /// `prefix` should be short (interface names must stay within 15 characters).
    pub fn new(prefix: &str) -> io::Result<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = format!("{prefix}{}x{n}", std::process::id());
        let v = VethPair {
            ns_a: format!("{base}a"),
            if_a: format!("{base}a"),
            ns_b: format!("{base}b"),
            if_b: format!("{base}b"),
        };
        if v.if_a.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {} is longer than 15", v.if_a),
            ));
        }
        // From here on, Drop cleans up whatever was created.
        ip(&["netns", "add", &v.ns_a])?;
        ip(&["netns", "add", &v.ns_b])?;
        ip(&[
            "link", "add", &v.if_a, "netns", &v.ns_a, "type", "veth", "peer", "name", &v.if_b,
            "netns", &v.ns_b,
        ])?;
        for (ns, ifn) in [(&v.ns_a, &v.if_a), (&v.ns_b, &v.if_b)] {
            ip(&["-n", ns, "link", "set", ifn, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(v)
    }

    /// Opens a packet socket on side A's interface, inside its namespace.
    pub fn socket_a(&self) -> io::Result<crate::PacketSocket> {
        let (ns, ifn) = (self.ns_a.clone(), self.if_a.clone());
        in_netns(&ns, move || crate::PacketSocket::open(&ifn))
    }

    /// Opens a packet socket on side B's interface, inside its namespace.
    pub fn socket_b(&self) -> io::Result<crate::PacketSocket> {
        let (ns, ifn) = (self.ns_b.clone(), self.if_b.clone());
        in_netns(&ns, move || crate::PacketSocket::open(&ifn))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}
