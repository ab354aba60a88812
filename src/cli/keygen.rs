//! `cinch keygen`: write an Ed25519 key pair for signing commands.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// File name of the private key (PKCS#8 PEM) in the output directory.
pub(crate) const PRIVATE_KEY_FILE: &str = "cinch-signing.key";
/// File name of the public key (SPKI PEM) in the output directory.
pub(crate) const PUBLIC_KEY_FILE: &str = "cinch-signing.pub";

/// Arguments of `cinch keygen`.
#[derive(Clone, Debug, clap::Args)]
pub struct KeygenArgs {
    /// Output directory (created if missing): gets `cinch-signing.key` and `cinch-signing.pub`.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// Generates a key pair, writes both files and prints the key id and paths.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let private = args.out.join(PRIVATE_KEY_FILE);
    let public = args.out.join(PUBLIC_KEY_FILE);
    if !args.force {
        for path in [&private, &public] {
            if path.exists() {
                bail!(
                    "{} already exists; pass --force to replace the key pair",
                    path.display()
                );
            }
        }
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create directory {}", args.out.display()))?;
    let signer = crate::drive::files::fresh_signer();
    write_new(&private, signer.private_pem().as_bytes(), true)?;
    write_new(&public, signer.public_pem().as_bytes(), false)?;
    println!("key_id {}", signer.key_id());
    println!("private key {} (keep it secret)", private.display());
    println!("public key  {} (give it to verifiers)", public.display());
    Ok(())
}

/// Writes `contents` to a freshly created `path` (an existing file is removed first), readable
/// by the owner only when `secret`.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    // Only Unix file modes depend on it.
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
