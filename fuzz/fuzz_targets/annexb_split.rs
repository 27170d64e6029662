//! Untrusted Annex-B byte streams: splitting into NAL units and access units never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let units = edge_agent::source::split_nal_units(data);
    for u in units {
        let _ = edge_agent::decode::parse_sps(u);
    }
});
