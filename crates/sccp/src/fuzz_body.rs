//! The body of the cargo-fuzz target, also run by a proptest over arbitrary bytes.

use crate::frame::{Frame, FrameReader};

/// Feeds arbitrary bytes to the stream reader in two pieces (split where the first byte
/// says) and checks that this yields exactly the frames one single push yields; every decoded
/// frame must re-encode to bytes that decode to the same frame. Must never panic. Returns the
/// number of frames decoded, so tests can see that input was really consumed.
pub fn fuzz_stream(data: &[u8]) -> usize {
    let split = data
        .first()
        .map_or(0, |b| *b as usize % (data.len().max(1)));
    let frames = read_all(&[&data[..split], &data[split..]]);
    assert_eq!(
        frames,
        read_all(&[data]),
        "splitting the stream changed what was read"
    );
    for f in &frames {
        let bytes = f.to_bytes();
        if let Ok(again) = Frame::decode(&bytes) {
            assert_eq!(again.message, f.message, "decode(encode(f)) != f");
            assert_eq!(again.to_bytes(), bytes);
        }
    }
    frames.len()
}

/// Every frame readable from `pieces` pushed one after the other, up to the first error (after
/// which a stream cannot be re-synchronised).
fn read_all(pieces: &[&[u8]]) -> Vec<Frame> {
    let mut r = FrameReader::new();
    let mut frames = Vec::new();
    for piece in pieces {
        r.push(piece);
        loop {
            match r.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #18 item 10: a stream whose first byte is 0x00 (any record of 256 + 8 bytes has
    /// length field 0x0000_0100) used to stop before the second piece was pushed.
    #[test]
    fn a_stream_starting_with_zero_is_read_to_the_end() {
        let mut record = Vec::new();
        record.extend_from_slice(&256u32.to_le_bytes()); // id + 252 bytes of payload
        record.extend_from_slice(&0u32.to_le_bytes()); // header version
        record.extend_from_slice(&0x7777u32.to_le_bytes()); // an id nobody knows
        record.extend_from_slice(&[0xab; 252]);
        assert_eq!(record[0], 0);
        let mut stream = record.clone();
        stream.extend_from_slice(&record);
        assert_eq!(fuzz_stream(&stream), 2);
        // A keepalive-sized split (first byte 4) still reads both pieces.
        let ka = [4u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(fuzz_stream(&[ka, ka].concat()), 2);
    }
}
