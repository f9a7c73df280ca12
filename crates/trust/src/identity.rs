//! The cluster identity: the keys and certificates a secured CUCM cluster has.
//!
//! * SAST (RSA 2048): signs the trust lists.
//! * TFTP/CallManager (RSA 2048): signs configuration files (`.sgn`); listed in the ITL
//!   with the CCM+TFTP role.
//! * HTTPS (EC P-256): the certificate of HTTPS 6971, listed in ITL version 1.1 with the
//!   TFTP role (a phone holding such an ITL fetches its configuration over 6971).
//!
//! Made once, kept in the store as one blob (JSON holding PEM), shared by every node.
//! Private keys are never formatted by `Debug` and only leave through [`ClusterIdentity::to_blob`]
//! and [`Identity::key_pem`] (for the TLS listener).

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::{OsRng, RngCore};
use rsa::pkcs1v15::SigningKey;
use rsa::RsaPrivateKey;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use crate::header::Signer;
use crate::tlv::{Record, Role, TrustList};
use crate::{HashAlg, ParseError};

use x509_cert::der::{self, Decode, DecodePem, Encode, EncodePem};

/// Why an identity cannot be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("key generation failed: {0}")]
    KeyGen(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("private key: {0}")]
    Key(String),
    #[error("the certificate and the private key do not belong together")]
    Mismatch,
    #[error("this identity needs an RSA key")]
    NotRsa,
    #[error("the stored cluster identity is unreadable ({0}); restore it from a backup, or remove it (`phoneboot security reset`) to make a new one — phones holding the old trust list will then need their trust list erased")]
    Corrupt(String),
}

enum Key {
    Rsa(Box<RsaPrivateKey>),
    Ec(p256::SecretKey),
}

/// One certificate and its private key.
pub struct Identity {
    cert_der: Vec<u8>,
    key: Key,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subject = cert_fields(&self.cert_der)
            .map(|c| c.subject)
            .unwrap_or_default();
        f.debug_struct("Identity")
            .field("subject", &subject)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            cert_der: self.cert_der.clone(),
            key: match &self.key {
                Key::Rsa(k) => Key::Rsa(k.clone()),
                Key::Ec(k) => Key::Ec(k.clone()),
            },
        }
    }
}

/// What `phoneboot security show` prints about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub key: String,
    pub sha1: String,
    pub sha256: String,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
}

impl CertInfo {
    /// Expired (or not yet valid) at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        let t = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.not_before <= t && t <= self.not_after
    }
}

/// The fields of a certificate a trust list repeats.
pub(crate) struct CertFields {
    pub subject: String,
    pub issuer: String,
    pub serial: Vec<u8>,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
    pub cert: Certificate,
}

/// RFC 4514 attributes in certificate order joined by commas (as certutils writes them).
fn name_string(n: &Name) -> String {
    let mut parts = Vec::new();
    for rdn in n.0.iter() {
        for atv in rdn.0.iter() {
            parts.push(atv.to_string());
        }
    }
    parts.join(",")
}

pub(crate) fn cert_fields(der_bytes: &[u8]) -> Result<CertFields, ParseError> {
    let cert = Certificate::from_der(der_bytes)
        .map_err(|e| ParseError::Invalid(format!("certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let mut serial = tbs.serial_number.as_bytes().to_vec();
    while serial.len() > 1 && serial[0] == 0 {
        serial.remove(0);
    }
    Ok(CertFields {
        subject: name_string(&tbs.subject),
        issuer: name_string(&tbs.issuer),
        serial,
        public_key: tbs
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec(),
        signature: cert.signature.raw_bytes().to_vec(),
        cert,
    })
}

fn unix(t: &Time) -> u64 {
    t.to_unix_duration().as_secs()
}

fn random_serial() -> Result<SerialNumber, IdentityError> {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[0] &= 0x7f;
    b[0] |= 0x10; // no leading zero byte, so the minimal encoding is all 16 bytes
    SerialNumber::new(&b).map_err(|e| IdentityError::Certificate(e.to_string()))
}

fn validity(now: SystemTime, days: u32) -> Result<Validity, IdentityError> {
    // A little back-dating tolerates phones whose clock is a bit behind.
    let from = now
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(UNIX_EPOCH);
    let to = now + Duration::from_secs(u64::from(days) * 86_400);
    let err = |e: der::Error| IdentityError::Certificate(e.to_string());
    Ok(Validity {
        not_before: Time::try_from(from).map_err(err)?,
        not_after: Time::try_from(to).map_err(err)?,
    })
}

fn name(cn: &str, org: &str) -> Result<Name, IdentityError> {
    let esc = |s: &str| s.replace(['\\', ',', '+', '"', '<', '>', ';', '='], "-");
    // FromStr takes RFC 4514 order (most specific first) and stores it reversed.
    Name::from_str(&format!("CN={},O={}", esc(cn), esc(org)))
        .map_err(|e| IdentityError::Certificate(e.to_string()))
}

fn leaf(subject: &Name) -> Profile {
    Profile::Leaf {
        issuer: subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: true,
    }
}

impl Identity {
    /// A self-signed RSA-2048 certificate valid for `days` from `now`.
    pub fn generate_rsa(
        cn: &str,
        org: &str,
        now: SystemTime,
        days: u32,
    ) -> Result<Identity, IdentityError> {
        let key = RsaPrivateKey::new(&mut OsRng, 2048)
            .map_err(|e| IdentityError::KeyGen(e.to_string()))?;
        let subject = name(cn, org)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key())
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let signer = SigningKey::<Sha256>::new(key.clone());
        let mut b = CertificateBuilder::new(
            leaf(&subject),
            random_serial()?,
            validity(now, days)?,
            subject,
            spki,
            &signer,
        )
        .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        add_san(&mut b, cn)?;
        let cert = b
            .build::<rsa::pkcs1v15::Signature>()
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Identity {
            cert_der: cert
                .to_der()
                .map_err(|e| IdentityError::Certificate(e.to_string()))?,
            key: Key::Rsa(Box::new(key)),
        })
    }

    /// A self-signed P-256 certificate (for HTTPS 6971) valid for `days` from `now`.
    pub fn generate_ec(
        cn: &str,
        org: &str,
        now: SystemTime,
        days: u32,
    ) -> Result<Identity, IdentityError> {
        let key = p256::SecretKey::random(&mut OsRng);
        let subject = name(cn, org)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(key.public_key())
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let signer = p256::ecdsa::SigningKey::from(&key);
        let mut b = CertificateBuilder::new(
            leaf(&subject),
            random_serial()?,
            validity(now, days)?,
            subject,
            spki,
            &signer,
        )
        .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        add_san(&mut b, cn)?;
        let cert = b
            .build::<p256::ecdsa::DerSignature>()
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Identity {
            cert_der: cert
                .to_der()
                .map_err(|e| IdentityError::Certificate(e.to_string()))?,
            key: Key::Ec(key),
        })
    }

    /// An identity from PEM text (an admin's own certificate and key; PKCS#8 or PKCS#1 RSA,
    /// PKCS#8 or SEC1 EC). Refuses a key that does not match the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, IdentityError> {
        let cert = Certificate::from_pem(cert_pem.trim().as_bytes())
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let cert_der = cert
            .to_der()
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let key = if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(key_pem.trim()) {
            Key::Rsa(Box::new(k))
        } else if let Ok(k) =
            <RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(key_pem.trim())
        {
            Key::Rsa(Box::new(k))
        } else if let Ok(k) = p256::SecretKey::from_pkcs8_pem(key_pem.trim()) {
            Key::Ec(k)
        } else if let Ok(k) = p256::SecretKey::from_sec1_pem(key_pem.trim()) {
            Key::Ec(k)
        } else {
            return Err(IdentityError::Key(
                "not a PEM RSA or P-256 private key (PKCS#8, PKCS#1 or SEC1)".into(),
            ));
        };
        let key_spki = match &key {
            Key::Rsa(k) => k.to_public_key().to_public_key_der(),
            Key::Ec(k) => k.public_key().to_public_key_der(),
        }
        .map_err(|e| IdentityError::Key(e.to_string()))?;
        if key_spki.as_bytes() != spki.as_slice() {
            return Err(IdentityError::Mismatch);
        }
        Ok(Identity { cert_der, key })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn cert_pem(&self) -> String {
        Certificate::from_der(&self.cert_der)
            .ok()
            .and_then(|c| c.to_pem(LineEnding::LF).ok())
            .unwrap_or_default()
    }

    /// The private key as PKCS#8 PEM (for the TLS listener and the store blob only).
    pub fn key_pem(&self) -> Result<String, IdentityError> {
        let doc = match &self.key {
            Key::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            Key::Ec(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| IdentityError::Key(e.to_string()))?;
        Ok(doc.to_string())
    }

    /// The private key as PKCS#8 DER (for rustls).
    pub fn key_pkcs8_der(&self) -> Result<Vec<u8>, IdentityError> {
        let doc = match &self.key {
            Key::Rsa(k) => k.to_pkcs8_der(),
            Key::Ec(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| IdentityError::Key(e.to_string()))?;
        Ok(doc.as_bytes().to_vec())
    }

    pub(crate) fn rsa_key(&self) -> Option<&RsaPrivateKey> {
        match &self.key {
            Key::Rsa(k) => Some(k),
            Key::Ec(_) => None,
        }
    }

    pub fn is_rsa(&self) -> bool {
        self.rsa_key().is_some()
    }

    /// Subject, issuer and serial as the signed header names them.
    pub fn signer(&self) -> Result<Signer, IdentityError> {
        let f =
            cert_fields(&self.cert_der).map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Signer {
            name: f.subject,
            issuer: f.issuer,
            serial: f.serial,
        })
    }

    pub fn info(&self) -> CertInfo {
        cert_info(&self.cert_der).unwrap_or(CertInfo {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            key: String::new(),
            sha1: String::new(),
            sha256: String::new(),
            not_before: 0,
            not_after: 0,
        })
    }
}

/// Subjects, fingerprints and validity of a DER certificate.
pub fn cert_info(der_bytes: &[u8]) -> Result<CertInfo, ParseError> {
    let f = cert_fields(der_bytes)?;
    let v = &f.cert.tbs_certificate.validity;
    let alg = f.cert.tbs_certificate.subject_public_key_info.algorithm.oid;
    let key = if alg == const_oid_rsa() {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        match rsa::RsaPublicKey::from_pkcs1_der(&f.public_key) {
            Ok(k) => format!("RSA {}", k.size() * 8),
            Err(_) => "RSA (unreadable)".to_string(),
        }
    } else {
        "EC P-256".to_string()
    };
    Ok(CertInfo {
        subject: f.subject,
        issuer: f.issuer,
        serial: hex::encode(&f.serial),
        key,
        sha1: colon_hex(&Sha1::digest(der_bytes)),
        sha256: colon_hex(&Sha256::digest(der_bytes)),
        not_before: unix(&v.not_before),
        not_after: unix(&v.not_after),
    })
}

/// PEM text of a DER certificate (e.g. a record's, for `sgnfile -t`).
pub fn cert_pem(der_bytes: &[u8]) -> Result<String, ParseError> {
    Certificate::from_der(der_bytes)
        .and_then(|c| c.to_pem(LineEnding::LF))
        .map_err(|e| ParseError::Invalid(format!("certificate: {e}")))
}

fn const_oid_rsa() -> der::oid::ObjectIdentifier {
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1")
}

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn add_san<S>(b: &mut CertificateBuilder<'_, S>, dns: &str) -> Result<(), IdentityError>
where
    S: rsa::signature::Keypair + x509_cert::spki::DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
{
    let Ok(ia5) = der::asn1::Ia5String::new(dns) else {
        return Ok(());
    };
    b.add_extension(&SubjectAltName(vec![GeneralName::DnsName(ia5)]))
        .map_err(|e| IdentityError::Certificate(e.to_string()))
}

/// The cluster's identities. `previous_sast` is set during a key rollover: the old SAST
/// still signs the trust list (so phones holding the old list accept the new one) and the
/// new list carries both SAST certificates.
#[derive(Debug, Clone)]
pub struct ClusterIdentity {
    pub sast: Identity,
    pub tftp: Identity,
    pub https: Identity,
    pub previous_sast: Option<Identity>,
}

/// A CallManager/TFTP node as the trust lists name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    pub host: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PemPair {
    cert: String,
    key: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Blob {
    format: u32,
    sast: PemPair,
    tftp: PemPair,
    https: PemPair,
    #[serde(default)]
    previous_sast: Option<PemPair>,
}

/// Validity of generated certificates: ten years, as CUCM's self-signed ones get five to ten.
pub const VALID_DAYS: u32 = 3650;

impl ClusterIdentity {
    /// New keys and self-signed certificates for cluster `cluster` (a name in the subjects).
    pub fn generate(cluster: &str, now: SystemTime) -> Result<ClusterIdentity, IdentityError> {
        Ok(ClusterIdentity {
            sast: Identity::generate_rsa(&format!("{cluster}-SAST"), cluster, now, VALID_DAYS)?,
            tftp: Identity::generate_rsa(&format!("{cluster}-TFTP"), cluster, now, VALID_DAYS)?,
            https: Identity::generate_ec(&format!("{cluster}-HTTPS"), cluster, now, VALID_DAYS)?,
            previous_sast: None,
        })
    }

    /// A rollover: new keys for everything; the current SAST becomes `previous_sast` and
    /// keeps signing the trust list until [`ClusterIdentity::finish_rotation`].
    pub fn rotate(&self, cluster: &str, now: SystemTime) -> Result<ClusterIdentity, IdentityError> {
        let mut next = ClusterIdentity::generate(cluster, now)?;
        next.previous_sast = Some(
            self.previous_sast
                .clone()
                .unwrap_or_else(|| self.sast.clone()),
        );
        Ok(next)
    }

    /// Ends a rollover: the new SAST alone signs from now on (phones must have taken the
    /// rollover trust list first, or they will refuse the next one).
    pub fn finish_rotation(&mut self) {
        self.previous_sast = None;
    }

    /// The identity that signs trust lists now.
    pub fn list_signer(&self) -> &Identity {
        self.previous_sast.as_ref().unwrap_or(&self.sast)
    }

    /// Serialises everything, private keys included, for the store.
    pub fn to_blob(&self) -> Result<Vec<u8>, IdentityError> {
        let pair = |i: &Identity| -> Result<PemPair, IdentityError> {
            Ok(PemPair {
                cert: i.cert_pem(),
                key: i.key_pem()?,
            })
        };
        let b = Blob {
            format: 1,
            sast: pair(&self.sast)?,
            tftp: pair(&self.tftp)?,
            https: pair(&self.https)?,
            previous_sast: self.previous_sast.as_ref().map(pair).transpose()?,
        };
        serde_json::to_vec_pretty(&b).map_err(|e| IdentityError::Corrupt(e.to_string()))
    }

    /// Reads what [`ClusterIdentity::to_blob`] wrote; a damaged blob is a clear error.
    pub fn from_blob(bytes: &[u8]) -> Result<ClusterIdentity, IdentityError> {
        let b: Blob =
            serde_json::from_slice(bytes).map_err(|e| IdentityError::Corrupt(e.to_string()))?;
        if b.format != 1 {
            return Err(IdentityError::Corrupt(format!(
                "unknown format {}",
                b.format
            )));
        }
        let read = |what: &str, p: &PemPair| {
            Identity::from_pem(&p.cert, &p.key)
                .map_err(|e| IdentityError::Corrupt(format!("{what}: {e}")))
        };
        let id = ClusterIdentity {
            sast: read("sast", &b.sast)?,
            tftp: read("tftp", &b.tftp)?,
            https: read("https", &b.https)?,
            previous_sast: b
                .previous_sast
                .as_ref()
                .map(|p| read("previous_sast", p))
                .transpose()?,
        };
        if !id.sast.is_rsa() || !id.tftp.is_rsa() {
            return Err(IdentityError::Corrupt("sast and tftp need RSA keys".into()));
        }
        Ok(id)
    }

    /// ITL records: the SAST certificate(s), the TFTP/CallManager certificate as CCM+TFTP
    /// once per node (DNS name = the node's host), and with `v1_1` the EC certificate of
    /// HTTPS 6971 in the TFTP role.
    pub fn itl_records(&self, nodes: &[NodeName], v1_1: bool) -> Result<Vec<Record>, ParseError> {
        let mut out = Vec::new();
        if let Some(prev) = &self.previous_sast {
            out.push(Record::for_certificate(prev.cert_der(), Role::Sast, None)?);
        }
        out.push(Record::for_certificate(
            self.sast.cert_der(),
            Role::Sast,
            None,
        )?);
        if nodes.is_empty() {
            out.push(Record::for_certificate(
                self.tftp.cert_der(),
                Role::CcmTftp,
                None,
            )?);
        }
        for n in nodes {
            out.push(Record::for_certificate(
                self.tftp.cert_der(),
                Role::CcmTftp,
                Some(&n.host),
            )?);
        }
        if v1_1 {
            out.push(Record::for_certificate(
                self.https.cert_der(),
                Role::Tftp,
                None,
            )?);
        }
        Ok(out)
    }

    /// `ITLFile.tlv` (version 1.1: it carries the EC certificate).
    pub fn build_itl(&self, nodes: &[NodeName], timestamp: u32) -> Result<Vec<u8>, IdentityError> {
        let records = self
            .itl_records(nodes, true)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        TrustList::build(
            self.list_signer(),
            "ITLFile.tlv",
            (1, 1),
            HashAlg::Sha1,
            timestamp,
            &records,
        )
    }

    /// `CTLFile.tlv` for mixed mode: SAST and the CallManager/TFTP certificate per node.
    pub fn build_ctl(&self, nodes: &[NodeName], timestamp: u32) -> Result<Vec<u8>, IdentityError> {
        let records = self
            .itl_records(nodes, false)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        TrustList::build(
            self.list_signer(),
            "CTLFile.tlv",
            (1, 0),
            HashAlg::Sha1,
            timestamp,
            &records,
        )
    }

    /// `<name>.sgn`: `payload` signed by the TFTP identity.
    pub fn sign_file(
        &self,
        sgn_name: &str,
        payload: &[u8],
        timestamp: u32,
    ) -> Result<Vec<u8>, IdentityError> {
        crate::SignedFile::build(&self.tftp, sgn_name, HashAlg::Sha1, timestamp, payload)
    }

    /// Every certificate with what it is for, for `security show`.
    pub fn certificates(&self) -> Vec<(&'static str, CertInfo)> {
        let mut v = vec![
            ("sast", self.sast.info()),
            ("tftp", self.tftp.info()),
            ("https", self.https.info()),
        ];
        if let Some(p) = &self.previous_sast {
            v.push(("previous-sast", p.info()));
        }
        v
    }
}
