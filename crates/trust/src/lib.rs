//! Cisco trust files, as a CUCM cluster serves them and a phone checks them.
//!
//! * [`header`]: the signed header shared by `.tlv` trust lists and `.sgn` files (version,
//!   header length, signer, hash algorithm, RSA signature over the whole file minus the
//!   signature element, file name, timestamp, padding to four bytes).
//! * [`tlv`]: ITL/CTL trust lists — the header, then one record per certificate with its
//!   role (SAST, CCM, CCM+TFTP, TFTP, CAPF, TVS ...).
//! * [`sgn`]: a signed file — the header, then the unchanged payload.
//! * [`identity`]: the cluster identity (SAST signing key, TFTP/CallManager RSA-2048
//!   certificate, P-256 certificate for HTTPS 6971), generated or imported, serialised for
//!   the store; it builds the ITL/CTL and signs files.
//! * [`phone`]: what a phone does with them (install the first ITL, then accept only
//!   vouched-for ITLs and configuration signed by a key the ITL lists).
//!
//! No I/O: bytes and the current time in, bytes and verdicts out. The layout is the one
//! `usecallmanagernz/certutils` (`tlvfile`, `sgnfile`) reads and writes, which is what the
//! integration tests judge us by.

pub mod header;
pub mod identity;
pub mod phone;
pub mod sgn;
pub mod tlv;

pub use header::{HashAlg, Header, Signer};
pub use identity::{CertInfo, ClusterIdentity, Identity, IdentityError};
pub use phone::{PhoneTrust, Reject};
pub use sgn::SignedFile;
pub use tlv::{Record, Role, TrustList};

/// Why bytes are not a trust file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("truncated at byte {at}: {what} needs {need} more byte(s)")]
    Truncated {
        at: usize,
        what: &'static str,
        need: usize,
    },
    #[error("byte {at}: expected tag {expected} ({what}), found {found}")]
    UnexpectedTag {
        at: usize,
        expected: u8,
        what: &'static str,
        found: u8,
    },
    #[error("byte {at}: unknown {place} tag {tag}")]
    UnknownTag {
        at: usize,
        place: &'static str,
        tag: u8,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the file has no SAST record matching its signer (serial {0})")]
    NoSignerRecord(String),
    #[error("the signer's certificate is not usable: {0}")]
    BadCertificate(String),
    #[error("the signature does not match the file")]
    BadSignature,
}

/// Fuzz entry point: parsing any bytes must not panic, and a parsed list must re-encode to
/// bytes that parse to the same list.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(list) = TrustList::parse(data) {
        let again = list.encode_unsigned();
        if let Ok(back) = TrustList::parse(&again) {
            assert_eq!(back.records, list.records);
        }
        let _ = list.verify(data);
    }
    if let Ok(f) = SignedFile::parse(data) {
        assert!(f.payload.len() <= data.len());
        let _ = f.header.signed_data(data);
    }
}
