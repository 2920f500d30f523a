//! `koopstream token`: makes a new bearer token and prints it once with the `[[auth.tokens]]`
//! entry that holds its digest; with `--hash`, prints the digest of a token read from
//! standard input (so an existing secret never appears on a command line).

use std::io::{BufRead, Write};

use clap::Args;

use super::CommandError;
use crate::access::{AuthError, new_token};
use crate::api::auth::{Scope, TokenDigest};

/// Options of `koopstream token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Name of the token in the entry printed (shown in audit lines).
    #[arg(long, default_value = "gateway")]
    pub name: String,
    /// Scopes of the entry printed, comma separated: read, ingest, admin, metrics.
    #[arg(long, value_delimiter = ',', default_value = "ingest")]
    pub scopes: Vec<String>,
    /// Read a token from the first line of standard input and print only its SHA-256.
    #[arg(long)]
    pub hash: bool,
}

/// Prints a new token and its configuration entry, or the digest of a given token.
pub fn run(args: &TokenArgs) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    if args.hash {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        writeln!(out, "{}", TokenDigest::of(line.trim_end_matches(['\r', '\n'])).to_hex())?;
        return Ok(());
    }
    for scope in &args.scopes {
        if Scope::parse(scope).is_none() {
            let reason = format!("`{scope}` is not one of read, ingest, admin, metrics");
            return Err(AuthError { key: "--scopes".to_owned(), reason }.into());
        }
    }
    let (token, digest) = new_token()?;
    let scopes: Vec<String> = args.scopes.iter().map(|s| format!("{s:?}")).collect();
    writeln!(out, "# The token (shown once; give it to the client, keep it secret):")?;
    writeln!(out, "# {token}")?;
    writeln!(out, "[[auth.tokens]]")?;
    writeln!(out, "name = {:?}", args.name)?;
    writeln!(out, "sha256 = \"{digest}\"")?;
    writeln!(out, "scopes = [{}]", scopes.join(", "))?;
    Ok(())
}
