//! Little-endian field reader and writer. The reader never fails: fields past the end of a
//! short (older-layout) payload read as zero, which is how the older, shorter layouts of
//! the same message are meant to be read. Frame-level shape keeps the real length.

use crate::text::Text;

pub(crate) struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Rd { b, p: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.p)
    }

    pub(crate) fn len(&self) -> usize {
        self.b.len()
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.p.min(self.b.len());
        let end = (self.p + n).min(self.b.len());
        self.p += n;
        &self.b[start..end]
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub(crate) fn u16(&mut self) -> u16 {
        let mut a = [0u8; 2];
        let s = self.take(2);
        a[..s.len()].copy_from_slice(s);
        u16::from_le_bytes(a)
    }

    pub(crate) fn u32(&mut self) -> u32 {
        let mut a = [0u8; 4];
        let s = self.take(4);
        a[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(a)
    }

    pub(crate) fn arr<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let s = self.take(N);
        a[..s.len()].copy_from_slice(s);
        a
    }

    pub(crate) fn text(&mut self, width: usize) -> Text {
        Text::from_raw(self.take(width))
    }

    /// A NUL-terminated string of a dynamic message (the NUL is consumed).
    pub(crate) fn cstr(&mut self) -> Text {
        let start = self.p.min(self.b.len());
        let rest = &self.b[start..];
        match rest.iter().position(|&c| c == 0) {
            Some(n) => {
                self.p = start + n + 1;
                Text::from_raw(&rest[..n])
            }
            None => {
                self.p = self.b.len();
                Text::from_raw(rest)
            }
        }
    }

    pub(crate) fn rest(&mut self) -> Vec<u8> {
        let start = self.p.min(self.b.len());
        self.p = self.b.len();
        self.b[start..].to_vec()
    }

    pub(crate) fn peek_u32_at(&self, off: usize) -> u32 {
        let mut a = [0u8; 4];
        if off < self.b.len() {
            let end = (off + 4).min(self.b.len());
            a[..end - off].copy_from_slice(&self.b[off..end]);
        }
        u32::from_le_bytes(a)
    }

    pub(crate) fn bytes_at(&self, from: usize, to: usize) -> &'a [u8] {
        let s = from.min(self.b.len());
        let e = to.min(self.b.len()).max(s);
        &self.b[s..e]
    }
}

pub(crate) fn w32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn w16(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_le_bytes());
}
