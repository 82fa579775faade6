//! A shard's byte budget for request frames in flight (admission control).
//!
//! A [`Grant`] starts empty and grows as a frame's bytes arrive (`server::conn`), waiting when
//! the shard's budget is spent, so memory for requests is bounded per shard whatever clients
//! announce; it is given back, all at once, when dropped. Waiters are served as glommio's
//! semaphore serves them: one that fits is woken even if an earlier, larger one does not, so
//! a large step can wait while small ones pass (frames grow by doubling from 64 KiB, so the
//! steps of common frames are small). Response memory has its own budget (fetch reads,
//! `storage::ReadMemory`): a request never waits for one budget while holding the other's
//! bytes for something that waits on it.

use glommio::sync::Semaphore;
use std::rc::Rc;

/// Bytes one shard holds for request frames at most.
pub struct Budget {
    sem: Rc<Semaphore>,
    total: u64,
}

/// Bytes taken from a [`Budget`]; given back when dropped.
pub struct Grant {
    sem: Rc<Semaphore>,
    units: u64,
}

/// The budget was closed (shutdown).
#[derive(Debug)]
pub struct Closed;

impl Budget {
    pub fn new(total: u64) -> Self {
        Budget {
            sem: Rc::new(Semaphore::new(total)),
            total,
        }
    }

    /// An empty grant, to [`Grant::grow`].
    pub fn grant(&self) -> Grant {
        Grant {
            sem: self.sem.clone(),
            units: 0,
        }
    }

    /// Bytes not granted.
    pub fn available(&self) -> u64 {
        self.sem.available()
    }

    /// Whether every grant has been given back.
    pub fn idle(&self) -> bool {
        self.sem.available() >= self.total
    }
}

impl Grant {
    /// Take `bytes` more, waiting until the budget has them.
    pub async fn grow(&mut self, bytes: u64) -> Result<(), Closed> {
        self.sem.acquire(bytes).await.map_err(|_| Closed)?;
        self.units += bytes;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.units
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if self.units > 0 {
            self.sem.signal(self.units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_grow_wait_and_give_back() {
        glommio::LocalExecutor::default().run(async {
            let budget = Rc::new(Budget::new(100));
            let mut a = budget.grant();
            a.grow(60).await.unwrap();
            assert_eq!((a.bytes(), budget.available()), (60, 40));
            let mut b = budget.grant();
            b.grow(40).await.unwrap();
            let waiting = glommio::spawn_local({
                let budget = budget.clone();
                async move {
                    let mut c = budget.grant();
                    c.grow(50).await.unwrap();
                    c.bytes()
                }
            });
            glommio::yield_if_needed().await;
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(budget.available(), 0, "the third grant waits");
            drop(a);
            assert_eq!(waiting.await, 50);
            drop(b);
            assert!(budget.idle());
        });
    }
}
