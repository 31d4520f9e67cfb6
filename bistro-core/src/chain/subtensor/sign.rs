//! Signing `subxt` transactions with a bistro [`Signer`].

use subxt::config::SubstrateConfig;
use subxt::utils::{AccountId32, MultiSignature};

use crate::chain::Signer;

/// Lets any [`Signer`] (a hotkey [`Keypair`](crate::Keypair)) sign
/// transactions: sr25519 over the signer payload, with the signing context
/// `substrate`, as Substrate verifies them.
pub(crate) struct SubxtSigner<'a>(pub &'a dyn Signer);

impl subxt::tx::Signer<SubstrateConfig> for SubxtSigner<'_> {
    fn account_id(&self) -> AccountId32 {
        AccountId32(self.0.public_key().0)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.0.sign(signer_payload).0)
    }
}
