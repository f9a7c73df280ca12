//! Raw Ethernet for phoneboot.
//!
//! * [`frame`]: pure framing helpers — parse/build Ethernet II, 802.3 + LLC/SNAP, one 802.1Q
//!   tag (written and read in user space, since the kernel here has no 802.1Q module).
//! * [`socket`]: AF_PACKET sockets on one interface for all protocols, with multicast
//!   membership and PACKET_AUXDATA tag recovery, driven by tokio. One socket can carry frames
//!   of many source MACs (the emulator sends raw DHCP for many phones through one).
//! * [`udp`]: Ethernet/IPv4/UDP build and parse, for DHCP over a raw socket (the emulator).
//! * [`netns`]: open a socket inside another network namespace (tests, labs).

pub mod frame;
pub mod netns;
pub mod socket;
pub mod udp;

pub use frame::{parse, Frame, FrameError, Payload, Tci};
pub use socket::{AsyncPacketSocket, PacketSocket, RecvMeta};
