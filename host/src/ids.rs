//! Resource identifiers and tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

/// A new resource id: 12 hex digits of milliseconds then 80 random bits, so ids sort by
/// creation time (orders are listed in that order, RFC 8555 §7.1.2.1) and cannot be guessed.
pub fn new_id() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut random = [0u8; 10];
    rand::fill(&mut random);
    let mut id = format!("{:012x}", millis & 0xffff_ffff_ffff);
    id.push_str(&crate::hex::lower(&random));
    id
}

/// A challenge token: 128 bits of entropy or more, base64url (RFC 8555 §8.3).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b);
        assert_eq!(a.len(), 32);
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 43);
    }
}
