//! A DNS response carrying CAA records, as the validation resolver receives it: decoded by
//! hickory-proto (the resolver's own decoder), turned into `va::caa::CaaRecord`s as the
//! resolver does, then decided by `va::caa::evaluate` (the RFC 8659 issue-value grammar and the
//! RFC 8657 `accounturi`/`validationmethods` parameters are this crate's own parser) for a
//! wildcard and a plain request. The owner name goes through `climb` too. Seeds are responses
//! written by dnspython (seeds.sh).
#![no_main]

use acmegate::acme::ChallengeType;
use acmegate::va::caa::{climb, evaluate, CaaRecord, CaaRequest};
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use libfuzzer_sys::fuzz_target;

/// The issuer domain names the seeds' records name (and some that they do not).
const IDENTITIES: [&str; 2] = ["ca.example", "acmegate.internal"];

fuzz_target!(|wire: &[u8]| {
    let Ok(message) = Message::from_vec(wire) else {
        return;
    };
    let records: Vec<CaaRecord> = message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::CAA(caa) => Some(CaaRecord::from(caa)),
            _ => None,
        })
        .collect();
    let owner = message
        .answers
        .first()
        .map(|record| record.name.to_string())
        .unwrap_or_default();
    let names = climb(&owner);
    assert!(
        names.len() <= owner.len() + 1,
        "{owner} climbs to {names:?}"
    );
    let identities: Vec<String> = IDENTITIES.iter().map(|s| s.to_string()).collect();
    for (wildcard, method) in [(false, ChallengeType::Http01), (true, ChallengeType::Dns01)] {
        let request = CaaRequest {
            wildcard,
            account_uri: "https://gw.example/acme/account/acct-1",
            method,
            identities: &identities,
        };
        // Refusals must name what refused: the owner and a record.
        if let Err(detail) = evaluate(&owner, &records, &request) {
            assert!(detail.contains("CAA"), "{detail}");
        }
    }
});
