//! Reading and writing a parameter's f32 values in host memory.
//!
//! All of the model's `unsafe` is here. On the CPU the closures see the
//! tensor's own storage (no copy); on a GPU the tensor is copied to the host
//! and, for writes, copied back.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Checks that `t` is what the model's parameters are: f32, contiguous, with
/// `numel` elements.
fn check(t: &Tensor, numel: usize) -> Result<()> {
    if t.kind() != Kind::Float || !t.is_contiguous() || t.numel() != numel {
        return Err(Error::Model(format!(
            "internal: parameter tensor is {:?}, contiguous={}, {} elements (expected f32, \
             contiguous, {numel})",
            t.kind(),
            t.is_contiguous(),
            t.numel()
        )));
    }
    Ok(())
}

/// Runs `f` on the values of the f32 parameter `t`.
pub(crate) fn read<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let numel = t.numel();
    if t.device() != Device::Cpu {
        let host = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        return read(&host, f);
    }
    check(t, numel)?;
    if numel == 0 {
        return Ok(f(&[]));
    }
    // SAFETY: `t` is a contiguous f32 CPU tensor of `numel` elements (checked
    // above), so its data pointer addresses `numel` initialised, aligned f32s
    // that live as long as `t`, which the borrow keeps alive for the call.
    // Nothing writes the storage meanwhile: no handle to a parameter's storage
    // leaves the model (no accessor returns one, `Model::logits` runs without
    // autograd so its result references no parameter, and the trainer's graphs
    // live only inside a step), Tensor is not Sync, and writers hold `&mut Model`.
    let values = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, numel) };
    Ok(f(values))
}

/// Runs `f` on the values of the f32 parameter `t`, mutably, in place.
/// Autograd does not see the change (like PyTorch's `.data`), so no graph
/// that uses `t` may be alive.
pub(crate) fn write<R>(t: &mut Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
    let numel = t.numel();
    if t.device() != Device::Cpu {
        let mut host = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let r = write(&mut host, f)?;
        tch::no_grad(|| t.f_copy_(&host))?;
        return Ok(r);
    }
    check(t, numel)?;
    if numel == 0 {
        return Ok(f(&mut []));
    }
    // SAFETY: as in `read`; the `&mut Tensor` makes this the only access to
    // the storage through the model for the duration of the call.
    let values = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, numel) };
    Ok(f(values))
}

/// The little-endian bytes of f32 values, as a view (the model module only
/// builds on little-endian machines).
pub(crate) fn f32_bytes(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and every byte pattern is a valid u8; the
    // view covers exactly the slice's memory and borrows it.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values))
    }
}

/// A mutable byte view of f32 values, for reading little-endian f32 data
/// straight into them.
pub(crate) fn f32_bytes_mut(values: &mut [f32]) -> &mut [u8] {
    // SAFETY: as in `f32_bytes`; any bytes written form a valid f32.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr() as *mut u8,
            std::mem::size_of_val(values),
        )
    }
}
