//! `shoal-torture`: parses the command line, runs one torture run (see the library), and exits
//! non-zero when the run failed or could not be carried out.

use clap::Parser;
use shoal_torture::Options;

fn main() {
    let mut options = Options::parse();
    options.resolve_seed();
    if options.plan_only {
        match options.validate() {
            Ok(settings) => {
                for f in shoal_torture::nemesis::plan(options.seed(), &settings) {
                    println!(
                        "{:>7} ms  {:<8} node {}  hold {} ms",
                        f.start_ms, f.kind, f.node, f.hold_ms
                    );
                }
                return;
            }
            Err(e) => {
                eprintln!("shoal-torture: {e:#}");
                std::process::exit(2);
            }
        }
    }
    if options.docker {
        if let Some(why) = shoal_torture::docker::unavailable(&options.docker_image) {
            println!("SKIP shoal-torture --docker: {why}");
            return;
        }
    }
    match shoal_torture::run(&options) {
        Ok(report) if report.passed() => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("shoal-torture: {e:#}");
            eprintln!("shoal-torture: replay with: {}", options.replay_command());
            std::process::exit(2);
        }
    }
}
