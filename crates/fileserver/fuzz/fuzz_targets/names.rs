#![no_main]
//! Requested file names (TFTP RRQ names, decoded HTTP paths) through the name checks: never
//! a panic, and a name that passes never leaves the tree.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    if let Ok(clean) = fileserver::tree::clean_name(&name) {
        assert!(!clean.starts_with('/'), "{clean:?}");
        assert!(!clean.contains('\0') && !clean.contains('\\'), "{clean:?}");
        assert!(!clean.split('/').any(|c| c == ".."), "{clean:?}");
    }
    let _ = fileserver::mac_from_name(&name);
    let _ = fileserver::service::is_trust_list(&name);
});
