//! Proposals, roll calls, vote tokens and challenges (rules GV1–GV8, M16, M17, TR1), each
//! lifecycle end to end on a network in memory: a spend from proposal to payment, quadratic
//! tokens and their rounds, an appointment a challenge reverses, an irreversible spend that
//! waits out its window (and one a challenge cancels), parameters and registrars, and every
//! bad act refused with its own error, changing nothing but its fee.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::gov::*;
use common::*;
use starling_crypto::SecretKey;
use starling_ledger::proposals::{FoundationParams, Stage, Status};
use starling_ledger::records::{Pool, StateKey};
use starling_ledger::{Event, TxError};
use starling_types::{
    AccountId, Action, Asset, Branch, Federation, GovAct, GovParam, Motion, Office, Offices,
};

#[test]
fn a_spend_runs_from_proposal_to_payment() {
    let (mut net, people) = setup(|_| {});
    let president = people.president.public_key();
    let to = people.stranger.public_key();
    let before = spend_balance(&net, &president);

    // GV2: the president opens it; the deposit is held on the global shard.
    let (r, ev) = act(&mut net, &people.president, spend(&people.stranger, 1_000));
    r.unwrap();
    assert!(ev.contains(&Event::ProposalOpened {
        proposal: 0,
        foundation: 0,
        proposer: president
    }));
    assert_eq!(net.pool(GLOBAL, Pool::Deposits), DEPOSIT);
    let p = proposal(&net, 0);
    assert_eq!(
        (p.status, p.electorate, p.deposit),
        (Status::Voting, 3, DEPOSIT)
    );
    assert!(spend_balance(&net, &president) < before - DEPOSIT + 1);

    // GV3: two of three board members vote; the tally is not due yet.
    act(&mut net, &people.board[0], vote(0, true, 3)).0.unwrap();
    act(&mut net, &people.board[1], vote(0, true, 2)).0.unwrap();
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 });
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotYet));
    // A senator has no vote on a spend; no one votes twice.
    let (_, ev) = act(&mut net, &people.senate[0], vote(0, false, 1));
    assert_eq!(refused(&ev, &people.senate[0]), Some(TxError::NotInOffice));
    let (_, ev) = act(&mut net, &people.board[0], vote(0, false, 1));
    assert_eq!(refused(&ev, &people.board[0]), Some(TxError::AlreadyVoted));
    act(&mut net, &people.board[2], vote(0, false, 4))
        .0
        .unwrap();
    let p = proposal(&net, 0);
    assert_eq!(p.roll.tally(), (5, 4), "a public roll call, weighted");

    // GV5: everyone voted, so anyone may tally before the period ends. Two advances in one
    // block: the first tallies, the second is refused, for nothing takes effect in the
    // block that tallied it.
    let k = &people.stranger;
    let nonce = net.account(&k.public_key()).unwrap().nonce;
    let txs = (0..2)
        .map(|i| {
            net.sign(
                k,
                nonce + i,
                Action::Govern(GovAct::Advance { proposal: 0 }),
            )
        })
        .collect();
    let out = net.block(SHARD, txs, vec![]);
    let ev: Vec<Event> = net
        .settle(out)
        .into_iter()
        .flat_map(|(_, e)| e.events)
        .collect();
    assert_eq!(refused(&ev, k), Some(TxError::NotYet));
    let p = proposal(&net, 0);
    assert_eq!(p.status, Status::Passed);
    assert_eq!(
        net.pool(GLOBAL, Pool::Deposits),
        0,
        "with quorum, the deposit goes back"
    );

    // GV6: the next advance pays from the treasury account (M17).
    let treasury = people.treasury.public_key();
    let (t0, r0) = (spend_balance(&net, &treasury), spend_balance(&net, &to));
    let (_, ev) = act(&mut net, &people.member, GovAct::Advance { proposal: 0 });
    assert!(ev.contains(&Event::TreasurySpend {
        proposal: 0,
        foundation: 0,
        to,
        amount: 1_000,
        error: None
    }));
    assert_eq!(proposal(&net, 0).status, Status::Enacted);
    assert_eq!(spend_balance(&net, &treasury), t0 - 1_000);
    assert!(spend_balance(&net, &to) >= r0 + 1_000 - 1_000_000_000);
    // A small spend is final: no challenge; and nothing is left to advance.
    let (_, ev) = act(&mut net, &people.member, GovAct::Challenge { proposal: 0 });
    assert_eq!(
        refused(&ev, &people.member),
        Some(TxError::NotChallengeable)
    );
    let (_, ev) = act(&mut net, &people.member, GovAct::Advance { proposal: 0 });
    assert_eq!(refused(&ev, &people.member), Some(TxError::ProposalClosed));

    // TR1: the treasury's own key cannot move its SPEND.
    let nonce = net.account(&treasury).unwrap().nonce;
    let transfer = Action::Transfer {
        asset: Asset::Spend,
        to,
        amount: 1,
    };
    assert_eq!(
        net.run(&people.treasury, nonce, transfer),
        Err(TxError::TreasuryLocked)
    );
}

#[test]
fn votes_cost_their_square_in_tokens_and_a_round_replenishes_them() {
    let (mut net, people) = setup(|p| p.governance.foundation.tokens[3] = 20);
    let b = &people.board[0];
    act(&mut net, &people.president, spend(&people.stranger, 10))
        .0
        .unwrap();
    act(&mut net, &people.president, spend(&people.stranger, 20))
        .0
        .unwrap();
    act(&mut net, &people.president, spend(&people.stranger, 30))
        .0
        .unwrap();
    // 4 votes cost 16 of 20 tokens; 3 more would cost 9, with 4 left.
    act(&mut net, b, vote(0, true, 4)).0.unwrap();
    let (_, ev) = act(&mut net, b, vote(1, true, 3));
    assert_eq!(
        refused(&ev, b),
        Some(TxError::VoteTokens { needed: 9, left: 4 })
    );
    assert!(
        proposal(&net, 1).roll.votes.is_empty(),
        "a refused vote changes nothing"
    );
    act(&mut net, b, vote(1, true, 2)).0.unwrap();
    let (_, ev) = act(&mut net, b, vote(2, true, 1));
    assert_eq!(
        refused(&ev, b),
        Some(TxError::VoteTokens { needed: 1, left: 0 })
    );
    // Once voting on proposal 2 has closed, a new proposal in the next round (from epoch
    // 6) finds the tokens replenished, not carried over.
    let closes = proposal(&net, 2).closes;
    assert!(closes >= 6);
    to_epoch(&mut net, closes);
    let (_, ev) = act(&mut net, b, vote(2, true, 1));
    assert_eq!(refused(&ev, b), Some(TxError::VotingClosed));
    act(&mut net, &people.president, spend(&people.stranger, 40))
        .0
        .unwrap();
    act(&mut net, b, vote(3, true, 4)).0.unwrap();
    assert_eq!(proposal(&net, 3).roll.tally(), (4, 0));
}

/// Passes and enacts an appointment of `holder` as an officer; returns its number.
fn appoint_officer(net: &mut Net, people: &People, holder: &SecretKey, id: u64) {
    pass_officer(net, people, holder, id);
    act(net, &people.stranger, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    act(net, &people.stranger, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    assert_eq!(proposal(net, id).status, Status::Enacted);
}

/// The president proposes `holder` as an officer, and the whole board votes yes.
fn pass_officer(net: &mut Net, people: &People, holder: &SecretKey, id: u64) {
    act(net, &people.president, appoint(Office::Officer, holder))
        .0
        .unwrap();
    board_passes(net, people, id);
}

#[test]
fn a_challenged_appointment_is_reversed() {
    let (mut net, people) = setup(|_| {});
    let officer = &people.member;
    appoint_officer(&mut net, &people, officer, 0);
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    let seat = offices.held_by(&officer.public_key(), epoch(&net)).unwrap();
    assert_eq!(seat.office, Office::Officer);

    // GV7: a stranger challenges it (with a deposit); a senator's support (1 of 2 is above
    // 5%) calls the board to vote.
    let stranger = people.stranger.public_key();
    let before = spend_balance(&net, &stranger);
    act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    )
    .0
    .unwrap();
    assert_eq!(net.pool(GLOBAL, Pool::Deposits), CHALLENGE_DEPOSIT);
    let (_, ev) = act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    );
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::ChallengeOpen));
    // A stranger cannot support it, and the board cannot vote before it has support.
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Support { proposal: 0 });
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotMember));
    let (_, ev) = act(&mut net, &people.board[0], board_vote(0, true, 1));
    assert_eq!(refused(&ev, &people.board[0]), Some(TxError::NoChallenge));
    let (_, ev) = act(&mut net, &people.senate[0], GovAct::Support { proposal: 0 });
    assert!(ev.contains(&Event::ChallengeChanged {
        proposal: 0,
        stage: "board_vote"
    }));

    // The board overturns it, 4 to 1 in votes; the undoing comes at a later advance.
    act(&mut net, &people.board[0], board_vote(0, true, 3))
        .0
        .unwrap();
    act(&mut net, &people.board[1], board_vote(0, true, 1))
        .0
        .unwrap();
    act(&mut net, &people.board[2], board_vote(0, false, 1))
        .0
        .unwrap();
    act(&mut net, &people.senate[1], GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let p = proposal(&net, 0);
    assert!(matches!(
        p.challenge.unwrap().stage,
        Stage::Overturned { .. }
    ));
    assert_eq!(
        p.status,
        Status::Enacted,
        "not undone in the tallying block"
    );
    let (_, ev) = act(&mut net, &people.senate[1], GovAct::Advance { proposal: 0 });
    assert!(ev.contains(&Event::SeatVacated {
        foundation: 0,
        office: Office::Officer,
        holder: officer.public_key()
    }));
    assert_eq!(proposal(&net, 0).status, Status::Reversed);
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    assert!(offices
        .held_by(&officer.public_key(), epoch(&net))
        .is_none());
    // The challenger won: its deposit is back (less the fees of its three acts).
    assert_eq!(net.pool(GLOBAL, Pool::Deposits), 0);
    assert!(spend_balance(&net, &stranger) > before - CHALLENGE_DEPOSIT);
}

#[test]
fn an_irreversible_spend_waits_out_its_window_and_a_challenge_can_cancel_it() {
    const WINDOW: u64 = 6;
    let (mut net, people) = setup(|p| p.governance.challenge_epochs = WINDOW);
    let to = people.stranger.public_key();
    let big = SPEND_LIMIT + 1;
    act(&mut net, &people.president, spend(&people.stranger, big))
        .0
        .unwrap();
    act(
        &mut net,
        &people.president,
        spend(&people.stranger, big + 1),
    )
    .0
    .unwrap();
    board_passes(&mut net, &people, 0);
    board_passes(&mut net, &people, 1);
    for id in [0, 1] {
        act(&mut net, &people.stranger, GovAct::Advance { proposal: id })
            .0
            .unwrap();
        // Passed, but held for the challenge window.
        let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: id });
        assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotYet));
        assert_eq!(proposal(&net, id).status, Status::Passed);
    }
    let decided = proposal(&net, 0).decided.unwrap().epoch;

    // Proposal 1: a challenge with no support lapses, and the foundation keeps its deposit.
    act(&mut net, &people.member, GovAct::Challenge { proposal: 1 })
        .0
        .unwrap();
    let pool = net.pool(GLOBAL, Pool::Foundation(0));
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 });
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotYet));
    let e = epoch(&net) + 2;
    to_epoch(&mut net, e);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 })
        .0
        .unwrap();
    assert_eq!(proposal(&net, 1).challenge.unwrap().stage, Stage::Lapsed);
    assert_eq!(
        net.pool(GLOBAL, Pool::Foundation(0)),
        pool + CHALLENGE_DEPOSIT
    );
    // A second one, with a member's support, is overturned by the board: the spend is
    // cancelled and never paid. (The challenger cannot support its own challenge.)
    act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 1 },
    )
    .0
    .unwrap();
    act(&mut net, &people.member, GovAct::Support { proposal: 1 })
        .0
        .unwrap();
    let (_, ev) = act(&mut net, &people.member, GovAct::Support { proposal: 1 });
    assert_eq!(
        refused(&ev, &people.member),
        Some(TxError::NoChallenge),
        "voting now"
    );
    for b in &people.board {
        act(&mut net, b, board_vote(1, true, 1)).0.unwrap();
    }
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 })
        .0
        .unwrap();
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 })
        .0
        .unwrap();
    assert_eq!(proposal(&net, 1).status, Status::Cancelled);
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 });
    assert_eq!(
        refused(&ev, &people.stranger),
        Some(TxError::ProposalClosed)
    );

    // Proposal 0: once the window has passed, it is paid, and no longer open to challenge.
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 });
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotYet));
    to_epoch(&mut net, decided + WINDOW);
    let (_, ev) = act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    );
    assert_eq!(
        refused(&ev, &people.stranger),
        Some(TxError::NotChallengeable)
    );
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 });
    assert!(ev.contains(&Event::TreasurySpend {
        proposal: 0,
        foundation: 0,
        to,
        amount: big,
        error: None
    }));
    assert_eq!(proposal(&net, 0).status, Status::Enacted);
}

#[test]
fn a_parameter_change_is_undone_and_a_registrar_change_reaches_every_shard() {
    let (mut net, people) = setup(|_| {});
    // The board proposes; the senate decides.
    let set = GovAct::Propose {
        foundation: 0,
        title: "More tokens for the board".into(),
        text: String::new(),
        motion: Motion::SetParam {
            param: GovParam::Tokens(Branch::Board),
            value: 50_000,
        },
    };
    let (_, ev) = act(&mut net, &people.president, set.clone());
    assert_eq!(refused(&ev, &people.president), Some(TxError::NotInOffice));
    act(&mut net, &people.board[0], set).0.unwrap();
    for s in &people.senate {
        act(&mut net, s, vote(0, true, 2)).0.unwrap();
    }
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let fp: FoundationParams = net.get(GLOBAL, StateKey::FoundationParams(0)).unwrap();
    assert_eq!(fp.tokens[3], 50_000);
    // Challenged and overturned: the old value comes back.
    act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    )
    .0
    .unwrap();
    act(&mut net, &people.member, GovAct::Support { proposal: 0 })
        .0
        .unwrap();
    for b in &people.board {
        act(&mut net, b, board_vote(0, true, 1)).0.unwrap();
    }
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let fp: FoundationParams = net.get(GLOBAL, StateKey::FoundationParams(0)).unwrap();
    assert_eq!(fp.tokens[3], 10_000);

    // A registrar change: another foundation's registrar is refused at enactment; a fresh
    // account becomes the registrar on every shard once the window has passed.
    let registrar = |k: AccountId| GovAct::Propose {
        foundation: 0,
        title: "A new registrar".into(),
        text: String::new(),
        motion: Motion::Registrar { registrar: k },
    };
    act(
        &mut net,
        &people.president,
        registrar(foundation_key(1).public_key()),
    )
    .0
    .unwrap();
    act(
        &mut net,
        &people.president,
        registrar(people.senate[1].public_key()),
    )
    .0
    .unwrap();
    for id in [1, 2] {
        board_passes(&mut net, &people, id);
        act(&mut net, &people.stranger, GovAct::Advance { proposal: id })
            .0
            .unwrap();
    }
    let e = proposal(&net, 2).decided.unwrap().epoch + 3;
    to_epoch(&mut net, e);
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 });
    assert!(ev.contains(&Event::EnactmentFailed {
        proposal: 1,
        error: TxError::RegistrarTaken
    }));
    assert_eq!(proposal(&net, 1).status, Status::Failed);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 2 })
        .0
        .unwrap();
    let fed: Federation = net.get(SHARD, StateKey::Federation).unwrap();
    assert_eq!(fed.foundations[0].registrar, people.senate[1].public_key());
    // The new registrar admits; the old one no longer can.
    let newcomer = key(81_999).public_key();
    let nonce = net.account(&people.senate[1].public_key()).unwrap().nonce;
    let admit = |member| Action::AdmitMember { member };
    net.run_settled(&people.senate[1], nonce, admit(newcomer))
        .0
        .unwrap();
    assert_eq!(
        net.account(&newcomer).unwrap().member.unwrap().foundation,
        0
    );
    let nonce = net.account(&people.treasury.public_key()).unwrap().nonce;
    let stranger = people.stranger.public_key();
    let (r, _) = net.run_settled(&people.treasury, nonce, admit(stranger));
    assert_eq!(r, Err(TxError::NotRegistrar));
}

#[test]
fn bad_governance_acts_are_refused_with_their_own_error_and_change_nothing() {
    let (mut net, people) = setup(|_| {});
    act(&mut net, &people.president, spend(&people.stranger, 10))
        .0
        .unwrap();
    let before = proposal(&net, 0);
    let deposits = net.pool(GLOBAL, Pool::Deposits);
    let cases: Vec<(&SecretKey, GovAct, TxError)> = vec![
        // Wrong office.
        (
            &people.stranger,
            spend(&people.stranger, 10),
            TxError::NotInOffice,
        ),
        // Unknown proposal; no challenge to vote on; not decided yet.
        (&people.board[0], vote(9, true, 1), TxError::UnknownTarget),
        (
            &people.board[0],
            board_vote(0, true, 1),
            TxError::NoChallenge,
        ),
        (
            &people.stranger,
            GovAct::Challenge { proposal: 0 },
            TxError::NotChallengeable,
        ),
        (
            &people.senate[0],
            GovAct::Support { proposal: 0 },
            TxError::NoChallenge,
        ),
        // Over budget: 101 votes cost 10,201 of 10,000 tokens.
        (
            &people.board[0],
            vote(0, true, 101),
            TxError::VoteTokens {
                needed: 10_201,
                left: 10_000,
            },
        ),
    ];
    for (k, a, error) in cases {
        let (r, ev) = act(&mut net, k, a.clone());
        r.unwrap();
        assert_eq!(refused(&ev, k), Some(error), "{a:?}");
        assert_eq!(proposal(&net, 0), before, "{a:?}");
        assert_eq!(net.pool(GLOBAL, Pool::Deposits), deposits, "{a:?}");
    }
    // A refused proposal gives its deposit back: only the fee is gone.
    let k = &people.stranger;
    let b = spend_balance(&net, &k.public_key());
    let (_, ev) = act(&mut net, k, spend(k, 1));
    assert_eq!(refused(&ev, k), Some(TxError::NotInOffice));
    assert!(spend_balance(&net, &k.public_key()) > b - DEPOSIT);
    assert_eq!(net.counter(GLOBAL, StateKey::ProposalCount), 1);
    // Out of window: voting closed.
    to_epoch(&mut net, 6);
    let (_, ev) = act(&mut net, &people.board[1], vote(0, true, 1));
    assert_eq!(refused(&ev, &people.board[1]), Some(TxError::VotingClosed));
    // On the sender's shard: an unknown foundation, and a deposit it cannot pay.
    let nonce = net.account(&k.public_key()).unwrap().nonce;
    let unknown = Action::Govern(GovAct::Propose {
        foundation: 3,
        title: "t".into(),
        text: String::new(),
        motion: Motion::Spend {
            to: k.public_key(),
            amount: 1,
        },
    });
    assert_eq!(net.run(k, nonce, unknown), Err(TxError::UnknownTarget));
}

#[test]
fn an_acting_seat_cannot_make_an_irreversible_decision() {
    let (mut net, people) = setup(|p| {
        let o = &mut p.genesis_offices[0];
        o.seats
            .iter_mut()
            .find(|s| s.office == Office::President)
            .unwrap()
            .acting = true;
    });
    let big = SPEND_LIMIT + 1;
    let (_, ev) = act(&mut net, &people.president, spend(&people.stranger, big));
    assert_eq!(refused(&ev, &people.president), Some(TxError::ActingSeat));
    let (_, ev) = act(&mut net, &people.president, spend(&people.stranger, 1));
    assert_eq!(
        refused(&ev, &people.president),
        Some(TxError::ActingSeat),
        "final, too"
    );
    let appoint = GovAct::Propose {
        foundation: 0,
        title: "t".into(),
        text: String::new(),
        motion: Motion::Appoint {
            office: Office::Officer,
            holder: people.member.public_key(),
        },
    };
    let (_, ev) = act(&mut net, &people.president, appoint);
    assert_eq!(refused(&ev, &people.president), None, "reversible: allowed");
}

#[test]
fn an_acting_seat_cannot_vote_on_what_cannot_be_undone() {
    let (mut net, people) = setup(|p| {
        let o = &mut p.genesis_offices[0];
        o.seats
            .iter_mut()
            .find(|s| s.office == Office::Board)
            .unwrap()
            .acting = true;
    });
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    let acting = offices.seats.iter().find(|s| s.acting).unwrap().holder;
    let k = people
        .board
        .iter()
        .find(|k| k.public_key() == acting)
        .unwrap();
    act(&mut net, &people.president, spend(&people.stranger, 10))
        .0
        .unwrap();
    let (_, ev) = act(&mut net, k, vote(0, true, 1));
    assert_eq!(refused(&ev, k), Some(TxError::ActingSeat));
    act(
        &mut net,
        &people.president,
        appoint(Office::Officer, &people.member),
    )
    .0
    .unwrap();
    let (_, ev) = act(&mut net, k, vote(1, true, 1));
    assert_eq!(refused(&ev, k), None, "an appointment can be undone");
}

// What one dishonest party could do with these rules, each refused.

#[test]
fn a_treasury_cannot_pay_out_by_tip_or_by_deposit() {
    let (mut net, people) = setup(|_| {});
    let t = &people.treasury;
    let signed = |net: &Net, tip: u128, action: Action| {
        let nonce = net.account(&t.public_key()).unwrap().nonce;
        let body = starling_types::TxBody {
            account: t.public_key(),
            nonce,
            max_fee: u128::MAX,
            tip,
            expires_at_height: 1_000,
            action,
        };
        net.sign_body(t, &body)
    };
    let like = Action::Like {
        post: starling_types::PostId {
            author: t.public_key(),
            seq: 0,
        },
    };
    let before = spend_balance(&net, &t.public_key());
    // A tip would go to the block's proposer: refused whatever the action.
    let tx = signed(&net, 900_000_000_000, like);
    let (_, ex) = net.block(SHARD, vec![tx], vec![]);
    assert_eq!(tx_result(&ex, 0), Err(TxError::TreasuryLocked));
    // So is a deposit (a proposal's or a challenge's).
    for act in [spend(t, 1), GovAct::Challenge { proposal: 0 }] {
        let tx = signed(&net, 0, Action::Govern(act));
        let (_, ex) = net.block(SHARD, vec![tx], vec![]);
        assert_eq!(tx_result(&ex, 0), Err(TxError::TreasuryLocked));
    }
    assert_eq!(spend_balance(&net, &t.public_key()), before);
    // Advancing a proposal, untipped, moves nothing of its own: allowed.
    let tx = signed(&net, 0, Action::Govern(GovAct::Advance { proposal: 0 }));
    let (_, ex) = net.block(SHARD, vec![tx], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
}

#[test]
fn an_appointment_never_takes_a_seat_away() {
    let (mut net, people) = setup(|_| {});
    // A lone president cannot clear the board by "appointing" its members to the staff
    // (a track the executive alone decides).
    let (_, ev) = act(
        &mut net,
        &people.president,
        appoint(Office::Staff, &people.board[0]),
    );
    assert_eq!(
        refused(&ev, &people.president),
        Some(TxError::AlreadySeated)
    );
    // Nor by two appointments of one free account: the second fails when it would take
    // effect.
    act(
        &mut net,
        &people.president,
        appoint(Office::Staff, &people.member),
    )
    .0
    .unwrap();
    act(
        &mut net,
        &people.president,
        appoint(Office::Officer, &people.member),
    )
    .0
    .unwrap();
    act(&mut net, &people.president, vote(0, true, 1))
        .0
        .unwrap();
    board_passes(&mut net, &people, 1);
    for id in [0, 1, 0, 1] {
        act(&mut net, &people.stranger, GovAct::Advance { proposal: id })
            .0
            .unwrap();
    }
    assert_eq!(proposal(&net, 0).status, Status::Enacted);
    assert_eq!(proposal(&net, 1).status, Status::Failed);
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    let seat = offices
        .held_by(&people.member.public_key(), epoch(&net))
        .unwrap();
    assert_eq!(seat.office, Office::Staff);
    assert_eq!(offices.seats.len(), 7, "no seat was taken away");
}

#[test]
fn the_board_may_uphold_a_decision_and_challenges_are_bounded() {
    let (mut net, people) = setup(|p| p.governance.challenge_epochs = 40);
    appoint_officer(&mut net, &people, &people.member, 0);
    // Upheld: the board sides with the decision; the foundation keeps the deposit.
    act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    )
    .0
    .unwrap();
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Support { proposal: 0 });
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::NotMember));
    act(&mut net, &people.senate[0], GovAct::Support { proposal: 0 })
        .0
        .unwrap();
    for b in &people.board {
        act(&mut net, b, board_vote(0, false, 1)).0.unwrap();
    }
    let pool = net.pool(GLOBAL, Pool::Foundation(0));
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let p = proposal(&net, 0);
    assert_eq!(
        (p.status, p.challenge.unwrap().stage),
        (Status::Enacted, Stage::Upheld)
    );
    assert_eq!(
        net.pool(GLOBAL, Pool::Foundation(0)),
        pool + CHALLENGE_DEPOSIT
    );
    // Two more that lapse, and then no more: one decision faces at most three.
    for _ in 0..2 {
        act(
            &mut net,
            &people.stranger,
            GovAct::Challenge { proposal: 0 },
        )
        .0
        .unwrap();
        let e = epoch(&net) + 3;
        to_epoch(&mut net, e);
        act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
            .0
            .unwrap();
        assert_eq!(proposal(&net, 0).challenge.unwrap().stage, Stage::Lapsed);
    }
    let (_, ev) = act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    );
    assert_eq!(
        refused(&ev, &people.stranger),
        Some(TxError::NotChallengeable)
    );
    assert_eq!(proposal(&net, 0).challenges, 3);
}

#[test]
fn a_decision_no_one_enacts_in_time_expires_and_cannot_outrun_its_window() {
    let (mut net, people) = setup(|_| {});
    pass_officer(&mut net, &people, &people.member, 0);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let decided = proposal(&net, 0).decided.unwrap().epoch;
    // Held back past its voting period's worth of epochs, it can no longer take effect
    // (else a stale decision could land after its challenge window, beyond reach).
    to_epoch(&mut net, decided + 6);
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 });
    assert!(ev.contains(&Event::ProposalChanged {
        proposal: 0,
        status: "expired"
    }));
    let offices: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    assert!(offices
        .held_by(&people.member.public_key(), epoch(&net))
        .is_none());

    // Enacted late but in time, its challenge window runs from when it took effect.
    pass_officer(&mut net, &people, &people.member, 1);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 })
        .0
        .unwrap();
    let e = proposal(&net, 1).decided.unwrap().epoch + 5;
    to_epoch(&mut net, e);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 1 })
        .0
        .unwrap();
    assert_eq!(proposal(&net, 1).status, Status::Enacted);
    let (_, ev) = act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 1 },
    );
    assert_eq!(
        refused(&ev, &people.stranger),
        None,
        "3 epochs from enactment, not tally"
    );
}

#[test]
fn a_treasury_that_cannot_pay_fails_the_spend() {
    let (mut net, people) = setup(|p| p.governance.challenge_epochs = 1);
    let too_much = FUND * 2;
    act(
        &mut net,
        &people.president,
        spend(&people.stranger, too_much),
    )
    .0
    .unwrap();
    board_passes(&mut net, &people, 0);
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    let e = epoch(&net) + 2;
    to_epoch(&mut net, e);
    let before = spend_balance(&net, &people.treasury.public_key());
    let (_, ev) = act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 });
    assert!(ev.contains(&Event::EnactmentFailed {
        proposal: 0,
        error: TxError::InsufficientBalance {
            needed: too_much,
            available: before
        }
    }));
    assert_eq!(proposal(&net, 0).status, Status::Failed);
    assert_eq!(spend_balance(&net, &people.treasury.public_key()), before);
}

/// The board proposes setting the board's tokens; the senate passes it; it takes effect.
fn set_board_tokens(net: &mut Net, people: &People, id: u64, value: u128) {
    let set = GovAct::Propose {
        foundation: 0,
        title: "Board tokens".into(),
        text: String::new(),
        motion: Motion::SetParam {
            param: GovParam::Tokens(Branch::Board),
            value,
        },
    };
    act(net, &people.board[0], set).0.unwrap();
    for s in &people.senate {
        act(net, s, vote(id, true, 1)).0.unwrap();
    }
    act(net, &people.stranger, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    act(net, &people.stranger, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    assert_eq!(proposal(net, id).status, Status::Enacted);
}

#[test]
fn undoing_a_decision_never_undoes_a_later_one() {
    let (mut net, people) = setup(|p| p.governance.challenge_epochs = 40);
    // 10,000 -> 50,000 -> 20,000 -> 50,000; then the first is overturned.
    set_board_tokens(&mut net, &people, 0, 50_000);
    set_board_tokens(&mut net, &people, 1, 20_000);
    set_board_tokens(&mut net, &people, 2, 50_000);
    act(
        &mut net,
        &people.stranger,
        GovAct::Challenge { proposal: 0 },
    )
    .0
    .unwrap();
    act(&mut net, &people.senate[0], GovAct::Support { proposal: 0 })
        .0
        .unwrap();
    for b in &people.board {
        act(&mut net, b, board_vote(0, true, 1)).0.unwrap();
    }
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    act(&mut net, &people.stranger, GovAct::Advance { proposal: 0 })
        .0
        .unwrap();
    assert_eq!(proposal(&net, 0).status, Status::Reversed);
    let fp: FoundationParams = net.get(GLOBAL, StateKey::FoundationParams(0)).unwrap();
    assert_eq!(fp.tokens[3], 50_000, "the third decision stands");
}

#[test]
fn small_spends_share_one_limit_per_round_and_the_limit_is_bounded() {
    let (mut net, people) = setup(|_| {});
    // Three spends of 3,000 under a 5,000 limit. The first is rejected: it takes nothing
    // of the budget. The second passes and is final at once; the third passes but the
    // budget is spent, so it waits out the window.
    for _ in 0..3 {
        act(&mut net, &people.president, spend(&people.stranger, 3_000))
            .0
            .unwrap();
    }
    for b in &people.board {
        act(&mut net, b, vote(0, false, 1)).0.unwrap();
    }
    board_passes(&mut net, &people, 1);
    board_passes(&mut net, &people, 2);
    for id in 0..3 {
        act(&mut net, &people.stranger, GovAct::Advance { proposal: id })
            .0
            .unwrap();
    }
    assert_eq!(proposal(&net, 0).status, Status::Rejected);
    assert_eq!(proposal(&net, 1).finality, starling_types::Finality::Final);
    assert_eq!(
        proposal(&net, 2).finality,
        starling_types::Finality::AfterWindow
    );
    // The senate may lower the limit, not raise it past the network's.
    let raise = GovAct::Propose {
        foundation: 0,
        title: "Everything at once".into(),
        text: String::new(),
        motion: Motion::SetParam {
            param: GovParam::SpendLimit,
            value: SPEND_LIMIT + 1,
        },
    };
    let (_, ev) = act(&mut net, &people.board[0], raise);
    assert_eq!(
        refused(&ev, &people.board[0]),
        Some(TxError::ParamOutOfBounds)
    );
}

#[test]
fn a_challenge_holds_the_clock_of_a_decision_it_does_not_overturn() {
    // Support runs longer than the time left to enact: a challenge lodged in the tally's
    // block must not make the decision expire by lapsing.
    let (mut net, people) = setup(|p| {
        p.governance.voting_epochs = 2;
        p.governance.support_epochs = 4;
        p.governance.challenge_epochs = 10;
    });
    pass_officer(&mut net, &people, &people.member, 0);
    let k = &people.stranger;
    let nonce = net.account(&k.public_key()).unwrap().nonce;
    let txs = vec![
        net.sign(k, nonce, Action::Govern(GovAct::Advance { proposal: 0 })),
        net.sign(
            k,
            nonce + 1,
            Action::Govern(GovAct::Challenge { proposal: 0 }),
        ),
    ];
    let out = net.block(SHARD, txs, vec![]);
    net.settle(out);
    let p = proposal(&net, 0);
    assert_eq!(p.status, Status::Passed);
    assert!(p.challenge.is_some(), "challenged in the tally's block");
    // The challenger cannot support its own challenge; no one else does: it lapses.
    let (_, ev) = act(&mut net, &people.member, GovAct::Challenge { proposal: 0 });
    assert_eq!(refused(&ev, &people.member), Some(TxError::ChallengeOpen));
    let e = epoch(&net) + 5;
    to_epoch(&mut net, e);
    act(&mut net, k, GovAct::Advance { proposal: 0 }).0.unwrap();
    assert_eq!(proposal(&net, 0).challenge.unwrap().stage, Stage::Lapsed);
    // Past tally + voting period, but within a voting period of the challenge's end.
    act(&mut net, k, GovAct::Advance { proposal: 0 }).0.unwrap();
    assert_eq!(proposal(&net, 0).status, Status::Enacted);
}

#[test]
fn a_challenger_cannot_support_its_own_challenge() {
    let (mut net, people) = setup(|_| {});
    appoint_officer(&mut net, &people, &people.stranger, 0);
    act(&mut net, &people.member, GovAct::Challenge { proposal: 0 })
        .0
        .unwrap();
    let (_, ev) = act(&mut net, &people.member, GovAct::Support { proposal: 0 });
    assert_eq!(refused(&ev, &people.member), Some(TxError::SelfTarget));
}
