//! Foundation 0's people and the acts of governance, for the proposals tests.

use super::*;
use starling_crypto::SecretKey;
use starling_ledger::proposals::ProposalRecord;
use starling_ledger::records::StateKey;
use starling_ledger::{Event, LedgerParams, TxError};
use starling_types::{AccountId, Action, Asset, GovAct, Motion, Office, Offices, Seat, ShardId};

pub const GLOBAL: ShardId = ShardId::GLOBAL;
pub const SHARD: ShardId = ShardId(1);
pub const DEPOSIT: u128 = 7_000_000_000;
pub const CHALLENGE_DEPOSIT: u128 = 11_000_000_000;
pub const SPEND_LIMIT: u128 = 5_000;

/// Foundation 0's people: its treasury, a president, three board members, two senators, a
/// member, and a stranger.
pub struct People {
    pub treasury: SecretKey,
    pub president: SecretKey,
    pub board: Vec<SecretKey>,
    pub senate: Vec<SecretKey>,
    pub member: SecretKey,
    pub stranger: SecretKey,
}

pub fn setup(tweak: impl FnOnce(&mut LedgerParams)) -> (Net, People) {
    let mut p = params(1);
    let mut ks = keys_on(&p, SHARD, 8, 81_000);
    let people = People {
        treasury: foundation_key(0),
        president: ks.remove(0),
        board: ks.drain(..3).collect(),
        senate: ks.drain(..2).collect(),
        member: ks.remove(0),
        stranger: ks.remove(0),
    };
    let g = &mut p.governance;
    g.voting_epochs = 6;
    g.challenge_epochs = 3;
    g.support_epochs = 2;
    g.board_vote_epochs = 2;
    g.round_epochs = 6;
    g.proposal_deposit = DEPOSIT;
    g.challenge_deposit = CHALLENGE_DEPOSIT;
    g.foundation.spend_limit = SPEND_LIMIT;
    let seat = |office, k: &SecretKey| Seat {
        office,
        holder: k.public_key(),
        since: 0,
        until: p.office_terms[usize::from(Office::code(office))],
        acting: false,
    };
    let mut seats = vec![seat(Office::President, &people.president)];
    seats.extend(people.board.iter().map(|k| seat(Office::Board, k)));
    seats.extend(people.senate.iter().map(|k| seat(Office::Senate, k)));
    seats.sort_by_key(|s| (s.office, s.holder));
    p.genesis_offices = vec![Offices { seats }, Offices::default(), Offices::default()];
    tweak(&mut p);
    let mut funded: Vec<&SecretKey> = vec![&people.treasury, &people.president, &people.member];
    funded.extend(people.board.iter().chain(&people.senate));
    funded.push(&people.stranger);
    funded.push(&people.treasury);
    let mut net = Net::with(p, &funded);
    admit(&mut net, 0, &people.member.public_key());
    (net, people)
}

/// Sends a governance act and delivers everything it sets off.
pub fn act(net: &mut Net, k: &SecretKey, act: GovAct) -> (Result<(), TxError>, Vec<Event>) {
    let nonce = net.account(&k.public_key()).map_or(0, |r| r.nonce);
    net.run_settled(k, nonce, Action::Govern(act))
}

/// What the global shard refused of `k`'s act, if it refused it.
pub fn refused(events: &[Event], k: &SecretKey) -> Option<TxError> {
    events.iter().find_map(|e| match e {
        Event::GovernanceRefused { from, error, .. } if *from == k.public_key() => {
            Some(error.clone())
        }
        _ => None,
    })
}

pub fn proposal(net: &Net, id: u64) -> ProposalRecord {
    net.get(GLOBAL, StateKey::Proposal(id)).unwrap()
}

pub fn spend(to: &SecretKey, amount: u128) -> GovAct {
    GovAct::Propose {
        foundation: 0,
        title: "Pay for the relay".into(),
        text: "It served the network all year.".into(),
        motion: Motion::Spend {
            to: to.public_key(),
            amount,
        },
    }
}

pub fn vote(proposal: u64, yes: bool, votes: u32) -> GovAct {
    GovAct::Vote {
        proposal,
        challenge: false,
        yes,
        votes,
    }
}

pub fn board_vote(proposal: u64, yes: bool, votes: u32) -> GovAct {
    GovAct::Vote {
        proposal,
        challenge: true,
        yes,
        votes,
    }
}

/// The global shard's epoch.
pub fn epoch(net: &Net) -> u64 {
    net.shards[0].height / EPOCH
}

/// Empty global blocks until the global shard is in epoch `e`.
pub fn to_epoch(net: &mut Net, e: u64) {
    while epoch(net) < e {
        net.block(GLOBAL, vec![], vec![]);
    }
}

pub fn spend_balance(net: &Net, k: &AccountId) -> u128 {
    net.account(k)
        .map_or(0, |r| r.balances[Asset::Spend.index()])
}

/// Every board member votes yes with one vote.
pub fn board_passes(net: &mut Net, people: &People, id: u64) {
    for b in &people.board {
        let (r, ev) = act(net, b, vote(id, true, 1));
        r.unwrap();
        assert_eq!(refused(&ev, b), None);
    }
}

pub fn appoint(office: Office, holder: &SecretKey) -> GovAct {
    GovAct::Propose {
        foundation: 0,
        title: "An appointment".into(),
        text: String::new(),
        motion: Motion::Appoint {
            office,
            holder: holder.public_key(),
        },
    }
}
