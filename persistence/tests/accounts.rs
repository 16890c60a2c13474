//! Accounts in both stores: a username is unique even under racing
//! registrations, and what is stored comes back whole.

use std::sync::Arc;

use tessera_persistence::{
    accounts::{Account, Created},
    embedded::EmbeddedStore,
    flush::Backend,
    mongo::MongoStore,
    services,
};

async fn backends() -> (tempfile::TempDir, Vec<(&'static str, Backend)>) {
    let uri = services::mongodb_uri().unwrap_or_else(|e| panic!("{e}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mongo = MongoStore::connect(
        &uri,
        &format!("tessera_accounts_{}_{nanos}", std::process::id()),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(&dir.path().join("players.redb")).unwrap();
    (
        dir,
        vec![
            ("embedded", Backend::Embedded(Arc::new(embedded))),
            ("mongodb", Backend::Mongo(mongo)),
        ],
    )
}

fn account(username: &str, player: u64) -> Account {
    Account {
        username: username.into(),
        player,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${username}"),
        created_unix_ms: 1_700_000_000_000 + player,
    }
}

#[tokio::test]
async fn an_account_round_trips_and_its_name_cannot_be_taken_twice() {
    let (_dir, backends) = backends().await;
    for (name, backend) in backends {
        let alice = account("alice", 41);
        assert_eq!(
            backend.create_account(alice.clone()).await.unwrap(),
            Created::Yes,
            "{name}"
        );
        assert_eq!(
            backend.account("alice").await.unwrap(),
            Some(alice.clone()),
            "{name}"
        );
        assert_eq!(backend.account("bob").await.unwrap(), None, "{name}");

        let mut again = account("alice", 42);
        again.password_hash = "$argon2id$other".into();
        assert_eq!(
            backend.create_account(again).await.unwrap(),
            Created::Taken,
            "{name}"
        );
        assert_eq!(
            backend.account("alice").await.unwrap(),
            Some(alice.clone()),
            "{name}: a refused registration changes nothing"
        );
        assert_eq!(
            backend.create_account(account("alice2", 41)).await.unwrap(),
            Created::Taken,
            "{name}: one player id, one account"
        );
        assert_eq!(backend.account("alice2").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn racing_registrations_of_one_name_have_exactly_one_winner() {
    let (_dir, backends) = backends().await;
    for (name, backend) in backends {
        let races: Vec<_> = (0..8u64)
            .map(|i| {
                let backend = backend.clone();
                tokio::spawn(async move { backend.create_account(account("carol", 100 + i)).await })
            })
            .collect();
        let mut created = 0;
        for race in races {
            if race.await.unwrap().unwrap() == Created::Yes {
                created += 1;
            }
        }
        assert_eq!(created, 1, "{name}");
        let stored = backend
            .account("carol")
            .await
            .unwrap()
            .expect("one account");
        assert!((100..108).contains(&stored.player), "{name}: {stored:?}");
    }
}
