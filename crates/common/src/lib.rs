//! What every Nephele crate shares: the one error type, typed ids, validated
//! names, pagination, secrets and the injected clock.

pub mod batch;
pub mod clock;
pub mod error;
pub mod ids;
pub mod names;
pub mod page;
pub mod precondition;
pub mod secret;
pub mod status;

pub use clock::{Clock, SystemClock};
pub use error::{Error, ErrorCode, ErrorDetail, FieldError, Result};
pub use precondition::Precondition;
pub use secret::Secret;
