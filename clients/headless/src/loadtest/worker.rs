//! One worker thread of a load test: it owns a share of the bots and
//! steps them all in one loop (no thread per bot).
//!
//! A bot is stepped when its socket has datagrams waiting (epoll, through
//! [`Poller`]) or when it has something to do on a timer: a move, a ping,
//! or the periodic service a connection needs (netcode's handshake and
//! keep-alives, renet's resends). Asking every socket on every pass cost
//! a system call per bot per pass, almost all of them empty.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tessera_net::{
    proto::{self, client_message::Body},
    transport::Poller,
};

use super::{Live, LoadConfig, Scenario, Tally, micros};
use crate::{
    behave::{Behaviour, Rosters},
    session::{Login, Session, SessionError, login},
};

struct Bot {
    session: Option<Session>,
    started: Instant,
    joined: bool,
    welcomed_at: Option<Instant>,
    last_snapshot: Option<(u64, Instant)>,
    next_move: Instant,
    next_ping: Instant,
    behaviour: Behaviour,
    lockstep: Option<crate::lockstep::Lockstep>,
    sent_frame: u64,
    done: bool,
    /// Its socket is in the poller (else it is stepped on every scan).
    watched: bool,
    /// When it is stepped next even with nothing to read.
    next_service: Instant,
}

/// A login done off the bots' loop: the bot's index, how long it took, and
/// the login.
type LoggedIn = (usize, Duration, Result<Login, SessionError>);

/// Logs `mine` in at the ramp's pace on a thread of its own, so that slow
/// HTTP answers never stall the loop that steps the bots.
fn logins(
    config: &LoadConfig,
    mine: Vec<usize>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> std::sync::mpsc::Receiver<LoggedIn> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (server, seed, ramp) = (config.server.clone(), config.seed, config.ramp.max(0.001));
    std::thread::spawn(move || {
        for index in mine {
            let due = t0 + Duration::from_secs_f64(index as f64 / ramp);
            while Instant::now() < due {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
            }
            let began = Instant::now();
            let result = login(&server, &format!("bot-{seed}-{index}"));
            if tx.send((index, began.elapsed(), result)).is_err() {
                return;
            }
        }
    });
    rx
}

/// How often a bot with nothing to read is stepped anyway while it
/// connects (netcode resends its handshake every 100 ms).
const SERVICE_CONNECTING: Duration = Duration::from_millis(10);

/// How often a connected bot with nothing to read is stepped anyway
/// (acknowledgements, resends, keep-alives; it also moves every 50 ms).
const SERVICE_CONNECTED: Duration = Duration::from_millis(50);

/// How often every bot is checked for something due on a timer; the
/// longest a bot waits for its readiness between checks.
const SCAN_EVERY: Duration = Duration::from_millis(2);

fn fail(tally: &mut Tally, live: &Live, reason: String) {
    *tally.failed.entry(reason).or_default() += 1;
    live.failed.fetch_add(1, Ordering::Relaxed);
}

/// Steps `mine` until the run's end.
pub(super) fn worker(
    config: &LoadConfig,
    mine: Vec<usize>,
    live: &Live,
    stop: &Arc<AtomicBool>,
    t0: Instant,
    rosters: &Rosters,
    empty: &Histogram<u64>,
) -> Tally {
    let mut tally = Tally::new(empty);
    let mut bots: Vec<Bot> = Vec::new();
    let logged_in = logins(config, mine, t0, stop.clone());
    let end = t0 + config.duration;
    // Without a poller (no epoll, or out of file descriptors) every bot is
    // stepped on every scan, as it would be without readiness.
    let mut poller = Poller::new()
        .inspect_err(|error| {
            eprintln!("warning: no socket readiness ({error}): stepping every bot")
        })
        .ok();
    let mut ready: Vec<u64> = Vec::new();
    let mut next_scan = Instant::now();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // Start the bots whose login is back.
        for (index, took, result) in logged_in.try_iter() {
            match result.and_then(|l| Session::begin(&l)) {
                Ok(session) => {
                    tally.login.record(took.as_micros().max(1) as u64).ok();
                    let watched = poller
                        .as_mut()
                        .is_some_and(|p| session.watch(p, bots.len() as u64).is_ok());
                    bots.push(Bot {
                        session: Some(session),
                        started: Instant::now(),
                        joined: false,
                        welcomed_at: None,
                        last_snapshot: None,
                        next_move: now,
                        next_ping: now,
                        behaviour: Behaviour::new(config.scenario, index, config.seed),
                        lockstep: config.tables.clone().map(|tables| {
                            crate::lockstep::Lockstep::new(tables, config.seed ^ index as u64, 0)
                        }),
                        sent_frame: u64::MAX,
                        done: false,
                        watched,
                        next_service: now,
                    });
                }
                Err(error) => fail(&mut tally, live, format!("login: {error}")),
            }
        }
        if now >= next_scan {
            next_scan = now + SCAN_EVERY;
            let mut step = Step {
                config,
                live,
                rosters,
                tally: &mut tally,
            };
            for bot in bots.iter_mut().filter(|b| b.due(now, config.scenario)) {
                service(bot, now, &mut step);
            }
        }
        ready.clear();
        let wait = next_scan.saturating_duration_since(Instant::now());
        match poller.as_mut().map(|p| p.wait(wait, &mut ready)) {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                // Once, then every bot is stepped on every scan.
                eprintln!(
                    "warning: waiting for socket readiness failed ({error}): stepping every bot"
                );
                poller = None;
                bots.iter_mut().for_each(|bot| bot.watched = false);
                std::thread::sleep(wait);
            }
            None => std::thread::sleep(wait),
        }
        let now = Instant::now();
        let mut step = Step {
            config,
            live,
            rosters,
            tally: &mut tally,
        };
        for &token in &ready {
            if let Some(bot) = bots.get_mut(token as usize)
                && !bot.done
            {
                service(bot, now, &mut step);
            }
        }
    }
    for bot in &mut bots {
        close(bot, &mut tally, true);
    }
    tally
}

/// Counts what a bot did and disconnects it, when it ends or the run does.
/// Its time in the world ends here; the size of its view counts only at
/// the run's end (a view "at the end" of the run).
fn close(bot: &mut Bot, tally: &mut Tally, run_ended: bool) {
    let Some(mut session) = bot.session.take() else {
        return;
    };
    tally.bytes_in += session.bytes_in;
    tally.bytes_out += session.bytes_out;
    tally.view_updates += session.view_updates;
    tally.view_entries += session.view_entries;
    if let Some(at) = bot.welcomed_at {
        tally.bot_seconds += at.elapsed().as_secs_f64();
        if run_ended && let Some(snapshot) = &session.snapshot {
            tally.views.push(snapshot.entities.len());
        }
    }
    if let Some(lockstep) = &bot.lockstep {
        tally.frames += lockstep.frame();
        tally.desyncs += lockstep.desyncs + lockstep.server_desyncs.len() as u64;
    }
    session.disconnect();
}

impl Bot {
    /// Whether the bot has something to do at `now` besides reading: it
    /// moves and pings only once in the world (a frame-sync bot sends its
    /// inputs as frames arrive, which makes it readable).
    fn due(&self, now: Instant, scenario: Scenario) -> bool {
        let playing = self.welcomed_at.is_some();
        !self.done
            && (!self.watched
                || now >= self.next_service
                || (playing && now >= self.next_ping)
                || (playing && scenario != Scenario::Lockstep && now >= self.next_move))
    }
}

/// What stepping a bot reads and where it counts: the run's settings, the
/// live counters, the rosters bots share, and this worker's tally.
struct Step<'a> {
    config: &'a LoadConfig,
    live: &'a Live,
    rosters: &'a Rosters,
    tally: &'a mut Tally,
}

/// Steps one bot: reads what arrived, plays, and sends what that queued in
/// one flush. A bot that ends is taken out of the poller (level-triggered
/// readiness would otherwise report its unread socket on every wait).
fn service(bot: &mut Bot, now: Instant, step: &mut Step) {
    let Some(session) = bot.session.as_mut() else {
        return;
    };
    bot.next_service = now
        + if bot.welcomed_at.is_some() {
            SERVICE_CONNECTED
        } else {
            SERVICE_CONNECTING
        };
    let mut result = session.receive();
    if result.is_ok() {
        if bot.welcomed_at.is_some() && now >= bot.next_ping {
            bot.next_ping = now + Duration::from_secs(1);
            session.send(Body::Ping(proto::Ping {
                client_time_us: micros(),
            }));
        }
        play(bot, now, step);
        if let Some(session) = bot.session.as_mut()
            && !bot.done
        {
            result = session.flush();
        }
    }
    let (live, tally) = (step.live, &mut *step.tally);
    if let Err(error) = result {
        fail(tally, live, format!("transport: {error}"));
        if bot.welcomed_at.is_some() {
            live.connected.fetch_sub(1, Ordering::Relaxed);
        }
        bot.done = true;
    }
    if bot.done {
        // Closed now: the poller forgets a closed socket, and nothing more
        // is read from a bot that has ended.
        close(bot, tally, false);
    }
}

/// What a bot does with what it has read.
fn play(bot: &mut Bot, now: Instant, step: &mut Step) {
    let (config, live, rosters) = (step.config, step.live, step.rosters);
    let tally = &mut *step.tally;
    let Some(session) = bot.session.as_mut() else {
        return;
    };
    if let Some(reason) = session.disconnected.clone().or_else(|| {
        session
            .kicked
            .as_ref()
            .map(|k| format!("kicked: {}", k.detail))
    }) {
        if bot.welcomed_at.is_some() {
            tally.disconnects += 1;
            live.connected.fetch_sub(1, Ordering::Relaxed);
        } else {
            fail(tally, live, format!("connect: {reason}"));
        }
        bot.done = true;
        return;
    }
    if !session.is_connected() {
        if bot.started.elapsed() > Duration::from_secs(15) {
            fail(tally, live, "connect: timed out".into());
            bot.done = true;
        }
        return;
    }
    if !bot.joined {
        // Fighters need the warrior's slash; roam100 runners their
        // sting and mend; the others walk.
        let class = match config.scenario {
            Scenario::Fight | Scenario::Arena | Scenario::Team => "warrior",
            Scenario::Roam100 => "runner",
            Scenario::Roam | Scenario::Lockstep => "mage",
        };
        session.send(Body::Join(proto::JoinWorld {
            class: class.into(),
            world: config.scenario.world().into(),
        }));
        bot.joined = true;
    }
    if bot.welcomed_at.is_none()
        && let Some(refused) = session
            .responses
            .iter()
            .find(|r| r.code != proto::ResultCode::Ok as i32)
    {
        fail(tally, live, format!("join: {}", refused.reason));
        bot.done = true;
        return;
    }
    if config.scenario == Scenario::Lockstep
        && let Some(lockstep) = bot.lockstep.as_mut()
    {
        if let Some(welcome) = &session.welcome {
            lockstep.welcome(welcome);
        }
        for body in std::mem::take(&mut session.frame_messages) {
            if let Err(error) = lockstep.receive(body) {
                fail(tally, live, format!("lockstep: {error}"));
                bot.done = true;
                break;
            }
        }
        let frame = lockstep.frame();
        if frame != bot.sent_frame
            && let Some(uplink) = lockstep.uplink(tessera_sim::PlayerId(session.player))
        {
            session.send(Body::Frames(uplink.encode()));
            bot.sent_frame = frame;
        }
    }
    // In the world: a snapshot (state sync) or the room's history
    // (frame sync) has arrived.
    let arrived = match config.scenario {
        Scenario::Lockstep => bot.lockstep.as_ref().is_some_and(|l| l.frame() > 0),
        _ => session.snapshot.is_some(),
    };
    if bot.welcomed_at.is_none() && session.welcome.is_some() && arrived {
        bot.welcomed_at = Some(Instant::now());
        tally
            .connect
            .record(bot.started.elapsed().as_micros().max(1) as u64)
            .ok();
        live.connected.fetch_add(1, Ordering::Relaxed);
    }
    if bot.welcomed_at.is_none() {
        return;
    }
    if let Some(snapshot) = session.snapshot.as_ref() {
        let tick = snapshot.tick;
        match bot.last_snapshot {
            Some((last, at)) if tick > last => {
                tally
                    .interval
                    .record(at.elapsed().as_micros().max(1) as u64)
                    .ok();
                bot.last_snapshot = Some((tick, Instant::now()));
            }
            None => bot.last_snapshot = Some((tick, Instant::now())),
            _ => {}
        }
    }
    let taken = micros();
    for pong in session.pongs.drain(..) {
        let arrived = pong.arrived_us.unwrap_or(taken).min(taken);
        let record = |histogram: &mut Histogram<u64>, at: u64| {
            histogram
                .record(at.saturating_sub(pong.sent_us).max(1))
                .ok();
        };
        record(&mut tally.rtt, arrived);
        record(&mut tally.rtt_loop, taken);
    }
    session.responses.clear();
    // At the input rate, not every pass: a skill per pass would be
    // a flood (and get the bot kicked).
    if now >= bot.next_move && config.scenario != Scenario::Lockstep {
        bot.next_move = now + Duration::from_millis(50);
        let stepped = bot.behaviour.step(session, rosters, now);
        tally.events += stepped.events;
        tally.room_results += u64::from(stepped.room_result);
    }
}
