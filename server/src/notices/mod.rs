//! Sending the notices queued in the outbox (`store::notices`): a task that queues the reminders
//! now due ([`reminders`], once a minute), then, every few seconds and outside the quiet hours,
//! takes the notices due, hands each to its channel ([`channels`]) at the rate the gateways
//! allow, and
//! records the outcome, trying again with a growing wait (1, 2, 4, 8 minutes) and giving up after
//! [`ATTEMPTS`], when the administration page lists it with the reason. A channel that fails or
//! hangs never holds a booking or a page: they only write rows.
//!
//! Never lost, at most one twice: a notice is marked *handed* (committed) before it goes to its
//! channel and *sent* after. A server that dies in between finds it handed and not sent, and
//! sends it again: one notice at a time is in flight, so a crash sends at most one notice twice,
//! and each attempt carries the same key (`{id}` for an HTTP gateway's idempotency header, the
//! e-mail's Message-ID), with which a gateway or mail program that knows it drops the second.

pub mod channels;
pub mod reminders;

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use coper_shared::jiff::SignedDuration;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub use self::channels::{Channel, Channels, NoticesConfig, Outgoing};
use crate::{AppState, store::notices};

/// Attempts before a notice is given up.
pub const ATTEMPTS: i64 = 5;
/// How often the sender looks for notices due.
const EVERY: Duration = Duration::from_secs(2);
/// How often it looks for reminders whose moment has come.
const REMINDERS_EVERY: Duration = Duration::from_secs(60);
/// Notices taken per round at most: a burst (a closed day) goes out over a few rounds.
const PER_ROUND: usize = 50;
/// Notices a minute to each gateway, unless the configuration says otherwise.
pub const DEFAULT_PER_MINUTE: u32 = 60;

/// The channels, how fast each may be fed, and where the opt-out links point.
pub struct Sender {
    channels: Channels,
    email_rate: DefaultDirectRateLimiter,
    sms_rate: DefaultDirectRateLimiter,
    public_url: Option<String>,
    /// What a gateway forwarding SMS replies must present (`?token=`).
    pub reply_token: Option<String>,
}

impl Sender {
    /// The channels `config` describes, with their secrets read from the environment.
    pub fn from_config(config: &NoticesConfig) -> anyhow::Result<Self> {
        let mut sender = Self::new(Channels::from_config(config)?, config);
        if let Some(name) = config.sms.as_ref().and_then(|s| s.reply_token_env.as_ref()) {
            let token = std::env::var(name)
                .map_err(|_| anyhow::anyhow!("[notices.sms] reply_token_env: {name} is not set"))?;
            anyhow::ensure!(
                token.len() >= 16,
                "[notices.sms] reply_token_env: the token in {name} needs 16 characters or more"
            );
            sender.reply_token = Some(token);
        }
        Ok(sender)
    }

    pub fn new(channels: Channels, config: &NoticesConfig) -> Self {
        let per_minute = NonZeroU32::new(config.per_minute.unwrap_or(DEFAULT_PER_MINUTE))
            .unwrap_or(NonZeroU32::MIN);
        let rate = || RateLimiter::direct(Quota::per_minute(per_minute));
        Self {
            channels,
            email_rate: rate(),
            sms_rate: rate(),
            public_url: config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            reply_token: None,
        }
    }

    /// Every channel the log: the demo's and the tests' default.
    pub fn log() -> Self {
        Self::new(Channels::log(), &NoticesConfig::default())
    }

    /// The address people reach this server at (`[notices] public_url`), without a final `/`.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    fn rate(&self, channel: &str) -> &DefaultDirectRateLimiter {
        match channel {
            "email" => &self.email_rate,
            _ => &self.sms_rate,
        }
    }
}

/// Queue the reminders and send what is due, for ever.
pub async fn run_sender(state: AppState) {
    let sender = state.sender.clone();
    let mut every = tokio::time::interval(EVERY);
    // Reminders are due at a minute of the day: looking once a minute is enough, and spares the
    // writer a transaction every round.
    let mut reminders_checked: Option<tokio::time::Instant> = None;
    loop {
        every.tick().await;
        if reminders_checked.is_none_or(|at| at.elapsed() >= REMINDERS_EVERY) {
            reminders_checked = Some(tokio::time::Instant::now());
            if let Err(e) = reminders::queue_due(&state).await {
                tracing::error!(error = ?e, "reminders not queued this round");
            }
        }
        // A full round means more are waiting (a closed day): go on without waiting the tick.
        loop {
            match send_due(&state, &sender).await {
                Ok(n) if n == PER_ROUND => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = ?e, "notices not sent this round");
                    break;
                }
            }
        }
    }
}

/// One round: every notice due now, each handed to its channel and recorded on its own; none
/// in the quiet hours. How many were handed over.
pub async fn send_due(
    state: &AppState,
    sender: &Arc<Sender>,
) -> Result<usize, crate::store::StoreError> {
    let now = state.clock.now();
    if reminders::quiet_now(state, now).await? {
        return Ok(0);
    }
    let due = state
        .db
        .read(move |conn| notices::due(conn, now, PER_ROUND))
        .await?;
    let count = due.len();
    for notice in due {
        sender.rate(&notice.channel).until_ready().await;
        let id = notice.id;
        let now = state.clock.now();
        // An opt-out that arrived after the notice was queued wins.
        let (withdrawn, notice) = state
            .db
            .call(move |conn| {
                let (channel, recipient) = (&notice.channel, &notice.recipient);
                if notices::opted_out(conn, channel, recipient)? {
                    notices::not_sent(conn, id, notices::OPTED_OUT, None, now)?;
                    return Ok((true, notice));
                }
                notices::handing(conn, id, now)?;
                Ok::<_, crate::store::StoreError>((false, notice))
            })
            .await?;
        if withdrawn {
            continue;
        }
        if notice.handed_before {
            tracing::warn!(notice = id, "notice handed over before a stop: sent again");
        }
        let outgoing = Outgoing {
            key: format!("coper-notice-{id}"),
            stop_url: (notice.channel == "email")
                .then_some(sender.public_url.as_ref())
                .flatten()
                .map(|url| format!("{url}/notices/stop/{}", notice.stop_token)),
            channel: notice.channel,
            recipient: notice.recipient,
            body: notice.body,
        };
        let job = sender.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let channel = job.channels.of(&outgoing.channel);
            channel.send(&outgoing).map(|()| channel.name())
        })
        .await
        .unwrap_or_else(|_| Err("il canale si è fermato".into()));
        let now = state.clock.now();
        let attempts = notice.attempts;
        state
            .db
            .call(move |conn| match outcome {
                Ok(via) => notices::sent(conn, id, via, now),
                Err(error) => {
                    tracing::warn!(notice = id, "notice not accepted by its channel");
                    let retry = (attempts + 1 < ATTEMPTS)
                        .then(|| now + SignedDuration::from_mins(1 << attempts.min(10)));
                    notices::not_sent(conn, id, &error, retry, now)
                }
            })
            .await?;
    }
    Ok(count)
}
