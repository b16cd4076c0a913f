//! The app view's stored records and their encodings (the canonical codec, bounded like
//! everything read from disk).

use crate::keys::TimeKey;
use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::tx::{
    MAX_BIO_BYTES, MAX_DISPLAY_NAME_BYTES, MAX_HANDLE_BYTES, MAX_LANGS, MAX_LANG_BYTES,
    MAX_TEXT_BYTES,
};
use starling_types::{AccountId, PostId, PublicKey};

/// Most hashtags indexed per post.
pub const MAX_TAGS_PER_POST: usize = 10;
/// Longest hashtag indexed, in bytes (lowercased, without `#`).
pub const MAX_TAG_BYTES: usize = 64;
/// Longest avatar URL kept.
const MAX_AVATAR_BYTES: usize = 1024;
/// Most earlier versions kept of an edited post.
pub const MAX_REVISIONS: usize = 64;

fn time(out: &mut Vec<u8>, t: &TimeKey) {
    out.extend_from_slice(&t.to_bytes());
}

fn read_time(r: &mut Reader<'_>) -> Result<TimeKey, DecodeError> {
    let b = r.take(crate::keys::TIME_LEN)?;
    TimeKey::from_bytes(b).ok_or(DecodeError::InvalidTag {
        what: "time key",
        tag: 0,
    })
}

/// A post as readers see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostView {
    pub id: PostId,
    /// Empty once deleted.
    pub text: String,
    pub reply_to: Option<PostId>,
    pub quote_of: Option<PostId>,
    pub langs: Vec<String>,
    /// When it was posted (its place in feeds).
    pub created: TimeKey,
    /// When it was last edited (or posted).
    pub edited_ms: u64,
    pub deleted: bool,
    /// Earlier versions, oldest first: text and when it was written.
    pub revisions: Vec<(String, u64)>,
    /// Lowercased hashtags it is indexed under.
    pub tags: Vec<String>,
}

impl Encode for PostView {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        put::string(out, &self.text);
        put::option(out, &self.reply_to, |o, p| p.encode(o));
        put::option(out, &self.quote_of, |o, p| p.encode(o));
        put::seq(out, &self.langs, |o, l| put::string(o, l));
        time(out, &self.created);
        put::u64(out, self.edited_ms);
        put::bool(out, self.deleted);
        put::seq(out, &self.revisions, |o, (t, ms)| {
            put::string(o, t);
            put::u64(o, *ms);
        });
        put::seq(out, &self.tags, |o, t| put::string(o, t));
    }
}

impl Decode for PostView {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PostView {
            id: PostId::decode(r)?,
            text: r.string("text", MAX_TEXT_BYTES)?,
            reply_to: r.option("reply_to", PostId::decode)?,
            quote_of: r.option("quote_of", PostId::decode)?,
            langs: r.seq("langs", MAX_LANGS, |r| r.string("lang", MAX_LANG_BYTES))?,
            created: read_time(r)?,
            edited_ms: r.u64()?,
            deleted: r.bool()?,
            revisions: r.seq("revisions", MAX_REVISIONS, |r| {
                Ok((r.string("revision", MAX_TEXT_BYTES)?, r.u64()?))
            })?,
            tags: r.seq("tags", MAX_TAGS_PER_POST, |r| {
                r.string("tag", MAX_TAG_BYTES)
            })?,
        })
    }
}

/// How many likes, reposts, replies and quotes a post has. Kept apart from the post, so that
/// an interaction indexed from one shard before the post arrives from another still counts.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Counts {
    pub likes: u64,
    pub reposts: u64,
    pub replies: u64,
    pub quotes: u64,
}

impl Encode for Counts {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.likes);
        put::u64(out, self.reposts);
        put::u64(out, self.replies);
        put::u64(out, self.quotes);
    }
}

impl Decode for Counts {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Counts {
            likes: r.u64()?,
            reposts: r.u64()?,
            replies: r.u64()?,
            quotes: r.u64()?,
        })
    }
}

/// An account as readers see it.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct AccountView {
    pub handle: Option<String>,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: String,
    pub posts: u64,
    pub followers: u64,
    pub following: u64,
    /// Fees this account paid, in SPEND base units.
    pub fees_paid: u128,
    /// Notifications not yet marked read.
    pub unread: u64,
    /// The newest notification marked read (its sequence number).
    pub read_seq: u64,
}

impl Encode for AccountView {
    fn encode(&self, out: &mut Vec<u8>) {
        put::option(out, &self.handle, |o, h| put::string(o, h));
        put::string(out, &self.display_name);
        put::string(out, &self.bio);
        put::string(out, &self.avatar_url);
        put::u64(out, self.posts);
        put::u64(out, self.followers);
        put::u64(out, self.following);
        put::u128(out, self.fees_paid);
        put::u64(out, self.unread);
        put::u64(out, self.read_seq);
    }
}

impl Decode for AccountView {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AccountView {
            handle: r.option("handle", |r| r.string("handle", MAX_HANDLE_BYTES))?,
            display_name: r.string("display name", MAX_DISPLAY_NAME_BYTES)?,
            bio: r.string("bio", MAX_BIO_BYTES)?,
            avatar_url: r.string("avatar", MAX_AVATAR_BYTES)?,
            posts: r.u64()?,
            followers: r.u64()?,
            following: r.u64()?,
            fees_paid: r.u128()?,
            unread: r.u64()?,
            read_seq: r.u64()?,
        })
    }
}

/// What puts an entry in an account's feed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum FeedItem {
    /// The account posted it (tag 1).
    Post(PostId),
    /// The account reposted it (tag 2).
    Repost(PostId),
}

impl FeedItem {
    pub fn post(&self) -> &PostId {
        match self {
            FeedItem::Post(p) | FeedItem::Repost(p) => p,
        }
    }
}

impl Encode for FeedItem {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FeedItem::Post(p) => {
                put::u8(out, 1);
                p.encode(out);
            }
            FeedItem::Repost(p) => {
                put::u8(out, 2);
                p.encode(out);
            }
        }
    }
}

impl Decode for FeedItem {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(FeedItem::Post(PostId::decode(r)?)),
            2 => Ok(FeedItem::Repost(PostId::decode(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "feed item",
                tag,
            }),
        }
    }
}

/// Why an account is notified. Tags are stored; never reused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotificationKind {
    Reply = 1,
    Mention = 2,
    Quote = 3,
    Like = 4,
    Repost = 5,
    Follow = 6,
}

impl NotificationKind {
    pub fn name(self) -> &'static str {
        match self {
            NotificationKind::Reply => "reply",
            NotificationKind::Mention => "mention",
            NotificationKind::Quote => "quote",
            NotificationKind::Like => "like",
            NotificationKind::Repost => "repost",
            NotificationKind::Follow => "follow",
        }
    }

    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            1 => NotificationKind::Reply,
            2 => NotificationKind::Mention,
            3 => NotificationKind::Quote,
            4 => NotificationKind::Like,
            5 => NotificationKind::Repost,
            6 => NotificationKind::Follow,
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "notification",
                    tag,
                })
            }
        })
    }
}

/// One notification: who did what, to which post, when.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notification {
    /// Increasing across the app view: newer is larger.
    pub seq: u64,
    pub kind: NotificationKind,
    pub actor: AccountId,
    /// The post the actor wrote (reply, mention, quote) or acted on (like, repost).
    pub post: Option<PostId>,
    pub at_ms: u64,
}

impl Encode for Notification {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.seq);
        put::u8(out, self.kind as u8);
        self.actor.encode(out);
        put::option(out, &self.post, |o, p| p.encode(o));
        put::u64(out, self.at_ms);
    }
}

impl Decode for Notification {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Notification {
            seq: r.u64()?,
            kind: NotificationKind::from_tag(r.u8()?)?,
            actor: PublicKey::decode(r)?,
            post: r.option("post", PostId::decode)?,
            at_ms: r.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TimeKey;

    fn sample() -> PostView {
        let author = PublicKey::ed25519([7; 32]);
        PostView {
            id: PostId { author, seq: 3 },
            text: "hi #there".into(),
            reply_to: Some(PostId { author, seq: 1 }),
            quote_of: None,
            langs: vec!["en".into()],
            created: TimeKey {
                at_ms: 5,
                shard: 1,
                height: 2,
                index: 0,
            },
            edited_ms: 9,
            deleted: false,
            revisions: vec![("hi".into(), 5)],
            tags: vec!["there".into()],
        }
    }

    #[test]
    fn records_round_trip_and_damaged_bytes_are_errors_not_panics() {
        let p = sample();
        assert_eq!(PostView::from_bytes(&p.to_bytes()).unwrap(), p);
        let n = Notification {
            seq: 4,
            kind: NotificationKind::Quote,
            actor: p.id.author,
            post: Some(p.id),
            at_ms: 1,
        };
        assert_eq!(Notification::from_bytes(&n.to_bytes()).unwrap(), n);
        let a = AccountView {
            handle: Some("alice".into()),
            fees_paid: 12,
            ..AccountView::default()
        };
        assert_eq!(AccountView::from_bytes(&a.to_bytes()).unwrap(), a);
        let pb = p.to_bytes();
        assert!((0..pb.len()).all(|cut| PostView::from_bytes(&pb[..cut]).is_err()));
        // Every truncation and a sweep of single-byte damage: errors or other values, never
        // a panic.
        let mut state = 0x5eed_u64;
        for bytes in [
            p.to_bytes(),
            n.to_bytes(),
            a.to_bytes(),
            FeedItem::Post(p.id).to_bytes(),
        ] {
            for cut in 0..bytes.len() {
                let _ = PostView::from_bytes(&bytes[..cut]);
                let _ = Notification::from_bytes(&bytes[..cut]);
                let _ = AccountView::from_bytes(&bytes[..cut]);
                let _ = FeedItem::from_bytes(&bytes[..cut]);
            }
            for _ in 0..2_000 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let mut b = bytes.clone();
                let i = (state >> 33) as usize % b.len();
                b[i] = (state >> 17) as u8;
                let _ = PostView::from_bytes(&b);
                let _ = Notification::from_bytes(&b);
                let _ = AccountView::from_bytes(&b);
                let _ = FeedItem::from_bytes(&b);
                let _ = Counts::from_bytes(&b);
            }
        }
    }
}
