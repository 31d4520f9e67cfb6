//! Where the model runs (`cpu`, `cuda`, `cuda:N`, `mps`) and in what precision.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A compute device, parsed from `cpu`, `cuda` (GPU 0), `cuda:N` or `mps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU (libtorch's intra-op thread pool).
    Cpu,
    /// The NVIDIA GPU with this index.
    Cuda(usize),
    /// Apple's Metal Performance Shaders.
    Mps,
}

impl Device {
    /// Parses a device name; see [`Device`].
    pub fn parse(name: &str) -> Result<Device> {
        let bad = || {
            Error::InvalidArgument(format!(
                "unknown device {name:?} (expected cpu, cuda, cuda:N or mps)"
            ))
        };
        match name.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "mps" => Ok(Device::Mps),
            other => {
                let index = other.strip_prefix("cuda:").ok_or_else(bad)?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                index.parse().map(Device::Cuda).map_err(|_| bad())
            }
        }
    }

    /// The first GPU when libtorch sees one, else the CPU.
    pub fn cuda_if_available() -> Device {
        if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }
    }

    /// Whether this build of libtorch can use the device on this machine.
    pub fn is_available(self) -> bool {
        self.check().is_ok()
    }

    /// The device as libtorch's, or [`Error::Unavailable`] saying why it
    /// cannot be used here.
    pub fn check(self) -> Result<tch::Device> {
        match self {
            Device::Cpu => Ok(tch::Device::Cpu),
            Device::Cuda(index) => {
                if !tch::Cuda::is_available() {
                    return Err(Error::Unavailable(format!(
                        "device {self}: libtorch sees no CUDA GPU (a CPU-only libtorch, no \
                         driver, or no GPU; scripts/setup-libtorch.sh --cuda installs the \
                         CUDA libraries)"
                    )));
                }
                let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
                if index >= count {
                    return Err(Error::Unavailable(format!(
                        "device {self}: only {count} CUDA GPU(s) present"
                    )));
                }
                Ok(tch::Device::Cuda(index))
            }
            Device::Mps => {
                if !tch::utils::has_mps() {
                    return Err(Error::Unavailable(
                        "device mps: this libtorch has no Metal (MPS) support".into(),
                    ));
                }
                Ok(tch::Device::Mps)
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Mps => f.write_str("mps"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Device> {
        Device::parse(s)
    }
}

/// The precision of the forward and backward computation. Parameters and
/// optimizer state are always f32; with [`Precision::Bf16`] the matrix
/// products, attention and activations run in bfloat16 (weights are cast on
/// the fly, gradients flow back into the f32 parameters), while RMSNorm,
/// softmax statistics and the loss stay in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Everything in f32.
    F32,
    /// bfloat16 compute over f32 parameters.
    Bf16,
}

impl Precision {
    /// The default on a device: bf16 on CUDA GPUs whose libtorch runs a bf16
    /// matrix product (Ampere and later do it natively), f32 elsewhere (CPUs
    /// without bf16 units and MPS are slower or less exact in bf16).
    pub fn default_for(device: Device) -> Precision {
        match device {
            Device::Cuda(index) if cuda_runs_bf16(index) => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    pub(crate) fn kind(self) -> tch::Kind {
        match self {
            Precision::F32 => tch::Kind::Float,
            Precision::Bf16 => tch::Kind::BFloat16,
        }
    }
}

/// Whether a small bf16 matrix product runs on the GPU.
fn cuda_runs_bf16(index: usize) -> bool {
    let device = tch::Device::Cuda(index);
    tch::no_grad(|| {
        tch::Tensor::f_ones([8, 8], (tch::Kind::BFloat16, device))
            .and_then(|a| a.f_matmul(&a))
            .and_then(|p| p.f_to_kind(tch::Kind::Float))
            .and_then(|p| p.f_sum(tch::Kind::Float))
            .and_then(|s| s.f_double_value(&[]))
            .is_ok_and(|s| s == 512.0)
    })
}
