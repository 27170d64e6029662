//! Untrusted H.264 parameter sets (from cameras): the SPS parser never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut nal = vec![0x67];
    nal.extend_from_slice(data);
    let _ = edge_agent::decode::parse_sps(&nal);
});
