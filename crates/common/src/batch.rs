//! Group commit: one writer task takes whatever has queued up and writes it
//! in one transaction, so a burst of requests costs one commit, not one
//! each. Each submitter waits for its own item's result.

use crate::{Error, Result};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

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
        tokio::spawn(async move {
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
            }
        });
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

    /// Items submitted at once share a write, and each gets its own answer.
    #[tokio::test]
    async fn items_share_a_write_and_get_their_own_answers() {
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = writes.clone();
        let batcher = Batcher::start("test", 8, move |items: Vec<u32>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(items.into_iter().map(|i| i * 2).collect()) }
        });
        let answers = futures::future::join_all((0..8).map(|i| batcher.submit(i))).await;
        let answers: Vec<u32> = answers.into_iter().map(|a| a.expect("answer")).collect();
        assert_eq!(answers, (0..8).map(|i| i * 2).collect::<Vec<_>>());
        assert!(writes.load(std::sync::atomic::Ordering::SeqCst) < 8);
    }
}
