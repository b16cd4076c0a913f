//! Conversations: creating groups, sending texts, and the commits (add, remove, key update,
//! leave) the group's delivery relay orders; reading chats and messages.

use super::*;

impl Chat {
    pub(crate) fn member_accounts(&self, h: &Held, group: &[u8]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in h.device.members(group).unwrap_or_default() {
            let a = account_of_identity(&m).map_or(m, |(a, _)| a.to_text());
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Every member device of `group` but this one, as the ledger lists them.
    pub(crate) fn member_devices(
        &self,
        h: &Held,
        group: &[u8],
    ) -> Result<Vec<Recipient>, ChatError> {
        let mut by_account: BTreeMap<AccountId, Vec<u32>> = BTreeMap::new();
        for m in h.device.members(group)? {
            if m == h.device.identity() {
                continue;
            }
            if let Some((a, d)) = account_of_identity(&m) {
                by_account.entry(a).or_default().push(d);
            }
        }
        let mut out = Vec::new();
        for (account, ids) in by_account {
            let Ok((rec, _)) = self.directory(&account) else {
                tracing::warn!(account = %account, "a member's devices are not in the key directory");
                continue;
            };
            out.extend(
                rec.devices
                    .into_iter()
                    .filter(|d| ids.contains(&d.id))
                    .map(|d| (account, d)),
            );
        }
        Ok(Self::to_chat_mailboxes(h, group, out))
    }

    pub(crate) fn require(&self, account: &AccountId) -> Result<HeldRef, ChatError> {
        self.held(account).ok_or(ChatError::NotSetUp)
    }

    pub(crate) fn group_id(id: &str) -> Result<Vec<u8>, ChatError> {
        hex::decode(id)
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 64)
            .ok_or_else(|| ChatError::BadRequest(format!("`{id}` is not a chat id")))
    }

    /// Key packages for every device of `accounts` (but this one), each matching the
    /// identity and signature key the ledger lists for it.
    pub(crate) async fn key_packages(
        &self,
        h: &Held,
        accounts: &[AccountId],
    ) -> Result<Vec<Vec<u8>>, ChatError> {
        let mut kps = Vec::new();
        for account in accounts {
            let (rec, _) = self.directory(account)?;
            kps.extend(
                self.key_packages_of(h.device.identity(), account, &rec.devices)
                    .await?,
            );
        }
        Ok(kps)
    }

    /// A key package for each of `account`'s `devices` (but the one named `me`), taken from
    /// the device's home or relays and matching what the ledger lists for it.
    pub(crate) async fn key_packages_of(
        &self,
        me: &str,
        account: &AccountId,
        devices: &[ChatDevice],
    ) -> Result<Vec<Vec<u8>>, ChatError> {
        let mut kps = Vec::new();
        for d in devices {
            let identity = format!("{}#{}", account.to_text(), d.id);
            if identity == me {
                continue;
            }
            let req = ChatRequest::TakeKeyPackage {
                account: *account,
                device: d.id,
            };
            let mut got = None;
            let mut why = String::from("no node to ask");
            for to in d.home.iter().chain(d.relays.iter()) {
                match self.request(to, &req).await {
                    Ok(ChatResponse::KeyPackage(kp)) => {
                        match starling_chat::inspect_key_package(&kp) {
                            Ok((id, key)) if id == identity && key == d.signature_key => {
                                got = Some(kp);
                                break;
                            }
                            Ok(_) => {
                                why = format!(
                                    "{} served a key package that is not the device's",
                                    to.address
                                )
                            }
                            Err(e) => why = format!("{}: {e}", to.address),
                        }
                    }
                    Ok(_) => why = format!("{}: unexpected answer", to.address),
                    Err(e) => why = e.to_string(),
                }
            }
            match got {
                Some(kp) => kps.push(kp),
                None => {
                    return Err(ChatError::Unavailable(format!(
                        "no key package for {identity}: {why}"
                    )))
                }
            }
        }
        Ok(kps)
    }

    /// Starts a chat with `members` (accounts); returns its id.
    pub async fn create(
        self: &Arc<Self>,
        account: &AccountId,
        members: &[AccountId],
    ) -> Result<String, ChatError> {
        let mut members: Vec<AccountId> =
            members.iter().filter(|m| *m != account).copied().collect();
        members.sort();
        members.dedup();
        if members.is_empty() || members.len() > MAX_NEW_MEMBERS {
            return Err(ChatError::BadRequest(format!(
                "a chat starts with 1 to {MAX_NEW_MEMBERS} other accounts"
            )));
        }
        let held = self.require(account)?;
        let mut h = held.lock().await;
        if !h.meta.published {
            return Err(ChatError::Conflict(
                "this device is not in the key directory yet; wait for the setup to be final"
                    .into(),
            ));
        }
        // Own other devices join too.
        let mut everyone = members.clone();
        everyone.push(*account);
        let kps = self.key_packages(&h, &everyone).await?;
        let group = h.device.create_group()?;
        let out = h.device.add(&group, &kps)?;
        // No one else can commit in a group only this device is in.
        h.device.confirm(&group)?;
        let gid = hex::encode(&group);
        h.meta.groups.insert(
            gid.clone(),
            GroupMeta {
                created_ms: now_ms(),
                ..GroupMeta::default()
            },
        );
        self.save(&h)?;
        let names: Vec<String> = members.iter().map(PublicKey::to_text).collect();
        let text = format!("chat started with {}", names.join(", "));
        self.own_event(&mut h, &gid, text, out.epoch)?;
        let devices = self.member_devices(&h, &group)?;
        let waits = self.enqueue(&devices, &[out.welcome.unwrap_or_default()]);
        drop(h);
        self.bump();
        Self::await_all(waits).await?;
        Ok(gid)
    }

    /// Sends texts to a chat, in order; returns them as the conversation shows them.
    pub async fn send(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        texts: &[String],
    ) -> Result<Vec<Message>, ChatError> {
        if texts.is_empty() || texts.len() > MAX_BATCH {
            return Err(ChatError::BadRequest(format!(
                "send 1 to {MAX_BATCH} texts"
            )));
        }
        if texts.iter().any(|t| t.trim().is_empty()) {
            return Err(ChatError::BadRequest("a text is empty".into()));
        }
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let asked = std::time::Instant::now();
        let mut h = held.lock().await;
        if asked.elapsed() > Duration::from_secs(1) {
            let waited_ms = asked.elapsed().as_millis() as u64;
            tracing::debug!(chat = %id, waited_ms, "a send waited for the device");
        }
        if !h.device.is_member(&group) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        // A change of this device's still to be ordered is settled first if the relay
        // answers, at most every SETTLE_RETRY (as the worker does), so a relay slow to answer
        // holds up one send, not each; texts go out in the current epoch either way.
        let gid = hex::encode(&group);
        let due = h.meta.pending.contains_key(&gid)
            && h.retry_at
                .get(&gid)
                .is_none_or(|t| t.elapsed() >= SETTLE_RETRY);
        if due {
            h.retry_at.insert(gid.clone(), std::time::Instant::now());
            if let Settled::Unanswered(e) = self.settle(&mut h, &group).await? {
                tracing::debug!(chat = %id, error = %e, "a change still waits for its delivery relay");
            }
            if !h.meta.pending.contains_key(&gid) {
                h.retry_at.remove(&gid);
            }
        }
        let mut envelopes = Vec::with_capacity(texts.len());
        for t in texts {
            let mut payload = Zeroizing::new(vec![PAYLOAD_TEXT]);
            payload.extend_from_slice(t.as_bytes());
            envelopes.push(h.device.send(&group, &payload)?);
        }
        // The ratchet moved: on disk before any of it leaves, so a restart never reuses a key.
        self.save(&h)?;
        let epoch = h.device.epoch(&group).unwrap_or(0);
        let now = now_ms();
        let first = Self::next_seq(&h, id);
        let msgs: Vec<Message> = texts
            .iter()
            .zip(&envelopes)
            .enumerate()
            .map(|(i, (t, e))| Message {
                seq: first + i as u64,
                kind: "text".into(),
                from: account.to_text(),
                text: t.clone(),
                at_ms: now,
                mine: true,
                epoch,
                envelope: blake3::hash(e).to_hex().to_string(),
            })
            .collect();
        self.append(&mut h, id, msgs.clone())?;
        let devices = self.member_devices(&h, &group)?;
        // Queued (on disk) before the device is let go: no gap for a crash to lose them in.
        let waits = self.enqueue(&devices, &envelopes);
        drop(h);
        self.bump();
        Self::await_all(waits).await?;
        Ok(msgs)
    }

    /// The relay that orders the group's commits: the first relay (or the home) of the
    /// member in the lowest leaf.
    pub(crate) fn orderer(&self, h: &Held, group: &[u8]) -> Result<Endpoint, ChatError> {
        let first = h
            .device
            .members(group)?
            .into_iter()
            .next()
            .ok_or_else(|| internal("a group without members"))?;
        let (account, device) = account_of_identity(&first)
            .ok_or_else(|| internal("a member's identity is malformed"))?;
        let (rec, _) = self.directory(&account)?;
        let d = rec
            .devices
            .into_iter()
            .find(|d| d.id == device)
            .ok_or_else(|| {
                ChatError::Unavailable(
                    "the group's first member has no device in the directory".into(),
                )
            })?;
        d.relays
            .first()
            .or(d.home.as_ref())
            .cloned()
            .ok_or_else(|| ChatError::Unavailable("the group's delivery relay is unknown".into()))
    }

    /// Makes a commit (`make` stages it), has the delivery relay order it, and applies and
    /// delivers it; a commit that loses its epoch is dropped, the winner taken, and `make`
    /// tried again.
    pub(crate) async fn commit(
        self: &Arc<Self>,
        held: &HeldRef,
        group: &[u8],
        make: &(dyn Fn(&mut Held) -> Result<Option<starling_chat::CommitOut>, ChatError> + Sync),
        note: &str,
    ) -> Result<u64, ChatError> {
        let gid = hex::encode(group);
        // Mail first: a device that was away takes the commits it missed before it makes one
        // (its delivery relay remembers each epoch's winner for a long while, not forever).
        if let Err(e) = self.poll_mail(held, true, false, Some(group)).await {
            tracing::debug!(error = %e, "taking mail before a commit");
        }
        for attempt in 0..COMMIT_ATTEMPTS {
            let mut h = held.lock().await;
            // An earlier commit of this device's in the chat is settled first.
            if let Settled::Unanswered(e) = self.settle(&mut h, group).await? {
                return Err(ChatError::Unavailable(format!(
                    "an earlier change to this chat still waits for its delivery relay ({e}); try again"
                )));
            }
            let before = h.device.members(group)?;
            // Everything the offer needs is at hand before the commit is made.
            let orderer = self.orderer(&h, group)?;
            h.device.epoch_token(group)?;
            let Some(out) = make(&mut h)? else {
                return Ok(h.device.epoch(group)?);
            };
            let pending = PendingCommit {
                commit: hex::encode(&out.commit),
                welcome: out.welcome.as_ref().map(hex::encode),
                note: note.to_string(),
                before,
                orderer: orderer.to_string(),
            };
            h.meta.pending.insert(gid.clone(), pending);
            // The staged commit and what it delivers are on disk before the relay hears of it.
            self.save(&h)?;
            crash_point("commit-staged");
            match self.settle(&mut h, group).await? {
                Settled::Won(epoch, waits) => {
                    drop(h);
                    Self::await_all(waits).await?;
                    return Ok(epoch);
                }
                Settled::Lost { applied } => {
                    drop(h);
                    tracing::info!(attempt, "a concurrent commit won the epoch; retrying");
                    if !applied {
                        self.await_epoch(held, group, out.epoch).await;
                    }
                }
                Settled::Nothing => {}
                Settled::Refused(e) => {
                    return Err(ChatError::Unavailable(format!(
                        "the delivery relay refused the change: {e}"
                    )))
                }
                Settled::Unanswered(e) => {
                    return Err(ChatError::Unavailable(format!(
                        "the delivery relay did not answer ({e}); the change is offered again until it does"
                    )))
                }
            }
        }
        Err(ChatError::Conflict(
            "the group kept changing; try again".into(),
        ))
    }

    /// Waits a little for the commit that took the epoch before `epoch` to come with the mail
    /// (when the delivery relay no longer keeps it).
    async fn await_epoch(&self, held: &HeldRef, group: &[u8], epoch: u64) {
        for _ in 0..40 {
            let _ = self.poll_mail(held, true, false, Some(group)).await;
            let moved = {
                let h = held.lock().await;
                h.device.epoch(group).map_or(true, |e| e + 1 != epoch)
            };
            if moved {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Settles this device's pending commit in `group` (if any) with the group's delivery
    /// relay: offered (again: an offer of the same commit answers the same), it either won
    /// (it is confirmed and queued for delivery) or lost (it is dropped and the winner taken).
    pub(crate) async fn settle(
        self: &Arc<Self>,
        h: &mut Held,
        group: &[u8],
    ) -> Result<Settled, ChatError> {
        let gid = hex::encode(group);
        let Some(p) = h.meta.pending.get(&gid).cloned() else {
            return Ok(Settled::Nothing);
        };
        if !h.device.has_pending(group) {
            // Another member's commit came first and took its place (or the chat is gone).
            h.meta.pending.remove(&gid);
            self.save(h)?;
            return Ok(Settled::Lost { applied: true });
        }
        let commit = hex::decode(&p.commit).map_err(internal)?;
        let token = h.device.epoch_token(group)?;
        let orderer = match Endpoint::parse(&p.orderer) {
            Ok(o) => o,
            // Made by an older version, which did not keep it.
            Err(_) => self.orderer(h, group)?,
        };
        let answer = if faulty("commit-unordered") {
            Ok(ChatResponse::Ordered)
        } else {
            self.offer(&orderer, token, commit).await?
        };
        match answer {
            Ok(ChatResponse::Ordered) => {
                crash_point("commit-ordered");
                let (epoch, waits) = self.won(h, group, p)?;
                Ok(Settled::Won(epoch, waits))
            }
            Ok(ChatResponse::Taken { commit: winner }) => {
                h.device.discard(group)?;
                h.meta.pending.remove(&gid);
                let applied = !winner.is_empty() && self.take_confirmed(h, &winner)?;
                if applied {
                    self.retry_deferred(h)?;
                }
                self.flush_history(h)?;
                self.save(h)?;
                self.bump();
                Ok(Settled::Lost { applied })
            }
            Ok(other) => Ok(Settled::Unanswered(format!("unexpected answer {other:?}"))),
            // Busy: it may hold an earlier offer of this very commit, so it is kept. Kept too
            // when the relay cannot read the offer or asks more work than members do (a relay
            // of another version): nothing was ordered, and it may be offered again later.
            Err(NetError::Refused(code, message))
                if matches!(
                    code.as_str(),
                    "rate_limited" | "storage" | "order_full" | "malformed" | "work_needed"
                ) =>
            {
                Ok(Settled::Unanswered(format!("{code}: {message}")))
            }
            // Refused outright: the relay did not take it, so no one can have it.
            Err(NetError::Refused(code, message)) => {
                h.device.discard(group)?;
                h.meta.pending.remove(&gid);
                self.save(h)?;
                Ok(Settled::Refused(format!("{code}: {message}")))
            }
            Err(e) => Ok(Settled::Unanswered(e.to_string())),
        }
    }

    /// Applies this device's commit that won its epoch and queues it for delivery: the old
    /// members get the commit (a removed one learns it was removed), new ones the welcome.
    fn won(
        self: &Arc<Self>,
        h: &mut Held,
        group: &[u8],
        p: PendingCommit,
    ) -> Result<(u64, Vec<outbox::Wait>), ChatError> {
        let gid = hex::encode(group);
        // What the commit brings in, without applying it yet (a copy of the device does).
        let after = {
            let mut probe = Device::restore(&h.device.export_state())?;
            probe.confirm(group)?;
            probe.members(group).unwrap_or_default()
        };
        let (old, new) = self.recipients(h, &p.before, &after);
        // The members before it read it in their mailboxes for this chat.
        let old = Self::to_chat_mailboxes(h, group, old);
        // Queued before the confirmed state is saved: after a crash between the two, the
        // commit is offered again, wins again and is queued again (members skip a commit
        // they took already). Should queueing fail, nothing is applied and it is settled
        // again later.
        let commit = hex::decode(&p.commit).map_err(internal)?;
        let mut waits = self.enqueue_all(&old, &[commit])?;
        if let Some(w) = &p.welcome {
            let welcome = hex::decode(w).map_err(internal)?;
            waits.extend(self.enqueue_all(&new, &[welcome])?);
        }
        crash_point("commit-queued");
        let epoch = h.device.confirm(group)?;
        h.meta.pending.remove(&gid);
        h.meta.groups.entry(gid.clone()).or_default().rekeyed_ms = now_ms();
        self.save(h)?;
        self.own_event(h, &gid, p.note, epoch)?;
        self.bump();
        Ok((epoch, waits))
    }

    /// The devices (but this one) of the members `before` a commit, and of those new `after`
    /// it, as the ledger lists them.
    fn recipients(
        &self,
        h: &Held,
        before: &[String],
        after: &[String],
    ) -> (Vec<Recipient>, Vec<Recipient>) {
        let mut accounts = std::collections::BTreeSet::new();
        for m in before.iter().chain(after) {
            if let Some((a, _)) = account_of_identity(m) {
                accounts.insert(a);
            }
        }
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for account in accounts {
            let Ok((rec, _)) = self.directory(&account) else {
                continue;
            };
            for d in rec.devices {
                let identity = format!("{}#{}", account.to_text(), d.id);
                if identity == h.device.identity() {
                    continue;
                }
                if before.contains(&identity) {
                    old.push((account, d));
                } else if after.contains(&identity) {
                    new.push((account, d));
                }
            }
        }
        (old, new)
    }

    /// Adds accounts (all their devices) to a chat.
    pub async fn add(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        accounts: &[AccountId],
    ) -> Result<u64, ChatError> {
        if accounts.is_empty() || accounts.len() > MAX_NEW_MEMBERS {
            return Err(ChatError::BadRequest(format!(
                "add 1 to {MAX_NEW_MEMBERS} accounts"
            )));
        }
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let kps = {
            let h = held.lock().await;
            if !h.device.is_member(&group) {
                return Err(ChatError::NotFound(format!("no chat {id} on this device")));
            }
            let present = self.member_accounts(&h, &group);
            let fresh: Vec<AccountId> = accounts
                .iter()
                .filter(|a| !present.contains(&a.to_text()))
                .copied()
                .collect();
            if fresh.is_empty() {
                return Err(ChatError::Conflict("already members".into()));
            }
            self.key_packages(&h, &fresh).await?
        };
        let names: Vec<String> = accounts.iter().map(PublicKey::to_text).collect();
        let note = format!("added {}", names.join(", "));
        let g = group.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| Ok(Some(h.device.add(&g, &kps)?)),
            &note,
        )
        .await
    }

    /// Removes accounts (all their devices) from a chat.
    pub async fn remove(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        accounts: &[AccountId],
    ) -> Result<u64, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let names: Vec<String> = accounts.iter().map(PublicKey::to_text).collect();
        let note = format!("removed {}", names.join(", "));
        let g = group.clone();
        let targets: Vec<String> = names.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| {
                let members = h.device.members(&g)?;
                let gone: Vec<&str> = members
                    .iter()
                    .filter(|m| {
                        account_of_identity(m).is_some_and(|(a, _)| targets.contains(&a.to_text()))
                    })
                    .map(String::as_str)
                    .collect();
                if gone.is_empty() {
                    return Ok(None);
                }
                Ok(Some(h.device.remove(&g, &gone)?))
            },
            &note,
        )
        .await
    }

    /// Refreshes this device's keys in a chat (post-compromise security).
    pub async fn update(self: &Arc<Self>, account: &AccountId, id: &str) -> Result<u64, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let g = group.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| Ok(Some(h.device.update(&g)?)),
            "keys refreshed",
        )
        .await
    }

    /// Leaves a chat: the others are told, and the first of them removes this device.
    pub async fn leave(self: &Arc<Self>, account: &AccountId, id: &str) -> Result<(), ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let mut h = held.lock().await;
        if !h.device.is_member(&group) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        let envelope = h.device.send(&group, &[PAYLOAD_LEAVE])?;
        let devices = self.member_devices(&h, &group)?;
        h.device.forget(&group)?;
        h.meta.groups.entry(id.to_string()).or_default().left = true;
        self.save(&h)?;
        self.own_event(&mut h, id, "you left".into(), 0)?;
        let waits = self.enqueue(&devices, &[envelope]);
        drop(h);
        self.bump();
        Self::await_all(waits).await
    }

    /// Chats where this device's keys are older than the refresh interval (it has been in
    /// them that long without a commit of its own).
    pub(crate) fn stale_keys(&self, h: &Held) -> Vec<String> {
        let now = now_ms();
        let every = self.key_update.as_millis() as u64;
        h.meta
            .groups
            .iter()
            .filter(|(gid, g)| {
                !g.left
                    && now.saturating_sub(g.rekeyed_ms.max(g.created_ms)) >= every
                    && hex::decode(gid).is_ok_and(|id| h.device.is_member(&id))
            })
            .map(|(gid, _)| gid.clone())
            .collect()
    }

    /// Members who said they left, by chat, that this device is the one to remove: the
    /// member in the lowest leaf among those who stay does it (should two try, the delivery
    /// relay keeps one commit per epoch and the other finds nothing left to do).
    pub(crate) fn leavers_to_remove(h: &mut Held) -> Vec<(String, Vec<AccountId>)> {
        let mut out = Vec::new();
        for (gid, leavers) in std::mem::take(&mut h.meta.leavers) {
            let Ok(group) = hex::decode(&gid) else {
                continue;
            };
            let first_staying = h
                .device
                .members(&group)
                .unwrap_or_default()
                .into_iter()
                .find(|m| {
                    account_of_identity(m).is_some_and(|(a, _)| !leavers.contains(&a.to_text()))
                });
            if first_staying.as_deref() == Some(h.device.identity()) {
                let accounts = leavers
                    .iter()
                    .filter_map(|l| PublicKey::from_text(l).ok())
                    .collect();
                out.push((gid, accounts));
            }
        }
        out
    }

    /// The account's conversations, most recent first.
    pub async fn chats(&self, account: &AccountId) -> Result<Vec<ChatSummary>, ChatError> {
        let held = self.require(account)?;
        let h = held.lock().await;
        let mut out = Vec::new();
        for (gid, meta) in &h.meta.groups {
            let group = hex::decode(gid).unwrap_or_default();
            let history = h.history.get(gid);
            let unread = history.map_or(0, |msgs| {
                msgs.iter()
                    .filter(|m| m.seq > meta.read && !m.mine && m.kind == "text")
                    .count() as u64
            });
            let members = if meta.left {
                Vec::new()
            } else {
                self.member_accounts(&h, &group)
            };
            out.push(ChatSummary {
                id: gid.clone(),
                not_heard: Self::not_heard(&h, gid, &members),
                members,
                epoch: h.device.epoch(&group).unwrap_or(0),
                unread,
                left: meta.left || !h.device.is_member(&group),
                last: history.and_then(|m| m.last().cloned()),
                encryption: ENCRYPTION,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.at_ms)));
        Ok(out)
    }

    /// A conversation's messages after `after` (a position), at most `limit`.
    pub async fn messages(
        &self,
        account: &AccountId,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ChatError> {
        let held = self.require(account)?;
        let h = held.lock().await;
        if !h.meta.groups.contains_key(id) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        Ok(h.history
            .get(id)
            .map(|m| {
                m.iter()
                    .filter(|m| m.seq > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Marks a conversation read up to `upto` (default: all).
    pub async fn mark_read(
        &self,
        account: &AccountId,
        id: &str,
        upto: Option<u64>,
    ) -> Result<(), ChatError> {
        let held = self.require(account)?;
        let mut h = held.lock().await;
        let len = h.history.get(id).map_or(0, |m| m.len() as u64);
        let meta = h
            .meta
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::NotFound(format!("no chat {id} on this device")))?;
        meta.read = upto.unwrap_or(len).min(len);
        self.save(&h)?;
        self.bump();
        Ok(())
    }

    /// The safety number between this account and each other member of a chat, from the
    /// device keys the ledger lists (checked with proofs).
    pub async fn safety(
        &self,
        account: &AccountId,
        id: &str,
    ) -> Result<serde_json::Value, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let members = {
            let h = held.lock().await;
            self.member_accounts(&h, &group)
        };
        let (mine, _) = self.directory(account)?;
        let my_keys: Vec<Vec<u8>> = mine
            .devices
            .iter()
            .map(|d| d.signature_key.to_vec())
            .collect();
        let me = account.to_text();
        let mut out = Vec::new();
        for m in members {
            if m == me {
                continue;
            }
            let Ok(other) = PublicKey::from_text(&m) else {
                continue;
            };
            let (rec, entry) = self.directory(&other)?;
            let keys: Vec<Vec<u8>> = rec
                .devices
                .iter()
                .map(|d| d.signature_key.to_vec())
                .collect();
            out.push(serde_json::json!({
                "account": m,
                "safety_number": starling_chat::safety_number((&me, &my_keys), (&m, &keys)),
                "devices": rec.devices.len(),
                "directory_version": rec.version,
                "proof_checked_at": {"shard": entry.shard, "height": entry.height, "state_root": entry.state_root},
            }));
        }
        Ok(serde_json::json!({"chat": id, "encryption": ENCRYPTION, "members": out}))
    }
}
