//! TagResource, UntagResource and ListResourceTags. Limits: tag keys 1..=128 characters,
//! values 0..=256 (KMS); at most 50 tags (KMS) and 1024 encoded bytes per key (token flash); keys
//! starting `aws:` are reserved (TagException).

use pkms_protocol::limits::MAX_TAGS_PER_KEY;
use pkms_protocol::{reply, request, ErrorCode, Response, Tag, Tags};

use super::Buffers;
use crate::err;
use crate::error::{Error, OpResult};
use crate::key::Named;
use crate::platform::Platform;
use crate::records::{KeyRecord, TagLimit, TagList, MAX_TAG_BYTES};
use crate::state::Core;

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
pub fn tag<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::TagResource<'_>,
) -> OpResult<Response<'static>> {
    check_tags(&r.tags)?;
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    let mut new = heapless::Vec::new();
    TagList::edit(&key.record().tags, &r.tags, &[], &mut new).map_err(limit_error)?;
    key.record_mut().tags = new;
    core.save(&key)?;
    Ok(Response::Done(reply::Done {}))
}

/// UntagResource: removes tags (keys that are not there are ignored).
pub fn untag<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::UntagResource<'_>,
) -> OpResult<Response<'static>> {
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    let mut new = heapless::Vec::new();
    TagList::edit(&key.record().tags, &[], &r.tag_keys, &mut new).map_err(limit_error)?;
    if new != key.record().tags {
        key.record_mut().tags = new;
        core.save(&key)?;
    }
    Ok(Response::Done(reply::Done {}))
}

/// ListResourceTags: every tag of the key, sorted by key (copied into the answer buffer).
pub fn list<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    let encoded = &key.record().tags;
    let copy = &mut bufs.out[..encoded.len()];
    copy.copy_from_slice(encoded);
    let copy: &'b [u8] = copy;
    let mut tags = Tags::new();
    for t in TagList::iter(copy) {
        let _ = tags.push(t);
    }
    Ok(Response::Tags(reply::Tags { tags }))
}

crate::dispatch::handle! {
    request::TagResource<'_> => |r, cx| tag(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
    request::UntagResource<'_> => |r, cx| untag(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
    request::ListResourceTags<'_> => |_r, cx| list(cx.core, cx.bufs, cx.admitted.key());
}
