//! Properties of governance under random acts by foundation 0's people (rules GV1–GV8,
//! M16–M18, TR1): proposals, votes, advances, challenges and support in any order, with
//! epochs passing. After every act: SPEND is conserved across every shard; the global
//! shard's deposits pool holds exactly the deposits still held (open proposals' and running
//! challenges'); no seat appears twice in a roll call; no irreversible decision took effect
//! inside its challenge window; no seat holds two seats.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::gov::*;
use common::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use starling_crypto::SecretKey;
use starling_ledger::proposals::{ProposalRecord, Stage, Status};
use starling_ledger::records::{Pool, StateKey};
use starling_types::{Asset, Branch, Finality, GovAct, GovParam, Motion, Office, Offices, ShardId};

/// SPEND everywhere: the accounts' balances and sponsorships, and every shard's pools.
fn spend_total(net: &Net, keys: &[&SecretKey]) -> u128 {
    let mut sum = 0;
    let mut accounts: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
    accounts.push(net.proposer);
    accounts.sort();
    accounts.dedup();
    for a in &accounts {
        if let Some(r) = net.account(a) {
            sum += r.balances[Asset::Spend.index()] + r.sponsor.map_or(0, |s| s.left);
        }
    }
    for s in 0..net.shards.len() {
        for pool in Pool::all(net.params.foundations.len() as u16) {
            sum += net.pool(ShardId(s as u16), pool);
        }
    }
    sum
}

fn issued(net: &Net) -> u128 {
    (0..net.shards.len())
        .map(|s| net.amount(ShardId(s as u16), StateKey::Issued(Asset::Spend)))
        .sum()
}

/// A random act, mostly by someone who may do it (so that most are accepted), sometimes by
/// anyone.
fn random_act<'a>(
    rng: &mut ChaCha20Rng,
    people: &'a People,
    everyone: &[&'a SecretKey],
    count: u64,
) -> (&'a SecretKey, GovAct) {
    // Mostly the newest proposals, sometimes any, sometimes none that exists.
    let id = match rng.gen_range(0..10) {
        0 => count,
        1 | 2 => rng.gen_range(0..=count),
        _ => count.saturating_sub(rng.gen_range(1..3)),
    };
    let anyone = everyone[rng.gen_range(0..everyone.len())];
    let pick = |rng: &mut ChaCha20Rng, ks: &'a [SecretKey]| &ks[rng.gen_range(0..ks.len())];
    let (likely, act) = match rng.gen_range(0..18) {
        0 => (
            &people.president,
            spend(
                anyone,
                [10, 3_000, SPEND_LIMIT + 1, FUND * 3][rng.gen_range(0..4)],
            ),
        ),
        1 => (
            &people.president,
            appoint(
                [Office::Officer, Office::Board, Office::Staff][rng.gen_range(0..3)],
                anyone,
            ),
        ),
        2 => (
            pick(rng, &people.board),
            GovAct::Propose {
                foundation: 0,
                title: "A parameter".into(),
                text: String::new(),
                motion: Motion::SetParam {
                    param: [GovParam::Tokens(Branch::Board), GovParam::SpendLimit]
                        [rng.gen_range(0..2)],
                    value: rng.gen_range(1..SPEND_LIMIT * 2),
                },
            },
        ),
        3 => (
            pick(rng, &people.senate),
            vote(id, rng.gen_bool(0.7), rng.gen_range(1..4)),
        ),
        4..=9 => (
            pick(rng, &people.board),
            vote(id, rng.gen_bool(0.7), rng.gen_range(1..4)),
        ),
        10 | 11 => (
            pick(rng, &people.board),
            board_vote(id, rng.gen_bool(0.5), rng.gen_range(1..4)),
        ),
        12..=15 => (anyone, GovAct::Advance { proposal: id }),
        16 => (&people.stranger, GovAct::Challenge { proposal: id }),
        _ => (pick(rng, &people.senate), GovAct::Support { proposal: id }),
    };
    (if rng.gen_bool(0.8) { likely } else { anyone }, act)
}

/// The step a proposal's lifecycle needs next, by someone who may take it: a vote of a
/// deciding seat that has not voted, a challenge, support, the board's vote on it, or an
/// advance.
fn next_step<'a>(
    rng: &mut ChaCha20Rng,
    net: &Net,
    people: &'a People,
    count: u64,
) -> Option<(&'a SecretKey, GovAct)> {
    let id = count.checked_sub(rng.gen_range(1..4))?;
    let p: ProposalRecord = net.get(GLOBAL, StateKey::Proposal(id))?;
    let seats: Vec<&SecretKey> = match p.motion.track().decides {
        Branch::Board => people.board.iter().collect(),
        Branch::Senate => people.senate.iter().collect(),
        Branch::Executive => vec![&people.president],
        _ => vec![],
    };
    let open = p.challenge.as_ref().filter(|c| c.stage.open());
    let board_left: Vec<&SecretKey> = people
        .board
        .iter()
        .filter(|k| open.is_some_and(|c| !c.roll.has(&k.public_key())))
        .collect();
    let left: Vec<&SecretKey> = seats
        .into_iter()
        .filter(|k| !p.roll.has(&k.public_key()))
        .collect();
    let advance = GovAct::Advance { proposal: id };
    Some(match (p.status, open.map(|c| c.stage)) {
        (Status::Voting, _) if !left.is_empty() => {
            let k = left[rng.gen_range(0..left.len())];
            (k, vote(id, rng.gen_bool(0.75), rng.gen_range(1..5)))
        }
        (_, Some(Stage::Gathering { .. })) => (
            &people.senate[rng.gen_range(0..2)],
            GovAct::Support { proposal: id },
        ),
        (_, Some(Stage::BoardVote { .. })) if !board_left.is_empty() => {
            let k = board_left[rng.gen_range(0..board_left.len())];
            (k, board_vote(id, rng.gen_bool(0.5), rng.gen_range(1..3)))
        }
        (Status::Passed | Status::Enacted, None) if rng.gen_bool(0.3) => {
            (&people.member, GovAct::Challenge { proposal: id })
        }
        _ => (&people.stranger, advance),
    })
}

fn check_books(net: &Net, keys: &[&SecretKey], issued: u128, challenge_epochs: u64) {
    assert_eq!(spend_total(net, keys), issued, "SPEND conserved");
    let count = net.counter(GLOBAL, StateKey::ProposalCount);
    let mut held = 0;
    for id in 0..count {
        let p: ProposalRecord = net.get(GLOBAL, StateKey::Proposal(id)).unwrap();
        if p.status == Status::Voting {
            held += p.deposit;
        }
        if let Some(c) = p.challenge.as_ref().filter(|c| c.stage.open()) {
            held += c.deposit;
        }
        let mut voters: Vec<_> = p.roll.votes.iter().map(|v| v.voter).collect();
        voters.sort();
        voters.dedup();
        assert_eq!(voters.len(), p.roll.votes.len(), "one vote per seat");
        if let (Finality::AfterWindow, Some(h), Some(d)) = (p.finality, p.enacted, p.decided) {
            assert!(
                h / EPOCH >= d.epoch + challenge_epochs,
                "an irreversible decision waited"
            );
        }
    }
    assert_eq!(net.pool(GLOBAL, Pool::Deposits), held, "deposits held");
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap_or_default();
    offices.validate().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn random_governance_keeps_its_books(seed in any::<u64>()) {
        const WINDOW: u64 = 12;
        let (mut net, people) = setup(|p| {
            let g = &mut p.governance;
            (g.challenge_epochs, g.voting_epochs, g.support_epochs, g.board_vote_epochs) = (WINDOW, 20, 4, 4);
        });
        let mut everyone: Vec<&SecretKey> = vec![&people.treasury, &people.president, &people.member, &people.stranger];
        everyone.extend(people.board.iter().chain(&people.senate));
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let issued = issued(&net);
        check_books(&net, &everyone, issued, WINDOW);
        let mut refused = 0;
        for _ in 0..120 {
            let count = net.counter(GLOBAL, StateKey::ProposalCount);
            let guided = rng.gen_bool(0.7).then(|| next_step(&mut rng, &net, &people, count)).flatten();
            let (k, a) = guided.unwrap_or_else(|| random_act(&mut rng, &people, &everyone, count));
            let (r, ev) = act(&mut net, k, a);
            if r.is_err() || refused_any(&ev) {
                refused += 1;
            }
            if rng.gen_bool(0.08) {
                let e = epoch(&net) + rng.gen_range(1..4);
                to_epoch(&mut net, e);
            }
            check_books(&net, &everyone, issued, WINDOW);
        }
        // The draw exercised both outcomes.
        let opened = net.counter(GLOBAL, StateKey::ProposalCount);
        prop_assert!(refused > 0 && opened > 0, "{} refused, {} opened", refused, opened);
    }
}

fn refused_any(events: &[starling_ledger::Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, starling_ledger::Event::GovernanceRefused { .. }))
}
