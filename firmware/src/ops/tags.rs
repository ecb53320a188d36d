//! TagResource, UntagResource and ListResourceTags. Limits: tag keys 1..=128 characters,
//! values 0..=256 (KMS); at most 16 tags and 1024 encoded bytes per key (token flash); keys
//! starting `aws:` are reserved (TagException).

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::MAX_TAGS_PER_KEY;
use pkms_protocol::{ErrorCode, Response, Tag, Tags};
use rand_core::{CryptoRng, RngCore};

use super::Core;
use crate::board::Board;
use crate::err;
use crate::error::{Error, OpResult};
use crate::records::{TagLimit, TagList, MAX_TAG_BYTES};

/// Checks tags against KMS's rules.
pub fn check_tags(tags: &[Tag<'_>]) -> OpResult<()> {
    for t in tags {
        if !t.is_valid() {
            return Err(Error::new(
                ErrorCode::Tag,
                "tag keys must be 1..=128 and tag values 0..=256 characters",
            ));
        }
        if t.tag_key.starts_with("aws:") {
            return Err(Error::new(ErrorCode::Tag, "tag keys starting with aws: are reserved"));
        }
    }
    Ok(())
}

/// The error for a tag limit.
pub fn limit_error(l: TagLimit) -> Error {
    match l {
        TagLimit::Count => err!(LimitExceeded, "a key holds at most {} tags on this token", MAX_TAGS_PER_KEY),
        TagLimit::Bytes => {
            err!(LimitExceeded, "a key's tags take at most {} bytes on this token", MAX_TAG_BYTES)
        }
    }
}

/// TagResource: adds tags or replaces their values.
pub fn tag<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    tags: &Tags<'_>,
) -> OpResult<Response<'b>> {
    check_tags(tags)?;
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    let mut new = heapless::Vec::new();
    TagList::edit(&core.rec.tags, tags, &[], &mut new).map_err(limit_error)?;
    core.rec.tags = new;
    core.save(&id)?;
    Ok(Response::Done)
}

/// UntagResource: removes tags (keys that are not there are ignored).
pub fn untag<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    tag_keys: &[&str],
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    let mut new = heapless::Vec::new();
    TagList::edit(&core.rec.tags, &[], tag_keys, &mut new).map_err(limit_error)?;
    if new != core.rec.tags {
        core.rec.tags = new;
        core.save(&id)?;
    }
    Ok(Response::Done)
}

/// ListResourceTags: every tag of the key, sorted by key.
pub fn list<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    core.load_ref(key_ref)?;
    let mut tags = Tags::new();
    for t in TagList::iter(&core.rec.tags) {
        let _ = tags.push(t);
    }
    Ok(Response::Tags { tags })
}
