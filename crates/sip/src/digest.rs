//! HTTP digest authentication for SIP (RFC 3261 22.4, RFC 7616 with MD5 and SHA-256,
//! qop=auth), with stateless nonces and replay protection.
//!
//! A nonce is `hex(issued_secs ‖ serial ‖ HMAC-SHA256(secret, issued_secs ‖ serial)[..16])`:
//! issuing one stores nothing, so a flood of unauthenticated REGISTERs costs one HMAC each.
//! State is created only when a nonce is first *used* with a correct response, to reject
//! replays (a nonce-count that does not increase, or a second use of a qop-less nonce).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::hdr::DigestParams;

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm=` value; absent means MD5. `-sess` variants are not supported.
    pub fn parse(s: Option<&str>) -> Option<Algorithm> {
        match s {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

/// H(user:realm:password).
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.hash(format!("{user}:{realm}:{password}").as_bytes())
}

/// The `response` value for the given inputs. `qop` = `Some((nc, cnonce))` for qop=auth.
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hash(format!("{method}:{uri}").as_bytes());
    match qop {
        Some((nc, cnonce)) => {
            alg.hash(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
        }
        None => alg.hash(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// A WWW-Authenticate value.
pub fn challenge(realm: &str, nonce: &str, alg: Algorithm, stale: bool) -> String {
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
        alg.name(),
        if stale { ", stale=true" } else { "" }
    )
}

/// Credentials from an Authorization header, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    /// `(nc as sent, nc value, cnonce)` when qop=auth.
    pub qop: Option<(String, u32, String)>,
}

impl Credentials {
    /// `None` for anything malformed or unsupported (auth-int, -sess, userhash).
    pub fn parse(value: &str) -> Option<Credentials> {
        let p = DigestParams::parse(value)?;
        let algorithm = Algorithm::parse(p.get("algorithm"))?;
        if p.get("userhash")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let qop = match p.get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc_raw = p.get("nc")?;
                if nc_raw.len() != 8 {
                    return None;
                }
                let nc = u32::from_str_radix(nc_raw, 16).ok()?;
                let cnonce = p.get("cnonce")?;
                if cnonce.is_empty() {
                    return None;
                }
                Some((nc_raw.to_string(), nc, cnonce.to_string()))
            }
            Some(_) => return None,
        };
        let response = p.get("response")?;
        let want = match algorithm {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        };
        if response.len() != want {
            return None;
        }
        Some(Credentials {
            username: p.get("username")?.to_string(),
            realm: p.get("realm")?.to_string(),
            nonce: p.get("nonce")?.to_string(),
            uri: p.get("uri")?.to_string(),
            response: response.to_ascii_lowercase(),
            algorithm,
            qop,
        })
    }

    /// True if the response matches `password` for `method` (constant-time compare).
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let h1 = ha1(self.algorithm, &self.username, &self.realm, password);
        let want = response(
            self.algorithm,
            &h1,
            &self.nonce,
            self.qop
                .as_ref()
                .map(|(nc, _, c)| (nc.as_str(), c.as_str())),
            method,
            &self.uri,
        );
        constant_time_eq(want.as_bytes(), self.response.as_bytes())
    }
}

/// Secrets are compared with `subtle` (not a hand-rolled fold the optimiser may shortcut).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    Valid,
    /// Ours, but past its lifetime: challenge again with `stale=true`.
    Stale,
    /// Not one of ours (or corrupt).
    Invalid,
}

#[derive(Debug, Clone, Copy)]
struct Used {
    issued: u64,
    /// Highest nonce-count accepted; 0 for a qop-less use.
    last_nc: u32,
}

/// Issues and checks nonces; all time comes from the caller.
#[derive(Debug)]
pub struct NonceManager {
    secret: [u8; 32],
    lifetime: Duration,
    serial: u64,
    used: HashMap<[u8; 16], Used>,
    max_tracked: usize,
    last_prune: u64,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl NonceManager {
    /// `secret` must be random per process (or shared by the nodes of a cluster).
    pub fn new(secret: [u8; 32], lifetime: Duration, max_tracked: usize) -> Self {
        NonceManager {
            secret,
            lifetime,
            serial: 0,
            used: HashMap::new(),
            max_tracked,
            last_prune: 0,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Nonces currently tracked for replay protection.
    pub fn tracked(&self) -> usize {
        self.used.len()
    }

    pub fn issue(&mut self, now: SystemTime) -> String {
        self.serial = self.serial.wrapping_add(1);
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&secs(now).to_be_bytes());
        raw[8..16].copy_from_slice(&self.serial.to_be_bytes());
        let mac = hmac_sha256(&self.secret, &raw[..16]);
        raw[16..].copy_from_slice(&mac[..16]);
        hex::encode(raw)
    }

    /// Decodes and authenticates a nonce; returns (issued secs, mac tag).
    fn open(&self, nonce: &str) -> Option<(u64, [u8; 16])> {
        if nonce.len() != 64 {
            return None;
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(nonce, &mut raw).ok()?;
        let mac = hmac_sha256(&self.secret, &raw[..16]);
        if !constant_time_eq(&mac[..16], &raw[16..]) {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&raw[16..]);
        Some((u64::from_be_bytes(ts), tag))
    }

    /// Is this nonce ours and fresh? Does not consume it.
    pub fn check(&self, nonce: &str, now: SystemTime) -> NonceStatus {
        let Some((issued, _)) = self.open(nonce) else {
            return NonceStatus::Invalid;
        };
        let now = secs(now);
        if issued > now.saturating_add(5) {
            return NonceStatus::Invalid;
        }
        if now.saturating_sub(issued) > self.lifetime.as_secs() {
            return NonceStatus::Stale;
        }
        NonceStatus::Valid
    }

    /// Records a use after the response was verified. False means replay (or table full):
    /// the caller challenges again with a fresh nonce.
    pub fn commit(&mut self, nonce: &str, nc: Option<u32>, now: SystemTime) -> bool {
        let Some((issued, tag)) = self.open(nonce) else {
            return false;
        };
        self.prune(now);
        match self.used.get_mut(&tag) {
            Some(u) => match nc {
                Some(nc) if nc > u.last_nc => {
                    u.last_nc = nc;
                    true
                }
                _ => false,
            },
            None => {
                if self.used.len() >= self.max_tracked {
                    return false;
                }
                self.used.insert(
                    tag,
                    Used {
                        issued,
                        last_nc: nc.unwrap_or(0),
                    },
                );
                // A qop-less nonce is single use; nc must start at 1 or more.
                nc.is_none_or(|n| n >= 1)
            }
        }
    }

    /// Drops entries whose nonce can no longer be accepted anyway (at most once a second).
    fn prune(&mut self, now: SystemTime) {
        let now = secs(now);
        if now == self.last_prune && self.used.len() < self.max_tracked {
            return;
        }
        self.last_prune = now;
        let life = self.lifetime.as_secs();
        self.used
            .retain(|_, u| now.saturating_sub(u.issued) <= life);
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    outer.into()
}

/// Client side: the Authorization value answering `challenge` (a WWW-Authenticate value).
/// `nc` counts uses of this nonce, starting at 1.
pub fn authorize(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let p = DigestParams::parse(challenge)?;
    let alg = Algorithm::parse(p.get("algorithm"))?;
    let realm = p.get("realm")?;
    let nonce = p.get("nonce")?;
    let qop_auth = p
        .get("qop")
        .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")));
    let h1 = ha1(alg, user, realm, password);
    let nc_s = format!("{nc:08x}");
    let resp = response(
        alg,
        &h1,
        nonce,
        qop_auth.then_some((nc_s.as_str(), cnonce)),
        method,
        uri,
    );
    let mut out = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}",
        alg.name()
    );
    if qop_auth {
        out.push_str(&format!(", qop=auth, nc={nc_s}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = p.get("opaque") {
        out.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn rfc2617_md5_vector() {
        // RFC 2617 section 3.5 (HTTP GET, qop=auth).
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        // RFC 7616 section 3.9.1.
        let h1 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        let r = response(
            Algorithm::Sha256,
            &h1,
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn client_and_server_agree_and_replays_fail() {
        let mut nm = NonceManager::new([7; 32], Duration::from_secs(30), 1000);
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let nonce = nm.issue(t(1000));
            let ch = challenge("phoneboot", &nonce, alg, false);
            let auth = authorize(&ch, "REGISTER", "sip:phoneboot", "1001", "pw", "cn", 1).unwrap();
            let c = Credentials::parse(&auth).unwrap();
            assert_eq!(c.algorithm, alg);
            assert!(c.verify("REGISTER", "pw"));
            assert!(!c.verify("REGISTER", "wrong"));
            assert_eq!(nm.check(&c.nonce, t(1010)), NonceStatus::Valid);
            assert!(nm.commit(&c.nonce, Some(1), t(1010)));
            assert!(
                !nm.commit(&c.nonce, Some(1), t(1011)),
                "same nc is a replay"
            );
            assert!(nm.commit(&c.nonce, Some(2), t(1012)));
            assert_eq!(nm.check(&c.nonce, t(1031)), NonceStatus::Stale);
        }
        let n2 = nm.issue(t(2000));
        assert!(nm.commit(&n2, None, t(2000)));
        assert!(
            !nm.commit(&n2, None, t(2001)),
            "qop-less nonce is single use"
        );
        // Tampered nonce.
        let mut bad = nm.issue(t(2000)).into_bytes();
        bad[3] = if bad[3] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(nm.check(&bad, t(2000)), NonceStatus::Invalid);
        assert_eq!(nm.check("short", t(2000)), NonceStatus::Invalid);
        // Old entries are pruned.
        let n3 = nm.issue(t(5000));
        assert!(nm.commit(&n3, Some(1), t(5000)));
        assert_eq!(nm.tracked(), 1);
    }

    #[test]
    fn malformed_credentials_are_rejected() {
        for v in [
            "Digest username=\"u\"",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"short\"",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth-int, nc=00000001, cnonce=\"c\"",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5-sess",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=1, cnonce=\"c\"",
        ] {
            assert!(Credentials::parse(v).is_none(), "{v}");
        }
    }
}
