//! A complete validator against the public API (the README shows it): on the
//! embedded network, or with the flags of `examples/validator.rs` on Bittensor.
use bistro::cli::Args;
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::roles::{COMMON_FLAGS, Role, Setup};

fn main() -> bistro::Result<()> {
    let args = Args::from_env("A minimal bistro validator.", COMMON_FLAGS);
    let s = Setup::from_args(&args, Role::Validator)?;
    let (chain, policy) = (s.chain.clone(), s.endpoint_policy());
    let config = ValidatorConfig::new(s.params, s.model, s.device, s.work_dir);
    let mut validator = Validator::new(s.chain, s.bucket, s.commitment, s.keypair, s.data, config)?
        .with_endpoint_policy(policy);
    // Deadline snapshots come from a thread of their own, on time while a
    // round is still being judged.
    let snapshots = validator.snapshotter().spawn(chain.block()?.number);
    while let Ok(snapshot) = snapshots.recv() {
        let snapshot = snapshot?;
        let deadline = snapshot.deadline;
        validator.use_snapshot(snapshot)?;
        println!("{:#?}", validator.run_round(deadline)?);
    }
    Ok(())
}
