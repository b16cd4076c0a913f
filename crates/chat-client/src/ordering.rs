//! The order of a chat's commits as its delivery relay decides it: confirming the commits
//! other members sent, settling this device's own offered ones, and asking for a winner
//! that never came with the mail. The relay is asked without holding the device, except when
//! settling a commit of this device's own, whose fate and the device state move together.

use super::*;

/// A chat, the epoch asked about, its delivery relay and the question.
type WinnerQuestion = (Vec<u8>, u64, Endpoint, ChatRequest);

impl Chat {
    /// Takes `commit`, which the group's delivery relay says won its epoch.
    pub(crate) fn take_confirmed(&self, h: &mut Held, commit: &[u8]) -> Result<bool, ChatError> {
        h.confirmed
            .push_back(blake3::hash(commit).to_hex().to_string());
        while h.confirmed.len() > MAX_CONFIRMED {
            h.confirmed.pop_front();
        }
        self.take_one(h, commit)
    }

    /// Asks the delivery relay of each chat with commits received but not confirmed which
    /// commit won the chat's epoch (without holding the device), takes the winner and drops
    /// the others: those were never ordered, or lost.
    pub(crate) async fn confirm_commits(&self, held: &HeldRef) -> Result<(), ChatError> {
        let asks = {
            let mut h = held.lock().await;
            // Those of an epoch the group has left (or of a group left) are done with.
            let device = &h.device;
            let current: Vec<bool> = h
                .unconfirmed
                .iter()
                .map(|(_, b)| {
                    starling_chat::peek(b).is_some_and(|(g, e, _)| device.epoch(&g).ok() == Some(e))
                })
                .collect();
            let mut keep = current.into_iter();
            let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut h.unconfirmed)
                .into_iter()
                .partition(|_| keep.next().unwrap_or(false));
            h.unconfirmed = kept;
            // Not taken: unless the same commit came from the relay, they were not ordered.
            let never = gone
                .iter()
                .filter(|(_, b)| !h.confirmed.contains(&blake3::hash(b).to_hex().to_string()))
                .count();
            self.rejected
                .fetch_add(never as u64, std::sync::atomic::Ordering::Relaxed);
            let mut groups: Vec<Vec<u8>> = Vec::new();
            for (_, b) in &h.unconfirmed {
                if let Some((g, _, _)) = starling_chat::peek(b) {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
            self.winner_questions(&h, groups)
        };
        if asks.is_empty() {
            return Ok(());
        }
        let answers = self.ask_for_winners(asks).await;
        let mut h = held.lock().await;
        let mut changed = false;
        for (g, epoch, winner) in answers {
            let now = now_ms();
            // What the relay did not order is dropped: at once if another commit won, after
            // a while if it knows of none (the winner may be on its way).
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut h.unconfirmed)
                .into_iter()
                .partition(|(at, b)| {
                    starling_chat::peek(b).is_some_and(|(bg, be, _)| bg == g && be == epoch)
                        && (winner.is_some() || now.saturating_sub(*at) >= UNCONFIRMED_FOR_MS)
                });
            h.unconfirmed = kept;
            let losers = gone
                .iter()
                .filter(|(_, b)| winner.as_ref() != Some(b))
                .count();
            if losers > 0 {
                tracing::warn!(chat = %hex::encode(&g), losers, "dropped commits their delivery relay did not order");
                self.rejected
                    .fetch_add(losers as u64, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(w) = winner {
                changed |= self.take_confirmed(&mut h, &w)?;
            }
        }
        if changed {
            self.retry_deferred(&mut h)?;
            self.flush_history(&mut h)?;
            self.save(&h)?;
            drop(h);
            self.bump();
        }
        Ok(())
    }

    /// Settles this device's commits that were offered before a crash or got no answer,
    /// each at most every [`SETTLE_RETRY`].
    pub(crate) async fn settle_pending(self: &Arc<Self>, h: &mut Held) {
        let due: Vec<String> = h
            .meta
            .pending
            .keys()
            .filter(|g| {
                h.retry_at
                    .get(*g)
                    .is_none_or(|t| t.elapsed() >= SETTLE_RETRY)
            })
            .cloned()
            .collect();
        for gid in due {
            h.retry_at.insert(gid.clone(), std::time::Instant::now());
            let Ok(group) = hex::decode(&gid) else {
                continue;
            };
            match self.settle(h, &group).await {
                Ok(Settled::Won(epoch, _)) => {
                    tracing::info!(chat = %gid, epoch, "a change offered before was ordered and applied");
                    // Mail of the new epoch may have come first.
                    let retried = self
                        .retry_deferred(h)
                        .and_then(|_| self.flush_history(h))
                        .and_then(|()| self.save(h));
                    if let Err(e) = retried {
                        tracing::warn!(error = %e, "taking mail that waited for a change");
                    }
                }
                Ok(Settled::Unanswered(e)) => {
                    tracing::debug!(chat = %gid, error = %e, "a change still waits for its delivery relay")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(chat = %gid, error = %e, "settling a change"),
            }
            if !h.meta.pending.contains_key(&gid) {
                h.retry_at.remove(&gid);
            }
        }
    }

    /// When mail has waited over [`WINNER_AFTER`] for a commit that never came (its committer
    /// crashed before delivering it, say), asks each chat's delivery relay for the commit
    /// that won the chat's epoch, and takes it; at most every [`WINNER_AFTER`]. The relays
    /// are asked without holding the device; a winner of an epoch the chat has meanwhile
    /// left is not taken.
    pub(crate) async fn ask_winners(&self, held: &HeldRef) -> Result<(), ChatError> {
        let asks = {
            let mut h = held.lock().await;
            let now = now_ms();
            let stuck =
                h.deferred.waiting.front().is_some_and(|(at, _)| {
                    now.saturating_sub(*at) >= WINNER_AFTER.as_millis() as u64
                });
            if h.closed || !stuck || h.winners_asked.is_some_and(|t| t.elapsed() < WINNER_AFTER) {
                return Ok(());
            }
            h.winners_asked = Some(std::time::Instant::now());
            let groups: Vec<Vec<u8>> = h
                .meta
                .groups
                .keys()
                .filter(|g| !h.meta.pending.contains_key(*g))
                .filter_map(|g| hex::decode(g).ok())
                .filter(|g| h.device.is_member(g))
                .collect();
            self.winner_questions(&h, groups)
        };
        let winners: Vec<(Vec<u8>, u64, Vec<u8>)> = self
            .ask_for_winners(asks)
            .await
            .into_iter()
            .filter_map(|(g, epoch, w)| Some((g, epoch, w?)))
            .collect();
        if winners.is_empty() {
            return Ok(());
        }
        let mut h = held.lock().await;
        if h.closed {
            return Ok(());
        }
        let mut changed = false;
        for (group, epoch, commit) in winners {
            // A change of this device's own came meanwhile (settling it learns the winner),
            // or the chat moved on or was left: the answer is stale.
            if h.meta.pending.contains_key(&hex::encode(&group))
                || !h.device.is_member(&group)
                || h.device.epoch(&group).ok() != Some(epoch)
            {
                continue;
            }
            if self.take_confirmed(&mut h, &commit)? {
                tracing::info!(chat = %hex::encode(&group), "took a commit that had not come with the mail");
                changed = true;
            }
        }
        if changed {
            self.retry_deferred(&mut h)?;
            self.flush_history(&mut h)?;
            self.save(&h)?;
            drop(h);
            self.bump();
        }
        Ok(())
    }

    /// For each of `groups`, the question to its delivery relay of which commit won the
    /// chat's current epoch, with that epoch.
    fn winner_questions(&self, h: &Held, groups: Vec<Vec<u8>>) -> Vec<WinnerQuestion> {
        let mut asks = Vec::new();
        for group in groups {
            let (Ok(orderer), Ok(token)) = (self.orderer(h, &group), h.device.epoch_token(&group))
            else {
                continue;
            };
            let epoch = h.device.epoch(&group).unwrap_or(0);
            if let Ok(req) = ChatRequest::winner_of(&orderer.node, &token) {
                asks.push((group, epoch, orderer, req));
            }
        }
        asks
    }

    /// Asks each question (the caller does not hold the device): the winning commit, where
    /// the relay names one.
    async fn ask_for_winners(
        &self,
        asks: Vec<WinnerQuestion>,
    ) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
        let mut answers = Vec::with_capacity(asks.len());
        for (group, epoch, orderer, req) in asks {
            let winner = match self.request(&orderer, &req).await {
                Ok(ChatResponse::Taken { commit }) if !commit.is_empty() => Some(commit),
                _ => None,
            };
            answers.push((group, epoch, winner));
        }
        answers
    }
}
