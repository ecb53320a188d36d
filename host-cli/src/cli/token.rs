//! `pkms token start|stop|status`: the lifecycle of the QEMU token of `$PKMS_HOME`.

use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use pkms_lib::model::encoding::iso8601;
use serde_json::{json, Value};

use super::Context;
use pkms_lib::launcher::{self, Link, TokenStatus};

/// The QEMU token's lifecycle.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Start the QEMU token of $PKMS_HOME unless it runs, wait until it answers over the chosen
    /// link, and print its status. A token started by another pkms build is restarted.
    #[command(after_help = "Examples:\n  pkms token start\n  pkms token start --idle-timeout 3600")]
    Start {
        /// Seconds without a request after which the token ends itself (0: never). Applies when
        /// this call starts it. Default: PKMS_IDLE_SECS, else 300.
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<u64>,
    },
    /// Stop the QEMU token of $PKMS_HOME: waits for a call in progress to finish, then ends
    /// QEMU. Its keys stay in $PKMS_HOME/token.flash; the next call starts it again.
    #[command(after_help = "Example:\n  pkms token stop")]
    Stop {},
    /// Print whether the QEMU token of $PKMS_HOME runs: pid, link, uptime, flash file, idle
    /// timeout. Starts nothing.
    #[command(
        after_help = "Examples:\n  pkms token status\n  pkms token status --query Running --output text"
    )]
    Status {},
}

/// Runs a token lifecycle command. Needs no connection but `start`'s.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    let home = ctx.home().to_path_buf();
    let opts = ctx.launch_options();
    let link = opts.link;
    match cmd {
        Commands::Start { idle_timeout } => {
            let mut opts = opts;
            if let Some(secs) = idle_timeout {
                opts.idle_timeout = Duration::from_secs(secs);
            }
            let conn = launcher::connect(&home, &opts)?;
            let started = conn.started();
            drop(conn);
            let status = launcher::status(&home, &opts);
            ctx.emit(&with_field(status_json(status.as_ref(), link, &home), "Started", started.into()))
        }
        Commands::Stop {} => {
            let pid = launcher::status(&home, &opts).map(|s| s.pid);
            let stopped = launcher::stop(&home)?;
            ctx.emit(&json!({ "Stopped": stopped > 0, "Pid": pid }))
        }
        Commands::Status {} => ctx.emit(&status_json(launcher::status(&home, &opts).as_ref(), link, &home)),
    }
}

fn with_field(mut value: Value, name: &str, field: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert(name.to_owned(), field);
    }
    value
}

/// `{"Running", "Pid", "Link", "Socket", "Links", "UptimeSeconds", "StartedAt", "FlashFile",
/// "IdleTimeoutSeconds", "FirmwareCurrent", "Home"}`; only `Running`, `Link`, `FlashFile` and
/// `Home` when it does not run. `Link` is the link pkms uses (`--link` / PKMS_LINK) and `Socket`
/// its socket; `Links` are those the running QEMU serves.
pub fn status_json(status: Option<&TokenStatus>, link: Link, home: &std::path::Path) -> Value {
    let paths = launcher::TokenPaths::new(home);
    let Some(s) = status else {
        return json!({
            "Running": false,
            "Link": link.name(),
            "FlashFile": paths.flash.display().to_string(),
            "Home": paths.home.display().to_string(),
        });
    };
    let started = s.started.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| iso8601(d.as_secs()));
    let uptime = s.uptime().map(|d| (d.as_secs_f64() * 10.0).round() / 10.0);
    json!({
        "Running": true,
        "Link": link.name(),
        "Pid": s.pid,
        "Socket": s.paths.socket_of(link).display().to_string(),
        "Links": s.links.iter().map(|l| l.name()).collect::<Vec<_>>(),
        "UptimeSeconds": uptime,
        "StartedAt": started,
        "FlashFile": s.paths.flash.display().to_string(),
        "IdleTimeoutSeconds": s.idle_timeout.map(|d| d.as_secs()),
        "FirmwareCurrent": s.current_firmware,
        "Home": s.paths.home.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn status_names_pid_link_uptime_flash_file_and_idle_timeout() {
        let home = std::path::Path::new("/tmp/pkms-home");
        let stopped = status_json(None, Link::Ethernet, home);
        assert_eq!(stopped["Running"], false);
        assert_eq!(stopped["FlashFile"], "/tmp/pkms-home/token.flash");
        assert!(stopped.get("Pid").is_none());

        let running = TokenStatus {
            pid: 4242,
            started: Some(SystemTime::now() - Duration::from_secs(90)),
            idle_timeout: Some(Duration::from_secs(300)),
            links: vec![Link::Ethernet, Link::Uart],
            current_firmware: true,
            paths: launcher::TokenPaths::new(home),
        };
        let v = status_json(Some(&running), Link::Uart, home);
        assert_eq!(v["Running"], true);
        assert_eq!(v["Pid"], 4242);
        assert_eq!(v["Link"], "uart");
        assert_eq!(v["Socket"], "/tmp/pkms-home/token.sock");
        assert_eq!(v["Links"], serde_json::json!(["ethernet", "uart"]));
        let uptime = v["UptimeSeconds"].as_f64().unwrap();
        assert!((90.0..100.0).contains(&uptime), "{uptime}");
        assert_eq!(v["IdleTimeoutSeconds"], 300);
        assert_eq!(v["FlashFile"], "/tmp/pkms-home/token.flash");
        assert_eq!(
            status_json(Some(&running), Link::Ethernet, home)["Socket"],
            "/tmp/pkms-home/token-net.sock"
        );
    }
}
