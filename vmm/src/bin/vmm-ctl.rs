//! `vmm-ctl`: sends one request to a running vmm's control socket and prints the answer.
//!
//! `vmm-ctl --api-sock PATH status|pause|resume|ctrl-alt-del|stop`; exit code 0 when the
//! request was carried out, 1 when it was refused or the socket could not be reached.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// Talks to a running vmm.
#[derive(Debug, Parser)]
#[command(name = "vmm-ctl", version, about)]
struct Args {
    /// The vmm's control socket.
    #[arg(long)]
    api_sock: PathBuf,
    /// What to ask.
    action: Action,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Action {
    Status,
    Pause,
    Resume,
    CtrlAltDel,
    Stop,
}

fn request(args: &Args) -> std::io::Result<serde_json::Value> {
    let action = args
        .action
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let mut stream = UnixStream::connect(&args.api_sock)?;
    writeln!(stream, "{}", serde_json::json!({ "action": action }))?;
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
