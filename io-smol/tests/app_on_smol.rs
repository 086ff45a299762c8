//! The shared application end to end on smol: the demo (reference scheduler, real
//! WebSocket, sample runs, drain) and `verify` against a reference scheduler.

use astra_core::scheduler::SchedulerConfig;
use astra_host::app::cli::{DemoArgs, VerifyArgs};
use astra_host::app::cmd::{demo, verify};
use astra_host::app::refsched::RefScheduler;
use astra_io_smol::SmolRuntime;
use std::process::ExitCode;
use std::sync::Arc;

fn block_on<T>(
    f: impl FnOnce(SmolRuntime) -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>>,
) -> T {
    let ex = Arc::new(smol::Executor::new());
    let rt = SmolRuntime::new(ex.clone());
    smol::block_on(ex.run(f(rt)))
}

#[test]
fn demo_succeeds() {
    let code = block_on(|rt| {
        Box::pin(async move {
            let args = DemoArgs {
                runs: 1,
                verbose: false,
            };
            demo::demo(&rt, args).await
        })
    });
    assert_eq!(code, ExitCode::SUCCESS);
}

#[test]
fn verify_accepts_the_reference_scheduler() {
    let code = block_on(|rt| {
        Box::pin(async move {
            let addr = "127.0.0.1:0".parse().expect("addr");
            let sched = RefScheduler::start(&rt, addr, SchedulerConfig::default())
                .await
                .expect("reference scheduler");
            let args = VerifyArgs {
                url: Some(sched.url()),
                worker_id: Some("verify-test".into()),
                timeout: 10,
            };
            verify::verify(&rt, args).await
        })
    });
    assert_eq!(code, ExitCode::SUCCESS);
}
