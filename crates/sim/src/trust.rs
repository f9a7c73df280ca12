//! The emulated phone's trust list, enforced as a phone does (the rules live in
//! `trust::PhoneTrust`): a phone with no list installs the first ITL it downloads; a phone
//! holding one asks for `SEP<MAC>.cnf.xml.sgn`, refuses an unsigned or foreign-signed
//! configuration, and keeps its list when offered one its SAST does not vouch for. The
//! state lives on the phone, so it survives the resets of a hold and the boots of a storm.

use trust::phone::ItlOutcome;
pub use trust::PhoneTrust;

/// Reads `sim boot --itl FILE`: a phone that already holds this trust list.
pub fn holding_file(path: &std::path::Path) -> Result<PhoneTrust, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("--itl {}: {e}", path.display()))?;
    PhoneTrust::holding(&bytes).map_err(|e| format!("--itl {}: {e}", path.display()))
}

/// Whether `name` is a trust list the phone would install (`ITLFile.tlv`, `ITLSEP<MAC>.tlv`).
pub fn is_itl(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.starts_with("itl") && l.ends_with(".tlv")
}

/// What the phone made of a downloaded ITL, for the file's timeline entry.
pub fn offer_itl(t: &mut PhoneTrust, body: &[u8]) -> Result<&'static str, String> {
    match t.offer_itl(body) {
        Ok(ItlOutcome::Installed) => Ok("trust list installed"),
        Ok(ItlOutcome::Unchanged) => Ok("trust list unchanged"),
        Ok(ItlOutcome::Updated) => Ok("new trust list accepted (vouched for by the held SAST)"),
        Err(e) => Err(format!("trust list rejected, keeping the one held: {e}")),
    }
}

/// The configuration's payload when the held list vouches for its signature, else the
/// reason (with the failure kind for the report).
pub fn check_config(
    t: &PhoneTrust,
    name: &str,
    body: &[u8],
) -> Result<Vec<u8>, (&'static str, String)> {
    t.check_signed(body).map_err(|e| {
        let kind = match e {
            trust::Reject::Unsigned(_) => "config_unsigned",
            trust::Reject::UnknownSigner { .. } => "config_untrusted_signer",
            _ => "config_bad_signature",
        };
        (kind, format!("{name}: {e}"))
    })
}
