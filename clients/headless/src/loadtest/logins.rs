//! The HTTP side of one worker's bots, on a thread of its own so that slow
//! answers never stall the loop that steps the bots: first logins at the
//! ramp's pace, and fresh connect tokens for bots coming back after a
//! drop, as soon as they ask.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use super::LoadConfig;
use crate::session::{Login, SessionError, login, refresh};

/// What a login was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Bot `index` of the run starts.
    First(usize),
    /// The bot in this slot of its worker comes back after a drop.
    Again(usize),
}

/// A login done: what for, how long it took, and the login.
pub(super) type LoggedIn = (Purpose, Duration, Result<Login, SessionError>);

/// A worker's line to its login thread.
pub(super) struct Logins {
    again: mpsc::Sender<(usize, usize, Login)>,
    done: mpsc::Receiver<LoggedIn>,
}

impl Logins {
    /// Asks for a way back in for the bot in `slot` (bot `index` of the
    /// run), whose last login was `login`.
    pub(super) fn again(&self, slot: usize, index: usize, login: Login) {
        // The thread ends only with the run.
        let _ = self.again.send((slot, index, login));
    }

    /// The logins done since the last call.
    pub(super) fn done(&self) -> mpsc::TryIter<'_, LoggedIn> {
        self.done.try_iter()
    }
}

/// The guest identity of bot `index`: the same player on every login.
fn device(seed: u64, index: usize) -> String {
    format!("bot-{seed}-{index}")
}

/// Starts the login thread of a worker whose bots are `mine`.
pub(super) fn start(
    config: &LoadConfig,
    mine: Vec<usize>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> Logins {
    let (done_tx, done) = mpsc::channel();
    let (again, again_rx) = mpsc::channel::<(usize, usize, Login)>();
    let (server, seed, ramp) = (config.server.clone(), config.seed, config.ramp.max(0.001));
    std::thread::spawn(move || {
        let again_in = |(slot, index, last): (usize, usize, Login)| {
            let began = Instant::now();
            // The session's fresh token; a node that no longer knows the
            // session (restarted without Redis) takes the guest login.
            let result = match refresh(&server, &last) {
                Err(SessionError::UnknownSession) => login(&server, &device(seed, index)),
                other => other,
            };
            done_tx.send((Purpose::Again(slot), began.elapsed(), result))
        };
        let mut firsts = mine.into_iter().peekable();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // A bot coming back is a player waiting: before the ramp.
            while let Ok(request) = again_rx.try_recv() {
                if again_in(request).is_err() {
                    return;
                }
            }
            let wait = match firsts.peek() {
                Some(&index) => {
                    let due = t0 + Duration::from_secs_f64(index as f64 / ramp);
                    let now = Instant::now();
                    if now >= due {
                        firsts.next();
                        let began = Instant::now();
                        let result = login(&server, &device(seed, index));
                        if done_tx
                            .send((Purpose::First(index), began.elapsed(), result))
                            .is_err()
                        {
                            return;
                        }
                        continue;
                    }
                    (due - now).min(Duration::from_millis(20))
                }
                None => Duration::from_millis(20),
            };
            match again_rx.recv_timeout(wait) {
                Ok(request) => {
                    if again_in(request).is_err() {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    Logins { again, done }
}
