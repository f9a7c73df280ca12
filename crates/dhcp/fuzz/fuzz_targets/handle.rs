//! Arbitrary bytes into the DHCP engine: never a panic. The same body runs in the normal test
//! suite as the `arbitrary_bytes_never_panic` proptest.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use dhcp::{DhcpConfig, Engine, Ingress, PoolConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = PoolConfig::new(
        "p",
        "198.18.50.0/24".parse().expect("literal subnet"),
        Ipv4Addr::new(198, 18, 50, 10),
        Ipv4Addr::new(198, 18, 50, 15),
    );
    p.interface = Some("v".into());
    let Ok(mut e) = Engine::new(DhcpConfig::new(vec![p]), None) else { return };
    let ingress = Ingress { interface: Some("v"), vlan: None, local_addr: Some(Ipv4Addr::new(198, 18, 50, 1)) };
    let _ = e.handle(data, &ingress, UNIX_EPOCH + Duration::from_secs(1_900_000_000));
    let _ = dhcp::RawOptions::parse(data);
});
