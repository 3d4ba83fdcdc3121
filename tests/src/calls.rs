//! An SDK interceptor that counts the AWS calls a client makes, by operation,
//! and the most that were in flight at once: the figures of the benchmarks.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts operations and HTTP attempts; clone it into every client to count.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    operations: Mutex<BTreeMap<String, usize>>,
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl CallCounter {
    /// Operations made, by name (`CreateSnapshot`), retries not counted.
    pub fn operations(&self) -> BTreeMap<String, usize> {
        self.inner
            .operations
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// HTTP attempts, retries included.
    pub fn attempts(&self) -> usize {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// The most operations in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        if let Ok(mut m) = self.inner.operations.lock() {
            m.clear();
        }
        self.inner.attempts.store(0, Ordering::SeqCst);
        self.inner.peak.store(0, Ordering::SeqCst);
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let now = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.peak.fetch_max(now, Ordering::SeqCst);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.attempts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The operation's metadata is in the bag by now (not yet before execution).
        let name = cfg
            .load::<Metadata>()
            .map_or_else(|| "unknown".to_owned(), |m| m.name().to_owned());
        if let Ok(mut m) = self.inner.operations.lock() {
            *m.entry(name).or_default() += 1;
        }
        self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}
