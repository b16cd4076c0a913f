//! Gas: what each transaction costs, by size and by action.
//!
//! Rule G1: `gas = 1,000 + 8 * encoded_envelope_bytes + action_gas`, with `action_gas` from
//! [`action_gas`]. Actions that reach another shard cost more because they emit a message.

use starling_types::Action;

pub const TX_BASE_GAS: u64 = 1_000;
pub const GAS_PER_BYTE: u64 = 8;

pub fn action_gas(action: &Action) -> u64 {
    match action {
        Action::Post {
            reply_to, quote_of, ..
        } => 2_000 + 500 * (u64::from(reply_to.is_some()) + u64::from(quote_of.is_some())),
        Action::EditPost { .. } => 2_000,
        Action::DeletePost { .. } => 1_000,
        Action::Repost { .. }
        | Action::Unrepost { .. }
        | Action::Like { .. }
        | Action::Unlike { .. } => 500,
        Action::Follow { .. } | Action::Unfollow { .. } => 1_000,
        Action::Block { .. }
        | Action::Unblock { .. }
        | Action::Mute { .. }
        | Action::Unmute { .. } => 500,
        Action::SetProfile { .. } => 1_000,
        Action::RegisterHandle { .. } => 5_000,
        Action::Transfer { .. } => 1_000,
        Action::RegisterValidator { .. } | Action::RetireValidator => 10_000,
        Action::SetChatDevice { .. } | Action::RemoveChatDevice { .. } => 2_000,
        // Two messages each (there and back through the global shard's registry).
        Action::AdmitMember { .. } | Action::RevokeMember { .. } | Action::LeaveFoundation => 5_000,
        Action::Sponsor { .. } | Action::EndSponsorship { .. } => 2_000,
        Action::ExpireSeat { .. } => 2_000,
        // Its message to the global shard, and the work there (a roll call, a tally).
        Action::Govern(_) => 5_000,
        // No fee is paid; this is its share of a block: a blind RSA verification and a count.
        Action::Ballot(_) => 20_000,
    }
}

/// Rule G2: a ballot pays nothing, but counted or refused it takes its gas of the block (a
/// proposer cannot fill a block with free ballots that fail, each costing every validator a
/// credential check). What a refused transaction takes of the block: 0 unless a ballot.
pub fn refused_gas(envelope_len: usize, action: &Action) -> u64 {
    match action {
        Action::Ballot(_) => tx_gas(envelope_len, action),
        _ => 0,
    }
}

pub fn tx_gas(envelope_len: usize, action: &Action) -> u64 {
    TX_BASE_GAS + GAS_PER_BYTE * envelope_len as u64 + action_gas(action)
}
