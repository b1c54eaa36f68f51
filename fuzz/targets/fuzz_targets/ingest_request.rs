#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgfeat_fuzz::parse_ingest_request(data));
