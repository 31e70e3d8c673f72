//! WSQ structure parsing and pixel decoding must never panic or loop on any input.
#![no_main]
use epatrol_engine::finger::wsq;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wsq::parse(data);
    let _ = wsq::decode(data);
});
