//! Framing: `u32 length | u32 header version | u32 message id | payload`, all little-endian,
//! `length` counting the id and the payload (reference §1.2).

use crate::msg::Message;

/// Smallest legal `length` field: a message id and an empty payload.
pub const MIN_LENGTH: u32 = 4;
/// Largest `length` we accept (reference §1.5 recommendation).
pub const MAX_LENGTH: u32 = 4096;
/// Header bytes before the payload.
pub const HEADER_LEN: usize = 12;

/// A framing error: the stream cannot be resynchronised, close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("length field {0} is smaller than a message id")]
    TooShort(u32),
    #[error("length field {0} exceeds the maximum {MAX_LENGTH}")]
    TooLong(u32),
}

/// Decoding error of one complete record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    #[error("record of {got} bytes does not match its length field ({want} bytes)")]
    Length { got: usize, want: usize },
}

/// If `buf` starts with a complete record, its total size in bytes; `None` if more bytes
/// are needed. Checks the length field as soon as 4 bytes are there.
pub fn record_len(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    let Some(l) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]);
    if len < MIN_LENGTH {
        return Err(FramingError::TooShort(len));
    }
    if len > MAX_LENGTH {
        return Err(FramingError::TooLong(len));
    }
    let total = len as usize + 8;
    Ok((buf.len() >= total).then_some(total))
}

/// How the payload differs from the message's natural (current-layout) encoding, so an
/// older or padded form re-encodes exactly as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Shape {
    /// Exactly the natural encoding.
    #[default]
    Natural,
    /// The natural encoding zero-padded to a multiple of 4 bytes (what we send).
    Padded,
    /// An older, shorter layout: the first `n` bytes of the natural encoding.
    Truncated(usize),
    /// The natural encoding followed by these bytes (padding, newer fields, a 56-slot
    /// template…).
    Trailing(Vec<u8>),
}

/// One record: header version, message and its on-wire shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header's version field (0 "basic", else the protocol version).
    pub header_version: u32,
    pub message: Message,
    pub shape: Shape,
}

impl Frame {
    /// A frame in the natural layout.
    /// Records are padded to a multiple of 4 bytes, as chan-sccp pads everything it sends.
    pub fn new(header_version: u32, message: Message) -> Self {
        Frame {
            header_version,
            message,
            shape: Shape::Padded,
        }
    }

    /// A frame whose payload is exactly `len` bytes (cut or zero-extended), for messages
    /// with length-selected forms such as Register.
    pub fn with_payload_len(header_version: u32, message: Message, len: usize) -> Self {
        let natural = natural_len(header_version, &message);
        let shape = if len == natural {
            Shape::Natural
        } else if len < natural {
            Shape::Truncated(len)
        } else {
            Shape::Trailing(vec![0; len - natural])
        };
        Frame {
            header_version,
            message,
            shape,
        }
    }

    /// Appends the record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.header_version.to_le_bytes());
        out.extend_from_slice(&self.message.id().to_le_bytes());
        encode_natural(self.header_version, &self.message, out);
        match &self.shape {
            Shape::Natural => {}
            Shape::Padded => {
                let body = out.len() - start - HEADER_LEN;
                out.resize(out.len() + (4 - body % 4) % 4, 0);
            }
            Shape::Truncated(n) => out.resize(start + HEADER_LEN + n, 0),
            Shape::Trailing(t) => out.extend_from_slice(t),
        }
        let len = (out.len() - start - 8) as u32;
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes one complete record without working out its shape (cheaper: for peers that
    /// only act on the message). Returns the header version and the message.
    pub fn decode_message(record: &[u8]) -> Result<(u32, Message), DecodeError> {
        let (hv, id, payload) = split(record)?;
        Ok((hv, Message::decode_body(id, hv, payload)))
    }

    /// Decodes one complete record (as delimited by [`record_len`]).
    pub fn decode(record: &[u8]) -> Result<Frame, DecodeError> {
        let (hv, id, payload) = split(record)?;
        let message = Message::decode_body(id, hv, payload);
        let mut natural = Vec::with_capacity(payload.len());
        encode_natural(hv, &message, &mut natural);
        let shape = if natural.len() == payload.len() {
            Shape::Natural
        } else if payload.len() < natural.len() {
            Shape::Truncated(payload.len())
        } else {
            Shape::Trailing(payload[natural.len()..].to_vec())
        };
        Ok(Frame {
            header_version: hv,
            message,
            shape,
        })
    }
}

fn split(record: &[u8]) -> Result<(u32, u32, &[u8]), DecodeError> {
    let want = record_len(record)?.ok_or(DecodeError::Length {
        got: record.len(),
        want: HEADER_LEN,
    })?;
    if want != record.len() {
        return Err(DecodeError::Length {
            got: record.len(),
            want,
        });
    }
    let hv = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
    let id = u32::from_le_bytes([record[8], record[9], record[10], record[11]]);
    Ok((hv, id, &record[HEADER_LEN..]))
}

/// The message body in its current layout, without padding.
fn encode_natural(hv: u32, m: &Message, out: &mut Vec<u8>) {
    m.encode_body(hv, out);
}

fn natural_len(hv: u32, m: &Message) -> usize {
    let mut v = Vec::new();
    encode_natural(hv, m, &mut v);
    v.len()
}

/// Accumulates stream bytes and yields whole records (sans-IO; the caller reads the
/// socket). Keeps at most one record plus one read's worth of bytes.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete record, decoded. After an error the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        self.next_with(Frame::decode)
    }

    /// The next record's header version and message, without its shape.
    pub fn next_message(&mut self) -> Result<Option<(u32, Message)>, DecodeError> {
        self.next_with(Frame::decode_message)
    }

    fn next_with<T>(
        &mut self,
        decode: fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match record_len(&self.buf)? {
            None => Ok(None),
            Some(n) => {
                let f = decode(&self.buf[..n]);
                self.buf.drain(..n);
                if self.buf.is_empty() {
                    // An idle registered phone should cost no buffer memory.
                    self.buf = Vec::new();
                }
                f.map(Some)
            }
        }
    }
}
