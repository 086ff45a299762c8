//! `astra-worker ref-scheduler`: the strict reference scheduler as a standalone server.
//! Control on stdin (JSON lines), events on stdout (JSON lines), so any language can drive
//! it in tests.

use crate::app::cli::RefSchedulerArgs;
use crate::app::refsched::RefScheduler;
use crate::app::runtime::Runtime;
use astra_core::scheduler::{AckRace, RunSpec, SchedulerConfig};
use futures_util::future::{select, Either};
use serde::Deserialize;
use std::io::BufRead;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Control {
    Submit(RunSpec),
    Inject {
        worker_id: String,
        frame: serde_json::Value,
    },
    DropConnections {},
}

pub async fn serve<R: Runtime>(rt: &R, args: RefSchedulerArgs) -> ExitCode {
    crate::app::logging::init(
        crate::config::LogLevel::Warning,
        crate::config::LogFormat::Text,
    );
    let cfg = SchedulerConfig {
        ack_timeout: Duration::from_secs_f64(args.ack_timeout.max(0.001)),
        ack_race: args.ack_race_ms.map(|ms| AckRace {
            window: Duration::from_millis(ms),
            probability: 1.0,
        }),
        ..SchedulerConfig::default()
    };
    let sched = match RefScheduler::start(rt, args.listen, cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    eprintln!("reference scheduler at {}", sched.url());
    println!("{}", serde_json::json!({"listening": sched.url()}));
    let events = sched.subscribe();
    let lines = stdin_lines(rt);
    let mut stdin_open = true;
    loop {
        let next = if stdin_open {
            match select(pin!(events.recv()), pin!(lines.recv())).await {
                Either::Left((ev, _)) => Either::Left(ev),
                Either::Right((line, _)) => Either::Right(line),
            }
        } else {
            Either::Left(events.recv().await)
        };
        match next {
            Either::Left(Ok(ev)) => println!("{}", serde_json::to_string(&ev).unwrap_or_default()),
            Either::Left(Err(_)) => return ExitCode::SUCCESS,
            Either::Right(Ok(l)) if l.trim().is_empty() => {}
            Either::Right(Ok(l)) => match serde_json::from_str::<Control>(&l) {
                Ok(Control::Submit(run)) => sched.submit(run),
                Ok(Control::Inject { worker_id, frame }) => sched.inject_to_worker(&worker_id, frame.to_string()),
                Ok(Control::DropConnections {}) => sched.drop_connections(),
                Err(e) => eprintln!("error: bad control line ({e}); expected {{\"submit\":RUN}}, {{\"inject\":{{\"worker_id\":..,\"frame\":..}}}} or {{\"drop_connections\":{{}}}}"),
            },
            Either::Right(Err(_)) => stdin_open = false,
        }
    }
}

/// Lines of standard input, read on the blocking pool; the channel closes at end of input
/// or on a read error.
fn stdin_lines<R: Runtime>(rt: &R) -> async_channel::Receiver<String> {
    let (tx, rx) = async_channel::unbounded();
    rt.spawn_blocking(Box::new(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send_blocking(line).is_err() {
                break;
            }
        }
    }));
    rx
}
