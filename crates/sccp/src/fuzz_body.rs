//! The body of the cargo-fuzz target, also run by a proptest over arbitrary bytes.

use crate::frame::{Frame, FrameReader};

/// Feeds arbitrary bytes to the stream reader in two pieces; every decoded frame must
/// re-encode to bytes that decode to the same frame. Must never panic.
pub fn fuzz_stream(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |b| *b as usize % (data.len().max(1)));
    let mut r = FrameReader::new();
    r.push(&data[..split]);
    let mut frames = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => {
                if r.buffered() == 0 || split == data.len() {
                    break;
                }
                r.push(&data[split..]);
                // Only push the rest once.
                while let Ok(Some(f)) = r.next_frame() {
                    frames.push(f);
                }
                break;
            }
            Err(_) => break,
        }
    }
    for f in frames {
        let bytes = f.to_bytes();
        if let Ok(again) = Frame::decode(&bytes) {
            assert_eq!(again.message, f.message, "decode(encode(f)) != f");
            assert_eq!(again.to_bytes(), bytes);
        }
    }
}
