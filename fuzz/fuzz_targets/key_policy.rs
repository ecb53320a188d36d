//! Key policies: the host's JSON policy parser (`pkms put-key-policy`), the token's decoder of
//! the compact form (PutKeyPolicy, the flash), and the host's rendering of GetKeyPolicy's compact
//! form as JSON. Checks, besides "never panics": every policy the JSON parser accepts, the token
//! decodes; a policy that decodes encodes back to bytes that decode to the same policy;
//! evaluating it for a fuzzed principal, role, action and encryption context gives Deny exactly
//! when a matching Deny statement exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkms_lib::model::policy_json::policy_from_json;
use pkms_lib::model::PolicyDocument;
use pkms_protocol::access::{Decision, Effect, Policy, ADMINS, ANYONE};
use pkms_protocol::context::ContextPair;

fuzz_target!(|data: &[u8]| {
    // [principal length][principal][admin flag][action bit][context length][pairs…] then the policy.
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = data.get(at..at + n).unwrap_or(&[]);
        at = (at + n).min(data.len());
        s
    };
    let principal_len = take(1).first().copied().unwrap_or(0) as usize % 16;
    let principal = String::from_utf8_lossy(take(principal_len)).into_owned();
    let flags = take(2);
    let is_admin = flags.first().is_some_and(|b| b & 1 == 1);
    let action = 1u64 << (flags.get(1).copied().unwrap_or(0) % 64);
    let context_len = take(1).first().copied().unwrap_or(0) as usize % 32;
    let context_text = String::from_utf8_lossy(take(context_len)).into_owned();
    let pairs: Vec<ContextPair<'_>> = context_text.split(';').filter_map(|kv| kv.split_once('=')).collect();
    let policy_bytes = &data[at..];

    let compact = std::str::from_utf8(policy_bytes).ok().and_then(|text| policy_from_json(text).ok());
    if let Some(compact) = &compact {
        let decoded = Policy::decode(compact);
        assert!(decoded.is_some(), "the token refuses a policy the JSON parser made");
    }
    let policy_bytes = compact.as_deref().unwrap_or(policy_bytes);
    let _ = Policy::decode_within(policy_bytes, 256);
    let _ = PolicyDocument::from_compact(policy_bytes);
    let Some(policy) = Policy::decode(policy_bytes) else { return };
    let again = postcard::to_allocvec(&policy).expect("a decoded policy encodes");
    assert_eq!(Policy::decode(&again).as_ref(), Some(&policy), "the policy does not survive a round trip");
    let decision = policy.decide(&principal, is_admin, action, &pairs);
    let denied = policy.statements.iter().any(|s| {
        s.effect == Effect::Deny
            && s.actions & action != 0
            && s.principals
                .iter()
                .any(|p| *p == ANYONE || *p == principal.as_str() || (*p == ADMINS && is_admin))
            && s.condition.as_ref().is_none_or(|c| c.matches(&pairs))
    });
    assert_eq!(decision == Decision::Deny, denied, "Deny must win exactly when a Deny statement matches");
});
