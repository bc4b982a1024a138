//! Group commit: one writer task takes whatever has queued up and writes it
//! in one transaction, so a burst of requests costs one commit, not one
//! each. Each submitter waits for its own item's result.

use crate::{Error, Result};
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

tokio::task_local! {
    /// What a batch's write holds until the batch's submitters have their
    /// answers (see [`hold_until_answered`]).
    static HELD: RefCell<Option<Box<dyn Any + Send>>>;
}

/// Inside a batch's write: keeps `value` (the lock of a shared writer,
/// say) until the batch's answers are sent, and gives back `None`.
/// Elsewhere gives `value` back, to be dropped as usual.
///
/// An answer wakes its submitter, and Tokio runs the task woken last
/// first: a lock let go before the answers would wake the next writer
/// first, which would then wait behind every submitter woken after it.
/// The write must not wait for what `value` guards once it holds it: a
/// second transaction of the batch takes it back with [`take_held`].
pub fn hold_until_answered<T: Send + 'static>(value: T) -> Option<T> {
    let mut value = Some(value);
    let _ = HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        if held.is_none() {
            *held = value.take().map(|v| Box::new(v) as Box<dyn Any + Send>);
        }
    });
    value
}

/// Takes back what this batch's write holds ([`hold_until_answered`]),
/// if it is a `T`: a second transaction of the same batch reuses it.
pub fn take_held<T: Send + 'static>() -> Option<T> {
    HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        match held.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                *held = Some(other);
                None
            }
        }
    })
    .ok()
    .flatten()
}

type Pending<T, R> = (T, oneshot::Sender<Result<R>>);

/// The handle to a writer task; it ends when the last handle is dropped.
#[derive(Debug)]
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
    name: &'static str,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
            name: self.name,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writer. `write` gets up to `max` items and returns one
    /// result per item, in order; if it fails, every item fails with it.
    pub fn start<F, Fut>(name: &'static str, max: usize, write: F) -> Batcher<T, R>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>>> + Send,
    {
        let (queue, mut rx) = mpsc::channel::<Pending<T, R>>(4 * max);
        tokio::spawn(HELD.scope(RefCell::new(None), async move {
            let mut batch = Vec::with_capacity(max);
            while rx.recv_many(&mut batch, max).await > 0 {
                let (items, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let count = items.len();
                match write(items).await {
                    Ok(results) if results.len() == count => {
                        for (ack, r) in acks.into_iter().zip(results) {
                            let _ = ack.send(Ok(r));
                        }
                    }
                    Ok(_) => {
                        let e = Error::internal(format!("{name}: one result per item expected"));
                        for ack in acks {
                            let _ = ack.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, items = count, "{name}: batch write failed");
                        for ack in acks {
                            let _ = ack.send(Err(e.clone()));
                        }
                    }
                }
                drop(HELD.with(|held| held.borrow_mut().take()));
            }
        }));
        Batcher { queue, name }
    }

    /// Queues `item` and waits until its batch is committed.
    pub async fn submit(&self, item: T) -> Result<R> {
        let closed = || Error::unavailable(format!("the {} writer is closed", self.name));
        let (ack, done) = oneshot::channel();
        self.queue.send((item, ack)).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records when it is dropped.
    struct Marker(Arc<Mutex<Vec<&'static str>>>);

    impl Drop for Marker {
        fn drop(&mut self) {
            self.0.lock().unwrap().push("released");
        }
    }

    #[tokio::test]
    async fn what_a_write_holds_is_let_go_after_it_not_before() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer_log = log.clone();
        let batcher = Batcher::start("test", 8, move |items: Vec<u32>| {
            let log = writer_log.clone();
            async move {
                assert!(hold_until_answered(Marker(log.clone())).is_none());
                // A second transaction of the same batch takes it back
                // (and a value of another type is not it).
                assert!(take_held::<u32>().is_none());
                let again = take_held::<Marker>().expect("held");
                assert!(hold_until_answered(again).is_none());
                log.lock().unwrap().push("written");
                Ok(items)
            }
        });
        assert_eq!(batcher.submit(7).await.unwrap(), 7);
        // Let the writer task get past its answers.
        tokio::task::yield_now().await;
        for _ in 0..100 {
            if log.lock().unwrap().len() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(*log.lock().unwrap(), ["written", "released"]);
        // Outside a batch's write nothing is held.
        let marker = Marker(Arc::new(Mutex::new(Vec::new())));
        assert!(hold_until_answered(marker).is_some());
        assert!(take_held::<Marker>().is_none());
    }
}
