//! The one way a run makes many AWS calls at once: at most `LIFEBOAT_CONCURRENCY`
//! (1 to 64, default 8) in flight. AWS throttles bursts; the SDK retries
//! throttling with backoff.

use crate::error::Error;
use futures::stream::{self, StreamExt};
use std::future::Future;

/// How many calls a run has in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOut(usize);

impl FanOut {
    /// The default when `LIFEBOAT_CONCURRENCY` is not set.
    pub const DEFAULT: FanOut = FanOut(8);

    /// At most `n` calls at once (1 to 64).
    pub fn new(n: usize) -> Self {
        FanOut(n.clamp(1, 64))
    }

    /// From `LIFEBOAT_CONCURRENCY`; a malformed value is an error that names the variable.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("LIFEBOAT_CONCURRENCY") {
            Err(_) => Ok(Self::DEFAULT),
            Ok(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .map(FanOut)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "LIFEBOAT_CONCURRENCY must be a whole number from 1 to 64, not `{text}`"
                    ))
                }),
        }
    }

    /// Drives `calls` with at most this many at once; results in the order they finish.
    ///
    /// The calls are built by the caller before they are driven: a closure
    /// inside the stream would make the caller's future lose its `Send` proof.
    pub async fn run<F: Future>(self, calls: Vec<F>) -> Vec<F::Output> {
        stream::iter(calls).buffer_unordered(self.0).collect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (now, most) = (&now, &most);
                async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    i
                }
            })
            .collect();
        let mut done = FanOut::new(3).run(calls).await;
        done.sort();
        assert_eq!(done, (0..20).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(FanOut::new(0), FanOut::new(1));
    }
}
