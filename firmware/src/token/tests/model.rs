//! Model-based power-cut test: random sequences of key-changing operations (create, rotate,
//! retire, enable and disable, schedule and cancel deletion, aliases, tags, key policies,
//! descriptions, encryptions) against a model of what the token should hold, with power cut at a
//! random write or erase of one operation. After the remount the token's state must be exactly
//! the model's state before or after the interrupted operation, and every ciphertext made
//! earlier must still decrypt if its key and version are usable in that state (and be refused
//! otherwise).
//!
//! Each sequence starts from one of a few stored states (an empty store, one with keys, versions,
//! an alias, a tag and a policy, and that one after churn at twenty fill levels), runs a random prefix checked against the
//! model, then probes the interrupted operation once uncut (its new state must be the model's
//! after-state, and its cut points are counted) and runs it again from the same flash and seed
//! with the cut at a random one of them. A small flash makes garbage collection frequent.
//!
//! The open-token runs (4 × 2,500 sequences) are joined by one on an initialised token where
//! every request runs in an administrator's session and so also appends to the audit log: after
//! each cut the stored log must still chain from its base to its head, and hold every entry made
//! before the cut.

use std::collections::BTreeMap;

use pkms_protocol::KeyState;
use rand_chacha::rand_core::RngCore;

use super::*;

/// Eight 4 KiB pages; sixteen for an audited token, whose log alone (256 entries) needs about
/// eight.
const FLASH: usize = 8 * 4096;
const AUDITED_FLASH: usize = 16 * 4096;
const MAX_KEYS: usize = 4;
const ALIASES: [&str; 3] = ["alias/a", "alias/b", "alias/c"];
const TAG_KEYS: [&str; 3] = ["team", "env", "cost"];

#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyModel {
    state: KeyState,
    oldest: u32,
    current: u32,
    description: String,
    tags: BTreeMap<String, String>,
    /// Which policy was put last: [`DEFAULT_POLICY`], a variant of [`policy_bytes`], or
    /// [`UNREAD_POLICY`] (pending deletion: GetKeyPolicy is refused).
    policy: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Model {
    keys: BTreeMap<KeyId, KeyModel>,
    aliases: BTreeMap<String, KeyId>,
}

/// A ciphertext made during the sequence: its key, version and plaintext.
#[derive(Clone)]
struct Blob {
    key: KeyId,
    version: u32,
    plaintext: Vec<u8>,
    blob: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Op {
    Create(String),
    Encrypt(KeyId, Vec<u8>),
    Rotate(KeyId),
    Retire(KeyId, u32),
    Disable(KeyId),
    Enable(KeyId),
    ScheduleDeletion(KeyId),
    CancelDeletion(KeyId),
    CreateAlias(&'static str, KeyId),
    UpdateAlias(&'static str, KeyId),
    DeleteAlias(&'static str),
    Tag(KeyId, &'static str, String),
    Untag(KeyId, &'static str),
    PutPolicy(KeyId, u32),
    Describe(KeyId, String),
}

const DEFAULT_POLICY: i64 = -1;
const UNREAD_POLICY: i64 = -2;
/// How many different policies [`policy_bytes`] makes.
const POLICY_VARIANTS: u32 = 20;

/// Policy variant `n` (below [`POLICY_VARIANTS`]) lets the administrator role do everything,
/// plus a second statement whose one action depends on `n`.
fn policy_bytes(n: u32) -> Vec<u8> {
    let statement = |actions: u64| pkms_protocol::access::Statement {
        effect: pkms_protocol::access::Effect::Allow,
        principals: ["role/admin"].into_iter().collect(),
        actions,
        condition: None,
        grant_operations: None,
    };
    super::auth::encode_policy(&pkms_protocol::access::Policy {
        statements: [statement(pkms_protocol::access::ALL_ACTIONS), statement(1u64 << (n % 20))]
            .into_iter()
            .collect(),
    })
}

fn pick<T: Clone>(rng: &mut ChaCha20Rng, items: &[T]) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[rng.next_u32() as usize % items.len()].clone())
    }
}

/// A random operation the model says must succeed.
fn random_op(rng: &mut ChaCha20Rng, m: &Model, policies: &mut u32) -> Op {
    let with = |f: fn(&KeyModel) -> bool| -> Vec<KeyId> {
        m.keys.iter().filter(|(_, k)| f(k)).map(|(id, _)| *id).collect()
    };
    let enabled = with(|k| k.state == KeyState::Enabled);
    let disabled = with(|k| k.state == KeyState::Disabled);
    let pending = with(|k| k.state == KeyState::PendingDeletion);
    let live = with(|k| k.state != KeyState::PendingDeletion);
    let retirable = with(|k| k.state == KeyState::Enabled && k.current > k.oldest);
    loop {
        let op = match rng.next_u32() % 15 {
            0 if m.keys.len() < MAX_KEYS => Some(Op::Create(std::format!("key {}", rng.next_u32() % 1000))),
            1 => pick(rng, &enabled)
                .map(|k| Op::Encrypt(k, std::format!("secret {}", rng.next_u32()).into_bytes())),
            2 => pick(rng, &enabled).map(Op::Rotate),
            3 => pick(rng, &retirable).map(|k| {
                let key = &m.keys[&k];
                let below = key.oldest + 1 + rng.next_u32() % (key.current - key.oldest);
                Op::Retire(k, below)
            }),
            4 => pick(rng, &enabled).map(Op::Disable),
            5 => pick(rng, &disabled).map(Op::Enable),
            6 => pick(rng, &live).map(Op::ScheduleDeletion),
            7 => pick(rng, &pending).map(Op::CancelDeletion),
            8 => {
                let free: Vec<&'static str> =
                    ALIASES.iter().copied().filter(|a| !m.aliases.contains_key(*a)).collect();
                pick(rng, &free).zip(pick(rng, &enabled)).map(|(a, k)| Op::CreateAlias(a, k))
            }
            9 => {
                let taken: Vec<&'static str> =
                    ALIASES.iter().copied().filter(|a| m.aliases.contains_key(*a)).collect();
                pick(rng, &taken).zip(pick(rng, &enabled)).map(|(a, k)| Op::UpdateAlias(a, k))
            }
            10 => {
                let taken: Vec<&'static str> =
                    ALIASES.iter().copied().filter(|a| m.aliases.contains_key(*a)).collect();
                pick(rng, &taken).map(Op::DeleteAlias)
            }
            11 => pick(rng, &live)
                .zip(pick(rng, &TAG_KEYS))
                .map(|(k, t)| Op::Tag(k, t, std::format!("v{}", rng.next_u32() % 100))),
            12 => {
                let tagged: Vec<(KeyId, String)> = m
                    .keys
                    .iter()
                    .filter(|(_, k)| k.state != KeyState::PendingDeletion)
                    .flat_map(|(id, k)| k.tags.keys().map(move |t| (*id, t.clone())))
                    .collect();
                pick(rng, &tagged)
                    .map(|(k, t)| Op::Untag(k, TAG_KEYS.iter().copied().find(|x| *x == t).unwrap()))
            }
            13 => pick(rng, &live).map(|k| {
                *policies += 1;
                Op::PutPolicy(k, *policies % POLICY_VARIANTS)
            }),
            14 => pick(rng, &live).map(|k| Op::Describe(k, "d".repeat(rng.next_u32() as usize % 200))),
            _ => None,
        };
        if let Some(op) = op {
            return op;
        }
    }
}

/// Sends `op`; returns the reply (an error when a cut hit it).
fn send(h: &mut Harness, op: &Op) -> Reply {
    let k = |id: &KeyId| s(id);
    match op {
        Op::Create(d) => h.call(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: d,
            tags: Tags::new(),
            user_presence_required: false,
        })),
        Op::Encrypt(id, p) => h.call(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &k(id),
            plaintext: p,
            encryption_context: ctx(&[("m", "1")]),
        })),
        Op::Rotate(id) => {
            h.call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &k(id) }))
        }
        Op::Retire(id, below) => {
            h.call(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
                key_id: &k(id),
                below_version: *below,
            }))
        }
        Op::Disable(id) => h.call(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &k(id) })),
        Op::Enable(id) => h.call(Request::EnableKey(pkms_protocol::request::EnableKey { key_id: &k(id) })),
        Op::ScheduleDeletion(id) => {
            h.call(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
                key_id: &k(id),
                pending_window_in_days: Some(7),
            }))
        }
        Op::CancelDeletion(id) => {
            h.call(Request::CancelKeyDeletion(pkms_protocol::request::CancelKeyDeletion { key_id: &k(id) }))
        }
        Op::CreateAlias(a, id) => h.call(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: a,
            target_key_id: &k(id),
        })),
        Op::UpdateAlias(a, id) => h.call(Request::UpdateAlias(pkms_protocol::request::UpdateAlias {
            alias_name: a,
            target_key_id: &k(id),
        })),
        Op::DeleteAlias(a) => {
            h.call(Request::DeleteAlias(pkms_protocol::request::DeleteAlias { alias_name: a }))
        }
        Op::Tag(id, t, v) => h.call(Request::TagResource(pkms_protocol::request::TagResource {
            key_id: &k(id),
            tags: [pkms_protocol::Tag { tag_key: t, tag_value: v }].into_iter().collect(),
        })),
        Op::Untag(id, t) => h.call(Request::UntagResource(pkms_protocol::request::UntagResource {
            key_id: &k(id),
            tag_keys: [*t].into_iter().collect(),
        })),
        Op::PutPolicy(id, n) => h.call(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy {
            key_id: &k(id),
            policy: &policy_bytes(*n),
        })),
        Op::Describe(id, d) => {
            h.call(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
                key_id: &k(id),
                description: d,
            }))
        }
    }
}

/// The model after `op` succeeded with `reply`; a new ciphertext goes to `blobs`.
fn apply(m: &Model, op: &Op, reply: &Reply, blobs: &mut Vec<Blob>) -> Model {
    let mut m = m.clone();
    fn key<'m>(m: &'m mut Model, id: &KeyId) -> &'m mut KeyModel {
        m.keys.get_mut(id).expect("the model holds the key")
    }
    match op {
        Op::Create(d) => {
            let Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata })) = reply.get()
            else {
                panic!("CreateKey: {:?}", reply.get())
            };
            let fresh = KeyModel {
                state: KeyState::Enabled,
                oldest: 1,
                current: 1,
                description: d.clone(),
                tags: BTreeMap::new(),
                policy: DEFAULT_POLICY,
            };
            m.keys.insert(key_metadata.key_id, fresh);
        }
        Op::Encrypt(id, p) => {
            let Ok(Response::Encrypt(pkms_protocol::reply::Encrypt { ciphertext_blob, key_version, .. })) =
                reply.get()
            else {
                panic!("Encrypt: {:?}", reply.get())
            };
            assert_eq!(key_version, m.keys[id].current, "Encrypt uses the newest version");
            blobs.push(Blob {
                key: *id,
                version: key_version,
                plaintext: p.clone(),
                blob: ciphertext_blob.to_vec(),
            });
        }
        Op::Rotate(id) => key(&mut m, id).current += 1,
        Op::Retire(id, below) => key(&mut m, id).oldest = *below,
        Op::Disable(id) | Op::CancelDeletion(id) => key(&mut m, id).state = KeyState::Disabled,
        Op::Enable(id) => key(&mut m, id).state = KeyState::Enabled,
        Op::ScheduleDeletion(id) => key(&mut m, id).state = KeyState::PendingDeletion,
        Op::CreateAlias(a, id) | Op::UpdateAlias(a, id) => {
            m.aliases.insert((*a).into(), *id);
        }
        Op::DeleteAlias(a) => {
            m.aliases.remove(*a);
        }
        Op::Tag(id, t, v) => {
            key(&mut m, id).tags.insert((*t).into(), v.clone());
        }
        Op::Untag(id, t) => {
            key(&mut m, id).tags.remove(*t);
        }
        Op::PutPolicy(id, n) => key(&mut m, id).policy = i64::from(*n),
        Op::Describe(id, d) => key(&mut m, id).description = d.clone(),
    }
    m
}

/// What the token holds, in the model's terms. Policies are identified by their bytes, as
/// GetKeyPolicy returns them, through `policies` (stored bytes → variant).
fn observe(h: &mut Harness, policies: &BTreeMap<Vec<u8>, i64>, what: &str) -> Model {
    if let Some(e) = h.token.core.broken() {
        panic!("{what}: token broken after remount: {:?} {}", e.code, e.message);
    }
    let keys: Vec<KeyId> =
        match h.ok(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None })).get() {
            Ok(Response::Keys(pkms_protocol::reply::Keys { keys, truncated: false, .. })) => keys.to_vec(),
            other => panic!("{what}: {other:?}"),
        };
    let mut m = Model::default();
    for id in keys {
        let key = s(&id);
        let r = h.ok(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &key }));
        let Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: d })) = r.get() else {
            panic!("{what}")
        };
        let (state, oldest, current, description) =
            (d.key_state, d.oldest_key_version, d.current_key_version, String::from(d.description));
        let r = h.ok(Request::ListResourceTags(pkms_protocol::request::ListResourceTags { key_id: &key }));
        let Ok(Response::Tags(pkms_protocol::reply::Tags { tags })) = r.get() else { panic!("{what}") };
        let tags = tags.iter().map(|t| (String::from(t.tag_key), String::from(t.tag_value))).collect();
        let policy = if state == KeyState::PendingDeletion {
            // Not readable while pending deletion.
            UNREAD_POLICY
        } else {
            let r = h.ok(Request::GetKeyPolicy(pkms_protocol::request::GetKeyPolicy { key_id: &key }));
            let Ok(Response::KeyPolicy(pkms_protocol::reply::KeyPolicy { policy, .. })) = r.get() else {
                panic!("{what}")
            };
            *policies.get(policy).unwrap_or_else(|| panic!("{what}: a policy no operation put"))
        };
        m.keys.insert(id, KeyModel { state, oldest, current, description, tags, policy });
    }
    let r = h.ok(Request::ListAliases(pkms_protocol::request::ListAliases {
        key_id: None,
        limit: None,
        marker: None,
    }));
    let Ok(Response::Aliases(pkms_protocol::reply::Aliases { aliases, truncated: false, .. })) = r.get()
    else {
        panic!("{what}")
    };
    m.aliases = aliases.iter().map(|a| (String::from(a.alias_name), a.target_key_id)).collect();
    m
}

/// `m` as [`observe`] sees it (the policy of a key pending deletion is not read).
fn as_observed(m: &Model) -> Model {
    let mut m = m.clone();
    for k in m.keys.values_mut() {
        if k.state == KeyState::PendingDeletion {
            k.policy = UNREAD_POLICY;
        }
    }
    m
}

/// Every ciphertext decrypts if `m` says its key and version are usable, and is refused if not.
fn check_blobs(h: &mut Harness, m: &Model, blobs: &[Blob], what: &str) {
    for b in blobs {
        let usable =
            m.keys.get(&b.key).is_some_and(|k| k.state == KeyState::Enabled && b.version >= k.oldest);
        match h.decrypt(&b.blob, &[("m", "1")]) {
            Ok(p) => {
                assert!(usable, "{what}: a ciphertext of an unusable key or version decrypted");
                assert_eq!(p, b.plaintext, "{what}");
            }
            Err((code, msg)) => {
                assert!(!usable, "{what}: an earlier ciphertext no longer decrypts: {code:?} {msg}")
            }
        }
    }
}

const PIN: &[u8] = b"246810";

/// A token on `flash`; on an initialised token (`audited`), in a session logged in as the
/// administrator, so that every request is also an audit-log append.
fn boot(flash: MockFlash, seed: u64, audited: bool) -> Harness {
    let mut h = Harness::with_flash_seed(flash, seed);
    if audited {
        h.open_session();
        h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    }
    h
}

/// The stored states sequences start from: empty, and one with keys, versions, aliases, tags and
/// a policy (rebuilt into the model by observing it).
fn starting_states(
    policies: &mut BTreeMap<Vec<u8>, i64>,
    audited: bool,
) -> Vec<(MockFlash, Model, Vec<Blob>)> {
    let mut states = Vec::new();
    let fresh = {
        let mut h = Harness::with_flash(MockFlash::new(if audited { AUDITED_FLASH } else { FLASH }));
        if audited {
            h.open_session();
            h.ok(Request::Initialize(pkms_protocol::request::Initialize {
                pin: PIN,
                puk: b"puk-12345678",
                audit_full: pkms_protocol::access::AuditFullMode::Overwrite,
            }));
        }
        h.token.into_flash()
    };
    states.push((fresh.clone(), Model::default(), Vec::new()));

    let mut h = boot(fresh, 1, audited);
    let a = h.create(KeySpec::SymmetricDefault);
    let b = h.create(KeySpec::SymmetricDefault);
    let mut blobs = Vec::new();
    for v in 1..=3u32 {
        let plaintext = std::format!("base {v}").into_bytes();
        let blob = h.encrypt(&s(&a), &plaintext, &[("m", "1")]);
        blobs.push(Blob { key: a, version: v, plaintext, blob });
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&a) }));
    }
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/a",
        target_key_id: &s(&b),
    }));
    h.ok(Request::TagResource(pkms_protocol::request::TagResource {
        key_id: &s(&b),
        tags: [pkms_protocol::Tag { tag_key: "team", tag_value: "ops" }].into_iter().collect(),
    }));
    h.ok(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy {
        key_id: &s(&b),
        policy: &policy_bytes(0),
    }));
    // How the default policy and variant 0 read back.
    let stored_default = get_policy(&mut h, &a);
    let stored_zero = get_policy(&mut h, &b);
    policies.insert(stored_default, DEFAULT_POLICY);
    policies.insert(stored_zero, 0);
    let m = observe(&mut h, policies, "starting state");
    let base = h.token.into_flash();
    states.push((base.clone(), m.clone(), blobs.clone()));
    // The same state after churn (a description rewritten again and again, its last value the
    // same), at many fill levels: operations from these collect garbage and erase pages.
    let mut h = boot(base, 2, audited);
    let description = m.keys[&b].description.clone();
    for round in 1..=240usize {
        let text = std::format!("churn {round} {}", "x".repeat(round * 37 % 180));
        h.ok(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
            key_id: &s(&b),
            description: &text,
        }));
        if round % 12 == 0 {
            h.ok(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
                key_id: &s(&b),
                description: &description,
            }));
            let flash = h.token.flash().clone();
            states.push((flash, m.clone(), blobs.clone()));
        }
    }
    states
}

fn get_policy(h: &mut Harness, id: &KeyId) -> Vec<u8> {
    let r = h.ok(Request::GetKeyPolicy(pkms_protocol::request::GetKeyPolicy { key_id: &s(id) }));
    let policy = match r.get() {
        Ok(Response::KeyPolicy(pkms_protocol::reply::KeyPolicy { policy, .. })) => policy.to_vec(),
        other => panic!("{other:?}"),
    };
    policy
}

#[derive(Default)]
struct Stats {
    sequences: u64,
    cut: u64,
    cut_in_erase_or_collection: u64,
    ops: u64,
}

/// Runs `count` sequences from seed `seed`.
fn run_sequences(seed: u64, count: u64, audited: bool) -> Stats {
    let mut policies = BTreeMap::new();
    let starts = starting_states(&mut policies, audited);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut stats = Stats::default();
    let mut policy_counter = 0u32;
    for n in 0..count {
        let (flash, start_model, start_blobs) = &starts[(n % starts.len() as u64) as usize];
        let token_seed = rng.next_u64();
        let mut h = boot(flash.clone(), token_seed, audited);
        let mut m = start_model.clone();
        let mut blobs = start_blobs.clone();
        let prefix = rng.next_u32() % 6;
        for i in 0..prefix {
            let op = random_op(&mut rng, &m, &mut policy_counter);
            let reply = send(&mut h, &op);
            if let Err(e) = reply.get() {
                panic!("sequence {n}, op {i} {op:?}: {:?} {}", e.code, e.message);
            }
            m = apply(&m, &op, &reply, &mut blobs);
            if let Op::PutPolicy(id, p) = &op {
                policies.entry(get_policy(&mut h, id)).or_insert(i64::from(*p));
            }
            stats.ops += 1;
        }
        let what = std::format!("sequence {n} (seed {seed})");
        let before_flash = h.token.into_flash();
        // Reboot onto the prefix's flash: it holds the model's state.
        let mut h = boot(before_flash.clone(), token_seed ^ 1, audited);
        assert_eq!(observe(&mut h, &policies, &what), as_observed(&m), "{what}: after the prefix");
        let op = random_op(&mut rng, &m, &mut policy_counter);
        // Uncut: the operation's after-state, and its cut points.
        let mut h = boot(before_flash.clone(), token_seed ^ 2, audited);
        let start_points = h.token.flash().cut_points();
        let erases: u32 = h.token.flash().erase_counts().iter().sum();
        let reply = send(&mut h, &op);
        let total = h.token.flash().cut_points() - start_points;
        let erased = h.token.flash().erase_counts().iter().sum::<u32>() > erases;
        if let Err(e) = reply.get() {
            panic!("{what}: {op:?}: {:?} {}", e.code, e.message);
        }
        let mut after_blobs = blobs.clone();
        let after = apply(&m, &op, &reply, &mut after_blobs);
        if let Op::PutPolicy(id, p) = &op {
            policies.entry(get_policy(&mut h, id)).or_insert(i64::from(*p));
        }
        assert_eq!(observe(&mut h, &policies, &what), as_observed(&after), "{what}: {op:?} uncut");
        stats.sequences += 1;
        stats.ops += 1;
        if total == 0 {
            // Nothing written (an Encrypt): nothing to cut.
            continue;
        }
        // Cut: the same operation from the same flash and seed, power gone at a random point.
        let cut = rng.next_u64() % total;
        let mut h = boot(before_flash, token_seed ^ 2, audited);
        let audit_head = h.token.log.head_sequence;
        h.token.core.flash_mut().cut_power_after(cut);
        let _ = send(&mut h, &op);
        let mut flash = h.token.into_flash();
        assert!(flash.is_power_cut(), "{what}: cut {cut} of {total} not reached");
        flash.restore_power();
        let what = std::format!("{what}: {op:?} cut at {cut} of {total}");
        let mut h = boot(flash, token_seed ^ 3, audited);
        if audited {
            // Every entry made before the cut is still there and chained (the cut operation's
            // own entry may or may not be).
            super::auth::check_stored_log(&mut h);
            assert!(h.token.log.head_sequence > audit_head, "{what}: audit entries lost");
        }
        let seen = observe(&mut h, &policies, &what);
        let state = if seen == as_observed(&m) {
            &m
        } else if seen == as_observed(&after) {
            &after
        } else {
            panic!("{what}: the state is neither before nor after:\n{seen:?}\nbefore {m:?}\nafter {after:?}");
        };
        check_blobs(&mut h, state, &blobs, &what);
        // And the token keeps working: a new key encrypts and decrypts.
        if state.keys.len() < 16 {
            let k = h.create(KeySpec::SymmetricDefault);
            let blob = h.encrypt(&s(&k), b"after the cut", &[]);
            assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"after the cut", "{what}");
        }
        stats.cut += 1;
        if erased {
            stats.cut_in_erase_or_collection += 1;
        }
    }
    stats
}

fn run_and_report(seed: u64, count: u64, audited: bool) {
    let stats = run_sequences(seed, count, audited);
    let token = if audited { "initialised token, every request audited" } else { "open token" };
    std::println!(
        "model-based power cuts ({token}, seed {seed}): {} sequences, {} operations, {} cut (of which {} in an \
         operation that erased a page)",
        stats.sequences,
        stats.ops,
        stats.cut,
        stats.cut_in_erase_or_collection
    );
    assert_eq!(stats.sequences, count);
    assert!(stats.cut * 2 > count, "too few sequences were cut: {}", stats.cut);
}

/// `PKMS_MODEL_SEQUENCES` raises the count of each of the four tests (a longer run).
fn count() -> u64 {
    std::env::var("PKMS_MODEL_SEQUENCES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_500)
}

#[test]
fn model_based_power_cuts_seed_1() {
    run_and_report(1, count(), false);
}

#[test]
fn model_based_power_cuts_seed_2() {
    run_and_report(2, count(), false);
}

#[test]
fn model_based_power_cuts_seed_3() {
    run_and_report(3, count(), false);
}

#[test]
fn model_based_power_cuts_seed_4() {
    run_and_report(4, count(), false);
}

/// The same on an initialised token, every request in an administrator's session and so an
/// audit-log append (each remount logs in again: PBKDF2 makes these sequences slower).
#[test]
fn model_based_power_cuts_with_audit_appends() {
    run_and_report(5, count() / 5, true);
}
