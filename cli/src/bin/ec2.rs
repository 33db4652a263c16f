//! `ec2`: the command-line client for kec2's EC2 API.

fn main() -> std::process::ExitCode {
    cli::main()
}
