//! What a phone does with trust files, as a state machine with no I/O (the emulator drives
//! it): with no trust list it installs the first ITL it is given (after checking the list
//! is signed by a SAST inside it); once it holds one it accepts a new list only if signed
//! by a SAST certificate the held list carries, and configuration only as `.sgn` signed by
//! a TFTP (or CCM+TFTP) certificate the held list carries.

use crate::tlv::{Role, TrustList};
use crate::{SignedFile, VerifyError};

/// Why the phone refused a file; the text is what the emulator's timeline shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("the trust list is not a valid ITL: {0}")]
    BadList(String),
    #[error("the trust list's signature does not verify: {0}")]
    BadListSignature(VerifyError),
    #[error("new trust list not vouched for: signed by {signer} (serial {serial}), which is not a SAST in the trust list this phone holds")]
    NotVouched { signer: String, serial: String },
    #[error("the configuration file is not signed (this phone holds a trust list and accepts only .sgn files): {0}")]
    Unsigned(String),
    #[error("the configuration file is signed by an unknown key: {signer} (serial {serial}) is not a TFTP certificate in this phone's trust list")]
    UnknownSigner { signer: String, serial: String },
    #[error("the configuration file's signature does not verify: {0}")]
    BadSignature(VerifyError),
}

/// What happened to an offered ITL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItlOutcome {
    /// The phone had none and installed it.
    Installed,
    /// The same list it already holds.
    Unchanged,
    /// A new list, vouched for by the held one, replaced it.
    Updated,
}

/// A phone's trust state: the ITL it holds, if any (kept between boots).
#[derive(Debug, Clone, Default)]
pub struct PhoneTrust {
    held: Option<(Vec<u8>, TrustList)>,
}

impl PhoneTrust {
    /// A phone holding `itl` (e.g. one provisioned by another cluster).
    pub fn holding(itl: &[u8]) -> Result<PhoneTrust, Reject> {
        let mut t = PhoneTrust::default();
        t.offer_itl(itl)?;
        Ok(t)
    }

    pub fn holds_list(&self) -> bool {
        self.held.is_some()
    }

    /// The held list's bytes.
    pub fn list_bytes(&self) -> Option<&[u8]> {
        self.held.as_ref().map(|(b, _)| b.as_slice())
    }

    /// Erases the trust list (Settings > Security > Trust List > Erase on a real phone).
    pub fn erase(&mut self) {
        self.held = None;
    }

    /// An ITL downloaded at boot.
    pub fn offer_itl(&mut self, bytes: &[u8]) -> Result<ItlOutcome, Reject> {
        let list = TrustList::parse(bytes).map_err(|e| Reject::BadList(e.to_string()))?;
        let Some((held_bytes, held)) = &self.held else {
            list.verify(bytes).map_err(Reject::BadListSignature)?;
            self.held = Some((bytes.to_vec(), list));
            return Ok(ItlOutcome::Installed);
        };
        if held_bytes.as_slice() == bytes {
            return Ok(ItlOutcome::Unchanged);
        }
        let signer = &list.header.signer;
        let Some(rec) = held
            .with_role(Role::Sast)
            .find(|r| r.serial == signer.serial && r.subject == signer.name)
        else {
            return Err(Reject::NotVouched {
                signer: signer.name.clone(),
                serial: hex::encode(&signer.serial),
            });
        };
        let key = rec.rsa_key().map_err(Reject::BadListSignature)?;
        list.header
            .verify(bytes, &key)
            .map_err(Reject::BadListSignature)?;
        self.held = Some((bytes.to_vec(), list));
        Ok(ItlOutcome::Updated)
    }

    /// A signed configuration file: the payload if the held list vouches for its signer.
    /// (With no list held, any file is taken as is.)
    pub fn check_signed(&self, bytes: &[u8]) -> Result<Vec<u8>, Reject> {
        let Some((_, held)) = &self.held else {
            return Ok(SignedFile::parse(bytes)
                .map(|f| f.payload)
                .unwrap_or_else(|_| bytes.to_vec()));
        };
        let f = SignedFile::parse(bytes).map_err(|e| Reject::Unsigned(e.to_string()))?;
        let signer = &f.header.signer;
        let Some(rec) = held
            .records
            .iter()
            .find(|r| r.role.is_some_and(Role::signs_files) && r.serial == signer.serial)
        else {
            return Err(Reject::UnknownSigner {
                signer: signer.name.clone(),
                serial: hex::encode(&signer.serial),
            });
        };
        let key = rec.rsa_key().map_err(Reject::BadSignature)?;
        f.verify(bytes, &key).map_err(Reject::BadSignature)?;
        Ok(f.payload)
    }
}
