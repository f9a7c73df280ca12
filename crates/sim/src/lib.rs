//! The phone emulator: one Cisco IP phone, or a storm of thousands, booting over the wire.
//!
//! * [`model`]: the per-model catalogue (PoE class, CDP platform, DHCP option 60/55, file
//!   sequence, transports, SCCP device type and version).
//! * [`phone`]: one phone walking power → discovery → DHCP → files → registration, with
//!   its [`report::PhoneReport`] timeline.
//! * [`storm`]: many phones with an arrival rate and a concurrency limit, a progress line and
//!   a [`stats::Summary`].
//! * Protocol pieces: [`dhcp`] (sans-IO client), [`tftp`] (sans-IO read), [`http`] (GET),
//!   [`cnf`] (config file reader), [`discover`] (CDP/LLDP-MED phone side), [`register`]
//!   (SCCP/SIP drivers over the `sccp` and `sip` crates).
//! * I/O: [`rawport`] (`l2`'s AF_PACKET socket shared by every phone's MAC, with the frame
//!   demultiplexer), [`netlink`] (leased addresses on the IP interface); Ethernet/802.1Q/IPv4/UDP
//!   framing is `l2::udp`.
//! * [`cli`]: clap `Args` and the `run_boot` / `run_storm` entry points.
//!
//! # How phones reach the wire
//!
//! Layer 2 is per phone and exact: CDP, LLDP-MED and DHCP frames leave the raw interface
//! (`--raw-if`, the lab's `phone0` trunk port) with the phone's own MAC, tagged by the
//! emulator with the voice VLAN it learnt (this kernel has no 802.1Q). Above DHCP the
//! emulator uses kernel sockets: each leased address is added as a /32 to the IP interface
//! (`--ip-if`, an access port in the voice VLAN, the lab's `voice0`) with one on-link route
//! per leased subnet, and every TFTP/HTTP/SCCP/SIP socket is bound to the phone's address.
//!
//! The trade-off, chosen over a user-space TCP/IP stack for simplicity and speed: the kernel
//! does TCP, retransmission and ARP for us, so thousands of phones cost thousands of
//! ordinary sockets. But ARP for a phone's address is answered by the access port with *its*
//! MAC, not the phone's: after DHCP the server sees every phone's IP behind one MAC (the
//! switch's MAC table and the server's neighbour table show `voice0`, not `SEP<MAC>`), and
//! IP traffic leaves untagged through the access port rather than tagged through the phone
//! port. Anything keyed on (IP, MAC) after DHCP — a lease check that compares the ARP entry
//! with the lease's chaddr, DHCP unicast renewals to chaddr — sees the access port. The
//! server side of a 10,000-phone storm also needs a neighbour table that large
//! (`net.ipv4.neigh.default.gc_thresh3` in the server namespace).

pub mod cli;
pub mod cnf;
pub mod dhcp;
pub mod discover;
pub mod http;
pub mod model;
pub mod netlink;
pub mod phone;
pub mod rawport;
pub mod register;
pub mod report;
pub mod stats;
pub mod storm;
pub mod tftp;
pub mod trust;
