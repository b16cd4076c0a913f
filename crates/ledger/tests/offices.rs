//! Offices (rules OF1, OF2, M15): genesis seats on the global shard, powers that end with the
//! term by themselves, and a seat anyone may clear once its term has ended, not before.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::records::StateKey;
use starling_ledger::{Event, TxError};
use starling_types::{Action, Office, Offices, Seat, ShardId};

const GLOBAL: ShardId = ShardId::GLOBAL;

#[test]
fn a_term_ends_by_itself_and_only_an_ended_seat_can_be_cleared() {
    let mut p = params(1);
    let president = key(70_001).public_key();
    let board = key(70_002).public_key();
    // Terms of 2 epochs (8 blocks here) for the president and 10 for the board.
    p.office_terms = [2, 3, 10, 4, 1];
    let seat = |office, holder, until| Seat {
        office,
        holder,
        since: 0,
        until,
        acting: false,
    };
    let mut first = Offices {
        seats: vec![
            seat(Office::President, president, 2),
            seat(Office::Board, board, 10),
        ],
    };
    first.seats.sort_by_key(|s| (s.office, s.holder));
    p.genesis_offices = vec![first.clone(), Offices::default(), Offices::default()];
    let anyone = keys_on(&p, ShardId(1), 1, 1).remove(0);
    let mut net = Net::with(p, &[&anyone]);

    // Genesis wrote foundation 0's offices on the global shard only.
    assert_eq!(
        net.get::<Offices>(GLOBAL, StateKey::Offices(0)),
        Some(first.clone())
    );
    assert_eq!(net.get::<Offices>(ShardId(1), StateKey::Offices(0)), None);
    assert_eq!(net.get::<Offices>(GLOBAL, StateKey::Offices(1)), None);
    assert!(first.held_by(&president, 1).is_some());
    // OF1: past epoch 2 the president holds nothing, cleared or not.
    assert!(first.held_by(&president, 2).is_none());
    assert!(first.held_by(&board, 2).is_some());

    // Too early: the term has not ended; the seat stays.
    let expire = |net: &mut Net, foundation, holder| {
        let nonce = net.account(&anyone.public_key()).unwrap().nonce;
        net.run_settled(&anyone, nonce, Action::ExpireSeat { foundation, holder })
    };
    let (r, ev) = expire(&mut net, 0, president);
    r.unwrap();
    assert!(ev.contains(&Event::SeatNotExpired {
        foundation: 0,
        holder: president,
        error: TxError::TermNotOver
    }));
    assert_eq!(
        net.get::<Offices>(GLOBAL, StateKey::Offices(0)),
        Some(first.clone())
    );
    // No such seat, and no such foundation.
    let (_, ev) = expire(&mut net, 1, president);
    assert!(ev.contains(&Event::SeatNotExpired {
        foundation: 1,
        holder: president,
        error: TxError::UnknownTarget
    }));
    let (r, _) = expire(&mut net, 3, president);
    assert_eq!(r, Err(TxError::UnknownTarget));

    // Once the global shard is in epoch 2, anyone clears it; the board's seat stays.
    while net.shards[0].height < 2 * EPOCH {
        net.block(GLOBAL, vec![], vec![]);
    }
    let (r, ev) = expire(&mut net, 0, president);
    r.unwrap();
    assert!(ev.contains(&Event::SeatExpired {
        foundation: 0,
        office: Office::President,
        holder: president
    }));
    let left: Offices = net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    assert_eq!(left.seats.len(), 1);
    assert_eq!(left.seats[0].holder, board);
    let (_, ev) = expire(&mut net, 0, board);
    assert!(ev.contains(&Event::SeatNotExpired {
        foundation: 0,
        holder: board,
        error: TxError::TermNotOver
    }));
}

#[test]
fn parameters_refuse_offices_no_rule_allows() {
    let mut p = params(1);
    p.office_terms = [0, 1, 1, 1, 1];
    assert!(p.validate().is_err(), "a term of no epochs");
    let mut p = params(1);
    p.genesis_offices = vec![Offices::default()];
    assert!(p.validate().is_err(), "offices for one foundation of three");
    let holder = key(70_003).public_key();
    let twice = Offices {
        seats: vec![
            Seat {
                office: Office::President,
                holder,
                since: 0,
                until: 5,
                acting: false,
            },
            Seat {
                office: Office::Board,
                holder,
                since: 0,
                until: 5,
                acting: false,
            },
        ],
    };
    p.genesis_offices = vec![twice.clone(), Offices::default(), Offices::default()];
    assert!(p.validate().is_err(), "one holder in two seats");
    // A genesis seat runs from epoch 0 for its office's term, and is not acting.
    let mut p = params(1);
    p.office_terms = [5, 5, 5, 5, 5];
    let good = Offices {
        seats: vec![twice.seats[0]],
    };
    p.genesis_offices = vec![good.clone(), Offices::default(), Offices::default()];
    p.validate().unwrap();
    for bad in [
        Seat {
            until: 6,
            ..good.seats[0]
        },
        Seat {
            since: 1,
            ..good.seats[0]
        },
        Seat {
            acting: true,
            ..good.seats[0]
        },
    ] {
        p.genesis_offices[0] = Offices { seats: vec![bad] };
        assert!(p.validate().is_err(), "{bad:?}");
    }
    let mut p = params(1);
    p.office_terms = [starling_ledger::params::MAX_OFFICE_TERM + 1, 1, 1, 1, 1];
    assert!(p.validate().is_err(), "a seat for life");
}
