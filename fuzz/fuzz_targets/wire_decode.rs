//! Untrusted MQTT payloads: decoding never panics, and never allocates past its bounds.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cascade_shared::wire::decode(data);
});
