//! `vmm-ctl`: sends one request to a running vmm's control socket and prints the answer.
//!
//! `vmm-ctl --api-sock PATH status|pause|resume|ctrl-alt-del|power-button|stop|snapshot
//! FILE`; exit code 0
//! when the request was carried out, 1 when it was refused or the socket could not be reached.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Talks to a running vmm.
#[derive(Debug, Parser)]
#[command(name = "vmm-ctl", version, about)]
struct Args {
    /// The vmm's control socket.
    #[arg(long)]
    api_sock: PathBuf,
    /// What to ask.
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, Subcommand)]
enum Action {
    /// Print the VM's state and counters.
    Status,
    /// Hold every vCPU outside the guest.
    Pause,
    /// Let the vCPUs run again.
    Resume,
    /// Press Ctrl-Alt-Del on the guest's keyboard.
    CtrlAltDel,
    /// Press the guest's ACPI power button.
    PowerButton,
    /// End the VM now.
    Stop,
    /// Pause the VM and save all of it to FILE (made absolute here); it stays paused.
    Snapshot {
        /// The snapshot file to write.
        file: PathBuf,
    },
}

impl Action {
    fn to_json(&self) -> std::io::Result<serde_json::Value> {
        let action = |name: &str| serde_json::json!({ "action": name });
        Ok(match self {
            Action::Status => action("status"),
            Action::Pause => action("pause"),
            Action::Resume => action("resume"),
            Action::CtrlAltDel => action("ctrl-alt-del"),
            Action::PowerButton => action("power-button"),
            Action::Stop => action("stop"),
            Action::Snapshot { file } => {
                serde_json::json!({ "action": "snapshot", "path": std::path::absolute(file)? })
            }
        })
    }
}

fn request(args: &Args) -> std::io::Result<serde_json::Value> {
    let body = args.action.to_json()?;
    let mut stream = UnixStream::connect(&args.api_sock)?;
    writeln!(stream, "{body}")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match request(&args) {
        Ok(answer) => {
            println!("{answer}");
            if answer["ok"] == true {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("vmm-ctl: cannot reach {}: {err}", args.api_sock.display());
            ExitCode::from(1)
        }
    }
}
