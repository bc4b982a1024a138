//! The notary's cryptography, kept free of I/O so that servers and offline
//! verifiers share one implementation: RFC 9162 (RFC 6962) Merkle tree
//! hashing and proofs, Ed25519-signed tree heads, and certificates that prove
//! a file's SHA-256 was logged, checkable with nothing but the notary's
//! public key.

pub mod certificate;
pub mod merkle;
