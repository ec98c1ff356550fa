//! The uPKI CA's wire format: `{"EVENT": "ANSWER", "DATA": ...}` or
//! `{"EVENT": "UPKI ERROR", "MSG": "[code] text"}`, and serials as JSON integers too large for
//! any machine integer.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// An error the CA answered.
#[derive(Debug, PartialEq, Eq)]
pub struct CaError {
    /// The bracketed code (100 storage ... 900 revocation); 0 when the message has none.
    pub code: u32,
    pub text: String,
}

#[derive(Debug, PartialEq)]
pub enum Reply {
    Answer(Value),
    Error(CaError),
}

/// Reads one reply frame.
pub fn parse_reply(frame: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(frame).map_err(|e| format!("reply is not JSON: {e}"))?;
    match v["EVENT"].as_str() {
        Some("ANSWER") => Ok(Reply::Answer(v["DATA"].clone())),
        Some("UPKI ERROR") => {
            let msg = v["MSG"].as_str().unwrap_or_default();
            let (code, text) = match msg
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(code, text)| Some((code.parse().ok()?, text.trim())))
            {
                Some((code, text)) => (code, text.to_string()),
                None => (0, msg.to_string()),
            };
            Ok(Reply::Error(CaError { code, text }))
        }
        other => Err(format!("unknown EVENT {other:?}")),
    }
}

/// The digits of the integer member `field` of the answer's DATA object, read as text because
/// serials exceed u128 (and f64 would round them). Only DATA's own member counts: the same
/// name nested deeper (in `extensions`, `issuer`, ...) or inside a string is another value,
/// and reading it would make revocation check the wrong certificate. `None` when DATA has no
/// such member or it is not a non-negative integer.
pub fn answer_integer(frame: &[u8], field: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Frame<'a> {
        #[serde(borrow, rename = "DATA")]
        data: Option<&'a RawValue>,
    }
    let frame: Frame<'_> = serde_json::from_slice(frame).ok()?;
    let members: HashMap<String, &RawValue> = serde_json::from_str(frame.data?.get()).ok()?;
    let raw = members.get(field)?.get();
    (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())).then(|| raw.to_string())
}

/// Decimal digits to lower-case hex without leading zeros (as the gateway writes serials).
pub fn decimal_to_hex(digits: &str) -> String {
    // Big-endian base-256 accumulator: n = n * 10 + d.
    let mut bytes: Vec<u8> = vec![0];
    for d in digits.bytes().map(|b| b - b'0') {
        let mut carry = u32::from(d);
        for b in bytes.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_big_serials() {
        let answer = parse_reply(br#"{"EVENT": "ANSWER", "DATA": true}"#).unwrap();
        assert_eq!(answer, Reply::Answer(Value::Bool(true)));
        let error =
            parse_reply(br#"{"EVENT": "UPKI ERROR", "MSG": "[300] CSR has no Common Name"}"#)
                .unwrap();
        assert_eq!(
            error,
            Reply::Error(CaError {
                code: 300,
                text: "CSR has no Common Name".into()
            })
        );
        let bare = parse_reply(br#"{"EVENT": "UPKI ERROR", "MSG": "Invalid JSON: x"}"#).unwrap();
        assert!(matches!(bare, Reply::Error(CaError { code: 0, .. })));
        assert!(parse_reply(b"nope").is_err());
        let frame = br#"{"EVENT": "ANSWER", "DATA": {"serial": 730750818665451459101842416358141509827966271488}}"#;
        let digits = answer_integer(frame, "serial").unwrap();
        assert_eq!(decimal_to_hex(&digits), format!("8{}", "0".repeat(39)));
        assert_eq!(decimal_to_hex("255"), "ff");
        assert_eq!(decimal_to_hex("0"), "0");
        assert_eq!(
            answer_integer(br#"{"DATA": {"serial": "x"}}"#, "serial"),
            None
        );
        assert_eq!(
            answer_integer(br#"{"DATA": {"serial": -1}}"#, "serial"),
            None
        );
        assert_eq!(answer_integer(br#"{"DATA": true}"#, "serial"), None);
    }

    /// Before: the first `"serial_number": <digits>` anywhere in the reply's text was taken,
    /// so a member of a nested object, or the text of a string, decided which certificate
    /// revocation checked.
    #[test]
    fn only_datas_own_member_is_read() {
        let frame = br#"{"EVENT": "ANSWER", "DATA": {
            "issuer": {"serial_number": 1, "note": "\"serial_number\": 2"},
            "serial_number": 3}}"#;
        assert_eq!(answer_integer(frame, "serial_number").as_deref(), Some("3"));
        let nested_only = br#"{"EVENT": "ANSWER", "DATA": {"issuer": {"serial_number": 1}}}"#;
        assert_eq!(answer_integer(nested_only, "serial_number"), None);
    }
}
