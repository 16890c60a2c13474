//! Where the tests' Redis and MongoDB servers are.
//!
//! `scripts/test.sh` starts both on free ports and exports their URLs. A test
//! that needs one and runs without it fails, loudly and with the fix: a store
//! test that silently passes without its store would be a fake green.

/// Environment variable holding the Redis URL for tests.
pub const REDIS_URL_VAR: &str = "TESSERA_TEST_REDIS_URL";
/// Environment variable holding the MongoDB URI for tests.
pub const MONGODB_URI_VAR: &str = "TESSERA_TEST_MONGODB_URI";

/// A service the tests need is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{var} is not set: run the tests with scripts/test.sh, which starts Redis and MongoDB and exports it"
)]
pub struct MissingService {
    /// The variable that was missing.
    pub var: &'static str,
}

fn lookup(var: &'static str) -> Result<String, MissingService> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingService { var })
}

/// The Redis URL the tests must use.
pub fn redis_url() -> Result<String, MissingService> {
    lookup(REDIS_URL_VAR)
}

/// The MongoDB URI the tests must use.
pub fn mongodb_uri() -> Result<String, MissingService> {
    lookup(MONGODB_URI_VAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_says_how_to_fix_it() {
        let message = MissingService { var: REDIS_URL_VAR }.to_string();
        assert!(message.contains("scripts/test.sh") && message.contains(REDIS_URL_VAR));
    }
}
