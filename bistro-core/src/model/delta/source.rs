//! Where a delta's base values come from.

use crate::error::{Error, Result};
use crate::model::{Checkpoint, Model, ParamInfo};

/// Named f32 parameters that can be read one at a time: a [`Model`] or a
/// [`Checkpoint`].
pub trait ParameterSource {
    /// Names and shapes of the parameters.
    fn parameter_infos(&self) -> Vec<ParamInfo>;

    /// Writes parameter `name` into `out` (exactly its element count).
    fn read_parameter_into(&self, name: &str, out: &mut [f32]) -> Result<()>;
}

impl ParameterSource for Model {
    fn parameter_infos(&self) -> Vec<ParamInfo> {
        self.parameters()
    }

    fn read_parameter_into(&self, name: &str, out: &mut [f32]) -> Result<()> {
        self.with_parameter(name, |values| {
            if values.len() != out.len() {
                return Err(Error::InvalidArgument(format!(
                    "{name} has {} elements, the buffer {}",
                    values.len(),
                    out.len()
                )));
            }
            out.copy_from_slice(values);
            Ok(())
        })?
    }
}

impl ParameterSource for Checkpoint {
    fn parameter_infos(&self) -> Vec<ParamInfo> {
        self.parameters()
    }

    fn read_parameter_into(&self, name: &str, out: &mut [f32]) -> Result<()> {
        self.read_parameter(name, out)
    }
}
