//! Chat inside a world: say (everyone) and team, with a length limit and a
//! per-player rate limit counted in ticks.

use std::collections::{BTreeMap, VecDeque};

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Res, ResMut},
};
use serde::{Deserialize, Serialize};

use crate::{
    hash::{StableHasher, StateHash},
    input::{ChatChannel, Inbox, Input, PlayerId},
    output::{OutEvent, Outbox, Rejection},
    players::PlayerIndex,
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
    teams::{Teams, apply_team_commands},
    world::{Tick, WorldSpec},
};

/// Chat limits.
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    /// Longest message, in characters.
    pub max_chars: usize,
    /// Messages allowed per window.
    pub burst: usize,
    /// The window, in seconds (converted to ticks by the world's rate).
    pub window_secs: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_chars: 200,
            burst: 5,
            window_secs: 5,
        }
    }
}

/// When each player last spoke (the last `burst` ticks).
#[derive(Resource, Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatHistory(BTreeMap<PlayerId, VecDeque<u64>>);

impl StateHash for ChatHistory {
    fn hash_state(&self, hasher: &mut StableHasher) {
        for (player, ticks) in &self.0 {
            player.hash_state(hasher);
            hasher.write_u64(ticks.len() as u64);
            ticks.iter().for_each(|t| hasher.write_u64(*t));
        }
    }
}

/// Cleans a message: trimmed, control characters turned into spaces.
pub fn clean(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Delivers chat messages or says why not.
#[allow(clippy::too_many_arguments)]
pub fn apply_chat(
    tick: Res<Tick>,
    spec: Res<WorldSpec>,
    settings: Res<ChatSettings>,
    inbox: Res<Inbox>,
    index: Res<PlayerIndex>,
    teams: Res<Teams>,
    mut history: ResMut<ChatHistory>,
    mut outbox: ResMut<Outbox>,
) {
    let window = settings.window_secs * u64::from(spec.tick_hz);
    for envelope in inbox.pending() {
        let Input::Chat { channel, text } = &envelope.input else {
            continue;
        };
        let from = envelope.player;
        let result = (|| {
            index.get(from).ok_or(Rejection::NotJoined)?;
            let text = clean(text);
            if text.is_empty() {
                return Err(Rejection::ChatEmpty);
            }
            if text.chars().count() > settings.max_chars {
                return Err(Rejection::ChatTooLong);
            }
            let to = match channel {
                ChatChannel::Say => None,
                ChatChannel::Team => {
                    let team = teams.team_of(from).ok_or(Rejection::NotInTeam)?;
                    Some(
                        teams
                            .get(team)
                            .map(|t| t.members.clone())
                            .unwrap_or_default(),
                    )
                }
            };
            let sent = history.0.entry(from).or_default();
            while sent.front().is_some_and(|t| *t + window <= tick.0) {
                sent.pop_front();
            }
            if sent.len() >= settings.burst {
                return Err(Rejection::ChatRateLimited);
            }
            sent.push_back(tick.0);
            Ok(OutEvent::Chat {
                to,
                from,
                channel: *channel,
                text,
            })
        })();
        match result {
            Ok(event) => outbox.push(event),
            Err(reason) => outbox.reject(from, envelope.request, reason),
        }
    }
    // Players who left keep no history.
    history
        .0
        .retain(|player, sent| index.get(*player).is_some() && !sent.is_empty());
}

/// Chat with its limits.
#[derive(Debug, Clone, Default)]
pub struct ChatPlugin {
    /// The limits.
    pub settings: ChatSettings,
}

impl Plugin for ChatPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(self.settings.clone())
            .init_resource::<ChatHistory>()
            .add_systems(
                TickSchedule,
                apply_chat
                    .in_set(TickSystems::Social)
                    .after(apply_team_commands),
            )
            .hash_resource::<ChatHistory>();
    }
}
