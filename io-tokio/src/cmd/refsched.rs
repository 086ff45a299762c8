//! `astra-worker ref-scheduler`: the strict reference scheduler as a standalone server.
//! Control on stdin (JSON lines), events on stdout (JSON lines), so any language can drive
//! it in tests.

use crate::cli::RefSchedulerArgs;
use crate::refsched::RefScheduler;
use astra_core::scheduler::{AckRace, RunSpec, SchedulerConfig};
use serde::Deserialize;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

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

pub async fn serve(args: RefSchedulerArgs) -> ExitCode {
    crate::logging::init(
        astra_host::config::LogLevel::Warning,
        astra_host::config::LogFormat::Text,
    );
    let cfg = SchedulerConfig {
        ack_timeout: Duration::from_secs_f64(args.ack_timeout.max(0.001)),
        ack_race: args.ack_race_ms.map(|ms| AckRace {
            window: Duration::from_millis(ms),
            probability: 1.0,
        }),
        ..SchedulerConfig::default()
    };
    let sched = match RefScheduler::start(args.listen, cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    eprintln!("reference scheduler at {}", sched.url());
    println!("{}", serde_json::json!({"listening": sched.url()}));
    let mut events = sched.subscribe();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => println!("{}", serde_json::to_string(&ev).unwrap_or_default()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("warning: {n} events dropped (slow reader)"),
                Err(_) => return ExitCode::SUCCESS,
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) if l.trim().is_empty() => {}
                Ok(Some(l)) => match serde_json::from_str::<Control>(&l) {
                    Ok(Control::Submit(run)) => sched.submit(run),
                    Ok(Control::Inject { worker_id, frame }) => sched.inject_to_worker(&worker_id, frame.to_string()),
                    Ok(Control::DropConnections {}) => sched.drop_connections(),
                    Err(e) => eprintln!("error: bad control line ({e}); expected {{\"submit\":RUN}}, {{\"inject\":{{\"worker_id\":..,\"frame\":..}}}} or {{\"drop_connections\":{{}}}}"),
                },
                _ => stdin_open = false,
            },
        }
    }
}
