pub mod ops;
pub mod setup;
