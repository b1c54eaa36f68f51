//! `imgfeat`: index a folder of photos into detections, crops and binary codes, then
//! show and search the results. A thin binary over the shared library.

mod cli;
mod commands;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<commands::NotFound>()) {
                std::process::ExitCode::from(commands::EXIT_NOT_FOUND)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
