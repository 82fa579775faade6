//! The bottom layer: small utilities every module may use, with no dependency on any other
//! module of the crate (std and external crates only): awaiting futures together, the wall
//! clock, and logging to stderr ([`logging`], whose macros are `crate::info!` and friends).

pub mod civil;
pub mod failpoint;
#[macro_use]
pub mod logging;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Await all futures concurrently, keeping their order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let tasks: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut slots: Vec<Option<F::Output>> = tasks.iter().map(|_| None).collect();
    let mut tasks: Vec<Option<Pin<Box<F>>>> = tasks.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (task, slot) in tasks.iter_mut().zip(slots.iter_mut()) {
            if let Some(t) = task {
                match t.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *slot = Some(v);
                        *task = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots
        .into_iter()
        .map(|s| s.expect("every future completed"))
        .collect()
}
