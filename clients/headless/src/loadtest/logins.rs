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

use super::{LoadConfig, Scenario};
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

/// The guest identity of bot `index` in a run of `scenario` with `seed`:
/// the same player on every login, and in every run with the same three
/// (a second run finds the progress of the first). Tools running
/// different scenarios against one node never share a player; two
/// running the same one need different seeds, or each kicks the other's
/// bots ("this player connected again").
pub fn device_id(scenario: Scenario, seed: u64, index: usize) -> String {
    format!("bot-{}-{seed}-{index}", scenario.name())
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
    let (server, scenario, seed) = (config.server.clone(), config.scenario, config.seed);
    let ramp = config.ramp.max(0.001);
    let device = move |index| device_id(scenario, seed, index);
    std::thread::spawn(move || {
        let again_in = |(slot, index, last): (usize, usize, Login)| {
            let began = Instant::now();
            // The session's fresh token; a node that no longer knows the
            // session (restarted without Redis) takes the guest login.
            let result = match refresh(&server, &last) {
                Err(SessionError::UnknownSession) => login(&server, &device(index)),
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
                        let result = login(&server, &device(index));
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

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::{Scenario, device_id};

    #[test]
    fn runs_of_different_scenarios_never_share_a_player_and_a_rerun_is_the_same_players() {
        let ids: std::collections::BTreeSet<String> = Scenario::value_variants()
            .iter()
            .map(|scenario| device_id(*scenario, 1, 0))
            .collect();
        assert_eq!(ids.len(), Scenario::value_variants().len(), "{ids:?}");
        assert_eq!(
            device_id(Scenario::Fight, 9, 3),
            device_id(Scenario::Fight, 9, 3)
        );
        assert_ne!(
            device_id(Scenario::Fight, 9, 3),
            device_id(Scenario::Fight, 10, 3)
        );
        // The name is the command line's.
        for scenario in Scenario::value_variants() {
            let value = scenario.to_possible_value().unwrap();
            assert_eq!(value.get_name(), scenario.name());
        }
    }
}
