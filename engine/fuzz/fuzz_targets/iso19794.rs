//! ISO/IEC 19794-2 / ANSI 378 template parsing must never panic; what parses must
//! re-encode and parse again to the same minutiae.
#![no_main]
use epatrol_engine::finger::iso19794;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = iso19794::decode(data)
        && !rec.views.is_empty()
        && rec.views.iter().all(|v| v.template.width == rec.width as u32)
        && let Ok(bytes) = iso19794::encode_iso2005(&rec.views)
    {
        let again = iso19794::decode(&bytes).expect("our own encoding parses");
        assert_eq!(again.views.len(), rec.views.len());
        for (a, b) in again.views.iter().zip(&rec.views) {
            assert_eq!(a.template.minutiae.len(), b.template.minutiae.len());
        }
    }
});
