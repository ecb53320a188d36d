//! Limits shared by host and token. KMS's own limits where they apply (see kms-reference.md);
//! tighter ones where a token's flash or RAM demands it (each says so).

/// Largest plaintext Encrypt accepts and Decrypt returns (KMS: 4096).
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest ciphertext blob accepted (KMS: 6144). Our blobs are at most
/// `MAX_PLAINTEXT + blob::OVERHEAD` bytes.
pub const MAX_CIPHERTEXT_BLOB: usize = 6144;
/// Largest message Sign / Verify / GenerateMac / VerifyMac accept (KMS: 4096).
pub const MAX_MESSAGE: usize = 4096;
/// Largest signature accepted as input (KMS: 6144). The longest the token makes is an ML-DSA-87
/// signature (4627 bytes).
pub const MAX_SIGNATURE: usize = 6144;
/// Largest MAC accepted as input (HMAC-512 is 64 bytes).
pub const MAX_MAC: usize = 256;
/// Largest peer public key DeriveSharedSecret accepts (KMS: 8192; an EC SubjectPublicKeyInfo is
/// at most 120 bytes).
pub const MAX_PEER_PUBLIC_KEY: usize = 8192;
/// GenerateRandom / GenerateDataKey NumberOfBytes range (KMS: 1..=1024).
pub const MAX_RANDOM_BYTES: usize = 1024;
/// Encryption context: at most this many pairs (token RAM bound; KMS has no fixed count).
pub const MAX_CONTEXT_PAIRS: usize = 32;
/// Encryption context: at most this many bytes in its canonical encoding
/// (see [`crate::context`]). Tighter than KMS's 8 KiB, because the token holds it in RAM.
pub const MAX_CONTEXT_BYTES: usize = 2048;
/// Key description length in bytes. Tighter than KMS (8192): descriptions live in token flash.
pub const MAX_DESCRIPTION: usize = 256;
/// Alias names: 1..=256 characters of `[a-zA-Z0-9:/_-]`, starting `alias/` (KMS rules);
/// `alias/aws/` is reserved.
pub const MAX_ALIAS_NAME: usize = 256;
/// Tag keys 1..=128 characters, values 0..=256 (KMS).
pub const MAX_TAG_KEY: usize = 128;
/// Tag values 0..=256 characters (KMS).
pub const MAX_TAG_VALUE: usize = 256;
/// Tags per key (KMS: 50). The token also bounds their encoded size: [`MAX_TAG_BYTES`].
pub const MAX_TAGS_PER_KEY: usize = 50;
/// Bytes the encoded tags of one key may take on the token (2 + key + 2 + value bytes per tag):
/// a key's tags live in its flash record, which must fit in one flash page with every version.
pub const MAX_TAG_BYTES: usize = 1024;
/// Largest page any List* response carries; `Limit` is clamped to it (KMS allows 1..=1000, the
/// CLI follows `NextMarker` to fetch everything).
pub const MAX_PAGE: usize = 100;
/// Alias pages are smaller because alias names are long.
pub const MAX_ALIAS_PAGE: usize = 32;
/// Markers are opaque strings of at most this many bytes.
pub const MAX_MARKER: usize = 64;
/// Key-id arguments (a key id, `alias/…`) are at most this long (KMS: 2048; ours fit in 256).
pub const MAX_KEY_REF: usize = 256;
/// Human-readable error messages carried on the wire.
pub const MAX_ERROR_MESSAGE: usize = 160;
/// Largest postcard payload of one frame (before COBS). Carries a ReEncrypt of the largest
/// blob with two full contexts, or a Decrypt response with a 4096-byte plaintext.
pub const MAX_FRAME: usize = 12 * 1024;
/// Largest frame on the wire: COBS adds one byte per 254 plus the trailing 0x00 delimiter.
pub const MAX_ENCODED_FRAME: usize = MAX_FRAME + MAX_FRAME / 254 + 2;

/// KMS key-rotation period bounds and default, in days.
pub const ROTATION_PERIOD_DAYS_MIN: u16 = 90;
/// See [`ROTATION_PERIOD_DAYS_MIN`].
pub const ROTATION_PERIOD_DAYS_MAX: u16 = 2560;
/// See [`ROTATION_PERIOD_DAYS_MIN`].
pub const ROTATION_PERIOD_DAYS_DEFAULT: u16 = 365;
/// KMS deletion pending window bounds and default, in days.
pub const PENDING_WINDOW_DAYS_MIN: u16 = 7;
/// See [`PENDING_WINDOW_DAYS_MIN`].
pub const PENDING_WINDOW_DAYS_MAX: u16 = 30;
/// See [`PENDING_WINDOW_DAYS_MIN`].
pub const PENDING_WINDOW_DAYS_DEFAULT: u16 = 30;
/// Seconds in a day, for date arithmetic on host-supplied Unix time.
pub const SECONDS_PER_DAY: u64 = 86_400;
