//! The anonymous identity a node sends chat requests from, seen by a relay over real libp2p
//! on 127.0.0.1: the same peer while its key is young, a new one once it has been replaced.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use starling_net::chat::{
    self as chatnet, AnonNet, ChatRequest, ChatResponse, ChatService, Requester,
};
use starling_testkit::{free_addr, key};
use starling_types::{Endpoint, Hash};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sends `req` to `relay` from `anon`, retrying while the relay starts listening.
async fn send(anon: &AnonNet, relay: &Endpoint, req: &ChatRequest) -> ChatResponse {
    let mut last = None;
    for _ in 0..50 {
        match anon.request(relay, req).await {
            Ok(r) => return r,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay never answered: {last:?}");
}

/// A relay that remembers who asked.
#[derive(Debug, Default)]
struct Recording {
    seen: Mutex<Vec<Requester>>,
}

impl ChatService for Recording {
    fn serve(&self, from: Requester, _: &[u8]) -> ChatResponse {
        self.seen.lock().unwrap().push(from);
        ChatResponse::Stored { first: 1 }
    }
}

#[tokio::test]
async fn the_anonymous_sending_key_is_replaced_every_period() {
    let relay_key = key(40);
    let listen = free_addr();
    let recording = Arc::new(Recording::default());
    let _relay =
        chatnet::standalone(&relay_key, Some(listen), Some(recording.clone() as _)).unwrap();
    let relay = Endpoint {
        node: relay_key.public_key(),
        address: listen.to_string(),
    };
    let deposit = ChatRequest::Deposit {
        mailbox: Hash([1; 32]),
        envelopes: vec![b"sealed".to_vec()],
    };
    let seen = || recording.seen.lock().unwrap().clone();

    // A key younger than its period: every request comes from the same peer.
    let steady = AnonNet::new(Duration::from_secs(3_600)).unwrap();
    for _ in 0..3 {
        send(&steady, &relay, &deposit).await;
    }
    let from_steady = seen();
    assert_eq!(from_steady.len(), 3);
    assert!(from_steady.iter().all(|r| *r == from_steady[0]));
    assert_ne!(from_steady[0], Requester::Local);

    // A period of zero: a new key for every request, so the relay cannot link them.
    let rotating = AnonNet::new(Duration::ZERO).unwrap();
    for _ in 0..3 {
        send(&rotating, &relay, &deposit).await;
    }
    let from_rotating = seen()[3..].to_vec();
    assert_eq!(from_rotating.len(), 3);
    for (i, a) in from_rotating.iter().enumerate() {
        assert_ne!(*a, from_steady[0]);
        for b in &from_rotating[i + 1..] {
            assert_ne!(a, b, "two requests from one key");
        }
    }
}
