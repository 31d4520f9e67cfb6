//! A complete validator against the public API (the README shows it): on the
//! embedded network, or with the flags of `examples/validator.rs` on Bittensor.
use bistro::cli::Args;
use bistro::node::validator::{Validator, ValidatorConfig};
use bistro::roles::{NodeFlags, Role, Setup};

fn main() -> bistro::Result<()> {
    let (args, node) = Args::parse_with::<NodeFlags>("A minimal bistro validator.");
    let s = Setup::from_args(&args, &node, Role::Validator)?;
    let (chain, policy) = (s.chain.clone(), s.endpoint_policy());
    let config = ValidatorConfig::new(s.params, s.model, s.device, s.work_dir);
    let mut validator = Validator::new(s.chain, s.bucket, s.commitment, s.keypair, s.data, config)?
        .with_endpoint_policy(policy);
    validator.publish()?; // genesis master, run parameters, commitment
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
