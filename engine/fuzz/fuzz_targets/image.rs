//! Image intake (format sniffing, header resolution, decoding with size limits) must
//! never panic on any input.
#![no_main]
use epatrol_engine::finger::image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = image::decode(data) {
        assert_eq!(img.pixels.len(), (img.width * img.height) as usize);
        let _ = image::check_usable(&img);
    }
});
