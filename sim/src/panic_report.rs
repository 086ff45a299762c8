//! Which seed each thread is simulating, so that a panic inside a machine (a bug the
//! simulator found) names the seed and the command that replays it. The `sim` build profile
//! aborts on panic, so nothing can catch the panic: the hook is where the seed gets printed.

use std::cell::RefCell;

thread_local! {
    static CURRENT: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

/// Marks this thread as running one seed until dropped.
pub struct Running(());

impl Running {
    pub fn start(seed: u64, replay: String) -> Running {
        CURRENT.with(|c| *c.borrow_mut() = Some((seed, replay)));
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // `try_with`: a thread being torn down has no slot left to clear.
        let _ = CURRENT.try_with(|c| c.borrow_mut().take());
    }
}

/// The line a panic on this thread adds, if it happened while a seed was running.
pub fn line() -> Option<String> {
    CURRENT
        .try_with(|c| {
            c.try_borrow()
                .ok()?
                .as_ref()
                .map(|(seed, replay)| format!("astra-sim: seed {seed} panicked; replay: {replay}"))
        })
        .ok()
        .flatten()
}

/// Installs a panic hook that prints `line()` after the default report.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if let Some(l) = line() {
            eprintln!("{l}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_running_seed_only_while_it_runs() {
        assert_eq!(line(), None);
        let r = Running::start(7, "astra-sim --seed 7".into());
        assert_eq!(
            line().as_deref(),
            Some("astra-sim: seed 7 panicked; replay: astra-sim --seed 7")
        );
        drop(r);
        assert_eq!(line(), None);
    }
}
