//! Actions as the API takes them in JSON (`POST /api/v1/me/fee` and `/api/v1/me/actions`):
//! objects tagged by `"type"`, with the fields the one table of actions names
//! ([`starling_types::ACTIONS`]); a test in `me` checks that the two agree.

use crate::{parse_key, ApiError};
use serde::Deserialize;
use starling_types::{Action, Asset, GovAct, GovParam, Motion, Office, PostId};

/// A post named in an action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostRef {
    author: String,
    seq: u64,
}

impl PostRef {
    fn id(&self) -> Result<PostId, ApiError> {
        Ok(PostId {
            author: parse_key(&self.author)?,
            seq: self.seq,
        })
    }
}

/// An action as the API takes it.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ActionJson {
    Post {
        text: String,
        reply_to: Option<PostRef>,
        quote_of: Option<PostRef>,
        #[serde(default)]
        langs: Vec<String>,
    },
    EditPost {
        post: PostRef,
        text: String,
    },
    DeletePost {
        post: PostRef,
    },
    Repost {
        post: PostRef,
    },
    Unrepost {
        post: PostRef,
    },
    Like {
        post: PostRef,
    },
    Unlike {
        post: PostRef,
    },
    Follow {
        target: String,
    },
    Unfollow {
        target: String,
    },
    Block {
        target: String,
    },
    Unblock {
        target: String,
    },
    Mute {
        target: String,
    },
    Unmute {
        target: String,
    },
    SetProfile {
        display_name: String,
        bio: String,
        #[serde(default)]
        avatar_url: String,
    },
    RegisterHandle {
        handle: String,
    },
    Transfer {
        asset: String,
        to: String,
        amount: String,
    },
    AdmitMember {
        member: String,
    },
    RevokeMember {
        member: String,
    },
    LeaveFoundation {},
    Sponsor {
        account: String,
        amount: String,
    },
    EndSponsorship {
        account: String,
    },
    ExpireSeat {
        foundation: u16,
        holder: String,
    },
    Propose {
        foundation: u16,
        title: String,
        #[serde(default)]
        text: String,
        motion: MotionJson,
    },
    Vote {
        proposal: u64,
        #[serde(default)]
        challenge: bool,
        yes: bool,
        votes: u32,
    },
    AdvanceProposal {
        proposal: u64,
    },
    Challenge {
        proposal: u64,
    },
    SupportChallenge {
        proposal: u64,
    },
}

/// A motion as the API takes it (see [`starling_types::actions::FieldKind::Motion`]).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum MotionJson {
    Spend { to: String, amount: String },
    Appoint { office: String, holder: String },
    SetParam { param: String, value: String },
    Registrar { registrar: String },
}

impl MotionJson {
    fn into_motion(self) -> Result<Motion, ApiError> {
        let bad = |code: &'static str, msg: &str| ApiError::bad_request(code, msg);
        let motion = match self {
            MotionJson::Spend { to, amount } => Motion::Spend {
                to: parse_key(&to)?,
                amount: parse_amount(&amount)?,
            },
            MotionJson::Appoint { office, holder } => Motion::Appoint {
                office: Office::ALL
                    .into_iter()
                    .find(|o| o.name() == office)
                    .ok_or_else(|| {
                        bad(
                            "bad_office",
                            "office is president, officer, board, senate or staff",
                        )
                    })?,
                holder: parse_key(&holder)?,
            },
            MotionJson::SetParam { param, value } => Motion::SetParam {
                param: GovParam::from_name(&param).ok_or_else(|| {
                    bad(
                        "bad_param",
                        "param is spend_limit or tokens.<members|staff|senate|board|executive>",
                    )
                })?,
                value: parse_amount(&value)?,
            },
            MotionJson::Registrar { registrar } => Motion::Registrar {
                registrar: parse_key(&registrar)?,
            },
        };
        motion
            .validate()
            .map_err(|e| bad("bad_motion", &e.to_string()))?;
        Ok(motion)
    }
}

fn parse_amount(amount: &str) -> Result<u128, ApiError> {
    amount
        .parse()
        .map_err(|_| ApiError::bad_request("bad_amount", "amount is a whole number as a string"))
}

impl ActionJson {
    /// The governance acts (tags 27 to 31).
    fn into_gov_action(self) -> Result<Action, ApiError> {
        Ok(Action::Govern(match self {
            ActionJson::Propose {
                foundation,
                title,
                text,
                motion,
            } => GovAct::Propose {
                foundation,
                title,
                text,
                motion: motion.into_motion()?,
            },
            ActionJson::Vote {
                proposal,
                challenge,
                yes,
                votes,
            } => GovAct::Vote {
                proposal,
                challenge,
                yes,
                votes,
            },
            ActionJson::AdvanceProposal { proposal } => GovAct::Advance { proposal },
            ActionJson::Challenge { proposal } => GovAct::Challenge { proposal },
            ActionJson::SupportChallenge { proposal } => GovAct::Support { proposal },
            _ => {
                return Err(ApiError::bad_request(
                    "bad_action",
                    "not a governance action",
                ))
            }
        }))
    }

    pub(crate) fn into_action(self) -> Result<Action, ApiError> {
        let opt = |p: Option<PostRef>| p.map(|p| p.id()).transpose();
        Ok(match self {
            ActionJson::Post {
                text,
                reply_to,
                quote_of,
                langs,
            } => Action::Post {
                text,
                reply_to: opt(reply_to)?,
                quote_of: opt(quote_of)?,
                langs,
            },
            ActionJson::EditPost { post, text } => Action::EditPost {
                post: post.id()?,
                text,
            },
            ActionJson::DeletePost { post } => Action::DeletePost { post: post.id()? },
            ActionJson::Repost { post } => Action::Repost { post: post.id()? },
            ActionJson::Unrepost { post } => Action::Unrepost { post: post.id()? },
            ActionJson::Like { post } => Action::Like { post: post.id()? },
            ActionJson::Unlike { post } => Action::Unlike { post: post.id()? },
            ActionJson::Follow { target } => Action::Follow {
                target: parse_key(&target)?,
            },
            ActionJson::Unfollow { target } => Action::Unfollow {
                target: parse_key(&target)?,
            },
            ActionJson::Block { target } => Action::Block {
                target: parse_key(&target)?,
            },
            ActionJson::Unblock { target } => Action::Unblock {
                target: parse_key(&target)?,
            },
            ActionJson::Mute { target } => Action::Mute {
                target: parse_key(&target)?,
            },
            ActionJson::Unmute { target } => Action::Unmute {
                target: parse_key(&target)?,
            },
            ActionJson::SetProfile {
                display_name,
                bio,
                avatar_url,
            } => Action::SetProfile {
                display_name,
                bio,
                avatar_url,
            },
            ActionJson::RegisterHandle { handle } => Action::RegisterHandle { handle },
            ActionJson::Transfer { asset, to, amount } => Action::Transfer {
                asset: match asset.as_str() {
                    "spend" => Asset::Spend,
                    "urc" => Asset::Urc,
                    "core" => Asset::Core,
                    _ => {
                        return Err(ApiError::bad_request(
                            "bad_asset",
                            "asset is spend, urc or core",
                        ))
                    }
                },
                to: parse_key(&to)?,
                amount: parse_amount(&amount)?,
            },
            ActionJson::AdmitMember { member } => Action::AdmitMember {
                member: parse_key(&member)?,
            },
            ActionJson::RevokeMember { member } => Action::RevokeMember {
                member: parse_key(&member)?,
            },
            ActionJson::LeaveFoundation {} => Action::LeaveFoundation,
            ActionJson::Sponsor { account, amount } => Action::Sponsor {
                account: parse_key(&account)?,
                amount: parse_amount(&amount)?,
            },
            ActionJson::EndSponsorship { account } => Action::EndSponsorship {
                account: parse_key(&account)?,
            },
            ActionJson::ExpireSeat { foundation, holder } => Action::ExpireSeat {
                foundation,
                holder: parse_key(&holder)?,
            },
            gov => return gov.into_gov_action(),
        })
    }
}
