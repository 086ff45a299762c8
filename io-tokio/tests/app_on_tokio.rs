//! The shared application end to end on tokio: the demo (reference scheduler, real
//! WebSocket, sample runs, drain) and `verify` against a reference scheduler.

use astra_core::scheduler::SchedulerConfig;
use astra_host::app::cli::{DemoArgs, VerifyArgs};
use astra_host::app::cmd::{demo, verify};
use astra_host::app::refsched::RefScheduler;
use astra_io_tokio::TokioRuntime;
use std::process::ExitCode;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

#[test]
fn demo_succeeds() {
    let code = block_on(demo::demo(
        &TokioRuntime,
        DemoArgs {
            runs: 1,
            verbose: false,
        },
    ));
    assert_eq!(code, ExitCode::SUCCESS);
}

#[test]
fn verify_accepts_the_reference_scheduler() {
    let code = block_on(async {
        let rt = TokioRuntime;
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
    });
    assert_eq!(code, ExitCode::SUCCESS);
}
