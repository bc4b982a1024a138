//! Compact JWS (RFC 7515) signing and verification over aws-lc-rs, for the
//! token service's JWTs.
//!
//! Keys are parsed once, when loaded, and each key's protected header is
//! encoded once per token type: signing a token is one signature and two
//! base64 encodings. Verification trusts nothing in the token's header but
//! the `kid` it uses to pick one of *our* keys: the algorithm must be that
//! key's own, and a header that points elsewhere for keys (`jku`, `x5u`,
//! `jwk`, `x5c`) or demands extensions (`crit`) is refused outright.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The longest token we even try to parse.
pub const MAX_TOKEN_LEN: usize = 8192;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("forbidden header parameter")]
    ForbiddenHeader,
    #[error("bad signature")]
    Signature,
    #[error("key: {0}")]
    Key(String),
}

/// The signature algorithms Nephele signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    ES256,
    EdDSA,
    RS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JwsError;
    fn from_str(s: &str) -> Result<Self, JwsError> {
        match s {
            "ES256" => Ok(Algorithm::ES256),
            "EdDSA" => Ok(Algorithm::EdDSA),
            "RS256" => Ok(Algorithm::RS256),
            _ => Err(JwsError::Algorithm),
        }
    }
}

/// A public key as a JWK (RFC 7517), as `/api/2/idp/keys` publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key, parsed and ready to sign.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pair: Pair,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn key_error(e: impl fmt::Display) -> JwsError {
    JwsError::Key(e.to_string())
}

impl SigningKey {
    /// A new random key, and its PKCS#8 DER to store (encrypted).
    pub fn generate(alg: Algorithm, kid: String) -> Result<(SigningKey, Vec<u8>), JwsError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(key_error)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(key_error)?
                .as_ref()
                .to_vec(),
            Algorithm::RS256 => RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(key_error)?
                .as_der()
                .map_err(key_error)?
                .as_ref()
                .to_vec(),
        };
        let key = SigningKey::from_pkcs8(alg, kid, &pkcs8)?;
        Ok((key, pkcs8))
    }

    pub fn from_pkcs8(alg: Algorithm, kid: String, der: &[u8]) -> Result<SigningKey, JwsError> {
        let pair = match alg {
            Algorithm::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(key_error)?,
            ),
            Algorithm::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(key_error)?),
            Algorithm::RS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(key_error)?),
        };
        Ok(SigningKey {
            kid,
            alg,
            pair,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key's public half, as a JWK.
    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: self.kid.clone(),
            alg: self.alg.as_str().to_owned(),
            use_: "sig".to_owned(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match &self.pair {
            Pair::Ec(p) => {
                // An uncompressed point: 0x04 ‖ x ‖ y.
                let point = p.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.get(1..33).map(|b| B64.encode(b));
                jwk.y = point.get(33..65).map(|b| B64.encode(b));
            }
            Pair::Ed(p) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(B64.encode(p.public_key().as_ref()));
            }
            Pair::Rsa(p) => {
                let public = p.public_key();
                jwk.kty = "RSA".into();
                jwk.n = Some(B64.encode(public.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(B64.encode(public.exponent().big_endian_without_leading_zero()));
            }
        }
        jwk
    }

    /// The verifying half of this key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, JwsError> {
        VerifyingKey::from_jwk(&self.jwk())
    }

    /// The encoded protected header for tokens of type `typ`; computed
    /// once per key and type by whoever signs many tokens.
    pub fn header(&self, typ: &str) -> String {
        let header = serde_json::json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid});
        B64.encode(header.to_string())
    }

    /// Signs `claims` under a header made by [`SigningKey::header`].
    pub fn sign(&self, header: &str, claims: &[u8]) -> Result<String, JwsError> {
        let mut token = String::with_capacity(header.len() + claims.len() * 4 / 3 + 360);
        token.push_str(header);
        token.push('.');
        B64.encode_string(claims, &mut token);
        let signature = match &self.pair {
            Pair::Ec(p) => p
                .sign(&self.rng, token.as_bytes())
                .map_err(key_error)?
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(token.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(p) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &self.rng, token.as_bytes(), &mut sig)
                    .map_err(key_error)?;
                sig
            }
        };
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// A public key that verifies tokens, parsed once.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Algorithm,
    key: std::sync::Arc<ParsedPublicKey>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(field: &Option<String>) -> Result<Vec<u8>, JwsError> {
    let text = field.as_deref().ok_or(JwsError::Key("missing".into()))?;
    B64.decode(text).map_err(key_error)
}

/// A DER INTEGER's content: big-endian, with a leading zero when the top
/// bit is set.
fn der_integer(bytes: &[u8], out: &mut Vec<u8>) {
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[0][..],
    };
    let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(bytes.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(bytes);
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

impl VerifyingKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, JwsError> {
        let alg: Algorithm = jwk.alg.parse()?;
        let key = match alg {
            Algorithm::ES256 => {
                let mut point = vec![0x04];
                point.extend(b64(&jwk.x)?);
                point.extend(b64(&jwk.y)?);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            Algorithm::EdDSA => ParsedPublicKey::new(&ED25519, b64(&jwk.x)?),
            Algorithm::RS256 => {
                // RFC 8017 RSAPublicKey: SEQUENCE { n INTEGER, e INTEGER }.
                let mut body = Vec::new();
                der_integer(&b64(&jwk.n)?, &mut body);
                der_integer(&b64(&jwk.e)?, &mut body);
                let mut der = vec![0x30];
                der_length(body.len(), &mut der);
                der.extend(body);
                ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            }
        }
        .map_err(key_error)?;
        Ok(VerifyingKey {
            kid: jwk.kid.clone(),
            alg,
            key: std::sync::Arc::new(key),
        })
    }
}

/// The protected header, as far as verification reads it.
#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    jku: Option<serde_json::Value>,
    #[serde(default)]
    x5u: Option<serde_json::Value>,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    x5c: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A token split into its parts, its header decoded; nothing verified yet.
#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: Header,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Splits and decodes a compact JWS, refusing what no key of ours could
/// have produced before any cryptography runs.
pub fn parse(token: &str) -> Result<Unverified<'_>, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(JwsError::Malformed)?;
    if payload.contains('.') {
        return Err(JwsError::Malformed);
    }
    let header: Header = B64
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwsError::Malformed)?;
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(JwsError::ForbiddenHeader);
    }
    Ok(Unverified {
        header,
        signing_input,
        payload,
        signature,
    })
}

impl Unverified<'_> {
    /// Checks the signature with `key` (which the caller picked by `kid`)
    /// and returns the payload's bytes.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, JwsError> {
        if self.header.alg != key.alg.as_str() {
            return Err(JwsError::Algorithm);
        }
        let signature = B64
            .decode(self.signature)
            .map_err(|_| JwsError::Malformed)?;
        key.key
            .verify_sig(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JwsError::Signature)?;
        B64.decode(self.payload).map_err(|_| JwsError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(alg: Algorithm) {
        let (key, der) = SigningKey::generate(alg, "k1".into()).unwrap();
        let again = SigningKey::from_pkcs8(alg, "k1".into(), &der).unwrap();
        assert_eq!(key.jwk(), again.jwk());
        let token = key.sign(&key.header("at+jwt"), br#"{"sub":"x"}"#).unwrap();
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.header.typ.as_deref(), Some("at+jwt"));
        let verifier = key.verifying_key().unwrap();
        assert_eq!(parsed.verify(&verifier).unwrap(), br#"{"sub":"x"}"#);

        // Another key of the same kind does not verify it.
        let (other, _) = SigningKey::generate(alg, "k1".into()).unwrap();
        assert_eq!(
            parsed.verify(&other.verifying_key().unwrap()),
            Err(JwsError::Signature)
        );
    }

    #[test]
    fn es256() {
        round_trip(Algorithm::ES256);
    }

    #[test]
    fn eddsa() {
        round_trip(Algorithm::EdDSA);
    }

    #[test]
    fn rs256() {
        round_trip(Algorithm::RS256);
    }

    #[test]
    fn refuses_foreign_key_pointers_and_wrong_algorithms() {
        let (key, _) = SigningKey::generate(Algorithm::ES256, "k".into()).unwrap();
        let verifier = key.verifying_key().unwrap();
        for header in [
            r#"{"alg":"ES256","kid":"k","jku":"https://evil.test/jwks"}"#,
            r#"{"alg":"ES256","kid":"k","x5u":"https://evil.test/cert"}"#,
            r#"{"alg":"ES256","kid":"k","crit":["exp"]}"#,
        ] {
            let token = key.sign(&B64.encode(header), b"{}").unwrap();
            assert_eq!(parse(&token).unwrap_err(), JwsError::ForbiddenHeader);
        }
        for alg in ["none", "HS256", "RS256", "es256"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            let token = key.sign(&header, b"{}").unwrap();
            assert_eq!(
                parse(&token).unwrap().verify(&verifier),
                Err(JwsError::Algorithm)
            );
        }
        assert_eq!(parse("a.b").unwrap_err(), JwsError::Malformed);
        assert_eq!(parse("a.b.c.d").unwrap_err(), JwsError::Malformed);
        assert_eq!(
            parse(&"a".repeat(MAX_TOKEN_LEN + 1)).unwrap_err(),
            JwsError::Malformed
        );
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        der_integer(&[0x00, 0x01, 0x00, 0x01], &mut out);
        assert_eq!(out, [0x02, 0x03, 0x01, 0x00, 0x01]);
        out.clear();
        der_integer(&[0xff], &mut out);
        assert_eq!(out, [0x02, 0x02, 0x00, 0xff]);
    }
}
