//! The uPKI CA's wire format: `{"EVENT": "ANSWER", "DATA": ...}` or
//! `{"EVENT": "UPKI ERROR", "MSG": "[code] text"}`, and serials as JSON integers too large for
//! any machine integer.

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

/// The digits of the JSON integer member `"field": 123...` in `text`, read as text because
/// serials exceed u128 (and f64 would round them).
pub fn raw_integer(text: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let after = &text[text.find(&key)? + key.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
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
        let text = r#"{"DATA": {"serial": 730750818665451459101842416358141509827966271488}}"#;
        let digits = raw_integer(text, "serial").unwrap();
        assert_eq!(decimal_to_hex(&digits), format!("8{}", "0".repeat(39)));
        assert_eq!(decimal_to_hex("255"), "ff");
        assert_eq!(decimal_to_hex("0"), "0");
        assert_eq!(raw_integer(r#"{"serial": "x"}"#, "serial"), None);
    }
}
