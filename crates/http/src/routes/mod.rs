pub mod ops;
pub mod organizations;
pub mod setup;
