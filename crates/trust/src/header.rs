//! The signed header of `.tlv` and `.sgn` files.
//!
//! Elements are `tag (1 byte) | length (u16 BE) | value`, except padding (tag 13), a lone
//! byte. Tags 3 (signer info), 7 (signature info) and 9 (signature algorithm info) are
//! containers: their length covers the elements that follow, which are read in place. The
//! header ends at the offset its length element names. The RSA PKCS#1 v1.5 signature
//! (tag 12) covers the whole file with the signature element (tag, length and value)
//! removed. Layout as in certutils `tlvfile`/`sgnfile` (read, not copied).

use std::ops::Range;

use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha512};

use crate::{ParseError, VerifyError};

pub(crate) const VERSION: u8 = 1;
pub(crate) const LENGTH: u8 = 2;
pub(crate) const SIGNER_INFO: u8 = 3;
pub(crate) const SIGNER_NAME: u8 = 4;
pub(crate) const SERIAL_NUMBER: u8 = 5;
pub(crate) const ISSUER_NAME: u8 = 6;
pub(crate) const SIGNATURE_INFO: u8 = 7;
pub(crate) const HASH_ALGORITHM: u8 = 8;
pub(crate) const SIGNATURE_ALGORITHM_INFO: u8 = 9;
pub(crate) const SIGNATURE_ALGORITHM: u8 = 10;
pub(crate) const SIGNATURE_MODULUS: u8 = 11;
pub(crate) const SIGNATURE: u8 = 12;
pub(crate) const PADDING: u8 = 13;
pub(crate) const FILENAME: u8 = 14;
pub(crate) const TIMESTAMP: u8 = 15;
pub(crate) const SIGNER_VERSION: u8 = 28;

/// Digest under the RSA signature. Phones of the 79xx generation know only SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HashAlg {
    Sha1,
    Sha512,
}

impl HashAlg {
    fn code(self) -> u8 {
        match self {
            HashAlg::Sha1 => 1,
            HashAlg::Sha512 => 3,
        }
    }

    fn from_code(c: u8) -> Option<HashAlg> {
        match c {
            1 => Some(HashAlg::Sha1),
            3 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    fn scheme_and_digest(self, data: &[u8]) -> (Pkcs1v15Sign, Vec<u8>) {
        match self {
            HashAlg::Sha1 => (Pkcs1v15Sign::new::<Sha1>(), Sha1::digest(data).to_vec()),
            HashAlg::Sha512 => (Pkcs1v15Sign::new::<Sha512>(), Sha512::digest(data).to_vec()),
        }
    }
}

/// Who signed: the certificate's subject and issuer (RFC 4514 attributes in certificate
/// order, joined by commas) and serial number (big-endian, no leading zeros).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signer {
    pub name: String,
    pub issuer: String,
    pub serial: Vec<u8>,
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (`1.2` in trust lists, `1.0` in `.sgn` files).
    pub version: (u8, u8),
    /// Trust lists only: `1.0`, or `1.1` when the list may carry EC certificates.
    pub signer_version: Option<(u8, u8)>,
    pub signer: Signer,
    pub hash: HashAlg,
    pub signature: Vec<u8>,
    pub filename: String,
    pub timestamp: u32,
    /// Header length in bytes: the records or payload start here.
    pub length: usize,
    /// Where the signature element (tag, length, value) sits in the file.
    pub signature_element: Range<usize>,
}

/// A bounds-checked reader over the file.
pub(crate) struct Reader<'a> {
    pub data: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(ParseError::Truncated {
                at: self.at,
                what,
                need: self.at + n - self.data.len(),
            });
        };
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Tag and length of the next element.
    pub fn element(&mut self, what: &'static str) -> Result<(u8, usize), ParseError> {
        let tag = self.u8(what)?;
        let len = self.u16(what)?;
        Ok((tag, len as usize))
    }

    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<usize, ParseError> {
        let at = self.at;
        let (t, len) = self.element(what)?;
        if t != tag {
            return Err(ParseError::UnexpectedTag {
                at,
                expected: tag,
                what,
                found: t,
            });
        }
        Ok(len)
    }
}

/// A NUL-terminated string value (the NUL dropped; a missing one tolerated).
pub(crate) fn c_string(v: &[u8]) -> String {
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    String::from_utf8_lossy(v).into_owned()
}

fn version_pair(v: &[u8], what: &'static str) -> Result<(u8, u8), ParseError> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => Err(ParseError::Invalid(format!(
            "{what}: expected 2 bytes, found {}",
            v.len()
        ))),
    }
}

impl Header {
    /// Reads the header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Header, ParseError> {
        let mut r = Reader { data, at: 0 };
        let n = r.expect(VERSION, "header version")?;
        let version = version_pair(r.take(n, "header version")?, "header version")?;
        let n = r.expect(LENGTH, "header length")?;
        let lv = r.take(n, "header length")?;
        let length = match lv {
            [a, b] => u16::from_be_bytes([*a, *b]) as usize,
            _ => {
                return Err(ParseError::Invalid(
                    "header length: expected 2 bytes".into(),
                ))
            }
        };
        if length > data.len() {
            return Err(ParseError::Truncated {
                at: data.len(),
                what: "header",
                need: length - data.len(),
            });
        }
        let mut signer_version = None;
        let mut signer = Signer::default();
        let mut serial = None;
        let mut hash = None;
        let mut signature = None;
        let mut filename = String::new();
        let mut timestamp = 0;
        // Elements may not run past the header's end.
        let mut r = Reader {
            data: &data[..length],
            at: r.at,
        };
        while r.at < length {
            let at = r.at;
            let tag = r.u8("header element")?;
            if tag == PADDING {
                continue;
            }
            let n = r.u16("header element length")? as usize;
            if matches!(tag, SIGNER_INFO | SIGNATURE_INFO | SIGNATURE_ALGORITHM_INFO) {
                continue;
            }
            let v = r.take(n, "header element")?;
            match tag {
                SIGNER_VERSION => signer_version = Some(version_pair(v, "signer version")?),
                SIGNER_NAME => signer.name = c_string(v),
                ISSUER_NAME => signer.issuer = c_string(v),
                SERIAL_NUMBER => serial = Some(v.to_vec()),
                HASH_ALGORITHM => {
                    let code = *v
                        .first()
                        .ok_or_else(|| ParseError::Invalid("hash algorithm: empty".into()))?;
                    hash = Some(HashAlg::from_code(code).ok_or_else(|| {
                        ParseError::Invalid(format!("unsupported hash algorithm {code}"))
                    })?);
                }
                SIGNATURE_ALGORITHM | SIGNATURE_MODULUS => {}
                SIGNATURE => signature = Some((v.to_vec(), at..r.at)),
                FILENAME => filename = c_string(v),
                TIMESTAMP => {
                    timestamp = match v {
                        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                        _ => return Err(ParseError::Invalid("timestamp: expected 4 bytes".into())),
                    }
                }
                _ => {
                    return Err(ParseError::UnknownTag {
                        at,
                        place: "header",
                        tag,
                    })
                }
            }
        }
        signer.serial =
            serial.ok_or_else(|| ParseError::Invalid("missing signer serial number".into()))?;
        let hash = hash.ok_or_else(|| ParseError::Invalid("missing hash algorithm".into()))?;
        let (signature, signature_element) =
            signature.ok_or_else(|| ParseError::Invalid("missing signature".into()))?;
        Ok(Header {
            version,
            signer_version,
            signer,
            hash,
            signature,
            filename,
            timestamp,
            length,
            signature_element,
        })
    }

    /// The bytes the signature covers: `data` without the signature element.
    pub fn signed_data(&self, data: &[u8]) -> Vec<u8> {
        let r = &self.signature_element;
        if r.end > data.len() || r.start > r.end {
            return data.to_vec();
        }
        let mut v = Vec::with_capacity(data.len() - r.len());
        v.extend_from_slice(&data[..r.start]);
        v.extend_from_slice(&data[r.end..]);
        v
    }

    /// Checks the signature over `data` (the whole file this header was parsed from).
    pub fn verify(&self, data: &[u8], key: &RsaPublicKey) -> Result<(), VerifyError> {
        let (scheme, digest) = self.hash.scheme_and_digest(&self.signed_data(data));
        key.verify(scheme, &digest, &self.signature)
            .map_err(|_| VerifyError::BadSignature)
    }
}

/// What to write in a header besides the signature.
pub(crate) struct HeaderSpec<'a> {
    pub version: (u8, u8),
    pub signer_version: Option<(u8, u8)>,
    pub signer: &'a Signer,
    pub hash: HashAlg,
    pub filename: &'a str,
    pub timestamp: u32,
}

fn put(out: &mut Vec<u8>, tag: u8, v: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

fn c_bytes(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Writes a header and `body` around a signature of `sig_len` bytes produced by `sign`
/// over the file without the signature element. Returns the file.
pub(crate) fn encode(
    spec: &HeaderSpec<'_>,
    sig_len: usize,
    body: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sig_len + body.len());
    put(&mut out, VERSION, &[spec.version.0, spec.version.1]);
    let length_at = out.len() + 3;
    put(&mut out, LENGTH, &[0, 0]);
    if let Some((a, b)) = spec.signer_version {
        put(&mut out, SIGNER_VERSION, &[a, b]);
    }
    let mut info = Vec::new();
    put(&mut info, SIGNER_NAME, &c_bytes(&spec.signer.name));
    put(&mut info, ISSUER_NAME, &c_bytes(&spec.signer.issuer));
    put(&mut info, SERIAL_NUMBER, &spec.signer.serial);
    put(&mut out, SIGNER_INFO, &info);
    // Containers: their length covers the elements that follow them.
    out.extend_from_slice(&[SIGNATURE_INFO, 0, 15]);
    put(&mut out, HASH_ALGORITHM, &[spec.hash.code()]);
    out.extend_from_slice(&[SIGNATURE_ALGORITHM_INFO, 0, 8]);
    put(&mut out, SIGNATURE_ALGORITHM, &[0]);
    let modulus = match sig_len {
        64 => 0,
        128 => 1,
        256 => 2,
        _ => 3,
    };
    put(&mut out, SIGNATURE_MODULUS, &[modulus]);
    let sig_at = out.len();
    put(&mut out, FILENAME, &c_bytes(spec.filename));
    put(&mut out, TIMESTAMP, &spec.timestamp.to_be_bytes());
    while !(out.len() + 3 + sig_len).is_multiple_of(4) {
        out.push(PADDING);
    }
    let header_len = (out.len() + 3 + sig_len) as u16;
    out[length_at..length_at + 2].copy_from_slice(&header_len.to_be_bytes());
    out.extend_from_slice(body);
    let mut sig = sign(&out);
    sig.resize(sig_len, 0);
    let mut file = Vec::with_capacity(out.len() + 3 + sig_len);
    file.extend_from_slice(&out[..sig_at]);
    put(&mut file, SIGNATURE, &sig);
    file.extend_from_slice(&out[sig_at..]);
    file
}

/// Signs `data` with `key` (PKCS#1 v1.5 over `hash`).
pub(crate) fn rsa_sign(key: &RsaPrivateKey, hash: HashAlg, data: &[u8]) -> Vec<u8> {
    let (scheme, digest) = hash.scheme_and_digest(data);
    // Signing fails only for a key too small for the digest, which we never create.
    key.sign(scheme, &digest).unwrap_or_default()
}

/// Re-encodes a parsed header around `body`, keeping its signature bytes (for round trips).
pub(crate) fn reencode(h: &Header, body: &[u8]) -> Vec<u8> {
    let spec = HeaderSpec {
        version: h.version,
        signer_version: h.signer_version,
        signer: &h.signer,
        hash: h.hash,
        filename: &h.filename,
        timestamp: h.timestamp,
    };
    let sig = h.signature.clone();
    encode(&spec, sig.len(), body, |_| sig)
}
