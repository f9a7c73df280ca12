//! Fixed-width string fields that keep their raw bytes, so a decoded frame re-encodes
//! byte-identical even when the sender left garbage after the terminating NUL.

use std::fmt;

/// A `char[n]` wire field. Holds the raw bytes read (or the text given); the width comes
/// from the message layout when encoding.
#[derive(Clone, Default, Eq)]
pub struct Text(Vec<u8>);

impl Text {
    /// Text from raw wire bytes, kept as they are.
    pub fn from_raw(raw: &[u8]) -> Self {
        Text(raw.to_vec())
    }

    /// The raw bytes as held.
    pub fn raw(&self) -> &[u8] {
        &self.0
    }

    /// The visible text: bytes up to the first NUL, decoded lossily as UTF-8.
    pub fn as_string(&self) -> String {
        String::from_utf8_lossy(self.visible()).into_owned()
    }

    /// Bytes before the first NUL.
    pub fn visible(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }

    pub fn is_empty(&self) -> bool {
        self.visible().is_empty()
    }

    /// Writes the field `width` bytes wide: raw bytes cut at `width`, zero padded.
    /// Text built from a string is cut at `width - 1` so a NUL always ends it.
    pub(crate) fn write(&self, out: &mut Vec<u8>, width: usize) {
        let n = self.0.len().min(width);
        out.extend_from_slice(&self.0[..n]);
        out.resize(out.len() + (width - n), 0);
    }

    /// Writes the text NUL-terminated (dynamic messages). Length bounds (25 for numbers,
    /// 121 for names, 97 for prompts) are the builder's business.
    pub(crate) fn write_cstr(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.visible());
        out.push(0);
    }

    fn trimmed(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        &self.0[..end]
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.as_bytes().to_vec())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s.into_bytes())
    }
}

/// Equal when the bytes are equal up to trailing zero padding.
impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.trimmed() == other.trimmed()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_string())?;
        if self.trimmed().len() > self.visible().len() {
            write!(f, "+garbage")?;
        }
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}
