//! One file per subcommand: argument structs and the glue that builds validated settings and
//! calls the library. `anyhow` is used here, at the binary's edge, and nowhere in the engine.

pub mod authorize;
pub mod demo;
pub mod eval;
pub mod keygen;
pub mod plan;
pub mod replay;
pub mod run;
pub mod simulate;
pub mod train;
pub mod trajectories;
pub mod verify;

use std::path::Path;

use anyhow::Context;

use crate::config::Settings;

/// What the response side needs beyond settings: entitlements, the signing key and feedback.
pub struct Response {
    /// Entitlements, when a file was given.
    pub entitlements: Option<crate::grants::Entitlements>,
    /// The key that signs commands.
    pub signer: std::sync::Arc<crate::output::sign::Signer>,
    /// Whether the key was generated for this run (and is not saved anywhere).
    pub ephemeral: bool,
    /// Feedback from a file.
    pub feedback: Vec<crate::decide::suppress::Feedback>,
}

impl Response {
    /// Loads entitlements, the signing key and feedback from the flags, else from the
    /// settings, and says on stderr what was loaded. Without a key an ephemeral one is
    /// generated; `announce` says so at once (long runs), else the caller says so at the end.
    pub fn load(
        settings: &Settings,
        entitlements: Option<&Path>,
        signing_key: Option<&Path>,
        feedback: Option<&Path>,
        who: &str,
        announce: bool,
    ) -> anyhow::Result<Response> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
        let ents_path = entitlements
            .map(Path::to_path_buf)
            .or_else(|| non_empty(&settings.grants.entitlements_path));
        let entitlements = ents_path
            .map(|p| {
                let e = crate::drive::files::entitlements(&p)?;
                eprintln!(
                    "{who}: entitlements of {} agents ({} grants) from {}",
                    e.agents(),
                    e.grants(),
                    p.display()
                );
                anyhow::Ok(e)
            })
            .transpose()?;
        let key_path = signing_key
            .map(Path::to_path_buf)
            .or_else(|| non_empty(&settings.commands.signing_key));
        let ephemeral = key_path.is_none();
        let signer = match key_path {
            Some(p) => crate::drive::files::signer(&p)?,
            None => {
                let s = crate::drive::files::fresh_signer();
                if settings.commands.enabled && announce {
                    eprintln!(
                        "{who}: no signing key given: commands are signed with an ephemeral key (key_id {}) that is not saved; create one with `cinch keygen` and pass --signing-key",
                        s.key_id()
                    );
                }
                s
            }
        };
        let fb_path = feedback
            .map(Path::to_path_buf)
            .or_else(|| non_empty(&settings.feedback.path));
        let feedback = match fb_path {
            Some(p) => {
                let v = crate::drive::files::feedback(&p)?;
                eprintln!("{who}: {} feedback records from {}", v.len(), p.display());
                v
            }
            None => Vec::new(),
        };
        Ok(Response {
            entitlements,
            signer: std::sync::Arc::new(signer),
            ephemeral,
            feedback,
        })
    }
}

/// The model to apply: the file given by `--model` (which switches the models on), else, when
/// `ml.enabled`, `ml.model_path` or the built-in default. Says on stderr which file it loaded.
pub(crate) fn load_model(
    settings: &mut Settings,
    flag: Option<&Path>,
    who: &str,
) -> anyhow::Result<Option<crate::ml::Model>> {
    if let Some(p) = flag {
        settings.ml.enabled = true;
        settings.ml.model_path = p.display().to_string();
    }
    let model = crate::drive::files::model_for(&settings.ml)?;
    if let Some(m) = &model
        && !settings.ml.model_path.is_empty()
    {
        eprintln!(
            "{who}: model with {} peer groups, trained on {} events of {} agents, from {}",
            m.groups(),
            m.file().training.events,
            m.file().training.agents,
            settings.ml.model_path
        );
    }
    Ok(model)
}

/// Loads settings from `path`, or the defaults when none is given.
pub(crate) fn load_settings(path: Option<&Path>) -> anyhow::Result<Settings> {
    match path {
        Some(p) => crate::drive::files::settings(p)
            .with_context(|| format!("loading settings from {}", p.display())),
        None => Ok(Settings::default()),
    }
}
