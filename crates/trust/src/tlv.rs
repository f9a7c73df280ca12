//! ITL and CTL trust lists: the signed header, then one record per certificate.
//!
//! A record starts with its own length element (tag 1, u16 covering the whole record) and
//! holds the certificate's subject (3), issuer (5), serial (6), role (4, u16), optionally a
//! DNS name (2), the public key (7: PKCS#1 for RSA, the X9.62 point for EC), the
//! certificate's signature (8) and the DER certificate (9). The file is signed by the
//! SAST record whose serial number the header names.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::RsaPublicKey;

use crate::header::{self, c_string, Header, HeaderSpec, Reader};
use crate::identity::{cert_fields, Identity};
use crate::{HashAlg, ParseError, VerifyError};

const R_LENGTH: u8 = 1;
const R_DNS_NAME: u8 = 2;
const R_SUBJECT: u8 = 3;
const R_ROLE: u8 = 4;
const R_ISSUER: u8 = 5;
const R_SERIAL: u8 = 6;
const R_PUBLIC_KEY: u8 = 7;
const R_SIGNATURE: u8 = 8;
const R_CERTIFICATE: u8 = 9;
const R_IP_ADDRESS: u8 = 10;
const R_CERT_HASH: u8 = 11;
const R_HASH_ALGORITHM: u8 = 12;

/// What a certificate in a trust list is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Signs trust lists (System Administrator Security Token).
    Sast,
    Ccm,
    CcmTftp,
    /// Signs configuration files.
    Tftp,
    Capf,
    AppServer,
    /// Trust Verification Service.
    Tvs,
    Other(u16),
}

impl Role {
    pub fn code(self) -> u16 {
        match self {
            Role::Sast => 0,
            Role::Ccm => 1,
            Role::CcmTftp => 2,
            Role::Tftp => 3,
            Role::Capf => 4,
            Role::AppServer => 7,
            Role::Tvs => 21,
            Role::Other(c) => c,
        }
    }

    pub fn from_code(c: u16) -> Role {
        match c {
            0 => Role::Sast,
            1 => Role::Ccm,
            2 => Role::CcmTftp,
            3 => Role::Tftp,
            4 => Role::Capf,
            7 => Role::AppServer,
            21 => Role::Tvs,
            c => Role::Other(c),
        }
    }

    /// May sign configuration files.
    pub fn signs_files(self) -> bool {
        matches!(self, Role::Tftp | Role::CcmTftp)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Sast => f.write_str("SAST"),
            Role::Ccm => f.write_str("CCM"),
            Role::CcmTftp => f.write_str("CCM+TFTP"),
            Role::Tftp => f.write_str("TFTP"),
            Role::Capf => f.write_str("CAPF"),
            Role::AppServer => f.write_str("APP-SERVER"),
            Role::Tvs => f.write_str("TVS"),
            Role::Other(c) => write!(f, "{c}"),
        }
    }
}

/// One certificate entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub role: Option<Role>,
    pub subject: String,
    pub issuer: String,
    pub serial: Vec<u8>,
    pub dns_name: Option<String>,
    pub public_key: Vec<u8>,
    pub cert_signature: Vec<u8>,
    /// DER; empty when the record carries only a hash.
    pub certificate: Vec<u8>,
    pub ip_address: Option<Vec<u8>>,
    pub cert_hash: Option<Vec<u8>>,
    pub hash_algorithm: Option<Vec<u8>>,
}

impl Record {
    /// A record for `cert_der` in `role` (the fields read from the certificate).
    pub fn for_certificate(
        cert_der: &[u8],
        role: Role,
        dns_name: Option<&str>,
    ) -> Result<Record, ParseError> {
        let f = cert_fields(cert_der)?;
        Ok(Record {
            role: Some(role),
            subject: f.subject,
            issuer: f.issuer,
            serial: f.serial,
            dns_name: dns_name.map(str::to_string),
            public_key: f.public_key,
            cert_signature: f.signature,
            certificate: cert_der.to_vec(),
            ip_address: None,
            cert_hash: None,
            hash_algorithm: None,
        })
    }

    /// The RSA public key of the record's certificate.
    pub fn rsa_key(&self) -> Result<RsaPublicKey, VerifyError> {
        let f = cert_fields(&self.certificate)
            .map_err(|e| VerifyError::BadCertificate(e.to_string()))?;
        RsaPublicKey::from_pkcs1_der(&f.public_key)
            .map_err(|e| VerifyError::BadCertificate(format!("not an RSA key: {e}")))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[R_LENGTH, 0, 2, 0, 0]);
        let put = |out: &mut Vec<u8>, tag: u8, v: &[u8]| {
            out.push(tag);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v);
        };
        let cstr = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            v.push(0);
            v
        };
        if let Some(d) = &self.dns_name {
            put(out, R_DNS_NAME, &cstr(d));
        }
        put(out, R_SUBJECT, &cstr(&self.subject));
        put(out, R_ISSUER, &cstr(&self.issuer));
        put(out, R_SERIAL, &self.serial);
        if let Some(role) = self.role {
            put(out, R_ROLE, &role.code().to_be_bytes());
        }
        put(out, R_PUBLIC_KEY, &self.public_key);
        put(out, R_SIGNATURE, &self.cert_signature);
        if !self.certificate.is_empty() {
            put(out, R_CERTIFICATE, &self.certificate);
        }
        if let Some(v) = &self.ip_address {
            put(out, R_IP_ADDRESS, v);
        }
        if let Some(v) = &self.cert_hash {
            put(out, R_CERT_HASH, v);
        }
        if let Some(v) = &self.hash_algorithm {
            put(out, R_HASH_ALGORITHM, v);
        }
        let len = (out.len() - start) as u16;
        out[start + 3..start + 5].copy_from_slice(&len.to_be_bytes());
    }

    fn parse(r: &mut Reader<'_>) -> Result<Record, ParseError> {
        let start = r.at;
        let n = r.expect(R_LENGTH, "record length")?;
        let lv = r.take(n, "record length")?;
        let len = match lv {
            [a, b] => u16::from_be_bytes([*a, *b]) as usize,
            _ => {
                return Err(ParseError::Invalid(
                    "record length: expected 2 bytes".into(),
                ))
            }
        };
        let end = start + len;
        if end > r.data.len() {
            return Err(ParseError::Truncated {
                at: r.data.len(),
                what: "record",
                need: end - r.data.len(),
            });
        }
        if end < r.at {
            return Err(ParseError::Invalid(format!(
                "record at byte {start}: length {len} shorter than its length element"
            )));
        }
        let mut inner = Reader {
            data: &r.data[..end],
            at: r.at,
        };
        let mut rec = Record::default();
        while inner.at < end {
            let at = inner.at;
            let (tag, n) = inner.element("record element")?;
            let v = inner.take(n, "record element")?;
            match tag {
                R_DNS_NAME => rec.dns_name = Some(c_string(v)),
                R_SUBJECT => rec.subject = c_string(v),
                R_ROLE => match v {
                    [a, b] => rec.role = Some(Role::from_code(u16::from_be_bytes([*a, *b]))),
                    _ => {
                        return Err(ParseError::Invalid(format!(
                            "byte {at}: role needs 2 bytes"
                        )))
                    }
                },
                R_ISSUER => rec.issuer = c_string(v),
                R_SERIAL => rec.serial = v.to_vec(),
                R_PUBLIC_KEY => rec.public_key = v.to_vec(),
                R_SIGNATURE => rec.cert_signature = v.to_vec(),
                R_CERTIFICATE => rec.certificate = v.to_vec(),
                R_IP_ADDRESS => rec.ip_address = Some(v.to_vec()),
                R_CERT_HASH => rec.cert_hash = Some(v.to_vec()),
                R_HASH_ALGORITHM => rec.hash_algorithm = Some(v.to_vec()),
                tag => {
                    return Err(ParseError::UnknownTag {
                        at,
                        place: "record",
                        tag,
                    })
                }
            }
        }
        r.at = end;
        Ok(rec)
    }
}

/// A parsed ITL or CTL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    pub header: Header,
    pub records: Vec<Record>,
}

impl TrustList {
    /// Builds and signs a trust list. `signer` must be an RSA identity; its certificate
    /// should be among `records` with the SAST role (phones and certutils look it up there).
    pub fn build(
        signer: &Identity,
        filename: &str,
        signer_version: (u8, u8),
        hash: HashAlg,
        timestamp: u32,
        records: &[Record],
    ) -> Result<Vec<u8>, crate::IdentityError> {
        let key = signer.rsa_key().ok_or(crate::IdentityError::NotRsa)?;
        let who = signer.signer()?;
        let mut body = Vec::new();
        for r in records {
            r.encode(&mut body);
        }
        let spec = HeaderSpec {
            version: (1, 2),
            signer_version: Some(signer_version),
            signer: &who,
            hash,
            filename,
            timestamp,
        };
        let sig_len = rsa::traits::PublicKeyParts::size(key);
        Ok(header::encode(&spec, sig_len, &body, |d| {
            header::rsa_sign(key, hash, d)
        }))
    }

    /// Reads a trust list (no signature check: see [`TrustList::verify`]).
    pub fn parse(data: &[u8]) -> Result<TrustList, ParseError> {
        let header = Header::parse(data)?;
        let mut r = Reader {
            data,
            at: header.length,
        };
        let mut records = Vec::new();
        while r.at < data.len() {
            records.push(Record::parse(&mut r)?);
        }
        Ok(TrustList { header, records })
    }

    /// Encodes the list again with its parsed signature bytes (for round trips and fuzzing;
    /// the signature stays valid only if nothing changed).
    pub fn encode_unsigned(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for r in &self.records {
            r.encode(&mut body);
        }
        header::reencode(&self.header, &body)
    }

    /// The SAST record the header names as signer.
    pub fn signer_record(&self) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.role == Some(Role::Sast) && r.serial == self.header.signer.serial)
    }

    /// Checks the signature of `data` (the file this list was parsed from) against the
    /// SAST record inside it.
    pub fn verify(&self, data: &[u8]) -> Result<(), VerifyError> {
        let rec = self
            .signer_record()
            .ok_or_else(|| VerifyError::NoSignerRecord(hex::encode(&self.header.signer.serial)))?;
        self.header.verify(data, &rec.rsa_key()?)
    }

    /// Records in `role`.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.role == Some(role))
    }
}
