//! What each [`Action`] is, in one table ([`ACTIONS`]): its wire tag, its name, what it does,
//! and the JSON form in which a node signs it for a session. The codec writes each action's
//! tag from here; the API's OpenAPI schema and its docs are built from here, and a test in the
//! API checks that its parser takes exactly the JSON this table describes.
//!
//! Adding an action touches: a variant of [`Action`] with its encoding (`tx.rs`) and a row
//! here; its rule in `starling-ledger` (`actions/`, `gas.rs`); and, if users sign it through a
//! node, its JSON form in the API (`me.rs`).

use crate::proposals::{MAX_PROPOSAL_TEXT_BYTES, MAX_TITLE_BYTES};
use crate::tx::{
    Action, BALLOT_TAG, FIRST_GOV_TAG, MAX_BIO_BYTES, MAX_DISPLAY_NAME_BYTES, MAX_URL_BYTES,
};

/// One kind of action.
#[derive(Debug)]
pub struct ActionKind {
    /// Its tag on the wire (the first byte of its encoding).
    pub tag: u8,
    /// Its name: in receipts, logs and metrics, and the JSON `"type"`.
    pub name: &'static str,
    /// What it does, in a line.
    pub about: &'static str,
    /// Its JSON fields when a node signs it for a session (`POST /api/v1/me/actions`);
    /// `None` for actions that reach a node only signed (validators', chat devices').
    pub json: Option<&'static [Field]>,
}

/// A field of an action's JSON form.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

/// What a JSON field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string of at most this many bytes.
    Text(usize),
    /// A post's text: at most 300 graphemes (rule S1 in `starling-ledger`), within
    /// [`crate::tx::MAX_TEXT_BYTES`] bytes.
    PostText,
    /// A post: `{"author": <key>, "seq": <integer>}`.
    Post,
    /// An account: its key as text (`ed25519:<hex>` or `secp256k1:<hex>`).
    Account,
    /// Language tags, at most [`crate::tx::MAX_LANGS`].
    Langs,
    /// `spend`, `urc` or `core`.
    Asset,
    /// A decimal string (amounts exceed JSON's safe integers).
    Amount,
    /// A handle: a letter, then 2 to 29 letters, digits or underscores.
    Handle,
    /// A small whole number (a foundation's index).
    Index,
    /// A proposal's number.
    Id,
    /// `true` or `false`.
    Bool,
    /// A whole number from 1 to 2^32 - 1.
    Count,
    /// A motion: `{"kind": "spend", "to": <key>, "amount": <amount>}`, `{"kind": "appoint",
    /// "office": <office>, "holder": <key>}`, `{"kind": "set_param", "param":
    /// "tokens.<branch>" | "spend_limit", "value": <amount>}` or `{"kind": "registrar",
    /// "registrar": <key>}`.
    Motion,
}

const fn required(name: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn optional(name: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const POST: &[Field] = &[required("post", FieldKind::Post)];
const TARGET: &[Field] = &[required("target", FieldKind::Account)];
const MEMBER: &[Field] = &[required("member", FieldKind::Account)];
const PROPOSAL: &[Field] = &[required("proposal", FieldKind::Id)];

const fn kind(
    tag: u8,
    name: &'static str,
    about: &'static str,
    json: Option<&'static [Field]>,
) -> ActionKind {
    ActionKind {
        tag,
        name,
        about,
        json,
    }
}

/// Every action, in tag order (row `i` has tag `i + 1`).
pub const ACTIONS: &[ActionKind] = &[
    kind(
        1,
        "post",
        "Post a text (a reply or a quote when it names one)",
        Some(&[
            required("text", FieldKind::PostText),
            optional("reply_to", FieldKind::Post),
            optional("quote_of", FieldKind::Post),
            optional("langs", FieldKind::Langs),
        ]),
    ),
    kind(
        2,
        "edit_post",
        "Replace the text of one's own post",
        Some(&[
            required("post", FieldKind::Post),
            required("text", FieldKind::PostText),
        ]),
    ),
    kind(3, "delete_post", "Delete one's own post", Some(POST)),
    kind(4, "repost", "Repost a post", Some(POST)),
    kind(5, "unrepost", "Undo a repost", Some(POST)),
    kind(6, "like", "Like a post", Some(POST)),
    kind(7, "unlike", "Undo a like", Some(POST)),
    kind(8, "follow", "Follow an account", Some(TARGET)),
    kind(9, "unfollow", "Stop following an account", Some(TARGET)),
    kind(10, "block", "Block an account", Some(TARGET)),
    kind(11, "unblock", "Undo a block", Some(TARGET)),
    kind(12, "mute", "Mute an account", Some(TARGET)),
    kind(13, "unmute", "Undo a mute", Some(TARGET)),
    kind(
        14,
        "set_profile",
        "Set one's display name, bio and avatar",
        Some(&[
            required("display_name", FieldKind::Text(MAX_DISPLAY_NAME_BYTES)),
            required("bio", FieldKind::Text(MAX_BIO_BYTES)),
            optional("avatar_url", FieldKind::Text(MAX_URL_BYTES)),
        ]),
    ),
    kind(
        15,
        "register_handle",
        "Claim a handle (unique network-wide, settled on the global shard)",
        Some(&[required("handle", FieldKind::Handle)]),
    ),
    kind(
        16,
        "transfer",
        "Send an amount of an asset to an account",
        Some(&[
            required("asset", FieldKind::Asset),
            required("to", FieldKind::Account),
            required("amount", FieldKind::Amount),
        ]),
    ),
    kind(
        17,
        "register_validator",
        "Bond and join the validator registry with a consensus key and an address",
        None,
    ),
    kind(
        18,
        "retire_validator",
        "Leave the validator registry; the bond is returned",
        None,
    ),
    kind(
        19,
        "set_chat_device",
        "Publish or replace a chat device in one's key directory entry",
        None,
    ),
    kind(
        20,
        "remove_chat_device",
        "Withdraw a chat device from the key directory",
        None,
    ),
    kind(
        21,
        "admit_member",
        "A foundation's registrar admits an account as a verified member",
        Some(MEMBER),
    ),
    kind(
        22,
        "revoke_member",
        "A foundation's registrar revokes one of its members",
        Some(MEMBER),
    ),
    kind(
        23,
        "leave_foundation",
        "Give up one's membership of a foundation",
        Some(&[]),
    ),
    kind(
        24,
        "sponsor",
        "Set aside SPEND that pays another account's base fees",
        Some(&[
            required("account", FieldKind::Account),
            required("amount", FieldKind::Amount),
        ]),
    ),
    kind(
        25,
        "end_sponsorship",
        "Stop sponsoring an account; what is left comes back",
        Some(&[required("account", FieldKind::Account)]),
    ),
    kind(
        26,
        "expire_seat",
        "Clear a foundation office's seat whose term has ended (anyone may)",
        Some(&[
            required("foundation", FieldKind::Index),
            required("holder", FieldKind::Account),
        ]),
    ),
    kind(
        27,
        "propose",
        "Open a proposal in a foundation, on the track its motion names (a deposit is held)",
        Some(&[
            required("foundation", FieldKind::Index),
            required("title", FieldKind::Text(MAX_TITLE_BYTES)),
            optional("text", FieldKind::Text(MAX_PROPOSAL_TEXT_BYTES)),
            required("motion", FieldKind::Motion),
        ]),
    ),
    kind(
        28,
        "vote",
        "Cast votes on a proposal or its challenge as a seat holder (n votes cost n² tokens)",
        Some(&[
            required("proposal", FieldKind::Id),
            optional("challenge", FieldKind::Bool),
            required("yes", FieldKind::Bool),
            required("votes", FieldKind::Count),
        ]),
    ),
    kind(
        29,
        "advance_proposal",
        "Move a proposal on once its time has come: tally, enact, or settle its challenge",
        Some(PROPOSAL),
    ),
    kind(
        30,
        "challenge",
        "Challenge a decision within its window (a deposit is held)",
        Some(PROPOSAL),
    ),
    kind(
        31,
        "support_challenge",
        "Support a challenge as a senator or a member of the foundation",
        Some(PROPOSAL),
    ),
    kind(
        32,
        "ballot_key",
        "Publish a registrar's blind-signature key for a round's ballot credentials",
        None,
    ),
    kind(
        33,
        "request_credential",
        "Ask one's foundation's registrar for a ballot credential, with a blinded message",
        None,
    ),
    kind(
        34,
        "issue_credential",
        "Answer a member's credential request with the registrar's blind signature",
        None,
    ),
    kind(
        35,
        "ballot",
        "An anonymous ballot in a members' referendum, from a credential's fresh key",
        None,
    ),
];

impl ActionKind {
    /// The kind named `name`, if any.
    pub fn by_name(name: &str) -> Option<&'static ActionKind> {
        ACTIONS.iter().find(|k| k.name == name)
    }
}

impl Action {
    /// This action's row of [`ACTIONS`].
    pub fn kind(&self) -> &'static ActionKind {
        let tag: u8 = match self {
            Action::Post { .. } => 1,
            Action::EditPost { .. } => 2,
            Action::DeletePost { .. } => 3,
            Action::Repost { .. } => 4,
            Action::Unrepost { .. } => 5,
            Action::Like { .. } => 6,
            Action::Unlike { .. } => 7,
            Action::Follow { .. } => 8,
            Action::Unfollow { .. } => 9,
            Action::Block { .. } => 10,
            Action::Unblock { .. } => 11,
            Action::Mute { .. } => 12,
            Action::Unmute { .. } => 13,
            Action::SetProfile { .. } => 14,
            Action::RegisterHandle { .. } => 15,
            Action::Transfer { .. } => 16,
            Action::RegisterValidator { .. } => 17,
            Action::RetireValidator => 18,
            Action::SetChatDevice { .. } => 19,
            Action::RemoveChatDevice { .. } => 20,
            Action::AdmitMember { .. } => 21,
            Action::RevokeMember { .. } => 22,
            Action::LeaveFoundation => 23,
            Action::Sponsor { .. } => 24,
            Action::EndSponsorship { .. } => 25,
            Action::ExpireSeat { .. } => 26,
            Action::Govern(act) => FIRST_GOV_TAG + act.index(),
            Action::Ballot(_) => BALLOT_TAG,
        };
        &ACTIONS[usize::from(tag) - 1]
    }

    /// This action's name (see [`ActionKind::name`]).
    pub fn name(&self) -> &'static str {
        self.kind().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_tag_order_with_unique_names() {
        for (i, k) in ACTIONS.iter().enumerate() {
            assert_eq!(usize::from(k.tag), i + 1, "{}", k.name);
            assert_eq!(ActionKind::by_name(k.name).map(|f| f.tag), Some(k.tag));
        }
    }
}
