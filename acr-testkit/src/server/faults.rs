//! Programmable faults and counters shared between a server and the test driving it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Fault settings; all off by default.
#[derive(Debug, Default, Clone)]
struct Settings {
    access_ttl: Option<i64>,
    refresh_ttl: Option<i64>,
    backdate: i64,
    refuse_exchange: bool,
    token_delay: Duration,
    registry_delay: Duration,
}

/// State behind [`Faults`]; the servers read it on every request.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    settings: Mutex<Settings>,
    fail_tokens: AtomicU32,
    reject_registry: AtomicU32,
    exchanges: AtomicU64,
    exchange_failures: AtomicU64,
    access_tokens: AtomicU64,
    refresh_tokens: AtomicU64,
    token_failures: AtomicU64,
    proxied_requests: AtomicU64,
    injected_failures: AtomicU64,
    aad_tokens: AtomicU64,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Takes one from a countdown; true if it was positive.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Shared {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        // A panicking test thread must not take the server down with it.
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn access_ttl(&self) -> Option<i64> {
        self.settings().access_ttl
    }
    pub(crate) fn refresh_ttl(&self) -> Option<i64> {
        self.settings().refresh_ttl
    }
    pub(crate) fn backdate(&self) -> i64 {
        self.settings().backdate
    }
    pub(crate) fn refuses_exchange(&self) -> bool {
        self.settings().refuse_exchange
    }
    pub(crate) fn token_delay(&self) -> Duration {
        self.settings().token_delay
    }
    pub(crate) fn registry_delay(&self) -> Duration {
        self.settings().registry_delay
    }
    pub(crate) fn take_token_failure(&self) -> bool {
        let hit = take(&self.fail_tokens);
        if hit {
            self.injected_failures.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
    pub(crate) fn take_registry_rejection(&self) -> bool {
        let hit = take(&self.reject_registry);
        if hit {
            self.injected_failures.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
    pub(crate) fn count_exchange(&self, ok: bool) {
        let counter = if ok {
            &self.exchanges
        } else {
            &self.exchange_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_access_token(&self) {
        self.access_tokens.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_refresh_token(&self) {
        self.refresh_tokens.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_token_failure(&self) {
        self.token_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_proxied(&self) {
        self.proxied_requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_aad_token(&self) {
        self.aad_tokens.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a server has done so far (see [`Faults::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Successful `POST /oauth2/exchange` (ACR refresh tokens handed out for AAD tokens).
    pub exchanges: u64,
    /// Refused exchanges (bad AAD token, wrong service/tenant, injected refusal).
    pub exchange_failures: u64,
    /// Registry access tokens issued.
    pub access_tokens: u64,
    /// Refresh tokens issued (by exchanges, offline tokens or direct minting).
    pub refresh_tokens: u64,
    /// Refused token requests (bad credentials, bad refresh token, injected failure).
    pub token_failures: u64,
    /// Requests forwarded to docker-registry (ACR emulator only).
    pub proxied_requests: u64,
    /// Requests answered by an injected failure.
    pub injected_failures: u64,
    /// Tokens issued by the fake AAD token endpoint (minting in-process is not counted).
    pub aad_tokens: u64,
}

/// A cloneable handle to a server's faults and counters; changes apply to the next request.
#[derive(Debug, Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Lifetime of access tokens issued from now on (overrides the server's default).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.settings().access_ttl = Some(secs(ttl));
    }

    /// Lifetime of refresh tokens issued from now on. The servers check refresh-token expiry
    /// themselves, without leeway, so this takes effect exactly.
    pub fn set_refresh_token_ttl(&self, ttl: Duration) {
        self.shared.settings().refresh_ttl = Some(secs(ttl));
    }

    /// Issue tokens with `iat`/`nbf`/`exp` shifted this far into the past, like a token server
    /// whose clock runs behind. docker-registry accepts tokens up to 60 s after `exp`, so
    /// a registry-side expiry test uses a 60 s backdate plus a short access-token TTL.
    pub fn set_backdate(&self, backdate: Duration) {
        self.shared.settings().backdate = secs(backdate);
    }

    /// Make `POST /oauth2/exchange` answer 401 (ACR emulator) while `refuse` is true.
    pub fn refuse_exchange(&self, refuse: bool) {
        self.shared.settings().refuse_exchange = refuse;
    }

    /// Answer the next `n` token requests (`/token`, `/oauth2/token`, `/oauth2/exchange`)
    /// with 401.
    pub fn fail_next_token_requests(&self, n: u32) {
        self.shared.fail_tokens.store(n, Ordering::SeqCst);
    }

    /// Answer the next `n` registry requests through the ACR emulator with a 401 Bearer
    /// challenge carrying `error="invalid_token"`, as if the token had been revoked.
    pub fn reject_next_registry_requests(&self, n: u32) {
        self.shared.reject_registry.store(n, Ordering::SeqCst);
    }

    /// [`Faults::reject_next_registry_requests`] for one request.
    pub fn unauthorized_once(&self) {
        self.reject_next_registry_requests(1);
    }

    /// Delay every token-endpoint response (exchange, token, fake AAD) by `delay`.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.settings().token_delay = delay;
    }

    /// Delay every request the ACR emulator forwards to the registry by `delay`.
    pub fn set_registry_delay(&self, delay: Duration) {
        self.shared.settings().registry_delay = delay;
    }

    /// Turns every fault off (counters are kept; see [`Faults::reset_stats`]).
    pub fn clear(&self) {
        *self.shared.settings() = Settings::default();
        self.shared.fail_tokens.store(0, Ordering::SeqCst);
        self.shared.reject_registry.store(0, Ordering::SeqCst);
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        Stats {
            exchanges: get(&s.exchanges),
            exchange_failures: get(&s.exchange_failures),
            access_tokens: get(&s.access_tokens),
            refresh_tokens: get(&s.refresh_tokens),
            token_failures: get(&s.token_failures),
            proxied_requests: get(&s.proxied_requests),
            injected_failures: get(&s.injected_failures),
            aad_tokens: get(&s.aad_tokens),
        }
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        let s = &self.shared;
        for c in [
            &s.exchanges,
            &s.exchange_failures,
            &s.access_tokens,
            &s.refresh_tokens,
            &s.token_failures,
            &s.proxied_requests,
            &s.injected_failures,
            &s.aad_tokens,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}
