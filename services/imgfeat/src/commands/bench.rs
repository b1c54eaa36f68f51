use std::process::ExitCode;

pub async fn run(options: imgfeat_bench::BenchOptions, json: bool) -> anyhow::Result<ExitCode> {
    let report = imgfeat_bench::run(options).await?;
    if json {
        super::print_json(&report)?;
    } else {
        imgfeat_bench::print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}
