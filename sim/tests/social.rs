//! Teams and chat inside a world.

mod support;

use support::Arena;
use tessera_sim::{
    ChatChannel, Input, OutEvent, PlayerId, Rejection, SkillTarget, TeamCommand, TeamId,
    combat::components::Allegiance,
};

fn say(arena: &mut Arena, player: u64, channel: ChatChannel, text: &str) {
    arena.input(
        player,
        Input::Chat {
            channel,
            text: text.into(),
        },
    );
}

/// Players 1..=3 in one team led by 1.
fn team_of_three(arena: &mut Arena) -> TeamId {
    for p in 1..=3 {
        arena.join(p, "warrior", 50 + p as i32, 50);
    }
    arena.input(1, Input::Team(TeamCommand::Create));
    arena.step();
    let team = TeamId(1);
    for p in [2, 3] {
        arena.input(1, Input::Team(TeamCommand::Invite(PlayerId(p))));
        arena.step();
        assert!(arena.events.contains(&OutEvent::TeamInvite {
            to: PlayerId(p),
            team,
            by: PlayerId(1)
        }));
        arena.input(p, Input::Team(TeamCommand::Accept(team)));
        arena.step();
    }
    team
}

#[test]
fn team_chat_reaches_members_and_a_kicked_member_cannot_use_it() {
    let mut arena = Arena::pvp();
    let team = team_of_three(&mut arena);
    say(&mut arena, 2, ChatChannel::Team, "  on my way  ");
    arena.step();
    assert_eq!(
        arena.events,
        vec![OutEvent::Chat {
            to: Some(vec![PlayerId(1), PlayerId(2), PlayerId(3)]),
            from: PlayerId(2),
            channel: ChatChannel::Team,
            text: "on my way".into(),
        }]
    );
    arena.input(1, Input::Team(TeamCommand::Kick(PlayerId(3))));
    arena.step();
    assert!(arena.events.contains(&OutEvent::TeamLeft {
        to: PlayerId(3),
        team,
        kicked: true
    }));
    say(&mut arena, 3, ChatChannel::Team, "hello?");
    arena.step();
    assert_eq!(arena.rejections(3), vec![Rejection::NotInTeam]);
    let id3 = tessera_sim::players::avatar_id(arena.world.world(), PlayerId(3)).unwrap();
    assert_eq!(arena.get::<Allegiance>(id3).team, None);
}

#[test]
fn team_members_see_each_others_health() {
    let mut arena = Arena::pvp();
    team_of_three(&mut arena);
    let foe = arena.join(9, "warrior", 54, 50);
    let member = tessera_sim::players::avatar_id(arena.world.world(), PlayerId(3)).unwrap();
    arena.input(
        9,
        Input::UseSkill {
            skill: "slash".into(),
            target: SkillTarget::Entity(member),
        },
    );
    arena.step();
    assert!(
        arena.events.contains(&OutEvent::TeamMemberHp {
            to: vec![PlayerId(1), PlayerId(2)],
            member: PlayerId(3),
            hp: 1_080,
            max_hp: 1_200
        }),
        "{:?}",
        arena.events
    );
    let _ = foe;
}

#[test]
fn the_leader_leaving_hands_over_and_leaving_the_world_leaves_the_team() {
    let mut arena = Arena::pvp();
    let team = team_of_three(&mut arena);
    arena.input(1, Input::Leave);
    arena.step();
    let view = arena.events.iter().find_map(|e| match e {
        OutEvent::TeamChanged { view, .. } => Some(view.clone()),
        _ => None,
    });
    let view = view.expect("the team hears about it");
    assert_eq!(
        (view.team, view.leader, view.members),
        (team, PlayerId(2), vec![PlayerId(2), PlayerId(3)])
    );
}

#[test]
fn chat_limits_length_emptiness_and_rate() {
    let mut arena = Arena::pvp();
    arena.join(1, "warrior", 50, 50);
    say(&mut arena, 1, ChatChannel::Say, &"x".repeat(201));
    say(&mut arena, 1, ChatChannel::Say, " \n\t ");
    arena.step();
    assert_eq!(
        arena.rejections(1),
        vec![Rejection::ChatTooLong, Rejection::ChatEmpty]
    );
    for _ in 0..6 {
        say(&mut arena, 1, ChatChannel::Say, "spam");
    }
    arena.step();
    let delivered = arena
        .events
        .iter()
        .filter(|e| matches!(e, OutEvent::Chat { to: None, .. }))
        .count();
    assert_eq!(
        (delivered, arena.rejections(1)),
        (5, vec![Rejection::ChatRateLimited])
    );
    arena.steps(100);
    say(&mut arena, 1, ChatChannel::Say, "later");
    arena.step();
    assert_eq!(arena.rejections(1), vec![], "the window (5 s) has passed");
    say(&mut arena, 2, ChatChannel::Say, "who am i");
    arena.step();
    assert_eq!(arena.rejections(2), vec![Rejection::NotJoined]);
}
