//! `shoald`: the shoal database node.

fn main() -> anyhow::Result<()> {
    let config = shoal_server::Config::from_env_and_args()?;
    let _ = config;
    Ok(())
}
