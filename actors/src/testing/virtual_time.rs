//! Running an actor test on a paused tokio clock.

use std::future::Future;

use actix::System;

/// Runs `test` in an actix System on a paused tokio clock: timers fire as soon as every task
/// waits, so a test of minutes of timeouts takes milliseconds, and instants sit exactly on the
/// timer wheel's millisecond grid. (`#[actix::test]` takes no arguments: it silently drops
/// tokio's `start_paused`, and such a test runs on the wall clock.)
pub fn on_virtual_time<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime")
    })
    .block_on(test());
}
