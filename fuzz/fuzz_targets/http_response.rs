//! `ward check`'s HTTP client: any bytes the probed server answers, through
//! `check::http::parse_head` (status line and header lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::check::http::{Parsed, parse_head};

fuzz_target!(|data: &[u8]| {
    match parse_head(data) {
        Ok(Parsed::Complete(h)) => {
            assert!((100..=599).contains(&h.code), "status {}", h.code);
            assert!(h.len <= data.len(), "a head longer than its input");
            assert_eq!(data[h.len - 1], b'\n', "a head that does not end a line");
            assert!(
                h.reason.chars().all(|c| !c.is_control() || c == '\t'),
                "reason not made printable: {:?}",
                h.reason
            );
            // The body that follows changes nothing.
            let mut more = data[..h.len].to_vec();
            more.extend_from_slice(b"\x00\xffbody");
            assert_eq!(parse_head(&more), Ok(Parsed::Complete(h)));
        }
        Ok(Parsed::Partial) => {
            // What came so far is a well-formed beginning: so is any prefix.
            for cut in [0, data.len() / 2] {
                assert!(
                    matches!(parse_head(&data[..cut]), Ok(Parsed::Partial)),
                    "a prefix of a partial head is malformed"
                );
            }
        }
        Err(e) => assert!(!e.contains('\n'), "a multi-line error: {e:?}"),
    }
});
