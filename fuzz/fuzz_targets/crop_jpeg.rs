//! Untrusted JPEG crops (the analyzer decodes every one): never panics, never over-allocates.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cloud_analyzer::ingest::decode_jpeg(data);
});
