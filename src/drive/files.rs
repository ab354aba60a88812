//! Reading the files the engine is configured with: settings, entitlements, analyst feedback,
//! model files and signing keys. The engine parses text it is handed; reading it is the drivers'
//! and the command line's business, and so is drawing fresh keys from the operating system.

use std::path::Path;

use zeroize::Zeroizing;

use crate::config::{ConfigError, Settings};
use crate::decide::suppress::{Feedback, FeedbackError};
use crate::grants::{Entitlements, EntitlementsError};
use crate::ml::settings::MlSettings;
use crate::ml::{Model, ModelError};
use crate::output::sign::{SignError, Signer, Verifier};

/// Reads settings from a TOML file and validates them.
pub fn settings(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Settings::from_toml_at(&text, &path.display().to_string())
}

/// Reads an entitlements document (JSON or YAML) from a file.
pub fn entitlements(path: &Path) -> Result<Entitlements, EntitlementsError> {
    let text = std::fs::read_to_string(path).map_err(|source| EntitlementsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Entitlements::parse(&text, &path.display().to_string())
}

/// Reads a JSON-lines file of analyst feedback, in event-time order.
pub fn feedback(path: &Path) -> Result<Vec<Feedback>, FeedbackError> {
    let text = std::fs::read_to_string(path).map_err(|source| FeedbackError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Feedback::parse_lines(&text, &path.display().to_string())
}

/// Reads and checks a model file.
pub fn model(path: &Path) -> Result<Model, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    Model::from_json(&text).map_err(|e| e.at(path))
}

/// The model the settings ask for: none unless `ml.enabled`; then the file `ml.model_path`, or
/// the built-in model when the path is empty.
pub(crate) fn model_for(settings: &MlSettings) -> Result<Option<Model>, ModelError> {
    if !settings.enabled {
        return Ok(None);
    }
    if settings.model_path.is_empty() {
        return Model::embedded().map(Some);
    }
    model(Path::new(&settings.model_path)).map(Some)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>, SignError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| SignError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) from a file.
pub fn signer(path: &Path) -> Result<Signer, SignError> {
    let pem = read_key_file(path)?;
    Signer::from_pem(&pem).map_err(|e| e.in_file(path))
}

/// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`) from a file.
pub fn verifier(path: &Path) -> Result<Verifier, SignError> {
    let pem = read_key_file(path)?;
    Verifier::from_pem(&pem).map_err(|e| e.in_file(path))
}

/// A fresh key from the operating system's randomness: an ephemeral key, unless its
/// [`Signer::private_pem`] is saved.
pub fn fresh_signer() -> Signer {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
    Signer::from_seed(&seed)
}
