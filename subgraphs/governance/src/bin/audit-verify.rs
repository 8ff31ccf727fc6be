//! `audit-verify --verifier-key KEY FILE…`: checks exported audit objects offline — the checkpoint's
//! signature by KEY (a signed-note verifier key, as `auditCheckpoint` serves it), every entry's sequence,
//! tenant and chain hash, and that the entries give the checkpoint's Merkle root. Prints one line per file;
//! exits 0 when every file holds, 1 when one does not (the line names its first problem), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "audit-verify", about = "Checks exported audit objects offline against a checkpoint verifier key")]
struct Cli {
    /// The verifier key (`<name>+<key id>+<base64 public key>`).
    #[arg(
        long,
        env = "AUDIT_VERIFIER_KEY",
        conflicts_with = "verifier_key_file",
        required_unless_present = "verifier_key_file"
    )]
    verifier_key: Option<String>,
    /// A file holding the verifier key.
    #[arg(long)]
    verifier_key_file: Option<PathBuf>,
    /// Exported objects (`audit/<tenant>/<from>-<to>.jsonl`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let key = match (&cli.verifier_key, &cli.verifier_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(k) => k.trim().to_owned(),
            Err(e) => {
                eprintln!("audit-verify: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => unreachable!("clap requires one"),
    };
    let mut ok = true;
    for file in &cli.files {
        let result = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| governance::audit::export::verify(&bytes, &key));
        match result {
            Ok(v) => println!(
                "{}: OK — entries {}..={} of {} ({}), signed checkpoint verified",
                file.display(),
                v.from_sequence,
                v.to_sequence,
                v.tenant_id,
                v.origin
            ),
            Err(problem) => {
                ok = false;
                println!("{}: FAILED — {problem}", file.display());
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
