//! The client address from a forwarding header on arbitrary values: never panics, and the
//! answer is the peer or an address written in the header; an untrusted peer is always the
//! answer, whatever it sent.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use vigie::fuzzing::client_from_chain;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(config) = vigie_config::parse(
        "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        "fuzz.toml",
    ) else {
        return;
    };
    let cfg = config.client_ip;
    let values: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, which));
    let client = client_from_chain(&cfg, peer, values.iter().copied());
    if client != peer && client.is_ipv4() {
        // IPv6 addresses have several spellings; an IPv4 one is written as it is shown.
        let text = String::from_utf8_lossy(rest);
        assert!(text.contains(&client.to_string()), "{client} is not in {text:?}");
    }
    let untrusted = IpAddr::V4(Ipv4Addr::new(192, 0, 2, which));
    assert_eq!(
        client_from_chain(&cfg, untrusted, values.iter().copied()),
        untrusted
    );
});
