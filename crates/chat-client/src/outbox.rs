//! Delivery of sealed envelopes to member devices: one outbox per device mailbox, deposited
//! in order and in batches at the device's home node, else at its relays; bounded per device.

use super::{Chat, ChatError};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt as _;
use starling_net::chat::{self as chatnet, ChatRequest};
use starling_types::ChatDevice;
use std::sync::Arc;

/// Most envelopes waiting to be deposited for one device; more are refused at once.
const MAX_OUTBOX: usize = 4_096;

/// An envelope waiting for its deposit.
pub(super) struct Queued {
    envelope: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

impl Chat {
    /// Queues envelopes for the devices' mailboxes, in order per mailbox; resolves when they
    /// are deposited.
    pub(super) fn enqueue(
        self: &Arc<Self>,
        devices: &[ChatDevice],
        envelopes: &[Vec<u8>],
    ) -> Vec<oneshot::Receiver<Result<(), String>>> {
        let mut waits = Vec::new();
        let mut outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
        for d in devices {
            // The one sender of this outbox, never cloned: a futures channel gives each sender
            // a slot beyond its bound, so clones would let the queue grow.
            let tx = outboxes.entry(d.mailbox).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(MAX_OUTBOX);
                let me = self.clone();
                let device = d.clone();
                tokio::spawn(async move { me.outbox(device, rx).await });
                tx
            });
            for e in envelopes {
                let (done, wait) = oneshot::channel();
                if let Err(full) = tx.try_send(Queued {
                    envelope: e.clone(),
                    done,
                }) {
                    let _ = full.into_inner().done.send(Err(format!(
                        "more than {MAX_OUTBOX} envelopes wait for this device; try again later"
                    )));
                }
                waits.push(wait);
            }
        }
        waits
    }

    /// Deposits what is queued for one device, in batches: at its home node, else at its
    /// relays.
    async fn outbox(self: Arc<Self>, device: ChatDevice, mut rx: mpsc::Receiver<Queued>) {
        while let Some(first) = rx.next().await {
            let mut batch = vec![first];
            let mut size = batch[0].envelope.len();
            while batch.len() < chatnet::MAX_DEPOSIT && size < chatnet::MAX_REQUEST_BYTES / 2 {
                match rx.try_recv() {
                    Ok(q) => {
                        size += q.envelope.len();
                        batch.push(q);
                    }
                    _ => break,
                }
            }
            let req = ChatRequest::Deposit {
                mailbox: device.mailbox,
                envelopes: batch.iter().map(|q| q.envelope.clone()).collect(),
            };
            let mut result = Err("the device names no node".to_string());
            for to in device.home.iter().chain(device.relays.iter()) {
                match self.request(to, &req).await {
                    Ok(_) => {
                        result = Ok(());
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(to = %to.address, error = %e, "deposit failed; trying the next");
                        result = Err(e.to_string());
                    }
                }
            }
            for q in batch {
                let _ = q.done.send(result.clone());
            }
        }
    }

    pub(super) async fn await_all(
        waits: Vec<oneshot::Receiver<Result<(), String>>>,
    ) -> Result<(), ChatError> {
        let mut failed = None;
        for w in waits {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(e),
                Err(_) => failed = Some("the outbox stopped".into()),
            }
        }
        match failed {
            None => Ok(()),
            Some(e) => Err(ChatError::Unavailable(format!(
                "not delivered to every member: {e}"
            ))),
        }
    }
}
