//! Ed25519 signatures on command records.
//!
//! A command carries `signature: {alg, key_id, value}`. The signed bytes are the RFC 8785 JSON
//! Canonicalization Scheme (JCS) encoding of the record without its `signature` member, so a
//! consumer that re-serialises the record, reorders its keys or pretty-prints it can still check
//! it. `value` is the 64-byte Ed25519 signature in standard, padded base64; `key_id` is the first
//! 16 hex digits of the SHA-256 of the 32-byte public key, so a verifier can tell "signed by
//! another key" from "tampered".
//!
//! Keys are exchanged as PEM: the private key as PKCS#8 (`PRIVATE KEY`, the form `openssl genpkey
//! -algorithm ed25519` writes), the public key as SPKI (`PUBLIC KEY`), which every common crypto
//! library loads.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::spki::SubjectPublicKeyInfoRef;
use ed25519_dalek::pkcs8::spki::der::pem::{self, LineEnding};
use ed25519_dalek::pkcs8::{
    ALGORITHM_OID, EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes, ObjectIdentifier,
    PrivateKeyInfo,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize as _, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The only signature algorithm: `"ed25519"`.
pub const ALG: &str = "ed25519";

/// The record member that holds the signature, left out of the signed bytes.
const SIGNATURE_MEMBER: &str = "signature";

/// PEM label of a PKCS#8 private key.
const PRIVATE_LABEL: &str = "PRIVATE KEY";
/// PEM label of an SPKI public key.
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// `{alg, key_id, value}` as in CONTRACT.md: the `signature` member of a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Signature {
    /// The algorithm, always `"ed25519"`.
    pub alg: String,
    /// Which key signed: the first 16 hex digits of the SHA-256 of the 32-byte public key.
    pub key_id: String,
    /// The 64-byte Ed25519 signature, base64 (standard alphabet, padded).
    pub value: String,
}

/// Signs command records with an Ed25519 private key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The key whose 32-byte secret is `seed`. Fresh keys come from the drivers, which draw the
    /// seed from the operating system's randomness.
    pub fn from_seed(seed: &[u8; 32]) -> Signer {
        Signer::new(SigningKey::from_bytes(seed))
    }

    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Signer, SignError> {
        let der = Zeroizing::new(decode_pem(pem, PRIVATE_LABEL, "an Ed25519 private key")?);
        let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| SignError::Malformed {
            detail: format!("not a PKCS#8 private key: {e}"),
        })?;
        check_algorithm(info.algorithm.oid, "an Ed25519 private key")?;
        let key = SigningKey::try_from(info).map_err(|e| SignError::Malformed {
            detail: e.to_string(),
        })?;
        Ok(Signer::new(key))
    }

    fn new(key: SigningKey) -> Signer {
        let key_id = key_id_of(&key.verifying_key());
        Signer { key, key_id }
    }

    /// The key's id: the first 16 hex digits of the SHA-256 of the 32-byte public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes")
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), version 1 without the
    /// optional public key, as OpenSSL writes it. Zeroed when dropped.
    pub fn private_pem(&self) -> Zeroizing<String> {
        let bytes = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 private key always encodes")
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            key: self.key.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs `record` (a JSON object) without its `signature` member: Ed25519 over
    /// `canonical(record minus "signature")`. Anything other than an object is signed whole.
    pub fn sign(&self, record: &Value) -> Signature {
        use ed25519_dalek::Signer as _;
        let signature = self.key.sign(&signed_bytes(record));
        Signature {
            alg: ALG.to_owned(),
            key_id: self.key_id.clone(),
            value: BASE64.encode(signature.to_bytes()),
        }
    }
}

/// Checks the signatures of command records with an Ed25519 public key.
#[derive(Clone)]
pub struct Verifier {
    key: VerifyingKey,
    key_id: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Parses an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Verifier, SignError> {
        let der = decode_pem(pem, PUBLIC_LABEL, "an Ed25519 public key")?;
        let info = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| {
            SignError::Malformed {
                detail: format!("not an SPKI public key: {e}"),
            }
        })?;
        check_algorithm(info.algorithm.oid, "an Ed25519 public key")?;
        let key = VerifyingKey::try_from(info).map_err(|e| SignError::Malformed {
            detail: e.to_string(),
        })?;
        Ok(Verifier {
            key_id: key_id_of(&key),
            key,
        })
    }

    /// The key's id: the first 16 hex digits of the SHA-256 of the 32-byte public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks the record's `signature` member against the rest of the record.
    pub fn verify(&self, record: &Value) -> Result<(), VerifyError> {
        let object = record.as_object().ok_or(VerifyError::NotObject)?;
        let member = object
            .get(SIGNATURE_MEMBER)
            .ok_or(VerifyError::MissingSignature)?;
        let signature = Signature::deserialize(member).map_err(|e| VerifyError::Malformed {
            detail: e.to_string(),
        })?;
        if signature.alg != ALG {
            return Err(VerifyError::UnsupportedAlg { alg: signature.alg });
        }
        if signature.key_id != self.key_id {
            return Err(VerifyError::KeyIdMismatch {
                record: signature.key_id,
                key: self.key_id.clone(),
            });
        }
        let raw = BASE64.decode(signature.value.as_bytes())?;
        let bytes: [u8; ed25519_dalek::SIGNATURE_LENGTH] = raw
            .as_slice()
            .try_into()
            .map_err(|_| VerifyError::BadLength { len: raw.len() })?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key
            .verify_strict(&signed_bytes(record), &signature)
            .map_err(|_| VerifyError::Invalid)
    }
}

/// The canonical encoding signed: RFC 8785 JSON Canonicalization Scheme (sorted keys, no
/// whitespace, JCS number and string rules).
pub fn canonical(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value)
        .expect("a JSON value has string keys and finite numbers, so it always canonicalises")
}

/// The bytes signed for `record`: its canonical form without the `signature` member.
fn signed_bytes(record: &Value) -> Vec<u8> {
    match record {
        Value::Object(map) => serde_json_canonicalizer::to_vec(&Unsigned(map))
            .expect("a JSON object has string keys and finite numbers, so it always canonicalises"),
        other => canonical(other),
    }
}

/// An object seen without its `signature` member, serialised without copying it.
struct Unsigned<'a>(&'a Map<String, Value>);

impl Serialize for Unsigned<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().filter(|(k, _)| *k != SIGNATURE_MEMBER))
    }
}

/// The first 16 hex digits of the SHA-256 of the 32-byte public key.
fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER inside a PEM block labelled `label`.
fn decode_pem(pem: &str, label: &str, expected: &'static str) -> Result<Vec<u8>, SignError> {
    let (found, der) = pem::decode_vec(pem.trim().as_bytes()).map_err(|e| SignError::Pem {
        detail: e.to_string(),
    })?;
    if found != label {
        return Err(SignError::WrongKeyType {
            expected,
            found: format!("a PEM `{found}` block"),
        });
    }
    Ok(der)
}

fn check_algorithm(oid: ObjectIdentifier, expected: &'static str) -> Result<(), SignError> {
    if oid == ALGORITHM_OID {
        return Ok(());
    }
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "an RSA key".to_owned(),
        "1.2.840.10045.2.1" => "an elliptic-curve (ECDSA) key".to_owned(),
        "1.3.101.110" => "an X25519 key".to_owned(),
        "1.3.101.111" => "an X448 key".to_owned(),
        "1.3.101.113" => "an Ed448 key".to_owned(),
        other => format!("a key of algorithm {other}"),
    };
    Err(SignError::WrongKeyType {
        expected,
        found: name,
    })
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The key file was read, but its key is unusable.
    #[error("key file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its key.
        #[source]
        source: Box<SignError>,
    },
    /// Not a PEM document.
    #[error("not a PEM key: {detail}")]
    Pem {
        /// What the PEM decoder said.
        detail: String,
    },
    /// A key, but not of the kind needed (another algorithm, or public for private).
    #[error("expected {expected}, found {found}")]
    WrongKeyType {
        /// What was needed.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A PEM block of the right kind whose contents do not decode.
    #[error("malformed key: {detail}")]
    Malformed {
        /// What the decoder said.
        detail: String,
    },
}

impl SignError {
    /// This error, as met reading the key file `path`.
    pub fn in_file(self, path: &Path) -> SignError {
        SignError::File {
            path: path.to_owned(),
            source: Box::new(self),
        }
    }
}

/// Why a record's signature does not check.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The record is not a JSON object.
    #[error("record is not a JSON object")]
    NotObject,
    /// The record has no `signature` member.
    #[error("no signature")]
    MissingSignature,
    /// `signature` is not an object with string `alg`, `key_id` and `value`.
    #[error("malformed signature: {detail}")]
    Malformed {
        /// What is wrong with it.
        detail: String,
    },
    /// `signature.alg` is not `ed25519`.
    #[error("unsupported signature alg {alg:?} (expected \"ed25519\")")]
    UnsupportedAlg {
        /// The record's `alg`.
        alg: String,
    },
    /// The record names another key than the one given.
    #[error("signed with key_id {record}, but the public key's key_id is {key}")]
    KeyIdMismatch {
        /// The record's `key_id`.
        record: String,
        /// The verifier's key id.
        key: String,
    },
    /// `signature.value` is not standard padded base64.
    #[error("signature value is not base64: {0}")]
    BadBase64(#[from] base64::DecodeError),
    /// `signature.value` does not decode to 64 bytes.
    #[error("signature value is {len} bytes, expected 64")]
    BadLength {
        /// Decoded length.
        len: usize,
    },
    /// The signature does not match the record: the record was changed after signing.
    #[error("invalid signature: the record was changed after it was signed")]
    Invalid,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn command() -> Value {
        json!({
            "kind": "command",
            "command_id": "cmd-0123456789abcdef",
            "agent_id": "agent-7",
            "action": "revoke_grant",
            "target": "grant-s3-read",
            "reason": "first use of mail:Send to an external domain in 14 days of history",
            "finding_ids": ["f-1", "f-2"],
            "issued_at": "2026-03-01T12:00:00Z",
            "expires_at": "2026-03-02T12:00:00Z",
            "requires_approval": true,
            "dry_run": false
        })
    }

    fn signed(signer: &Signer) -> Value {
        let mut record = command();
        let signature = signer.sign(&record);
        record["signature"] = serde_json::to_value(signature).unwrap();
        record
    }

    #[test]
    fn round_trip() {
        let signer = Signer::from_seed(&[1; 32]);
        let record = signed(&signer);
        signer.verifier().verify(&record).unwrap();
        let sig = &record["signature"];
        assert_eq!(sig["alg"], "ed25519");
        assert_eq!(sig["key_id"], signer.key_id());
        assert_eq!(
            BASE64.decode(sig["value"].as_str().unwrap()).unwrap().len(),
            64
        );
        // The signature member itself is not signed: signing the signed record gives the same.
        assert_eq!(
            signer.sign(&record),
            serde_json::from_value(sig.clone()).unwrap()
        );
    }

    #[test]
    fn tampered_field_fails() {
        let signer = Signer::from_seed(&[2; 32]);
        let verifier = signer.verifier();
        for (field, value) in [
            ("agent_id", json!("agent-8")),
            ("dry_run", json!(true)),
            ("finding_ids", json!(["f-1"])),
            ("extra", json!(1)),
        ] {
            let mut record = signed(&signer);
            record[field] = value;
            assert!(
                matches!(verifier.verify(&record), Err(VerifyError::Invalid)),
                "{field}"
            );
        }
        let mut record = signed(&signer);
        record.as_object_mut().unwrap().remove("reason");
        assert!(matches!(
            verifier.verify(&record),
            Err(VerifyError::Invalid)
        ));
    }

    #[test]
    fn reordered_and_reformatted_record_verifies() {
        let signer = Signer::from_seed(&[3; 32]);
        let record = signed(&signer);
        let object = record.as_object().unwrap();
        // Rebuild the text with the keys in reverse order and indentation, then parse it again.
        let mut text = String::from("{\n");
        let entries: Vec<_> = object.iter().rev().collect();
        for (i, (k, v)) in entries.iter().enumerate() {
            let sep = if i + 1 < entries.len() { "," } else { "" };
            text.push_str(&format!("  {}: {}{sep}\n", json!(k), v));
        }
        text.push('}');
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert!(text.find("\"dry_run\"").unwrap() < text.find("\"agent_id\"").unwrap());
        signer.verifier().verify(&reparsed).unwrap();
    }

    #[test]
    fn wrong_key_fails_with_key_id_mismatch() {
        let signer = Signer::from_seed(&[4; 32]);
        let other = Signer::from_seed(&[5; 32]);
        let record = signed(&signer);
        match other.verifier().verify(&record) {
            Err(e @ VerifyError::KeyIdMismatch { .. }) => {
                let text = e.to_string();
                assert!(text.contains(signer.key_id()), "{text}");
                assert!(text.contains(other.key_id()), "{text}");
            }
            other => panic!("expected a key_id mismatch, got {other:?}"),
        }
    }

    #[test]
    fn another_key_under_the_same_key_id_is_invalid() {
        let signer = Signer::from_seed(&[6; 32]);
        let other = Signer::from_seed(&[7; 32]);
        let mut record = command();
        let mut signature = other.sign(&record);
        signature.key_id = signer.key_id().to_owned();
        record["signature"] = serde_json::to_value(signature).unwrap();
        assert!(matches!(
            signer.verifier().verify(&record),
            Err(VerifyError::Invalid)
        ));
    }

    #[test]
    fn malformed_signatures_are_named() {
        let signer = Signer::from_seed(&[8; 32]);
        let verifier = signer.verifier();
        assert!(matches!(
            verifier.verify(&json!([1])),
            Err(VerifyError::NotObject)
        ));
        assert!(matches!(
            verifier.verify(&command()),
            Err(VerifyError::MissingSignature)
        ));
        let mut record = signed(&signer);
        record["signature"] = json!("abc");
        assert!(matches!(
            verifier.verify(&record),
            Err(VerifyError::Malformed { .. })
        ));
        let mut record = signed(&signer);
        record["signature"]["alg"] = json!("rsa");
        assert!(matches!(
            verifier.verify(&record),
            Err(VerifyError::UnsupportedAlg { .. })
        ));
        let mut record = signed(&signer);
        record["signature"]["value"] = json!("not base64!");
        assert!(matches!(
            verifier.verify(&record),
            Err(VerifyError::BadBase64(_))
        ));
        let mut record = signed(&signer);
        record["signature"]["value"] = json!(BASE64.encode([0u8; 32]));
        assert!(matches!(
            verifier.verify(&record),
            Err(VerifyError::BadLength { len: 32 })
        ));
    }

    #[test]
    fn pem_round_trip() {
        let signer = Signer::from_seed(&[9; 32]);
        let private = signer.private_pem();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let public = signer.public_pem();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));

        let loaded = Signer::from_pem(&private).unwrap();
        assert_eq!(loaded.key_id(), signer.key_id());
        assert_eq!(loaded.public_pem(), public);
        let verifier = Verifier::from_pem(&public).unwrap();
        assert_eq!(verifier.key_id(), signer.key_id());
        // Signed with the reloaded key, checked with the public key from PEM.
        verifier.verify(&signed(&loaded)).unwrap();
        // Ed25519 is deterministic: the same key signs the same bytes the same way.
        assert_eq!(loaded.sign(&command()), signer.sign(&command()));
    }

    #[test]
    fn key_id_is_sha256_prefix_of_the_raw_public_key() {
        // RFC 8032 test vector 1.
        let secret: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let signer = Signer::new(SigningKey::from_bytes(&secret));
        let public = signer.key.verifying_key().to_bytes();
        let digest = Sha256::digest(public);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(signer.key_id(), &hex[..16]);
        assert_eq!(signer.key_id().len(), 16);
    }

    #[test]
    fn openssl_pem_loads() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` output.
        let private = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
            -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
            -----END PUBLIC KEY-----\n";
        let signer = Signer::from_pem(private).unwrap();
        assert_eq!(signer.private_pem().as_str(), private);
        assert_eq!(signer.public_pem(), public);
        assert_eq!(
            Verifier::from_pem(public).unwrap().key_id(),
            signer.key_id()
        );
    }

    #[test]
    fn wrong_keys_are_refused() {
        let signer = Signer::from_seed(&[10; 32]);
        match Signer::from_pem(&signer.public_pem()) {
            Err(SignError::WrongKeyType { found, .. }) => assert!(found.contains("PUBLIC KEY")),
            other => panic!("{other:?}"),
        }
        match Verifier::from_pem(&signer.private_pem()) {
            Err(SignError::WrongKeyType { found, .. }) => assert!(found.contains("PRIVATE KEY")),
            other => panic!("{other:?}"),
        }
        // An X25519 public key (RFC 8410 example).
        let x25519 = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VuAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
            -----END PUBLIC KEY-----\n";
        match Verifier::from_pem(x25519) {
            Err(SignError::WrongKeyType { found, .. }) => assert!(found.contains("X25519")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Verifier::from_pem("not a key"),
            Err(SignError::Pem { .. })
        ));
        let missing = Path::new("/nonexistent/cinch-signing.pub");
        let err = crate::drive::files::verifier(missing).unwrap_err();
        assert!(matches!(err, SignError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/cinch-signing.pub"));
    }

    #[test]
    fn canonical_matches_rfc_8785() {
        // RFC 8785 section 3.2.2 (numbers, escapes, literals) and 3.2.3 (sorting by UTF-16
        // code units), plus nesting: every object at every depth is sorted.
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false],
          "nested": {"z": {"b": 2, "a": [{"y": 1, "x": "é"}]}, "\u00e9": "𝄞", "a": {}},
          "\ud83d\ude00": 1, "\ufb33": 2, "\r": 3, "1": 4, "\u00f6": 5
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let expected = concat!(
            r#"{"\r":3,"1":4,"literals":[null,true,false],"#,
            r#""nested":{"a":{},"z":{"a":[{"x":"é","y":1}],"b":2},"é":"𝄞"},"#,
            r#""numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#,
            r#""string":"€$\u000f\nA'B\"\\\\\"/","ö":5,"😀":1,"דּ":2}"#
        );
        assert_eq!(String::from_utf8(canonical(&value)).unwrap(), expected);
    }
}
