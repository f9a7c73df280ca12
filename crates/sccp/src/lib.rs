//! Skinny Client Control Protocol (SCCP): the message codec, and sans-IO state machines for
//! the CallManager side ([`server`]) and the phone side ([`phone`]).
//!
//! Nothing here touches a socket or a clock: callers feed bytes and `now`, and get bytes,
//! events and deadlines back (see `crates/sccp-server` for the tokio service).

pub mod directory;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_body;
pub mod msg;
pub mod phone;
pub mod server;
pub mod tables;
pub mod text;
mod wire;

pub use directory::{
    AutoRegisterError, CallManager, MemoryDirectory, SccpDevice, SccpDirectory, SccpLine, SpeedDial,
};
pub use frame::{record_len, DecodeError, Frame, FrameReader, FramingError, Shape, MAX_LENGTH};
pub use msg::*;
pub use phone::{PhoneAction, PhoneConfig, PhoneEvent, PhoneProfile, PhoneSession};
pub use server::{CloseReason, Env, LeaseCheck, ServerEvent, ServerSession, SessionConfig};
pub use tables::ResetType;
pub use text::Text;
