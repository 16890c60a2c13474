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

use super::{
    Live, LoadConfig, Scenario, Tally,
    logins::{self, Purpose},
    micros,
};
use crate::{
    behave::{Behaviour, Rosters},
    session::{Login, Session},
};

struct Bot {
    /// Its number in the run (its guest identity).
    index: usize,
    /// Its last login: the session a drop comes back with.
    login: Login,
    session: Option<Session>,
    /// A drop it is coming back from.
    outage: Option<Outage>,
    /// When it logged in (or came back) and began to connect.
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
    /// The world its avatar last entered and where (dm), and whether it
    /// was ever seen at least a metre from there as a session ended.
    entered_at: Option<(String, i32, i32)>,
    moved: bool,
    /// Its avatar took a skill hit (damage or healing).
    hit: bool,
    /// Frame sync: the frame reached and when, for the intervals between
    /// frames arriving.
    last_frame: Option<(u64, Instant)>,
    /// Its session's messages already counted for the live display.
    messages_counted: u64,
}

/// A bot coming back after a drop: since when, how many tries so far,
/// and when the next one goes (none while one is out).
struct Outage {
    since: Instant,
    tries: u32,
    next_try: Option<Instant>,
}

/// Tries to come back after a drop before the bot counts as failed: the
/// waits before them double from 250 ms to 8 s, ~16 s of waiting in all
/// (a node restarting, or a network coming back), each try then given up
/// to [`CONNECT_TIMEOUT`] to be back in the world.
const RECONNECT_TRIES: u32 = 6;

fn backoff(tries: u32) -> Duration {
    Duration::from_millis(250 << tries.min(5))
}

/// How long a bot has to connect (and, coming back, to be in the world
/// again) before it counts as failed or tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a bot with nothing to read is stepped anyway while it
/// connects (netcode resends its handshake every 100 ms).
const SERVICE_CONNECTING: Duration = Duration::from_millis(10);

/// How often a connected bot with nothing to read is stepped anyway
/// (acknowledgements, resends, keep-alives; it also moves each world tick).
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
    let (asked, mut not_logged_in) = (mine.len(), 0);
    let logins = logins::start(config, mine, t0, stop.clone());
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
        // Start the bots whose login is back, and those coming back.
        for (purpose, took, result) in logins.done() {
            match purpose {
                Purpose::First(index) => {
                    let started = result
                        .and_then(|login| Session::begin(&login).map(|session| (login, session)));
                    match started {
                        Ok((login, session)) => {
                            tally.login.record(took.as_micros().max(1) as u64).ok();
                            let mut bot = Bot::new(config, index, login, now);
                            bot.start(session, bots.len(), poller.as_mut(), now);
                            bots.push(bot);
                        }
                        Err(error) => {
                            not_logged_in += 1;
                            fail(&mut tally, live, error.to_string());
                        }
                    }
                }
                Purpose::Again(slot) => {
                    if let Some(bot) = bots.get_mut(slot) {
                        let back = result.and_then(|login| {
                            Session::begin(&login).map(|session| (login, session))
                        });
                        match back {
                            Ok((login, session)) => {
                                bot.login = login;
                                bot.start(session, slot, poller.as_mut(), Instant::now());
                            }
                            Err(error) => retry(bot, &mut tally, live, error.to_string(), now),
                        }
                    }
                }
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
            for (slot, bot) in bots.iter_mut().enumerate() {
                if let Some(outage) = bot.outage.as_mut()
                    && !bot.done
                    && outage.next_try.is_some_and(|at| now >= at)
                {
                    outage.next_try = None;
                    outage.tries += 1;
                    logins.again(slot, bot.index, bot.login.clone());
                }
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
        if !bot.done && bot.welcomed_at.is_none() {
            let stage = if bot.outage.is_some() {
                "coming back"
            } else {
                "connecting"
            };
            fail(
                &mut tally,
                live,
                format!("not in the world at the end ({stage})"),
            );
        }
        close(bot, &mut tally, true);
        tally.bots_moved += u64::from(bot.moved);
        tally.bots_hit += u64::from(bot.hit);
    }
    // Logins the run ended before (a ramp longer than the run).
    for _ in bots.len() + not_logged_in..asked {
        fail(
            &mut tally,
            live,
            "not in the world at the end (not logged in)".into(),
        );
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
    tally.error("snapshot not applied", session.bad_deltas);
    tally.error("message not decoded", session.undecodable);
    bot.moved |= away_from_entry(&bot.entered_at, &session);
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

/// Whether the avatar is at least a metre from where it entered its
/// world (`entered`: the world, x and y in decimetres).
fn away_from_entry(entered: &Option<(String, i32, i32)>, session: &Session) -> bool {
    let (Some((world, x, y)), Some(now), Some(welcome)) = (
        entered,
        session.avatar().and_then(|avatar| session.entity(avatar)),
        &session.welcome,
    ) else {
        return false;
    };
    let dx = i64::from(now.x_dm) - i64::from(*x);
    let dy = i64::from(now.y_dm) - i64::from(*y);
    *world == welcome.world && dx * dx + dy * dy >= 10 * 10
}

/// Something numbered `n` (a snapshot's tick, a frame) is the newest
/// arrived: the time since the one before goes into `interval`.
fn spaced(last: &mut Option<(u64, Instant)>, n: u64, interval: &mut Histogram<u64>) {
    match *last {
        Some((before, at)) if n > before => {
            interval.saturating_record(at.elapsed().as_micros().max(1) as u64);
            *last = Some((n, Instant::now()));
        }
        None => *last = Some((n, Instant::now())),
        _ => {}
    }
}

/// A fresh frame-sync mirror for bot `index` (it starts from the room's
/// checkpoint, as a late joiner does).
fn lockstep_for(config: &LoadConfig, index: usize) -> Option<crate::lockstep::Lockstep> {
    config
        .tables
        .clone()
        .map(|tables| crate::lockstep::Lockstep::new(tables, config.seed ^ index as u64, 0))
}

/// A try to come back failed (`reason`): the next one after a wait, or,
/// once the tries are spent, the bot fails.
fn retry(bot: &mut Bot, tally: &mut Tally, live: &Live, reason: String, now: Instant) {
    match bot.outage.as_mut() {
        Some(outage) if outage.tries < RECONNECT_TRIES => {
            outage.next_try = Some(now + backoff(outage.tries));
        }
        _ => {
            fail(tally, live, format!("reconnect: {reason}"));
            bot.done = true;
        }
    }
}

/// The bot's connection ended (`reason`). A bot that was in the world, or
/// on its way back, comes back when the session says it may (a drop, a
/// node shutting down); otherwise it is done.
fn ended(bot: &mut Bot, step: &mut Step, reason: String, may_reconnect: bool, now: Instant) {
    let (config, live, tally) = (step.config, step.live, &mut *step.tally);
    let playing = bot.welcomed_at.is_some();
    if playing {
        tally.disconnects += 1;
        live.connected.fetch_sub(1, Ordering::Relaxed);
    }
    if may_reconnect && (playing || bot.outage.is_some()) {
        // What it did so far counts; its time in the world stops here.
        close(bot, tally, false);
        bot.welcomed_at = None;
        bot.lockstep = lockstep_for(config, bot.index);
        bot.outage.get_or_insert(Outage {
            since: now,
            tries: 0,
            next_try: None,
        });
        retry(bot, tally, live, reason, now);
        return;
    }
    let stage = if bot.outage.is_some() {
        "reconnect: "
    } else if !playing {
        "connect: "
    } else {
        // In the world, then ended for good (a kick).
        ""
    };
    fail(tally, live, format!("{stage}{reason}"));
    bot.done = true;
}

impl Bot {
    fn new(config: &LoadConfig, index: usize, login: Login, now: Instant) -> Self {
        Self {
            index,
            login,
            session: None,
            outage: None,
            started: now,
            joined: false,
            welcomed_at: None,
            last_snapshot: None,
            next_move: now,
            next_ping: now,
            behaviour: Behaviour::new(config.scenario, index, config.seed),
            lockstep: lockstep_for(config, index),
            sent_frame: u64::MAX,
            done: false,
            watched: false,
            next_service: now,
            entered_at: None,
            moved: false,
            hit: false,
            last_frame: None,
            messages_counted: 0,
        }
    }

    /// Connects with `session` (just begun), stepped as `slot` of its
    /// worker: at first, or coming back.
    fn start(&mut self, session: Session, slot: usize, poller: Option<&mut Poller>, now: Instant) {
        self.watched = poller.is_some_and(|p| session.watch(p, slot as u64).is_ok());
        self.session = Some(session);
        self.started = now;
        self.joined = false;
        self.welcomed_at = None;
        self.last_snapshot = None;
        self.last_frame = None;
        self.messages_counted = 0;
        self.sent_frame = u64::MAX;
        self.next_service = now;
    }

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
            // Once a second too: a roamer that is back near where it
            // entered when the run ends still moved.
            bot.moved |= away_from_entry(&bot.entered_at, session);
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
    live.messages.fetch_add(
        session.messages_in - bot.messages_counted,
        Ordering::Relaxed,
    );
    bot.messages_counted = session.messages_in;
    if let Some(reason) = session.disconnected.clone().or_else(|| {
        session
            .kicked
            .as_ref()
            .map(|k| format!("kicked: {}", k.detail))
    }) {
        let may_reconnect = session.may_reconnect();
        ended(bot, step, reason, may_reconnect, now);
        return;
    }
    // Coming back, a try that is not back in the world within the connect
    // timeout is one try (connected or not).
    if bot.outage.is_some() && bot.welcomed_at.is_none() && bot.started.elapsed() > CONNECT_TIMEOUT
    {
        ended(bot, step, "not back in the world in time".into(), true, now);
        return;
    }
    if !session.is_connected() {
        if bot.started.elapsed() > CONNECT_TIMEOUT {
            ended(bot, step, "timed out".into(), true, now);
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
                if bot.welcomed_at.is_some() {
                    live.connected.fetch_sub(1, Ordering::Relaxed);
                }
                bot.done = true;
                return;
            }
        }
        let frame = lockstep.frame();
        // Frames arriving are frame sync's snapshots: their spacing is
        // the jitter a player feels.
        if frame > 0 {
            spaced(&mut bot.last_frame, frame, &mut tally.interval);
        }
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

        match bot.outage.take() {
            // Back after a drop: how long the player was out.
            Some(outage) => {
                tally.reconnects += 1;
                tally
                    .reconnect
                    .saturating_record(outage.since.elapsed().as_micros().max(1) as u64);
            }
            None => {
                tally
                    .connect
                    .record(bot.started.elapsed().as_micros().max(1) as u64)
                    .ok();
            }
        }
        live.connected.fetch_add(1, Ordering::Relaxed);
    }
    if bot.welcomed_at.is_none() {
        return;
    }
    // A new world (team bots go to rooms and back): where it entered it.
    if let Some(welcome) = &session.welcome
        && bot
            .entered_at
            .as_ref()
            .is_none_or(|(world, _, _)| *world != welcome.world)
        && let Some(me) = session.avatar().and_then(|avatar| session.entity(avatar))
    {
        bot.entered_at = Some((welcome.world.clone(), me.x_dm, me.y_dm));
    }
    if let Some(snapshot) = session.snapshot.as_ref() {
        spaced(&mut bot.last_snapshot, snapshot.tick, &mut tally.interval);
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
        live.rtt(arrived.saturating_sub(pong.sent_us).max(1));
    }
    for refused in session
        .responses
        .drain(..)
        .filter(|r| r.code != proto::ResultCode::Ok as i32)
    {
        tally.error(&format!("refused: {}", refused.reason), 1);
    }
    // At the world's tick rate, not every pass: a skill per pass would be
    // a flood (and get the bot kicked).
    if now >= bot.next_move && config.scenario != Scenario::Lockstep {
        // A world faster than 60 Hz gets inputs at 60 (a fight bot sends
        // two messages a step, inside the node's rate limit); none said, 20.
        let hz = session.welcome.as_ref().map_or(20, |w| {
            if w.tick_hz == 0 {
                20
            } else {
                w.tick_hz.min(60)
            }
        });
        bot.next_move = now + Duration::from_secs(1) / hz;
        let stepped = bot.behaviour.step(session, rosters, now);
        tally.events += stepped.events;
        tally.room_results += u64::from(stepped.room_result);
        if stepped.rooms_closed > 0 {
            tally.error("room closed by the node", stepped.rooms_closed);
        }
        tally.kills += stepped.kills;
        bot.hit |= stepped.hits_taken > 0;
    }
}
