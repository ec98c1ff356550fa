//! What the upki-issuer plugin reads from a uPKI CA (plugins/upki-wire), natively: a reply
//! frame (`parse_reply`, DATA's `serial_number` by `answer_integer`, then `decimal_to_hex`)
//! and DER (the CA's CRL by `crl_serials`, certificates' Common Names, and the CSR subject
//! rewrite the CA's quirk needs). The first input byte picks which; seeds are real frames and
//! DER of upki-ca (seeds.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use upki_wire::{der, protocol};

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    if which % 2 == 0 {
        frame(rest);
    } else {
        der_input(rest);
    }
});

fn frame(frame: &[u8]) {
    let _ = protocol::parse_reply(frame);
    let Some(digits) = protocol::answer_integer(frame, "serial_number") else {
        return;
    };
    let hex = protocol::decimal_to_hex(&digits);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{hex}"
    );
    assert!(hex == "0" || !hex.starts_with('0'), "{hex}");
    // Where a machine integer holds the serial, the text reading agrees with it.
    if let Ok(n) = digits.parse::<u128>() {
        assert_eq!(hex, format!("{n:x}"), "{digits}");
    }
}

fn der_input(input: &[u8]) {
    if let Ok(serials) = der::crl_serials(input) {
        for serial in serials {
            assert!(serial == "0" || !serial.starts_with('0'), "{serial}");
        }
    }
    let _ = der::certificate_common_name(input);
    if der::subject_is_empty(input).is_ok() {
        // The rewrite the CA's quirk needs leaves a request whose subject is the CN.
        let rewritten = der::with_common_name(input, "a.example").expect("a readable request");
        assert_eq!(der::subject_is_empty(&rewritten), Ok(false));
    }
}
