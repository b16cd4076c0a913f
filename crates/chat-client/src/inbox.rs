//! Receiving: each open device's worker takes mail from this node's mailboxes and polls its
//! relays, takes each envelope in order (deduplicated, deferred when its epoch is not reached),
//! and keeps its key packages topped up.

use super::*;

impl Chat {
    /// The background work of an open account: publishing key packages once the ledger
    /// lists the device, and taking mail as it arrives.
    pub(crate) async fn worker(self: Arc<Self>, held: HeldRef) {
        let mut local = self.services.mailboxes.watch();
        let mut last_poll = std::time::Instant::now() - POLL;
        let mut last_chat_poll = std::time::Instant::now() - chat_mail::CHAT_POLL;
        loop {
            if held.lock().await.closed {
                return;
            }
            self.republish(&held).await;
            // Relays are asked without holding the device: a slow one holds up no send.
            if let Err(e) = self.housekeeping(&held).await {
                tracing::warn!(error = %e, "chat key packages");
            }
            let remote = last_poll.elapsed() >= POLL;
            if remote {
                last_poll = std::time::Instant::now();
            }
            let chats_too = remote && last_chat_poll.elapsed() >= chat_mail::CHAT_POLL;
            if chats_too {
                last_chat_poll = std::time::Instant::now();
            }
            match self.poll_mail(&held, remote, chats_too, None).await {
                Ok(true) => self.bump(),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "taking chat mail"),
            }
            if let Err(e) = self.announce_joins(&held).await {
                tracing::warn!(error = %e, "telling a chat this device joined");
            }
            if let Err(e) = self.confirm_commits(&held).await {
                tracing::warn!(error = %e, "confirming received commits");
            }
            self.own_devices(&held).await;
            if let Err(e) = self.ask_winners(&held).await {
                tracing::warn!(error = %e, "asking for commits not received");
            }
            {
                let mut h = held.lock().await;
                if h.closed {
                    return;
                }
                // This holds the device while the delivery relay answers: a commit's fate
                // and the device state move together.
                self.settle_pending(&mut h).await;
                let leavers = Self::leavers_to_remove(&mut h);
                let stale = self.stale_keys(&h);
                let account = h.account;
                drop(h);
                for (gid, accounts) in leavers {
                    if let Err(e) = self.remove(&account, &gid, &accounts).await {
                        tracing::warn!(error = %e, "removing members who left");
                    }
                }
                for gid in stale {
                    match self.update(&account, &gid).await {
                        Ok(epoch) => {
                            tracing::debug!(chat = %gid, epoch, "keys refreshed on schedule")
                        }
                        Err(e) => {
                            tracing::info!(chat = %gid, error = %e, "scheduled key refresh failed; tried again later")
                        }
                    }
                }
            }
            tokio::select! {
                _ = local.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Publishes the device once the ledger lists it, and keeps its key packages topped up
    /// here and at its relays: requests are made under the device's lock, sent without it,
    /// and their answers applied under it again.
    pub(crate) async fn housekeeping(&self, held: &HeldRef) -> Result<(), ChatError> {
        let mut jobs = {
            let mut h = held.lock().await;
            if !self.local_housekeeping(&mut h)? {
                return Ok(());
            }
            self.relay_jobs(&mut h)?
        };
        // At most two rounds: counts asked, then uploads where a count was low.
        for _ in 0..2 {
            if jobs.is_empty() {
                break;
            }
            let mut answers = Vec::with_capacity(jobs.len());
            for job in jobs {
                let answer = self.request(&job.relay, &job.request).await;
                answers.push((job, answer));
            }
            let mut h = held.lock().await;
            jobs = Vec::new();
            for (job, answer) in answers {
                if let Some(next) = self.relay_answer(&mut h, job, answer)? {
                    jobs.push(next);
                }
            }
        }
        Ok(())
    }

    /// Publishing and this node's own stock of key packages; `false` while the ledger does
    /// not list the device yet.
    fn local_housekeeping(&self, h: &mut Held) -> Result<bool, ChatError> {
        let device = self.chat_device(h);
        if !h.meta.published {
            if !self.listed(&h.account, &device) {
                return Ok(false);
            }
            h.meta.published = true;
            self.save(h)?;
            self.bump();
        }
        let id = h.meta.device_id;
        if self.services.key_packages.count(h.account, id) < KEY_PACKAGES_LOW {
            let kps = (0..KEY_PACKAGES)
                .map(|_| h.device.key_package())
                .collect::<Result<Vec<_>, _>>()?;
            // The private halves are on disk before anyone can use the public ones.
            self.save(h)?;
            self.services
                .key_packages
                .put(h.account, id, kps)
                .map_err(internal)?;
        }
        Ok(true)
    }

    /// What to ask each relay now: how many key packages it still holds (every so often),
    /// or to take a first stock.
    fn relay_jobs(&self, h: &mut Held) -> Result<Vec<RelayJob>, ChatError> {
        let mut jobs = Vec::new();
        for relay in &self.relays {
            let name = relay.node.to_text();
            if relay.node == self.net.me {
                continue;
            }
            if h.meta.packages_at.contains(&name) {
                if h.relay_checked
                    .get(&name)
                    .is_some_and(|t| t.elapsed() < KEY_PACKAGE_CHECK)
                {
                    continue;
                }
                h.relay_checked
                    .insert(name.clone(), std::time::Instant::now());
                // An empty upload answers the count.
                let request = Self::signed_put(h, &relay.node, Vec::new())?;
                jobs.push(RelayJob {
                    relay: relay.clone(),
                    request,
                    upload: false,
                });
            } else {
                jobs.push(self.upload_job(h, relay)?);
            }
        }
        Ok(jobs)
    }

    /// A fresh stock of key packages for `relay`, their private halves saved first.
    fn upload_job(&self, h: &mut Held, relay: &Endpoint) -> Result<RelayJob, ChatError> {
        let kps = (0..KEY_PACKAGES)
            .map(|_| h.device.key_package())
            .collect::<Result<Vec<_>, _>>()?;
        self.save(h)?;
        Ok(RelayJob {
            relay: relay.clone(),
            request: Self::signed_put(h, &relay.node, kps)?,
            upload: true,
        })
    }

    /// Applies a relay's answer; returns an upload to make if its stock ran low.
    fn relay_answer(
        &self,
        h: &mut Held,
        job: RelayJob,
        answer: Result<ChatResponse, NetError>,
    ) -> Result<Option<RelayJob>, ChatError> {
        let name = job.relay.node.to_text();
        match (job.upload, answer) {
            (true, Ok(_)) => {
                if !h.meta.packages_at.contains(&name) {
                    h.meta.packages_at.push(name);
                    self.save(h)?;
                }
                Ok(None)
            }
            (false, Ok(ChatResponse::KeyPackagesKept { count }))
                if count as usize >= KEY_PACKAGES_LOW =>
            {
                Ok(None)
            }
            (false, Ok(_)) => Ok(Some(self.upload_job(h, &job.relay)?)),
            (_, Err(e)) => {
                tracing::debug!(relay = %job.relay.address, error = %e, "key packages: no answer from the relay");
                Ok(None)
            }
        }
    }

    /// A put of `packages` (none: a count) at `relay`, signed by the device now.
    fn signed_put(
        h: &Held,
        relay: &PublicKey,
        packages: Vec<Vec<u8>>,
    ) -> Result<ChatRequest, ChatError> {
        let (account, device, at_ms) = (h.account, h.meta.device_id, now_ms());
        let msg = chatnet::put_message(relay, &account, device, &packages, at_ms);
        Ok(ChatRequest::PutKeyPackages {
            account,
            device,
            packages,
            at_ms,
            signature: starling_types::Signature(h.device.sign(&msg)?),
        })
    }

    /// Takes the device's mail: what reached this node directly, and (when `remote`) what
    /// waits at its relays in its directory mailbox and in some of its chats' mailboxes
    /// (`only` that group's, else when `chats_too` some in turn), asked for without holding
    /// the device. Returns whether anything changed.
    pub(crate) async fn poll_mail(
        &self,
        held: &HeldRef,
        remote: bool,
        chats_too: bool,
        only: Option<&[u8]>,
    ) -> Result<bool, ChatError> {
        let fetches = if remote {
            let mut h = held.lock().await;
            let all = Self::chat_mailboxes(&mut h);
            let chats: Vec<String> = if let Some(group) = only {
                vec![hex::encode(group)]
            } else if chats_too {
                // At most so many a round, in turn: a device in many chats (strangers can
                // add it to some) does not make each round longer.
                let start = h.chat_poll_next % all.len().max(1);
                let take = all.len().min(chat_mail::CHAT_FETCHES);
                h.chat_poll_next = start + take;
                all.into_iter()
                    .cycle()
                    .skip(start)
                    .take(take)
                    .map(|(gid, _)| gid)
                    .collect()
            } else {
                Vec::new()
            };
            let mut fetches = Vec::new();
            for r in self.relays.iter().filter(|r| r.node != self.net.me) {
                let holder = r.node.to_text();
                let after = |chat: Option<&str>| {
                    let name = chat_mail::cursor_name(&holder, chat);
                    h.meta.cursors.get(&name).copied().unwrap_or(0)
                };
                fetches.push((
                    r.clone(),
                    None,
                    ChatRequest::fetch(&r.node, &h.mailbox_key, after(None)),
                ));
                for gid in &chats {
                    if let Some((key, _)) = h.chat_keys.get(gid) {
                        let req = ChatRequest::fetch(&r.node, key, after(Some(gid)));
                        fetches.push((r.clone(), Some(gid.clone()), req));
                    }
                }
            }
            fetches
        } else {
            Vec::new()
        };
        let mut batches: Vec<MailBatch> = Vec::new();
        for (relay, chat, req) in fetches {
            match self.request(&relay, &req).await {
                Ok(ChatResponse::Mail { mail, .. }) if !mail.is_empty() => {
                    batches.push((Some(relay), chat, mail));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(relay = %relay.address, error = %e, "no mail from relay")
                }
            }
        }
        let mut h = held.lock().await;
        if h.closed {
            return Ok(false);
        }
        self.take_mail(&mut h, batches)
    }

    /// Takes what reached this node directly (in the directory mailbox and each chat's) and
    /// `remote` (mail fetched from relays).
    pub(crate) fn take_mail(
        &self,
        h: &mut Held,
        remote: Vec<MailBatch>,
    ) -> Result<bool, ChatError> {
        let directory = mailbox_id(&h.mailbox_key.public_key());
        let mut local: Vec<(Option<String>, Hash)> = vec![(None, directory)];
        local.extend(
            Self::chat_mailboxes(h)
                .into_iter()
                .map(|(gid, id)| (Some(gid), id)),
        );
        let me = self.net.me.to_text();
        let mut batches: Vec<MailBatch> = Vec::new();
        for (chat, id) in &local {
            if chat.is_some() && !self.services.mailboxes.is_known(id) {
                self.claim(id);
            }
            let name = chat_mail::cursor_name(&me, chat.as_deref());
            let after = h.meta.cursors.get(&name).copied().unwrap_or(0);
            let (mail, _) = self
                .services
                .mailboxes
                .fetch(id, after, chatnet::MAX_FETCH_BYTES);
            if !mail.is_empty() {
                let mail = mail.into_iter().map(|m| (m.seq, m.bytes)).collect();
                batches.push((None, chat.clone(), mail));
            }
        }
        batches.extend(remote);
        if batches.is_empty() {
            return Ok(false);
        }
        // One holder numbers all its mailboxes' mail in one sequence: taken in that order,
        // a chat's texts in its mailbox and commits still sent to the directory one (by a
        // member who has not heard of the chat's) come in the order they were deposited.
        let mut items: Vec<(String, &Option<String>, u64, &[u8])> = batches
            .iter()
            .flat_map(|(from, chat, mail)| {
                let holder = from.as_ref().map_or(me.clone(), |r| r.node.to_text());
                mail.iter()
                    .map(move |(seq, bytes)| (holder.clone(), chat, *seq, bytes.as_slice()))
            })
            .collect();
        items.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        let mut changed = false;
        for (holder, chat, seq, bytes) in items {
            let name = chat_mail::cursor_name(&holder, chat.as_deref());
            // Fetched without the device held, so another take may have gone further.
            if h.meta.cursors.get(&name).is_some_and(|taken| seq <= *taken) {
                continue;
            }
            if bytes != chat_mail::CLAIM {
                match deposits::opened(h.deposit_key.as_ref(), &mut h.box_keys, bytes) {
                    Some(envelope) => changed |= self.take_one(h, &envelope)?,
                    None => {
                        self.rejected
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!("refused a deposit sealed for another key, or damaged");
                    }
                }
            }
            h.meta.cursors.insert(name, seq);
        }
        if changed {
            changed |= self.retry_deferred(h)?;
        }
        // Everything taken is on disk before any of it is acknowledged: the history first
        // (a crash before the state is saved makes the mail come again, and its hash shows
        // it once), then the state.
        self.flush_history(h)?;
        self.save(h)?;
        for (from, chat, mail) in &batches {
            if from.is_some() {
                continue;
            }
            let id = local
                .iter()
                .find(|(c, _)| c == chat)
                .map_or(directory, |(_, id)| *id);
            if let Some((last, _)) = mail.last() {
                self.services.mailboxes.ack(&id, *last).map_err(internal)?;
            }
        }
        // Relays learn the new positions with the next fetch.
        Ok(changed)
    }

    /// Tries the deferred envelopes again (a commit or welcome may have arrived), until no
    /// more open; drops those kept too long.
    pub(crate) fn retry_deferred(&self, h: &mut Held) -> Result<bool, ChatError> {
        let mut changed = false;
        for _ in 0..8 {
            let now = now_ms();
            let before = h.deferred.len();
            let pending: Vec<(u64, String)> = std::mem::take(&mut h.deferred.waiting)
                .into_iter()
                .chain(std::mem::take(&mut h.deferred.unknown))
                .collect();
            h.deferred
                .dirty
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let mut progress = false;
            for (at, hexed) in pending {
                if now.saturating_sub(at) > DEFER_FOR_MS {
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                let Ok(bytes) = hex::decode(&hexed) else {
                    continue;
                };
                let took = self.take_one(h, &bytes)?;
                // Put back with its first arrival time if it is still waiting.
                let d = &mut h.deferred;
                if let Some(e) = d
                    .waiting
                    .iter_mut()
                    .chain(d.unknown.iter_mut())
                    .find(|(_, e)| *e == hexed)
                {
                    e.0 = at;
                }
                changed |= took;
                progress |= took;
            }
            if !progress || h.deferred.len() >= before {
                break;
            }
        }
        Ok(changed)
    }

    /// Takes a sealed history envelope (see [`Chat::take_history`]); whether it added any.
    fn take_history_envelope(&self, h: &mut Held, bytes: &[u8], hash: String) -> bool {
        h.meta.seen.push_back(hash);
        while h.meta.seen.len() > SEEN {
            h.meta.seen.pop_front();
        }
        match self.take_history(h, bytes) {
            Ok(took) => took > 0,
            Err(e) => {
                self.rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(error = %e, "refused a chat history");
                false
            }
        }
    }

    /// Whether `bytes` is a commit for its group's epoch that the delivery relay has not
    /// confirmed as the epoch's winner; if so it is held until [`Chat::confirm_commits`]
    /// asks. (A member who sent different commits to different members, without ordering
    /// them, would otherwise split the group.)
    fn held_for_order(h: &mut Held, bytes: &[u8], hash: &String) -> bool {
        let Some((group, epoch, true)) = starling_chat::peek(bytes) else {
            return false;
        };
        if h.device.epoch(&group).ok() != Some(epoch) || h.confirmed.contains(hash) {
            return false;
        }
        if h.unconfirmed.len() < MAX_UNCONFIRMED && !h.unconfirmed.iter().any(|(_, b)| b == bytes) {
            h.unconfirmed.push((now_ms(), bytes.to_vec()));
        }
        true
    }

    pub(crate) fn take_one(&self, h: &mut Held, bytes: &[u8]) -> Result<bool, ChatError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        if h.meta.seen.contains(&hash) {
            return Ok(false);
        }
        if Self::is_history(bytes) {
            return Ok(self.take_history_envelope(h, bytes, hash));
        }
        if Self::held_for_order(h, bytes, &hash) {
            return Ok(false);
        }
        let vouched = std::cell::RefCell::new(std::mem::take(&mut h.vouched));
        let directory = |identity: &str, key: &[u8]| self.lists(&vouched, identity, key);
        let received = h.device.receive(bytes, &directory);
        h.vouched = vouched.into_inner();
        let waiting = match &received {
            // A commit or two still on the way: it waits with the others for one.
            Err(starling_chat::ChatError::FutureEpoch { message, group })
                if *message <= group + MAX_EPOCHS_AHEAD =>
            {
                Some(true)
            }
            // A welcome may still be on the way (or it is junk: few of these are kept).
            Err(starling_chat::ChatError::UnknownGroup(_)) => Some(false),
            _ => None,
        };
        if let Some(waiting) = waiting {
            let hexed = hex::encode(bytes);
            if !h.deferred.contains(&hexed) {
                let dropped = h.deferred.keep(waiting, now_ms(), hexed);
                self.rejected
                    .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(false);
        }
        h.meta.seen.push_back(hash.clone());
        while h.meta.seen.len() > SEEN {
            h.meta.seen.pop_front();
        }
        let received = match received {
            Ok(r) => r,
            Err(starling_chat::ChatError::Impostor { group, identity }) => {
                self.rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%identity, "refused a chat message from a member the key directory does not list with that key");
                let gid = hex::encode(&group);
                if !h.device.is_member(&group) {
                    // A welcome: there is no chat to show it in.
                    return Ok(false);
                }
                let who = account_of_identity(&identity)
                    .map(|(a, d)| format!("{} (device {d})", a.to_text()))
                    .unwrap_or(identity);
                let msg = Message {
                    seq: Self::next_seq(h, &gid),
                    kind: "event".into(),
                    from: String::new(),
                    text: format!("refused a message from {who}: its key is not the one the ledger lists for that device"),
                    at_ms: now_ms(),
                    mine: false,
                    epoch: h.device.epoch(&group).unwrap_or(0),
                    envelope: hash,
                };
                self.record(h, &gid, vec![msg])?;
                return Ok(true);
            }
            Err(e) => {
                self.rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(error = %e, "refused a chat envelope");
                return Ok(false);
            }
        };
        // A member naming its mailbox for the chat: nothing to show.
        if let Received::Text { group, from, text } = &received {
            if let Some((&PAYLOAD_MAILBOX, body)) = text.split_first() {
                Self::heard(h, group, from);
                Self::learn_mailbox(h, group, from, body);
                return Ok(false);
            }
        }
        // Taken before (the state was older than the history after a crash): not again.
        let duplicate = h.in_history.contains(&hash);
        let Some((group, msg)) = self.entry_of(h, received, hash) else {
            self.rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(false);
        };
        if duplicate {
            return Ok(false);
        }
        // Written with the rest of the batch, before the state that took it.
        self.record(h, &group, vec![msg])?;
        Ok(true)
    }

    /// Whether the key directory lists `identity` with `key` (asked with a proof, or
    /// remembered from lately in `vouched`).
    fn lists(
        &self,
        vouched: &std::cell::RefCell<HashMap<(String, Vec<u8>), std::time::Instant>>,
        identity: &str,
        key: &[u8],
    ) -> bool {
        let entry = (identity.to_string(), key.to_vec());
        let mut vouched = vouched.borrow_mut();
        if vouched
            .get(&entry)
            .is_some_and(|t| t.elapsed() < VOUCHED_FOR)
        {
            return true;
        }
        let Some((account, device)) = account_of_identity(identity) else {
            return false;
        };
        let listed = self.directory(&account).is_ok_and(|(rec, _)| {
            rec.devices
                .iter()
                .any(|d| d.id == device && d.signature_key[..] == *key)
        });
        if listed {
            if vouched.len() >= MAX_VOUCHED {
                vouched.clear();
            }
            vouched.insert(entry, std::time::Instant::now());
        }
        listed
    }

    /// The history entry of what a device received, and its group (`None`: a payload of no
    /// known kind).
    fn entry_of(
        &self,
        h: &mut Held,
        received: Received,
        envelope: String,
    ) -> Option<(String, Message)> {
        let now = now_ms();
        let (group, kind, from, text, epoch) = match received {
            Received::Text { group, from, text } => {
                let epoch = h.device.epoch(&group).unwrap_or(0);
                let identity = from.clone();
                let from = account_of_identity(&from)
                    .map(|(a, _)| a.to_text())
                    .unwrap_or(from);
                match text.split_first() {
                    Some((&PAYLOAD_TEXT, body)) => {
                        Self::heard(h, &group, &from);
                        let body = String::from_utf8_lossy(body).into_owned();
                        (group, "text", from, body, epoch)
                    }
                    Some((&PAYLOAD_JOINED, body)) => {
                        Self::heard(h, &group, &from);
                        Self::learn_mailbox(h, &group, &identity, body);
                        let text = format!("{from} joined");
                        (group, "event", from, text, epoch)
                    }
                    Some((&PAYLOAD_LEAVE, _)) => {
                        let l = h.meta.leavers.entry(hex::encode(&group)).or_default();
                        if !l.contains(&from) {
                            l.push(from.clone());
                        }
                        let text = format!("{from} left");
                        (group, "event", from, text, epoch)
                    }
                    _ => return None,
                }
            }
            Received::Commit { group, epoch, from } => {
                let members = self.member_accounts(h, &group);
                Self::heard_among(h, &group, &from, &members);
                let members = members.join(", ");
                let text = format!("keys changed (epoch {epoch}); members: {members}");
                (group, "event", String::new(), text, epoch)
            }
            Received::Joined {
                group,
                epoch,
                adder,
            } => {
                // (Its history may have come first, from another device of the account.)
                let meta = h
                    .meta
                    .groups
                    .entry(hex::encode(&group))
                    .or_insert(GroupMeta {
                        created_ms: now,
                        ..GroupMeta::default()
                    });
                meta.left = false;
                // Heard from in an earlier stay, not in this one.
                meta.heard.clear();
                meta.announce = true;
                if let Some(adder) = adder {
                    Self::heard(h, &group, &adder);
                }
                (
                    group,
                    "event",
                    String::new(),
                    "you were added".into(),
                    epoch,
                )
            }
            Received::Removed { group } => {
                h.meta.groups.entry(hex::encode(&group)).or_default().left = true;
                (group, "event", String::new(), "you were removed".into(), 0)
            }
        };
        let gid = hex::encode(&group);
        if let Some(meta) = h.meta.groups.get_mut(&gid) {
            // The chat goes on here: no more history from elsewhere is taken into it.
            meta.synced = false;
        }
        let message = Message {
            seq: Self::next_seq(h, &gid),
            kind: kind.into(),
            from,
            text,
            at_ms: now,
            mine: false,
            epoch,
            envelope,
        };
        Some((gid, message))
    }
}
