//! Verdicts from the broker are untrusted on the edge: decoding never panics and bounds its sizes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cascade_shared::verdict::Verdicts::decode(data);
});
