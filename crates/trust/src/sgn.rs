//! Signed files (`SEP<MAC>.cnf.xml.sgn` and any other `<name>.sgn`): the signed header,
//! then the file's bytes unchanged. Signed by the TFTP identity.

use rsa::RsaPublicKey;

use crate::header::{self, Header, HeaderSpec};
use crate::identity::Identity;
use crate::{HashAlg, ParseError, VerifyError};

/// A parsed `.sgn` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFile {
    pub header: Header,
    /// The unsigned file, byte for byte.
    pub payload: Vec<u8>,
}

impl SignedFile {
    /// Signs `payload` as `filename` (the `.sgn` name, as certutils writes it).
    pub fn build(
        signer: &Identity,
        filename: &str,
        hash: HashAlg,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, crate::IdentityError> {
        let key = signer.rsa_key().ok_or(crate::IdentityError::NotRsa)?;
        let who = signer.signer()?;
        let spec = HeaderSpec {
            version: (1, 0),
            signer_version: None,
            signer: &who,
            hash,
            filename,
            timestamp,
        };
        let sig_len = rsa::traits::PublicKeyParts::size(key);
        Ok(header::encode(&spec, sig_len, payload, |d| {
            header::rsa_sign(key, hash, d)
        }))
    }

    pub fn parse(data: &[u8]) -> Result<SignedFile, ParseError> {
        let header = Header::parse(data)?;
        let payload = data.get(header.length..).unwrap_or_default().to_vec();
        Ok(SignedFile { header, payload })
    }

    /// Checks the signature of `data` (the file this was parsed from) with `key`.
    pub fn verify(&self, data: &[u8], key: &RsaPublicKey) -> Result<(), VerifyError> {
        self.header.verify(data, key)
    }
}
