//! Signed tree heads and the certificates handed to users: everything needed
//! to prove, offline and years later, that a file's SHA-256 was in the log.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::merkle::{inclusion_proof, leaf_hash, verify_inclusion, Hash};

/// The only signature algorithm; named in heads and keys so that another can
/// be added without ambiguity.
pub const ALGORITHM: &str = "Ed25519";

/// Keeps a tree head signature from being valid as any other message signed
/// with the same key.
const TREE_HEAD_DOMAIN: &[u8] = b"nephele-notary-tree-head-v1\0";

const SIGNATURE_LEN: usize = 64;
const PUBLIC_KEY_LEN: usize = 32;

/// What a tree head signature covers: the domain tag, then tree size and
/// timestamp (big-endian) and the root, all fixed-width so that no two heads
/// share an encoding.
pub fn tree_head_message(tree_size: u64, timestamp_ms: i64, root: &Hash) -> Vec<u8> {
    let mut message = Vec::with_capacity(TREE_HEAD_DOMAIN.len() + 8 + 8 + root.len());
    message.extend_from_slice(TREE_HEAD_DOMAIN);
    message.extend_from_slice(&tree_size.to_be_bytes());
    message.extend_from_slice(&timestamp_ms.to_be_bytes());
    message.extend_from_slice(root);
    message
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// Lowercase hex.
    pub root_hash: String,
    /// Millisecond precision, the precision the signature covers.
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub key_id: String,
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// Standard base64 of the signature over [`tree_head_message`].
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Lowercase hex of the file's SHA-256. The log's leaf data is these 32
    /// raw bytes.
    pub sha256: String,
    pub leaf_index: u64,
    /// Hex of `leaf_hash(sha256)`, redundant but spares readers the RFC.
    pub leaf_hash: String,
    /// Hex hashes in RFC 9162 order, deepest first.
    pub inclusion_proof: Vec<String>,
    pub signed_tree_head: SignedTreeHead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotaryKey {
    pub key_id: String,
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("the file's SHA-256 is {actual}, the certificate's is {certified}")]
    HashMismatch { actual: String, certified: String },
    #[error("the certificate is malformed: {0}")]
    Malformed(String),
    #[error("the inclusion proof does not lead to the signed root")]
    Inclusion,
    #[error("no key {0} among the trusted keys")]
    UnknownKey(String),
    #[error("the tree head's signature does not verify with key {0}")]
    Signature(String),
}

/// Checks, with no network, that `digest` is the certified SHA-256, that the
/// tree head is signed by the trusted key it names, and that the inclusion
/// proof leads from the digest's leaf to the signed root.
pub fn verify(
    certificate: &Certificate,
    digest: &Hash,
    trusted: &[NotaryKey],
) -> Result<(), VerifyError> {
    if decode_hash("sha256", &certificate.sha256)? != *digest {
        return Err(VerifyError::HashMismatch {
            actual: hex::encode(digest),
            certified: certificate.sha256.clone(),
        });
    }
    let leaf = leaf_hash(digest);
    if decode_hash("leafHash", &certificate.leaf_hash)? != leaf {
        return Err(VerifyError::Malformed(
            "leafHash is not the leaf hash of sha256".into(),
        ));
    }
    let proof = certificate
        .inclusion_proof
        .iter()
        .map(|hash| decode_hash("inclusionProof", hash))
        .collect::<Result<Vec<_>, _>>()?;
    let head = &certificate.signed_tree_head;
    // The head first, so that a forged root is reported as a bad signature
    // rather than as a bad proof.
    let root = verify_tree_head(head, trusted)?;
    if verify_inclusion(&leaf, certificate.leaf_index, head.tree_size, &proof, &root) {
        Ok(())
    } else {
        Err(VerifyError::Inclusion)
    }
}

/// Verifies a signed tree head on its own and returns its root, e.g. to check
/// a consistency proof between two heads.
pub fn verify_tree_head(head: &SignedTreeHead, trusted: &[NotaryKey]) -> Result<Hash, VerifyError> {
    if head.algorithm != ALGORITHM {
        return Err(VerifyError::Malformed(format!(
            "unknown algorithm {:?}",
            head.algorithm
        )));
    }
    let root = decode_hash("rootHash", &head.root_hash)?;
    let signature = decode_base64("signature", &head.signature, SIGNATURE_LEN)?;
    let key = trusted
        .iter()
        .find(|key| key.key_id == head.key_id)
        .ok_or_else(|| VerifyError::UnknownKey(head.key_id.clone()))?;
    if key.algorithm != ALGORITHM {
        return Err(VerifyError::Malformed(format!(
            "trusted key {} has unknown algorithm {:?}",
            key.key_id, key.algorithm
        )));
    }
    let public_key = decode_base64("publicKey", &key.public_key, PUBLIC_KEY_LEN)?;
    let message = tree_head_message(head.tree_size, head.timestamp.timestamp_millis(), &root);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&message, &signature)
        .map_err(|_| VerifyError::Signature(head.key_id.clone()))?;
    Ok(root)
}

/// Builds the certificate for `leaves[leaf_index]` under `head`, from the leaf
/// hashes of the signed tree (the first `head.tree_size` of `leaves`). `None`
/// unless the result would verify: the index is in the tree, the leaf is the
/// digest's and the proof leads to the head's root.
pub fn certificate(
    leaves: &[Hash],
    leaf_index: u64,
    digest: &Hash,
    head: SignedTreeHead,
) -> Option<Certificate> {
    let tree = leaves.get(..usize::try_from(head.tree_size).ok()?)?;
    let leaf = leaf_hash(digest);
    if *tree.get(usize::try_from(leaf_index).ok()?)? != leaf {
        return None;
    }
    let proof = inclusion_proof(tree, leaf_index)?;
    let root = decode_hash("rootHash", &head.root_hash).ok()?;
    if !verify_inclusion(&leaf, leaf_index, head.tree_size, &proof, &root) {
        return None;
    }
    Some(Certificate {
        sha256: hex::encode(digest),
        leaf_index,
        leaf_hash: hex::encode(leaf),
        inclusion_proof: proof.iter().map(hex::encode).collect(),
        signed_tree_head: head,
    })
}

/// The server's signing key.
pub struct NotarySigner {
    key_id: String,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for NotarySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotarySigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl NotarySigner {
    /// A new random key, with its PKCS#8 DER for the caller to keep secret.
    pub fn generate(key_id: &str) -> Result<(NotarySigner, Vec<u8>), String> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| format!("cannot generate an Ed25519 key: {e}"))?;
        let signer = Self::from_pkcs8(key_id, der.as_ref())?;
        Ok((signer, der.as_ref().to_vec()))
    }

    /// An Ed25519 key from PKCS#8 (v1 or v2) DER.
    pub fn from_pkcs8(key_id: &str, der: &[u8]) -> Result<NotarySigner, String> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(NotarySigner {
            key_id: key_id.to_owned(),
            pair,
        })
    }

    /// The public half, as verifiers list it among their trusted keys.
    pub fn key(&self) -> NotaryKey {
        NotaryKey {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM.to_owned(),
            public_key: BASE64.encode(self.pair.public_key().as_ref()),
        }
    }

    /// Signs a tree head. The timestamp is truncated to milliseconds first,
    /// since that is all the signature and the serialized head carry.
    pub fn sign_tree_head(
        &self,
        tree_size: u64,
        timestamp: DateTime<Utc>,
        root: &Hash,
    ) -> SignedTreeHead {
        let nanos = timestamp.nanosecond();
        // Lowering the nanoseconds cannot leave chrono's range, so the
        // fallback is never taken.
        let timestamp = timestamp
            .with_nanosecond(nanos - nanos % 1_000_000)
            .unwrap_or(timestamp);
        let message = tree_head_message(tree_size, timestamp.timestamp_millis(), root);
        SignedTreeHead {
            tree_size,
            root_hash: hex::encode(root),
            timestamp,
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM.to_owned(),
            signature: BASE64.encode(self.pair.sign(&message)),
        }
    }
}

fn decode_hash(field: &str, text: &str) -> Result<Hash, VerifyError> {
    let mut hash = Hash::default();
    hex::decode_to_slice(text, &mut hash)
        .map_err(|e| VerifyError::Malformed(format!("{field} is not a 32-byte hex hash: {e}")))?;
    Ok(hash)
}

fn decode_base64(field: &str, text: &str, len: usize) -> Result<Vec<u8>, VerifyError> {
    BASE64
        .decode(text)
        .ok()
        .filter(|bytes| bytes.len() == len)
        .ok_or_else(|| VerifyError::Malformed(format!("{field} is not {len} bytes of base64")))
}

/// RFC 3339 in UTC with exactly three fractional digits, e.g.
/// `2025-03-01T12:34:56.789Z`. Anything else is refused when parsing, so a
/// parsed head re-serializes byte for byte and no precision the signature
/// does not cover can slip in.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
            .filter(|time| format(time) == text)
            .ok_or_else(|| {
                de::Error::invalid_value(
                    de::Unexpected::Str(&text),
                    &"an RFC 3339 UTC time with milliseconds, like 2025-03-01T12:34:56.789Z",
                )
            })
    }

    fn format(time: &DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::root;
    use sha2::{Digest, Sha256};

    const KEY_ID: &str = "notary-2025";

    struct Fixture {
        signer: NotarySigner,
        digests: Vec<Hash>,
        leaves: Vec<Hash>,
        head: SignedTreeHead,
    }

    fn fixture() -> Fixture {
        let (signer, _) = NotarySigner::generate(KEY_ID).unwrap();
        let digests: Vec<Hash> = (0..5)
            .map(|i| Sha256::digest(format!("file {i}")).into())
            .collect();
        let leaves: Vec<Hash> = digests.iter().map(|d| leaf_hash(d)).collect();
        let head = signer.sign_tree_head(5, time(1_740_832_496, 789_654_321), &root(&leaves));
        Fixture {
            signer,
            digests,
            leaves,
            head,
        }
    }

    fn time(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).unwrap()
    }

    impl Fixture {
        fn certificate(&self, index: usize) -> Certificate {
            let digest = &self.digests[index];
            certificate(&self.leaves, index as u64, digest, self.head.clone()).unwrap()
        }

        fn verify(&self, certificate: &Certificate, index: usize) -> Result<(), VerifyError> {
            verify(certificate, &self.digests[index], &[self.signer.key()])
        }

        fn resign(&self, certificate: &mut Certificate) {
            let head = &certificate.signed_tree_head;
            let root = decode_hash("rootHash", &head.root_hash).unwrap();
            certificate.signed_tree_head =
                self.signer
                    .sign_tree_head(head.tree_size, head.timestamp, &root);
        }
    }

    /// Changes the first hex digit, keeping the string valid hex.
    fn tamper_hex(text: &mut String) {
        let first = if text.starts_with('0') { "1" } else { "0" };
        text.replace_range(..1, first);
    }

    #[test]
    fn certificates_survive_json_and_verify() {
        let f = fixture();
        for index in 0..5 {
            let certificate = f.certificate(index);
            let json = serde_json::to_string(&certificate).unwrap();
            let parsed: Certificate = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, certificate);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
            assert_eq!(f.verify(&parsed, index), Ok(()));
        }
    }

    #[test]
    fn json_shape_is_camel_case_with_millisecond_utc_time() {
        let f = fixture();
        let json = serde_json::to_value(f.certificate(4)).unwrap();
        let head = &json["signedTreeHead"];
        assert_eq!(head["timestamp"], "2025-03-01T12:34:56.789Z");
        assert_eq!(head["treeSize"], 5);
        assert_eq!(head["keyId"], KEY_ID);
        assert_eq!(head["algorithm"], "Ed25519");
        assert_eq!(json["leafIndex"], 4);
        assert_eq!(json["sha256"], hex::encode(f.digests[4]));
        assert_eq!(json["leafHash"], hex::encode(f.leaves[4]));
        assert_eq!(json["inclusionProof"].as_array().unwrap().len(), 1);
        let signature = BASE64.decode(head["signature"].as_str().unwrap()).unwrap();
        assert_eq!(signature.len(), 64);
    }

    #[test]
    fn timestamps_parse_only_in_canonical_form() {
        let f = fixture();
        let json = serde_json::to_string(&f.head).unwrap();
        for other in [
            "2025-03-01T12:34:56.789000Z",
            "2025-03-01T12:34:56.789+00:00",
            "2025-03-01T13:34:56.789+01:00",
            "2025-03-01T12:34:56Z",
            "2025-03-01t12:34:56.789z",
            "1740832496789",
        ] {
            let json = json.replace("2025-03-01T12:34:56.789Z", other);
            assert!(
                serde_json::from_str::<SignedTreeHead>(&json).is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn another_file_is_a_hash_mismatch() {
        let f = fixture();
        let certificate = f.certificate(2);
        assert_eq!(
            f.verify(&certificate, 3),
            Err(VerifyError::HashMismatch {
                actual: hex::encode(f.digests[3]),
                certified: hex::encode(f.digests[2]),
            })
        );
    }

    #[test]
    fn tampered_proofs_and_indices_fail_inclusion() {
        let f = fixture();
        for index in 0..5 {
            let certificate = f.certificate(index);
            for i in 0..certificate.inclusion_proof.len() {
                let mut bad = certificate.clone();
                tamper_hex(&mut bad.inclusion_proof[i]);
                assert_eq!(f.verify(&bad, index), Err(VerifyError::Inclusion));
            }
            let mut shorter = certificate.clone();
            shorter.inclusion_proof.pop();
            assert_eq!(f.verify(&shorter, index), Err(VerifyError::Inclusion));
            for other in [0, 1, 2, 3, 4, 5, u64::MAX] {
                if other != index as u64 {
                    let mut bad = certificate.clone();
                    bad.leaf_index = other;
                    assert_eq!(f.verify(&bad, index), Err(VerifyError::Inclusion));
                }
            }
        }
    }

    #[test]
    fn tampered_tree_sizes_fail() {
        let f = fixture();
        for index in 0..5 {
            let certificate = f.certificate(index);
            for size in [0, 4, 6, 9, u64::MAX] {
                let mut bad = certificate.clone();
                bad.signed_tree_head.tree_size = size;
                let name = KEY_ID.to_owned();
                assert_eq!(f.verify(&bad, index), Err(VerifyError::Signature(name)));
            }
            // Even signed by the notary, these sizes give a path of another
            // shape; some sizes would not (see verify_inclusion), which is
            // why the size is signed.
            for size in [0, 3, 4, 9, 16] {
                let mut bad = certificate.clone();
                bad.signed_tree_head.tree_size = size;
                f.resign(&mut bad);
                assert_eq!(f.verify(&bad, index), Err(VerifyError::Inclusion));
            }
        }
    }

    #[test]
    fn tampered_heads_fail_the_signature() {
        let f = fixture();
        let certificate = f.certificate(1);
        let signature_error = Err(VerifyError::Signature(KEY_ID.to_owned()));

        let mut bad = certificate.clone();
        tamper_hex(&mut bad.signed_tree_head.root_hash);
        assert_eq!(f.verify(&bad, 1), signature_error);

        let mut bad = certificate.clone();
        bad.signed_tree_head.timestamp += chrono::TimeDelta::milliseconds(1);
        assert_eq!(f.verify(&bad, 1), signature_error);

        let mut bad = certificate.clone();
        let mut signature = BASE64.decode(&bad.signed_tree_head.signature).unwrap();
        signature[10] ^= 1;
        bad.signed_tree_head.signature = BASE64.encode(signature);
        assert_eq!(f.verify(&bad, 1), signature_error);
    }

    #[test]
    fn keys_must_be_trusted_and_right() {
        let f = fixture();
        let certificate = f.certificate(0);
        let (other, _) = NotarySigner::generate("other").unwrap();
        assert_eq!(
            verify(&certificate, &f.digests[0], &[other.key()]),
            Err(VerifyError::UnknownKey(KEY_ID.to_owned()))
        );
        assert_eq!(
            verify(&certificate, &f.digests[0], &[]),
            Err(VerifyError::UnknownKey(KEY_ID.to_owned()))
        );
        let (impostor, _) = NotarySigner::generate(KEY_ID).unwrap();
        assert_eq!(
            verify(&certificate, &f.digests[0], &[impostor.key()]),
            Err(VerifyError::Signature(KEY_ID.to_owned()))
        );
        let trusted = [other.key(), f.signer.key()];
        assert_eq!(verify(&certificate, &f.digests[0], &trusted), Ok(()));
    }

    #[test]
    fn malformed_fields_are_reported() {
        let f = fixture();
        let certificate = f.certificate(3);
        let tampered: [fn(&mut Certificate); 8] = [
            |c| c.sha256 = "zz".repeat(32),
            |c| c.sha256.truncate(62),
            |c| c.leaf_hash = "not hex".into(),
            |c| tamper_hex(&mut c.leaf_hash),
            |c| c.inclusion_proof[0].push_str("00"),
            |c| c.signed_tree_head.root_hash = "xyz".into(),
            |c| c.signed_tree_head.algorithm = "ES256".into(),
            |c| c.signed_tree_head.signature = "not base64!".into(),
        ];
        for (i, tamper) in tampered.iter().enumerate() {
            let mut bad = certificate.clone();
            tamper(&mut bad);
            let result = f.verify(&bad, 3);
            assert!(
                matches!(result, Err(VerifyError::Malformed(_))),
                "{i}: {result:?}"
            );
        }

        let mut short = certificate.clone();
        short.signed_tree_head.signature = BASE64.encode([0u8; 63]);
        assert!(matches!(
            f.verify(&short, 3),
            Err(VerifyError::Malformed(_))
        ));

        let mut key = f.signer.key();
        key.public_key = BASE64.encode([0u8; 31]);
        let result = verify(&certificate, &f.digests[3], &[key]);
        assert!(matches!(result, Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn certificate_refuses_what_would_not_verify() {
        let f = fixture();
        let head = || f.head.clone();
        assert!(certificate(&f.leaves, 5, &f.digests[0], head()).is_none());
        assert!(certificate(&f.leaves, 0, &f.digests[1], head()).is_none());
        assert!(certificate(&f.leaves[..4], 0, &f.digests[0], head()).is_none());
        let mut wrong_root = head();
        wrong_root.root_hash = hex::encode(root(&f.leaves[..4]));
        assert!(certificate(&f.leaves, 0, &f.digests[0], wrong_root).is_none());
        // Leaves past the signed size are ignored.
        let mut more = f.leaves.clone();
        more.push(leaf_hash(b"later"));
        let certificate = certificate(&more, 4, &f.digests[4], head()).unwrap();
        assert_eq!(f.verify(&certificate, 4), Ok(()));
    }

    #[test]
    fn verified_head_gives_its_root() {
        let f = fixture();
        assert_eq!(
            verify_tree_head(&f.head, &[f.signer.key()]),
            Ok(root(&f.leaves))
        );
    }

    #[test]
    fn signing_truncates_to_milliseconds() {
        let f = fixture();
        assert_eq!(f.head.timestamp, time(1_740_832_496, 789_000_000));
    }

    #[test]
    fn pkcs8_reloads_the_same_key() {
        let (signer, der) = NotarySigner::generate(KEY_ID).unwrap();
        let reloaded = NotarySigner::from_pkcs8(KEY_ID, &der).unwrap();
        assert_eq!(reloaded.key(), signer.key());
        // Ed25519 is deterministic, so equal keys sign equally.
        let head = |s: &NotarySigner| s.sign_tree_head(3, time(0, 0), &[7; 32]);
        assert_eq!(head(&reloaded), head(&signer));
        assert!(NotarySigner::from_pkcs8(KEY_ID, &der[1..]).is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let (signer, _) = NotarySigner::generate(KEY_ID).unwrap();
        assert_eq!(
            format!("{signer:?}"),
            format!("NotarySigner {{ key_id: {KEY_ID:?}, .. }}")
        );
    }

    #[test]
    fn tree_head_message_layout() {
        let message = tree_head_message(0x0102, -2, &[0xab; 32]);
        let mut expected = b"nephele-notary-tree-head-v1\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(message, expected);
    }
}
