//! Auth tokens, written once for every vendor that exchanges its secrets for one: a cache
//! with single-flight refresh ([`TokenCache`]) and the one "refresh the auth token once,
//! then resend" step ([`send_refreshing`]).
//!
//! - **Cache**: one [`TokenCache`] per (app, auth endpoint), shared by every credential
//!   using that app. The lock is held while a token is fetched, so concurrent sends wait
//!   for one fetch instead of each fetching (vendors limit their auth calls: Huawei 1000
//!   per 5 minutes, vivo 10 per second).
//! - **Refused token**: [`TokenCache::refused`] drops the token the vendor refused unless
//!   another request already replaced it, and fetches a fresh one.
//! - **Resend once**: [`send_refreshing`] sends with the current token; when the vendor says
//!   the token expired it gets a fresh one ([`AuthSource::refused`]) and sends once more; a
//!   second refusal is final. APNs provider tokens, signed locally and replaced at most
//!   every 20 minutes, plug into the same step through their own [`AuthSource`].
//!
//! What stays per vendor is how a token is fetched ([`FetchToken`]) and how its answers
//! say "expired".

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::util::short_token;

/// A bearer credential from a vendor's auth endpoint and when to stop using it.
#[derive(Clone, PartialEq)]
pub(crate) struct AuthToken {
    pub value: Arc<str>,
    /// When to replace it: some margin before it expires.
    pub refresh_at: Instant,
}

/// Shows the first 8 characters of the token only.
impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthToken")
            .field("value", &format_args!("{}…", short_token(&self.value)))
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// Why no auth token could be had: the outcome for every target of the request and the
/// auth endpoint's HTTP status (0 if none).
#[derive(Debug)]
pub(crate) struct AuthFailure {
    pub status: u16,
    pub outcome: Outcome,
}

impl AuthFailure {
    /// The auth endpoint could not be reached: worth another try.
    pub(crate) fn transport(reason: &str) -> AuthFailure {
        AuthFailure {
            status: 0,
            outcome: Outcome::Retry {
                after: None,
                reason: format!("auth: {reason}"),
            },
        }
    }

    /// The auth endpoint refused with `status`: retried when the endpoint is overloaded or
    /// down (429, 5xx), else rejected (a wrong secret does not get better).
    pub(crate) fn by_status(status: u16, retry_after: Option<Duration>, reason: String) -> Self {
        let outcome = if status == 429 || status >= 500 {
            Outcome::Retry {
                after: retry_after,
                reason,
            }
        } else {
            Outcome::Rejected { reason }
        };
        AuthFailure { status, outcome }
    }
}

/// How one vendor gets a new auth token from its auth endpoint.
pub(crate) trait FetchToken: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<AuthToken, AuthFailure>> + Send;
}

/// One app's auth token, fetched by `F`, shared by the credentials of that app.
pub(crate) struct TokenCache<F> {
    pub(crate) fetcher: F,
    cache: tokio::sync::Mutex<Option<AuthToken>>,
}

impl<F: FetchToken> TokenCache<F> {
    pub(crate) fn new(fetcher: F) -> TokenCache<F> {
        TokenCache {
            fetcher,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached token, or a new one when there is none or it is due.
    pub(crate) async fn token(&self) -> Result<AuthToken, AuthFailure> {
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.clone());
        }
        let token = self.fetcher.fetch().await?;
        *cache = Some(token.clone());
        Ok(token)
    }

    /// The vendor refused `used`: a fresh token, unless another request already got one.
    pub(crate) async fn refused(&self, used: &AuthToken) -> Result<AuthToken, AuthFailure> {
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache.as_ref()
            && token.value != used.value
            && Instant::now() < token.refresh_at
        {
            return Ok(token.clone());
        }
        *cache = None;
        let token = self.fetcher.fetch().await?;
        *cache = Some(token.clone());
        Ok(token)
    }

    #[cfg(test)]
    pub(crate) async fn cached(&self) -> Option<AuthToken> {
        self.cache.lock().await.clone()
    }

    #[cfg(test)]
    pub(crate) async fn set_cached(&self, token: Option<AuthToken>) {
        *self.cache.lock().await = token;
    }
}

/// Where [`send_refreshing`] gets the token to send with, and a fresh one when the vendor
/// refused it.
pub(crate) trait AuthSource: Sync {
    type Token: Clone + Send + Sync;

    /// The token to send with now.
    fn current(&self) -> impl Future<Output = Result<Self::Token, AuthFailure>> + Send;

    /// The vendor refused `used` as expired: the token to send once more with, or `None`
    /// when it must not be replaced (the refusal then stands).
    fn refused(
        &self,
        used: &Self::Token,
    ) -> impl Future<Output = Result<Option<Self::Token>, AuthFailure>> + Send;
}

impl<F: FetchToken> AuthSource for TokenCache<F> {
    type Token = AuthToken;

    async fn current(&self) -> Result<AuthToken, AuthFailure> {
        self.token().await
    }

    async fn refused(&self, used: &AuthToken) -> Result<Option<AuthToken>, AuthFailure> {
        TokenCache::refused(self, used).await.map(Some)
    }
}

/// What one send with a token came to.
pub(crate) enum Attempt<T> {
    /// The vendor's answer, final.
    Done(T),
    /// The vendor refused the token as expired; `T` is the answer to give if sending once
    /// more with a fresh token is not possible or is refused too.
    TokenRefused(T),
}

/// Sends with `source`'s token through `attempt`; when the vendor refuses the token as
/// expired, sends once more with a fresh one. `Err` when no token could be had.
pub(crate) async fn send_refreshing<S, T, Fut>(
    source: &S,
    vendor: &'static str,
    business_id: u64,
    mut attempt: impl FnMut(S::Token) -> Fut,
) -> Result<T, AuthFailure>
where
    S: AuthSource,
    Fut: Future<Output = Attempt<T>>,
{
    let mut token = source.current().await?;
    let mut refreshed = false;
    loop {
        match attempt(token.clone()).await {
            Attempt::Done(answer) => return Ok(answer),
            Attempt::TokenRefused(answer) if refreshed => return Ok(answer),
            Attempt::TokenRefused(answer) => match source.refused(&token).await? {
                Some(fresh) => {
                    tracing::info!(
                        vendor,
                        business_id,
                        "auth token refused, sending again with a fresh one"
                    );
                    token = fresh;
                    refreshed = true;
                }
                None => return Ok(answer),
            },
        }
    }
}

/// When to replace a token received at `received` that lives `expires_in`: `margin` before
/// it expires, or half-way through when it lives less than twice the margin (short-lived
/// tokens, as the simulators issue).
pub(crate) fn refresh_at(received: Instant, expires_in: Duration, margin: Duration) -> Instant {
    received + expires_in.saturating_sub(margin).max(expires_in / 2)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Hands out `token-1`, `token-2`, … valid for ten minutes, counting its fetches.
    struct Counter(AtomicU32);

    impl FetchToken for Counter {
        async fn fetch(&self) -> Result<AuthToken, AuthFailure> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AuthToken {
                value: format!("token-{n}").into(),
                refresh_at: Instant::now() + Duration::from_secs(600),
            })
        }
    }

    fn cache() -> TokenCache<Counter> {
        TokenCache::new(Counter(AtomicU32::new(0)))
    }

    fn fetches(cache: &TokenCache<Counter>) -> u32 {
        cache.fetcher.0.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_cached_token_is_reused_until_it_is_due() {
        let cache = cache();
        assert_eq!(&*cache.token().await.unwrap().value, "token-1");
        assert_eq!(&*cache.token().await.unwrap().value, "token-1");
        assert_eq!(fetches(&cache), 1);
        let due = AuthToken {
            value: "old".into(),
            refresh_at: Instant::now(),
        };
        cache.set_cached(Some(due)).await;
        assert_eq!(&*cache.token().await.unwrap().value, "token-2");
    }

    #[tokio::test]
    async fn concurrent_sends_wait_for_one_fetch() {
        let cache = Arc::new(cache());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.token().await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(&*task.await.unwrap().value, "token-1");
        }
        assert_eq!(fetches(&cache), 1);
    }

    #[tokio::test]
    async fn a_refused_token_is_replaced_unless_another_request_already_did() {
        let cache = cache();
        let first = cache.token().await.unwrap();
        let second = cache.refused(&first).await.unwrap();
        assert_eq!(&*second.value, "token-2");
        // A request still holding the first token is refused too: it gets the second.
        assert_eq!(cache.refused(&first).await.unwrap(), second);
        assert_eq!(fetches(&cache), 2);
    }

    #[tokio::test]
    async fn a_refused_token_is_sent_again_once_with_a_fresh_one() {
        let cache = cache();
        let mut sent_with = Vec::new();
        let answer = send_refreshing(&cache, "test", 1, |token| {
            sent_with.push(token.value.to_string());
            async { Attempt::TokenRefused("refused") }
        })
        .await
        .unwrap();
        assert_eq!(answer, "refused", "the second refusal is final");
        assert_eq!(sent_with, ["token-1", "token-2"]);
    }

    #[tokio::test]
    async fn an_accepted_token_is_sent_once() {
        let cache = cache();
        let mut sends = 0;
        let answer = send_refreshing(&cache, "test", 1, |_| {
            sends += 1;
            async { Attempt::Done("delivered") }
        })
        .await
        .unwrap();
        assert_eq!((answer, sends), ("delivered", 1));
        assert_eq!(fetches(&cache), 1);
    }

    #[test]
    fn tokens_are_replaced_a_margin_before_they_expire() {
        let t0 = Instant::now();
        let margin = Duration::from_secs(300);
        let at = |s| refresh_at(t0, Duration::from_secs(s), margin);
        assert_eq!(at(3599), t0 + Duration::from_secs(3299));
        // Short-lived tokens (simulators) are used for half their life.
        assert_eq!(at(60), t0 + Duration::from_secs(30));
        assert_eq!(at(0), t0);
    }
}
