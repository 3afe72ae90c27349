//! The one way a test waits for the system to get somewhere (issue 16): ask again until the
//! answer is the awaited one or the time is up, then hand back the last answer so the test's
//! own assertion says what was seen instead. No test sleeps a fixed time hoping it is enough.

use std::time::Duration;

use tokio::time::Instant;

/// How often [`poll`] asks again: often enough that a test ends soon after the system gets
/// there, rarely enough not to load the services it watches.
pub const EVERY: Duration = Duration::from_millis(100);

/// Calls `fetch` until `done` holds for its answer or `within` has passed, and returns the last
/// answer either way: the caller asserts on it, so a timeout fails with what was seen.
///
/// ```no_run
/// # async fn demo(count: impl AsyncFnMut() -> usize) {
/// use std::time::Duration;
/// let got = redress_test_support::poll(Duration::from_secs(5), count, |n| *n >= 3).await;
/// assert!(got >= 3, "only {got} arrived");
/// # }
/// ```
pub async fn poll<T>(
    within: Duration,
    mut fetch: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let answer = fetch().await;
        if done(&answer) || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Calls `fetch` until it gives `Some` and returns that; panics naming `what` when `within`
/// passes first. For waits whose failure has nothing more to show than "it never came".
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut fetch: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = fetch().await {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(EVERY).await;
    }
}
