//! The `commands` capability: running a command the operator configured for a plugin by name,
//! e.g. `reload-nginx = ["nginx", "-s", "reload"]` for a deployer that has just replaced the
//! certificate files nginx reads.
//!
//! The plugin chooses only the name: the program and its arguments come from the operator's
//! grants, run directly (no shell to interpret anything), with no standard input and an
//! environment of `PATH` only, so nothing of the gateway's environment (database URLs,
//! secrets) reaches them. The run is bounded in time and the command killed at the deadline;
//! what it printed is logged under the plugin's name, since an operator reading why a reload
//! failed looks there, and returned to the plugin, bounded.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::bindings::wit::commands::Output;
use super::bindings::wit::types::CapabilityError;
use super::capabilities::sanitize_line;

/// The longest a command may run, whatever the plugin asks (within the deployer's 60 s call).
pub const COMMAND_MAX_WAIT: Duration = Duration::from_secs(60);

/// What is kept of each of standard output and error.
pub const OUTPUT_MAX_BYTES: u64 = 64 << 10;

/// The search path when the gateway has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the argv `argv` configured as `name` for `plugin`, waiting up to `timeout_ms`.
pub async fn run(
    plugin: &str,
    name: &str,
    argv: &[String],
    timeout_ms: u32,
) -> Result<Output, CapabilityError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CapabilityError::Invalid(format!(
            "the command {name:?} is configured with an empty argv"
        )));
    };
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CapabilityError::Failed(format!("command {name:?} ({program}): {e}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let wait = Duration::from_millis(timeout_ms.into()).min(COMMAND_MAX_WAIT);
    let finished = tokio::time::timeout(wait, async {
        let (out, err) = tokio::join!(bounded(stdout), bounded(stderr));
        (child.wait().await, out, err)
    })
    .await;
    let (status, stdout, stderr) = match finished {
        Ok((status, out, err)) => (
            status.map_err(|e| CapabilityError::Failed(format!("command {name:?}: {e}")))?,
            out,
            err,
        ),
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!(plugin, command = name, "killed after {wait:?}");
            return Err(CapabilityError::Timeout);
        }
    };
    let status = status.code();
    tracing::info!(
        plugin,
        command = name,
        status = ?status,
        stdout = %sanitize_line(&stdout),
        stderr = %sanitize_line(&stderr),
        "ran a granted command"
    );
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// At most [`OUTPUT_MAX_BYTES`] of a pipe, as text. The pipe is closed as soon as that much
/// is read, so a command printing more gets `SIGPIPE` (or `EPIPE`) instead of blocking on a
/// full pipe while the other pipe's reader waits for its end.
async fn bounded(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(OUTPUT_MAX_BYTES).read_to_end(&mut buf).await;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn runs_argv_without_a_shell_or_the_gateway_environment() {
        let out = run(
            "p",
            "show",
            &argv(&["sh", "-c", "echo \"$HOME|$PATH\"; echo oops >&2; exit 3"]),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!(out.status, Some(3));
        assert!(out.stdout.starts_with('|'), "no HOME: {:?}", out.stdout);
        assert!(
            out.stdout.trim_end().len() > 1,
            "PATH kept: {:?}",
            out.stdout
        );
        assert_eq!(out.stderr, "oops\n");
        // One argv element is one argument: no shell splits or expands it.
        let out = run("p", "echo", &argv(&["echo", "a b; $(id)"]), 5_000)
            .await
            .unwrap();
        assert_eq!(out.stdout, "a b; $(id)\n");
    }

    #[tokio::test]
    async fn bounded_in_time_and_output() {
        let started = std::time::Instant::now();
        let slow = run("p", "slow", &argv(&["sleep", "30"]), 200).await;
        assert!(matches!(slow, Err(CapabilityError::Timeout)), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let loud = run(
            "p",
            "loud",
            &argv(&["head", "-c", "1000000", "/dev/zero"]),
            5_000,
        )
        .await
        .unwrap();
        assert_eq!(loud.stdout.len() as u64, OUTPUT_MAX_BYTES);
        let missing = run("p", "gone", &argv(&["/nonexistent/program"]), 1_000).await;
        assert!(
            matches!(&missing, Err(CapabilityError::Failed(m)) if m.contains("\"gone\"")),
            "{missing:?}"
        );
        let empty = run("p", "empty", &[], 1_000).await;
        assert!(matches!(empty, Err(CapabilityError::Invalid(_))));
    }
}
